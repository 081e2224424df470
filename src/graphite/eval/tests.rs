use super::*;
use crate::graphite::glob::PathPattern;
use crate::graphite::target::{parse, paths};

/// Test store: every series starts at `start` (moved by the fetch shift)
/// and matches paths by glob, like a real finder.
struct Store {
    series: Vec<Series>,
}

impl Fetched for Store {
    fn series(&self, path: &str, shift: i64) -> Vec<Series> {
        let Ok(p) = PathPattern::compile(path) else {
            return Vec::new();
        };
        self.series
            .iter()
            .filter(|s| p.matches(&s.name))
            .map(|s| {
                let mut s = s.clone();
                s.start += shift;
                s.fix_end();
                s
            })
            .collect()
    }
}

fn ser(name: &str, values: &[Option<f64>]) -> Series {
    Series::new(name, 1000, 10, values.to_vec())
}

fn store() -> Store {
    Store {
        series: vec![
            ser("a.x.cpu", &[Some(1.0), None, Some(3.0)]),
            ser("a.y.cpu", &[Some(10.0), None, None]),
            ser("b.x.mem", &[Some(2.0), Some(4.0), Some(0.0)]),
            ser(
                "c.ctr",
                &[
                    Some(10.0),
                    Some(30.0),
                    Some(20.0),
                    Some(50.0),
                    None,
                    Some(60.0),
                ],
            ),
        ],
    }
}

fn run(target: &str) -> Result<Vec<Series>, EvalError> {
    let expr = parse(target).map_err(|e| EvalError::new(e.to_string()))?;
    evaluate(&expr, &store(), 1000, 1030)
}

fn ok(target: &str) -> Vec<Series> {
    run(target).unwrap_or_else(|e| panic!("{target}: {e}"))
}

fn err(target: &str) -> String {
    match run(target) {
        Ok(v) => panic!("{target}: expected an error, got {} series", v.len()),
        Err(e) => e.to_string(),
    }
}

