use super::*;

fn path(s: &str) -> Arg {
    Arg::Expr(Expr::Path(s.to_string()))
}

fn call(name: &str, args: Vec<Arg>) -> Expr {
    Expr::Call {
        name: name.to_string(),
        args,
    }
}

#[test]
fn bare_paths() {
    assert_eq!(parse("a.b.c"), Ok(Expr::Path("a.b.c".into())));
    assert_eq!(parse(" a.*.c "), Ok(Expr::Path("a.*.c".into())));
    assert_eq!(
        parse("a.{b,c}.d[0-9]?"),
        Ok(Expr::Path("a.{b,c}.d[0-9]?".into()))
    );
    assert_eq!(
        parse("foo.bar:count"),
        Ok(Expr::Path("foo.bar:count".into()))
    );
    assert_eq!(
        parse("my-host_1.cpu"),
        Ok(Expr::Path("my-host_1.cpu".into()))
    );
}

#[test]
fn calls_and_literals() {
    let e = parse("sumSeries(a.{x,y}.c, scale(b, -2.5e1), 3, true, 'q\\'s', \"d\", None)");
    assert_eq!(
        e,
        Ok(call(
            "sumSeries",
            vec![
                path("a.{x,y}.c"),
                Arg::Expr(call("scale", vec![path("b"), Arg::Num(-25.0)])),
                Arg::Int(3),
                Arg::Bool(true),
                Arg::Str("q\\'s".into()),
                Arg::Str("d".into()),
                Arg::None,
            ]
        ))
    );
}

#[test]
fn kwargs() {
    let e = parse("summarize(a, \"1h\", func = 'max', alignToFrom=True)");
    assert_eq!(
        e,
        Ok(call(
            "summarize",
            vec![
                path("a"),
                Arg::Str("1h".into()),
                Arg::Kw("func".into(), Box::new(Arg::Str("max".into()))),
                Arg::Kw("alignToFrom".into(), Box::new(Arg::Bool(true))),
            ]
        ))
    );
}

#[test]
fn number_like_paths_stay_paths() {
    let e = parse("f(1.2.3, 5min, 10)");
    assert_eq!(
        e,
        Ok(call("f", vec![path("1.2.3"), path("5min"), Arg::Int(10)]))
    );
}

#[test]
fn regex_strings_keep_backslashes() {
    let e = parse(r"aliasSub(x, '^.*\.(\w+)$', '\1')");
    assert_eq!(
        e,
        Ok(call(
            "aliasSub",
            vec![
                path("x"),
                Arg::Str(r"^.*\.(\w+)$".into()),
                Arg::Str(r"\1".into())
            ]
        ))
    );
}

#[test]
fn errors() {
    let e = parse("sumSeries(a.b").unwrap_err();
    assert_eq!(e.to_string(), "bad target syntax at 13: expected ')'");
    let e = parse("foo(").unwrap_err();
    assert_eq!(e.pos, 4);
    assert!(e.message.contains("expected argument"), "{e}");
    let e = parse("a.b)").unwrap_err();
    assert_eq!(e.to_string(), "bad target syntax at 3: unexpected ')'");
    assert!(parse("").is_err());
    assert!(parse("f(a,)").is_err());
    assert!(parse("f('abc)").is_err());
    assert!(parse("a.{b,c").is_err());
    assert!(parse("f(a b)").is_err());
    let deep = "f(".repeat(200) + "a" + &")".repeat(200);
    assert!(parse(&deep).is_err());
}

#[test]
fn paths_with_shift() {
    let e = parse("sumSeries(a.*, timeShift(b, '1d'), timeShift(timeShift(c, \"+1h\"), '-2h'))")
        .unwrap();
    assert_eq!(
        paths(&e),
        vec![
            PathRequest {
                path: "a.*".into(),
                shift: 0
            },
            PathRequest {
                path: "b".into(),
                shift: -86400
            },
            PathRequest {
                path: "c".into(),
                shift: -3600
            },
        ]
    );
    let e = parse("sumSeries(a, a)").unwrap();
    assert_eq!(paths(&e).len(), 1);
}

#[test]
fn first_path_of_names() {
    assert_eq!(first_path("sumSeries(a.b.c)"), "a.b.c");
    assert_eq!(first_path("scale(a.b,2)"), "a.b");
    assert_eq!(first_path("x.y"), "x.y");
    assert_eq!(first_path("my alias"), "my alias");
}

proptest::proptest! {
    #[test]
    fn never_panics(s in "[a-z(),.'\"={}\\[\\]*0-9 \\\\-]{0,30}") {
        let _ = parse(&s);
        if let Ok(e) = parse(&s) {
            let _ = paths(&e);
        }
    }
}
