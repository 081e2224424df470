//! Per-series transforms: each output series derives from one input.

use super::combine::agg_fn;
use super::{num_text, Args, EvalError, EvalResult};
use crate::graphite::format::py_g;
use crate::graphite::series::{Consolidation, Series};
use crate::graphite::target::Arg;
use crate::graphite::time::{parse_interval, time_shift_delta, time_shift_label};

/// Upper bound on points a function may create out of thin air
/// (summarize with a tiny interval); beyond it the request is refused.
const MAX_NEW_POINTS: i64 = 1_000_000;
/// Work budget above which movingAverage switches from exact per-window
/// sums to a running sum.
const EXACT_WINDOW_WORK: usize = 50_000_000;

fn rename(s: &mut Series, name: String) {
    s.path_expression = name.clone();
    s.name = name;
}

pub(crate) fn scale(args: &Args<'_>) -> EvalResult {
    let factor = args.float(1)?;
    let factor = args.required(1, factor)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        rename(s, format!("scale({},{})", s.name, py_g(factor)));
        for v in &mut s.values {
            *v = v.map(|x| x * factor);
        }
    }
    Ok(list)
}

pub(crate) fn transform_null(args: &Args<'_>) -> EvalResult {
    let default = args.float(1)?.unwrap_or(0.0);
    let mut list = args.series(0)?;
    for s in &mut list {
        rename(s, format!("transformNull({},{})", s.name, py_g(default)));
        for v in &mut s.values {
            v.get_or_insert(default);
        }
    }
    Ok(list)
}

pub(crate) fn keep_last_value(args: &Args<'_>) -> EvalResult {
    let limit = match args.arg(1) {
        None => usize::MAX,
        Some(Arg::Num(v)) if v.is_infinite() && *v > 0.0 => usize::MAX,
        Some(_) => {
            let n = args.int(1)?.unwrap_or(0);
            usize::try_from(n).unwrap_or(0)
        }
    };
    let mut list = args.series(0)?;
    for s in &mut list {
        rename(s, format!("keepLastValue({})", s.name));
        fill_gaps(&mut s.values, limit);
    }
    Ok(list)
}

/// graphite's keepLastValue: a run of at most `limit` nulls is filled with
/// the value just before it; a leading run is left alone (nothing came
/// before it) and a trailing run is filled too.
fn fill_gaps(values: &mut [Option<f64>], limit: usize) {
    let mut run = 0usize;
    for i in 0..values.len() {
        if i == 0 {
            continue;
        }
        if values.get(i).copied().flatten().is_none() {
            run += 1;
            continue;
        }
        if run > 0 && run <= limit {
            backfill(values, i - run, i);
        }
        run = 0;
    }
    if run > 0 && run <= limit {
        let len = values.len();
        backfill(values, len - run, len);
    }
}

fn backfill(values: &mut [Option<f64>], from: usize, to: usize) {
    let fill = from
        .checked_sub(1)
        .and_then(|p| values.get(p).copied().flatten());
    for v in values.iter_mut().take(to).skip(from) {
        *v = fill;
    }
}

/// graphite's `_nonNegativeDelta`: the delta to `val` and the new `prev`.
fn non_negative_delta(
    val: Option<f64>,
    prev: Option<f64>,
    max: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    if let (Some(v), Some(m)) = (val, max) {
        if v > m {
            return (None, None);
        }
    }
    match (prev, val) {
        (Some(p), Some(v)) if v >= p => (Some(v - p), val),
        // A counter wrap; with a known maximum the delta is recoverable.
        (Some(p), Some(v)) => (max.map(|m| m + 1.0 + v - p), val),
        _ => (None, val),
    }
}

fn derive(args: &Args<'_>, label: &str, per_second: bool) -> EvalResult {
    let max = args.float(1)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        rename(s, format!("{label}({})", s.name));
        let step = s.step as f64;
        let mut prev = None;
        for v in &mut s.values {
            let (delta, p) = non_negative_delta(*v, prev, max);
            prev = p;
            *v = if per_second {
                delta.map(|d| d / step)
            } else {
                delta
            };
        }
    }
    Ok(list)
}

