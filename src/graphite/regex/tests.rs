use super::*;

fn sub(p: &str, r: &str, t: &str) -> String {
    Regex::new(p).unwrap().replace_all(t, r).unwrap()
}

#[test]
fn grafana_style_alias_sub() {
    assert_eq!(
        sub(r"^.*\.(\w+)$", r"\1", "servers.web01.cpu_user"),
        "cpu_user"
    );
    assert_eq!(sub("(.*)", r"\1", "a.b"), "a.b");
    assert_eq!(
        sub(r"^servers\.([^.]+)\..*", r"host=\1", "servers.web01.cpu"),
        "host=web01"
    );
    assert_eq!(sub(r"(\w+)\.(\w+)", r"\2-\1", "a.b"), "b-a");
    assert_eq!(sub(r"(?P<h>web\d+)", r"\g<h>!", "x.web12.y"), "x.web12!.y");
}

#[test]
fn python_sub_semantics() {
    // Python 3.7+: the empty match after "abc" is also replaced.
    assert_eq!(sub("(.*)", r"x\1", "abc"), "xabcx");
    assert_eq!(sub("a*", "-", "baa"), "-b--");
    assert_eq!(sub("x*", "-", "abxd"), "-a-b--d-");
    assert_eq!(sub("o", "0", "foo.boo"), "f00.b00");
    assert_eq!(sub("(a)|b", r"[\1]", "ab"), "[a][]");
}

#[test]
fn syntax_coverage() {
    let m = |p: &str, t: &str| Regex::new(p).unwrap().is_match(t).unwrap();
    assert!(m("^a.c$", "abc"));
    assert!(!m("^a.c$", "abcd"));
    assert!(m("^ab?c$", "ac"));
    assert!(m("^a{2,3}$", "aaa"));
    assert!(!m("^a{2,3}$", "aaaa"));
    assert!(m("^a{2}$", "aa"));
    assert!(m("^a{2,}$", "aaaaa"));
    assert!(m("^x{,2}$", ""));
    assert!(m("a{x", "a{x"));
    assert!(m("^[a-c]+$", "abcab"));
    assert!(m("^[^a-c]+$", "xyz"));
    assert!(m(r"^[\d.]+$", "1.5"));
    assert!(m(r"^\s\S$", " x"));
    assert!(m("^(foo|bar)baz$", "barbaz"));
    assert!(m(r"\bword\b", "a word here"));
    assert!(!m(r"\bword\b", "swordfish"));
    assert!(m("^a$", "a\n"));
    assert!(m("^(?:ab)+$", "abab"));
    assert!(m("^.*?x", "aaxbx"));
}

#[test]
fn lazy_quantifier_prefers_short() {
    assert_eq!(sub("^(.*?)x", r"\1", "aaxbx"), "aabx");
    assert_eq!(sub("^(.*)x", r"\1", "aaxbx"), "aaxb");
}

#[test]
fn compile_errors() {
    for p in [
        "(", ")", "[a", "*a", "a**", r"\1", r"\q", "a{3,1}", "(?i)a", "a{1001}",
    ] {
        assert!(Regex::new(p).is_err(), "{p}");
    }
    let r = Regex::new("(a)").unwrap();
    assert!(r.replace_all("a", r"\2").is_err());
    assert!(r.replace_all("a", r"\g<x>").is_err());
    assert!(r.replace_all("a", r"\q").is_err());
}

#[test]
fn hostile_pattern_is_bounded() {
    let r = Regex::new("(a*)*b").unwrap();
    let text = "a".repeat(20_000);
    let started = std::time::Instant::now();
    // Either a quick "no match" (memoisation) or a budget error; never a hang.
    match r.replace_all(&text, "x") {
        Ok(s) => assert_eq!(s, text),
        Err(e) => assert!(e.contains("too"), "{e}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // With a budget too small for the search it must be an error.
    let e = r.replace_all_with_budget(&text, "x", 10_000).unwrap_err();
    assert!(e.contains("too expensive"), "{e}");
}

#[test]
fn nested_repeats_hit_size_limit() {
    assert!(Regex::new("((a{100}){100}){100}").is_err());
}

proptest::proptest! {
    #[test]
    fn never_panics(p in r"[a-c.*+?()|\[\]^$\\{}0-9,dws-]{0,12}", t in "[a-c0-9 .]{0,16}") {
        if let Ok(r) = Regex::new(&p) {
            let _ = r.replace_all(&t, r"x\0");
            let _ = r.replace_all(&t, "y");
        }
    }
}