fn names(list: &[Series]) -> Vec<&str> {
    list.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn sum_series_nulls_and_name() {
    let r = ok("sumSeries(a.*.cpu)");
    assert_eq!(names(&r), ["sumSeries(a.*.cpu)"]);
    assert_eq!(r[0].values, vec![Some(11.0), None, Some(3.0)]);
    assert_eq!((r[0].start, r[0].step, r[0].end), (1000, 10, 1030));
    let r = ok("sumSeries(b.x.mem, a.x.cpu)");
    assert_eq!(names(&r), ["sumSeries(a.x.cpu,b.x.mem)"]);
    assert_eq!(r[0].values, vec![Some(3.0), Some(4.0), Some(3.0)]);
    assert!(ok("sumSeries(nothing.*)").is_empty());
}

#[test]
fn other_aggregates() {
    assert_eq!(
        ok("averageSeries(a.*.cpu)")[0].values,
        vec![Some(5.5), None, Some(3.0)]
    );
    assert_eq!(
        ok("maxSeries(a.*.cpu)")[0].values,
        vec![Some(10.0), None, Some(3.0)]
    );
    let r = ok("minSeries(a.*.cpu)");
    assert_eq!(r[0].values, vec![Some(1.0), None, Some(3.0)]);
    assert_eq!(r[0].name, "minSeries(a.*.cpu)");
}

#[test]
fn scale_and_nested_names() {
    let r = ok("scale(a.x.cpu, 2)");
    assert_eq!(names(&r), ["scale(a.x.cpu,2)"]);
    assert_eq!(r[0].values, vec![Some(2.0), None, Some(6.0)]);
    assert_eq!(ok("scale(a.x.cpu, 0.5)")[0].name, "scale(a.x.cpu,0.5)");
    let r = ok("sumSeries(scale(a.*.cpu, 2))");
    assert_eq!(r[0].name, "sumSeries(scale(a.x.cpu,2),scale(a.y.cpu,2))");
}

#[test]
fn aliases() {
    assert_eq!(names(&ok("alias(a.x.cpu, 'CPU')")), ["CPU"]);
    assert_eq!(names(&ok("aliasByNode(a.*.cpu, 1)")), ["x", "y"]);
    assert_eq!(names(&ok("aliasByNode(a.x.cpu, 0, -1)")), ["a.cpu"]);
    assert_eq!(
        names(&ok("aliasByNode(sumSeries(a.*.cpu), 0, 2)")),
        ["a.cpu"]
    );
    assert_eq!(names(&ok("aliasByNode(scale(b.x.mem, 3), 2)")), ["mem"]);
    assert!(err("aliasByNode(a.x.cpu, 7)").contains("out of range"));
    assert!(err("aliasByNode(a.x.cpu, 'x')").contains("integers"));
}

#[test]
fn alias_sub_backrefs() {
    assert_eq!(
        names(&ok(r"aliasSub(a.*.cpu, '^a\.(\w+)\.cpu$', 'host \1')")),
        ["host x", "host y"]
    );
    assert_eq!(
        names(&ok(r"aliasSub(a.x.cpu, '^.*\.(\w+)$', '\1')")),
        ["cpu"]
    );
    assert_eq!(names(&ok("aliasSub(a.x.cpu, '(.*)', '\\1')")), ["a.x.cpu"]);
    assert!(err("aliasSub(a.x.cpu, '(', 'x')").starts_with("aliasSub: bad regex"));
}

#[test]
fn constant_line() {
    let r = ok("constantLine(123)");
    assert_eq!(r[0].name, "123");
    assert_eq!(r[0].path_expression, "constantLine(123)");
    assert_eq!((r[0].start, r[0].step), (1000, 15));
    assert_eq!(r[0].values, vec![Some(123.0); 3]);
    assert_eq!(ok("constantLine(1.5)")[0].name, "1.5");
    assert!(err("constantLine('x')").contains("must be a number"));
}

#[test]
fn null_handling_transforms() {
    let r = ok("transformNull(a.y.cpu)");
    assert_eq!(r[0].name, "transformNull(a.y.cpu,0)");
    assert_eq!(r[0].values, vec![Some(10.0), Some(0.0), Some(0.0)]);
    assert_eq!(ok("transformNull(a.y.cpu, -1)")[0].values[2], Some(-1.0));
    let r = ok("keepLastValue(a.y.cpu)");
    assert_eq!(r[0].name, "keepLastValue(a.y.cpu)");
    assert_eq!(r[0].values, vec![Some(10.0); 3]);
    assert_eq!(
        ok("keepLastValue(a.y.cpu, 1)")[0].values,
        vec![Some(10.0), None, None]
    );
    assert_eq!(
        ok("keepLastValue(a.x.cpu, 1)")[0].values,
        vec![Some(1.0), Some(1.0), Some(3.0)]
    );
}

#[test]
fn per_second_counter() {
    // 10, 30, 20 (reset), 50, null, 60 at 10s steps.
    let r = ok("perSecond(c.ctr)");
    assert_eq!(r[0].name, "perSecond(c.ctr)");
    assert_eq!(
        r[0].values,
        vec![None, Some(2.0), None, Some(3.0), None, None]
    );
    let r = ok("nonNegativeDerivative(c.ctr)");
    assert_eq!(
        r[0].values,
        vec![None, Some(20.0), None, Some(30.0), None, None]
    );
    // With maxValue the wrap 30 -> 20 is 100 + 1 + 20 - 30 = 91.
    let r = ok("nonNegativeDerivative(c.ctr, 100)");
    assert_eq!(r[0].values[2], Some(91.0));
    // Values above maxValue are dropped and break the chain.
    let r = ok("nonNegativeDerivative(c.ctr, maxValue=40)");
    assert_eq!(
        r[0].values,
        vec![None, Some(20.0), Some(31.0), None, None, None]
    );
}

#[test]
fn scale_to_seconds() {
    let r = ok("scaleToSeconds(b.x.mem, 1)");
    assert_eq!(r[0].name, "scaleToSeconds(b.x.mem,1)");
    assert_eq!(r[0].values, vec![Some(0.2), Some(0.4), Some(0.0)]);
}

#[test]
fn time_shift_moves_window() {
    let expr = parse("timeShift(b.x.mem, '1d')").unwrap();
    assert_eq!(paths(&expr)[0].shift, -86400);
    let r = ok("timeShift(b.x.mem, '1d')");
    assert_eq!(r[0].name, "timeShift(b.x.mem, \"-1d\")");
    assert_eq!(r[0].start, 1000);
    assert_eq!(r[0].end, 1030);
    assert_eq!(
        ok("timeShift(b.x.mem, '+1h')")[0].name,
        "timeShift(b.x.mem, \"+1h\")"
    );
    assert!(err("timeShift(b.x.mem, 'bogus')").starts_with("timeShift: bad interval"));
}

#[test]
fn moving_average_window() {
    let r = ok("movingAverage(c.ctr, 2)");
    assert_eq!(r[0].name, "movingAverage(c.ctr,2)");
    // Mean of the two previous points, excluding the current one.
    assert_eq!(
        r[0].values,
        vec![
            None,
            Some(10.0),
            Some(20.0),
            Some(25.0),
            Some(35.0),
            Some(50.0)
        ]
    );
    let r = ok("movingAverage(c.ctr, '20s')");
    assert_eq!(r[0].name, "movingAverage(c.ctr,\"20s\")");
    assert_eq!(r[0].values[3], Some(25.0));
    assert_eq!(
        window_check(&[Some(1.0), Some(2.0), Some(3.0), None, Some(5.0)], 2),
        vec![None, Some(1.0), Some(1.5), Some(2.5), Some(3.0)]
    );
}

fn window_check(values: &[Option<f64>], points: usize) -> Vec<Option<f64>> {
    let s = Store {
        series: vec![ser("w", values)],
    };
    let expr = parse(&format!("movingAverage(w, {points})")).unwrap();
    evaluate(&expr, &s, 0, 10).unwrap().remove(0).values
}

#[test]
fn summarize_hour_sum_of_ten_second_data() {
    // Two hours of 10s data starting at 3600, each point worth 1.
    let s = Store {
        series: vec![Series::new("m", 3600, 10, vec![Some(1.0); 720])],
    };
    let eval = |t: &str| evaluate(&parse(t).unwrap(), &s, 3600, 10800).unwrap();
    let r = eval("summarize(m, '1h', 'sum')");
    assert_eq!(r[0].name, "summarize(m, \"1h\", \"sum\")");
    assert_eq!((r[0].start, r[0].step), (3600, 3600));
    assert_eq!(r[0].values, vec![Some(360.0), Some(360.0), None]);
    let r = eval("summarize(m, '1h', 'max', true)");
    assert_eq!(r[0].name, "summarize(m, \"1h\", \"max\", true)");
    assert_eq!(r[0].values, vec![Some(1.0), Some(1.0)]);
    let r = eval("summarize(m, '1h')");
    assert_eq!(r[0].values[0], Some(360.0));
    let r = eval("summarize(m, '1h', 'avg')");
    assert_eq!(r[0].values[0], Some(1.0));
    let r = eval("summarize(m, '1h', 'last')");
    assert_eq!(r[0].values[0], Some(1.0));
    assert!(evaluate(&parse("summarize(m, '0s')").unwrap(), &s, 0, 1).is_err());
    assert!(evaluate(&parse("summarize(m, '1h', 'nope')").unwrap(), &s, 0, 1).is_err());
}

#[test]
fn summarize_unaligned_start() {
    // Start 3590 with 10s data: first point belongs to the 0..3600 bucket.
    let s = Store {
        series: vec![Series::new("m", 3590, 10, vec![Some(2.0), Some(3.0), None])],
    };
    let r = evaluate(&parse("summarize(m, '1h')").unwrap(), &s, 0, 1).unwrap();
    assert_eq!(r[0].start, 0);
    assert_eq!(r[0].values, vec![Some(2.0), Some(3.0)]);
}

#[test]
fn as_percent_forms() {
    let r = ok("asPercent(a.*.cpu)");
    assert_eq!(
        names(&r),
        [
            "asPercent(a.x.cpu,sumSeries(a.*.cpu))",
            "asPercent(a.y.cpu,sumSeries(a.*.cpu))"
        ]
    );
    assert_eq!(r[1].values[0], Some(10.0 / 11.0 * 100.0));
    assert_eq!(r[0].values[1], None);
    let r = ok("asPercent(b.x.mem, 4)");
    assert_eq!(r[0].name, "asPercent(b.x.mem,4)");
    assert_eq!(r[0].values, vec![Some(50.0), Some(100.0), Some(0.0)]);
    let r = ok("asPercent(a.x.cpu, b.x.mem)");
    assert_eq!(r[0].name, "asPercent(a.x.cpu,b.x.mem)");
    assert_eq!(r[0].values, vec![Some(50.0), None, None]);
    assert!(err("asPercent(a.*.cpu, *.*.*)").contains("second argument"));
    assert!(err("asPercent(a.*.cpu, 'x')").contains("must be"));
}

#[test]
fn divide_series_nulls() {
    let r = ok("divideSeries(a.x.cpu, b.x.mem)");
    assert_eq!(r[0].name, "divideSeries(a.x.cpu,b.x.mem)");
    assert_eq!(r[0].values, vec![Some(0.5), None, None]);
    let r = ok("divideSeries(a.x.cpu, none.such)");
    assert_eq!(r[0].name, "divideSeries(a.x.cpu,MISSING)");
    assert_eq!(r[0].values, vec![None; 3]);
    assert!(err("divideSeries(a.x.cpu, a.*.cpu)").contains("exactly 1 series (got 2)"));
}

#[test]
fn group_by_node() {
    let r = ok("groupByNode(*.x.*, 1, 'sumSeries')");
    assert_eq!(names(&r), ["x"]);
    assert_eq!(r[0].values, vec![Some(3.0), Some(4.0), Some(3.0)]);
    let r = ok("groupByNode(*.*.*, 0)");
    assert_eq!(names(&r), ["a", "b"]);
    assert_eq!(r[0].values, vec![Some(5.5), None, Some(3.0)]);
    let r = ok("groupByNode(*.*.*, -1, 'max')");
    assert_eq!(names(&r), ["cpu", "mem"]);
    assert!(err("groupByNode(a.*.cpu, 0, 'bogus')").contains("unsupported callback"));
}

#[test]
fn filters_and_sorting() {
    // Last non-null values: a.x.cpu 3, a.y.cpu 10, b.x.mem 0.
    assert_eq!(
        names(&ok("highestCurrent(*.*.*, 2)")),
        ["a.y.cpu", "a.x.cpu"]
    );
    assert_eq!(names(&ok("highestCurrent(*.*.*)")), ["a.y.cpu"]);
    assert_eq!(names(&ok("highestMax(*.*.*, 1)")), ["a.y.cpu"]);
    assert_eq!(names(&ok("limit(*.*.*, 2)")), ["a.x.cpu", "a.y.cpu"]);
    assert_eq!(names(&ok("limit(*.*.*, -1)")), ["a.x.cpu", "a.y.cpu"]);
    assert_eq!(
        names(&ok("sortByName(*.*.*, reverse=true)")),
        ["b.x.mem", "a.y.cpu", "a.x.cpu"]
    );
    let s = Store {
        series: vec![ser("h10", &[]), ser("h9", &[]), ser("h100", &[])],
    };
    let sorted = |t: &str| {
        evaluate(&parse(t).unwrap(), &s, 0, 1)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(sorted("sortByName(*)"), ["h10", "h100", "h9"]);
    assert_eq!(sorted("sortByName(*, true)"), ["h9", "h10", "h100"]);
}

#[test]
fn consolidate_by_sets_function() {
    let r = ok("consolidateBy(a.x.cpu, 'max')");
    assert_eq!(r[0].name, "consolidateBy(a.x.cpu,\"max\")");
    assert_eq!(
        r[0].consolidation,
        crate::graphite::series::Consolidation::Max
    );
    assert!(err("consolidateBy(a.x.cpu, 'mean')").contains("unknown consolidation"));
}

#[test]
fn argument_errors() {
    assert_eq!(err("foo(a.b)"), "unknown function \"foo\"");
    assert!(err("scale(a.x.cpu)").contains("missing required argument \"factor\""));
    assert!(err("scale(a.x.cpu, 'x')").contains("argument \"factor\" must be a number"));
    assert!(err("scale(a.x.cpu, 1, 2)").contains("too many arguments"));
    assert!(err("scale(a.x.cpu, bogus=1)").contains("unexpected keyword"));
    assert!(err("scale(seriesList=a.x.cpu, 2)").contains("positional argument follows keyword"));
    assert!(err("scale('a.x.cpu', 2)").contains("must be a series list"));
    assert!(err("sumSeries()").contains("missing required"));
    assert_eq!(
        ok("scale(factor=3, seriesList=a.x.cpu)")[0].values[0],
        Some(3.0)
    );
}

#[test]
fn bad_fetched_step_is_an_error() {
    let s = Store {
        series: vec![Series::new("z", 0, 0, vec![Some(1.0)])],
    };
    assert!(evaluate(&parse("z").unwrap(), &s, 0, 1).is_err());
}

#[test]
fn mixed_steps_are_normalised() {
    let s = Store {
        series: vec![
            Series::new(
                "p.a",
                0,
                10,
                vec![Some(1.0), Some(3.0), Some(5.0), Some(7.0)],
            ),
            Series::new("p.b", 0, 20, vec![Some(10.0), Some(20.0)]),
        ],
    };
    let r = evaluate(&parse("sumSeries(p.*)").unwrap(), &s, 0, 40).unwrap();
    assert_eq!(r[0].step, 20);
    assert_eq!(r[0].values, vec![Some(12.0), Some(26.0)]);
}

#[test]
fn end_to_end_json() {
    let expr = parse("aliasByNode(sumSeries(a.*.cpu), 0)").unwrap();
    let wanted = paths(&expr);
    assert_eq!(
        wanted,
        vec![crate::graphite::target::PathRequest {
            path: "a.*.cpu".into(),
            shift: 0
        }]
    );
    let r = evaluate(&expr, &store(), 1000, 1030).unwrap();
    let mut out = Vec::new();
    crate::graphite::render::render_json(&r, Some(2), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"[{"target": "a", "datapoints": [[11.0, 1000], [3.0, 1020]], "tags": {"name": "a"}}]"#
    );
}

#[test]
fn nan_values_do_not_break_sorting() {
    let s = Store {
        series: vec![
            ser("n.a", &[Some(f64::NAN)]),
            ser("n.b", &[Some(1.0)]),
            ser("n.c", &[None]),
        ],
    };
    let r = evaluate(&parse("highestMax(n.*, 3)").unwrap(), &s, 0, 1).unwrap();
    assert_eq!(r.len(), 3);
}

proptest::proptest! {
    #[test]
    fn evaluation_never_panics(t in "[a-zA-Z(),.'*0-9 =-]{0,40}") {
        if let Ok(e) = parse(&t) {
            let _ = evaluate(&e, &store(), 1000, 1030);
        }
    }
}