pub(crate) fn per_second(args: &Args<'_>) -> EvalResult {
    derive(args, "perSecond", true)
}

pub(crate) fn non_negative_derivative(args: &Args<'_>) -> EvalResult {
    derive(args, "nonNegativeDerivative", false)
}

pub(crate) fn scale_to_seconds(args: &Args<'_>) -> EvalResult {
    let seconds = args.float(1)?;
    let seconds = args.required(1, seconds)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        // Python's "%d" truncates toward zero.
        rename(
            s,
            format!("scaleToSeconds({},{})", s.name, seconds.trunc() as i64),
        );
        let factor = seconds / s.step as f64;
        for v in &mut s.values {
            // graphite rounds to 6 decimals to hide float noise.
            *v = v.map(|x| {
                let r = ((x * factor) * 1e6).round() / 1e6;
                if r.is_finite() {
                    r
                } else {
                    x * factor
                }
            });
        }
    }
    Ok(list)
}

pub(crate) fn consolidate_by(args: &Args<'_>) -> EvalResult {
    let func = args.string(1)?;
    let func = args.required(1, func)?;
    let c = Consolidation::parse(func).ok_or_else(|| {
        EvalError::new(format!(
            "consolidateBy: unknown consolidation function {func:?} (expected sum, average, min, max, first or last)"
        ))
    })?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.consolidation = c;
        rename(s, format!("consolidateBy({},\"{func}\")", s.name));
    }
    Ok(list)
}

pub(crate) fn constant_line(args: &Args<'_>) -> EvalResult {
    let value = args.float(0)?;
    let value = args.required(0, value)?;
    let text = args.arg(0).map(num_text).unwrap_or_default();
    let (from, until) = (args.ctx.from, args.ctx.until);
    // Three points (start, middle, end) like graphite 1.1, so the line
    // spans the whole graph even after consolidation.
    let step = (until.saturating_sub(from) / 2).max(1);
    let mut s = Series::new(text.clone(), from, step, vec![Some(value); 3]);
    s.path_expression = format!("constantLine({text})");
    Ok(vec![s])
}

pub(crate) fn time_shift(args: &Args<'_>) -> EvalResult {
    let text = args.string(1)?;
    let text = args.required(1, text)?;
    let delta = time_shift_delta(text).map_err(|e| EvalError::new(format!("timeShift: {e}")))?;
    let label = time_shift_label(text.trim());
    let inner = args.ctx.shifted(delta);
    let mut list = args.series_in(0, &inner)?;
    for s in &mut list {
        // The data came from the shifted window; draw it in the requested one.
        s.name = format!("timeShift({}, \"{label}\")", s.name);
        s.start = s.start.saturating_sub(delta);
        s.fix_end();
    }
    Ok(list)
}

pub(crate) fn moving_average(args: &Args<'_>) -> EvalResult {
    let window = args.arg(1).ok_or_else(|| args.type_err(1, "given"))?;
    let mut list = args.series(0)?;
    for s in &mut list {
        let (points, label) = match window {
            Arg::Str(w) => {
                let secs = parse_interval(w)
                    .map_err(|e| EvalError::new(format!("movingAverage: {e}")))?
                    .unsigned_abs();
                let step = s.step.unsigned_abs().max(1);
                (
                    usize::try_from(secs / step).unwrap_or(usize::MAX),
                    format!("\"{w}\""),
                )
            }
            other => {
                let n = args.int(1)?.unwrap_or(0);
                (usize::try_from(n).unwrap_or(0), num_text(other))
            }
        };
        rename(s, format!("movingAverage({},{label})", s.name));
        s.values = window_average(&s.values, points);
    }
    Ok(list)
}

