//! Output: maxDataPoints consolidation, `format=json` rendering and the
//! `/functions` listing.

use std::io::Write;

use crate::graphite::eval::{FuncSpec, FUNCTIONS};
use crate::graphite::format::py_float_into;
use crate::graphite::series::{offset, Series};

/// Points to draw for `series`: when it has more than `max_data_points`
/// values, buckets of `ceil(len / max)` values are reduced with the
/// series' consolidation function (nulls ignored, all-null bucket -> null)
/// and stamped at the bucket's first timestamp.
pub fn consolidate(series: &Series, max_data_points: Option<usize>) -> Vec<(Option<f64>, i64)> {
    let len = series.values.len();
    let per_point = match max_data_points {
        Some(max) if max > 0 && len > max => len.div_ceil(max),
        _ => 1,
    };
    let bucket_step = series
        .step
        .saturating_mul(i64::try_from(per_point).unwrap_or(i64::MAX));
    series
        .values
        .chunks(per_point)
        .enumerate()
        .map(|(i, chunk)| {
            let v = if per_point == 1 {
                chunk.first().copied().flatten()
            } else {
                series.consolidation.apply(chunk)
            };
            (v, offset(series.start, bucket_step, i))
        })
        .collect()
}

/// graphite-web's JSON: `[{"target": ..., "datapoints": [[v, ts], ...],
/// "tags": {"name": ...}}, ...]`, with Python's `json.dumps` spacing.
pub fn render_json(series: &[Series], max_data_points: Option<usize>, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"{\"target\": ");
        json_string(&s.name, out);
        out.extend_from_slice(b", \"datapoints\": [");
        for (j, (v, ts)) in consolidate(s, max_data_points).into_iter().enumerate() {
            if j > 0 {
                out.extend_from_slice(b", ");
            }
            out.push(b'[');
            json_number(v, out);
            let _ = write!(out, ", {ts}]");
        }
        out.extend_from_slice(b"], \"tags\": {\"name\": ");
        json_string(&s.name, out);
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
}

fn json_number(v: Option<f64>, out: &mut Vec<u8>) {
    match v {
        Some(x) if x.is_finite() => py_float_into(x, out),
        _ => out.extend_from_slice(b"null"),
    }
}

/// JSON string with Python's default `ensure_ascii` escaping, so output is
/// pure ASCII like graphite-web's.
pub(crate) fn json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\x08' => out.extend_from_slice(b"\\b"),
            '\x0c' => out.extend_from_slice(b"\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c as u8),
            '\x7f' => out.push(0x7f),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{u:04x}").as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

/// graphite-web's `/functions` document for exactly the functions the
/// evaluator implements, keyed and ordered by name.
pub fn functions_json(out: &mut Vec<u8>) {
    let mut specs: Vec<&FuncSpec> = FUNCTIONS.iter().collect();
    specs.sort_by_key(|f| f.name);
    out.push(b'{');
    for (i, f) in specs.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        json_string(f.name, out);
        out.extend_from_slice(b": {\"name\": ");
        json_string(f.name, out);
        out.extend_from_slice(b", \"function\": ");
        json_string(&f.signature(), out);
        out.extend_from_slice(b", \"description\": ");
        json_string(f.description, out);
        out.extend_from_slice(b", \"module\": \"graphite.render.functions\", \"group\": ");
        json_string(f.group, out);
        out.extend_from_slice(b", \"params\": [");
        for (j, p) in f.params.iter().enumerate() {
            if j > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(b"{\"name\": ");
            json_string(p.name, out);
            out.extend_from_slice(b", \"type\": ");
            json_string(p.kind.as_str(), out);
            out.extend_from_slice(if p.required {
                b", \"required\": true"
            } else {
                b", \"required\": false"
            });
            if p.multiple {
                out.extend_from_slice(b", \"multiple\": true");
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphite::series::Consolidation;

    fn ten() -> Series {
        Series::new("a", 100, 10, (1..=10).map(|v| Some(f64::from(v))).collect())
    }

    #[test]
    fn consolidate_ten_to_three() {
        // ceil(10 / 3) = 4 values per point: [1..4], [5..8], [9, 10].
        let got = consolidate(&ten(), Some(3));
        assert_eq!(
            got,
            vec![(Some(2.5), 100), (Some(6.5), 140), (Some(9.5), 180)]
        );
        let mut s = ten();
        s.consolidation = Consolidation::Sum;
        assert_eq!(
            consolidate(&s, Some(3)),
            vec![(Some(10.0), 100), (Some(26.0), 140), (Some(19.0), 180)]
        );
        s.consolidation = Consolidation::Max;
        assert_eq!(consolidate(&s, Some(3))[0], (Some(4.0), 100));
    }

    #[test]
    fn consolidate_nulls_and_passthrough() {
        let s = Series::new("a", 0, 60, vec![None, None, Some(1.0), None]);
        assert_eq!(consolidate(&s, Some(2)), vec![(None, 0), (Some(1.0), 120)]);
        assert_eq!(consolidate(&s, None).len(), 4);
        assert_eq!(consolidate(&s, Some(10)).len(), 4);
        assert_eq!(consolidate(&s, Some(0)).len(), 4);
    }

    #[test]
    fn json_shape() {
        let s = Series::new(
            "a.b",
            100,
            10,
            vec![Some(1.0), None, Some(2.5), Some(f64::NAN)],
        );
        let mut out = Vec::new();
        render_json(&[s], None, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[{"target": "a.b", "datapoints": [[1.0, 100], [null, 110], [2.5, 120], [null, 130]], "tags": {"name": "a.b"}}]"#
        );
        let mut out = Vec::new();
        render_json(&[], None, &mut out);
        assert_eq!(out, b"[]");
    }

    #[test]
    fn json_escaping() {
        let mut out = Vec::new();
        json_string("q\"b\\n\n\u{1}é😀", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""q\"b\\n\n\u0001\u00e9\ud83d\ude00""#
        );
    }

    #[test]
    fn functions_listing_matches_table() {
        let mut out = Vec::new();
        functions_json(&mut out);
        let text = String::from_utf8(out).unwrap();
        for f in FUNCTIONS {
            assert!(text.contains(&format!("\"{}\": {{\"name\": \"{}\"", f.name, f.name)));
        }
        assert!(text.contains(
            r#""function": "summarize(seriesList, intervalString, func='sum', alignToFrom=False)""#
        ));
        assert!(text.contains(
            r#"{"name": "seriesLists", "type": "seriesList", "required": true, "multiple": true}"#
        ));
        assert!(text.starts_with("{\"alias\": "));
    }
}