/// Point i averages the non-null values of the `points` points *before*
/// it (graphite excludes the current point). graphite would fetch earlier
/// data to fill the first windows; we only use what is in the request, so
/// early windows are partial and the first point is null.
fn window_average(values: &[Option<f64>], points: usize) -> Vec<Option<f64>> {
    if points == 0 {
        return vec![None; values.len()];
    }
    let exact = values.len().saturating_mul(points.min(values.len())) <= EXACT_WINDOW_WORK;
    let mut out = Vec::with_capacity(values.len());
    let (mut sum, mut count) = (0.0f64, 0usize);
    for i in 0..values.len() {
        let lo = i.saturating_sub(points);
        if exact {
            let w = values.get(lo..i).unwrap_or(&[]);
            let (s, n) = w
                .iter()
                .flatten()
                .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            out.push((n > 0).then(|| s / n as f64));
            continue;
        }
        if let Some(Some(v)) = i.checked_sub(1).and_then(|p| values.get(p)) {
            sum += v;
            count += 1;
        }
        if i > points {
            if let Some(Some(v)) = values.get(lo - 1) {
                sum -= v;
                count -= 1;
            }
        }
        out.push((count > 0).then(|| sum / count as f64));
    }
    out
}

pub(crate) fn summarize(args: &Args<'_>) -> EvalResult {
    let interval_text = args.string(1)?;
    let interval_text = args.required(1, interval_text)?;
    let func = args.string(2)?.unwrap_or("sum");
    let align = args.boolean(3)?.unwrap_or(false);
    let interval =
        parse_interval(interval_text).map_err(|e| EvalError::new(format!("summarize: {e}")))?;
    if interval <= 0 {
        return Err(EvalError::new(format!(
            "summarize: interval {interval_text:?} must be positive"
        )));
    }
    let agg = agg_fn(func)
        .ok_or_else(|| EvalError::new(format!("summarize: unsupported function {func:?}")))?;
    let mut list = args.series(0)?;
    for s in &mut list {
        let (new_start, new_end) = if align {
            (s.start, s.end)
        } else {
            (
                s.start.saturating_sub(s.start.rem_euclid(interval)),
                s.end
                    .saturating_sub(s.end.rem_euclid(interval))
                    .saturating_add(interval),
            )
        };
        let span = new_end.saturating_sub(new_start).max(0);
        let buckets = span / interval + i64::from(span % interval != 0);
        if buckets > MAX_NEW_POINTS {
            return Err(EvalError::new(format!(
                "summarize: interval {interval_text:?} would create {buckets} points"
            )));
        }
        let mut values = vec![None; usize::try_from(buckets).unwrap_or(0)];
        // Timestamps only grow, so each bucket's values arrive together and
        // one scratch buffer is enough.
        let mut current: Option<usize> = None;
        let mut bin: Vec<Option<f64>> = Vec::new();
        let mut flush = |at: Option<usize>, bin: &mut Vec<Option<f64>>| {
            if let Some(slot) = at.and_then(|k| values.get_mut(k)) {
                if !bin.is_empty() {
                    *slot = agg(bin);
                }
            }
            bin.clear();
        };
        for (i, v) in s.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let ts = s.timestamp(i);
            // Unaligned buckets sit on multiples of the interval (so all
            // series agree); aligned ones count from the series start.
            let key = if align {
                ts.saturating_sub(new_start)
            } else {
                ts.saturating_sub(ts.rem_euclid(interval))
                    .saturating_sub(new_start)
            };
            let k = usize::try_from(key / interval).ok();
            if k != current {
                flush(current, &mut bin);
                current = k;
            }
            bin.push(Some(*v));
        }
        flush(current, &mut bin);
        let name = format!(
            "summarize({}, \"{interval_text}\", \"{func}\"{})",
            s.name,
            if align { ", true" } else { "" }
        );
        let consolidation = s.consolidation;
        *s = Series::new(name, new_start, interval, values);
        s.consolidation = consolidation;
    }
    Ok(list)
}
