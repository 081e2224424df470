//! Functions that combine several series into one (or pair them up).

use std::collections::HashMap;

use super::{node_of, num_text, path_expressions, Args, EvalError, EvalResult};
use crate::graphite::series::{normalize, Series};
use crate::graphite::target::{first_path, Arg};

pub(crate) type AggFn = fn(&[Option<f64>]) -> Option<f64>;

fn present(row: &[Option<f64>]) -> impl Iterator<Item = f64> + '_ {
    row.iter().flatten().copied()
}

fn agg_sum(row: &[Option<f64>]) -> Option<f64> {
    present(row).reduce(|a, b| a + b)
}

fn agg_avg(row: &[Option<f64>]) -> Option<f64> {
    let (s, n) = present(row).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| s / n as f64)
}

fn agg_min(row: &[Option<f64>]) -> Option<f64> {
    present(row).reduce(f64::min)
}

fn agg_max(row: &[Option<f64>]) -> Option<f64> {
    present(row).reduce(f64::max)
}

fn agg_last(row: &[Option<f64>]) -> Option<f64> {
    present(row).last()
}

fn agg_median(row: &[Option<f64>]) -> Option<f64> {
    let mut v: Vec<f64> = present(row).collect();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => v.get(mid).copied(),
        _ => Some((v.get(mid - 1).copied()? + v.get(mid).copied()?) / 2.0),
    }
}

fn agg_diff(row: &[Option<f64>]) -> Option<f64> {
    let mut it = present(row);
    let first = it.next()?;
    Some(it.fold(first, |acc, v| acc - v))
}

fn agg_stddev(row: &[Option<f64>]) -> Option<f64> {
    let avg = agg_avg(row)?;
    let (s, n) = present(row).fold((0.0, 0usize), |(s, n), v| (s + (v - avg).powi(2), n + 1));
    Some((s / n as f64).sqrt())
}

fn agg_count(row: &[Option<f64>]) -> Option<f64> {
    let n = present(row).count();
    (n > 0).then_some(n as f64)
}

fn agg_range(row: &[Option<f64>]) -> Option<f64> {
    Some(agg_max(row)? - agg_min(row)?)
}

fn agg_multiply(row: &[Option<f64>]) -> Option<f64> {
    // graphite's safeMul: any null makes the product null.
    if row.is_empty() || row.iter().any(Option::is_none) {
        return None;
    }
    Some(present(row).product())
}

/// graphite's aggregation function names (and aliases).
pub(crate) fn agg_fn(name: &str) -> Option<AggFn> {
    Some(match name {
        "average" | "avg" => agg_avg,
        "sum" | "total" => agg_sum,
        "min" => agg_min,
        "max" => agg_max,
        "last" | "current" => agg_last,
        "median" => agg_median,
        "diff" => agg_diff,
        "stddev" => agg_stddev,
        "count" => agg_count,
        "range" | "rangeOf" => agg_range,
        "multiply" => agg_multiply,
        _ => return None,
    })
}

/// Combine `list` into one series named `<label>(<path expressions>)`.
fn aggregate(list: &[Series], agg: AggFn, label: &str) -> Result<Option<Series>, EvalError> {
    if list.is_empty() {
        return Ok(None);
    }
    let refs: Vec<&Series> = list.iter().collect();
    let n = normalize(&refs).map_err(EvalError::new)?;
    let mut row = Vec::with_capacity(list.len());
    let values = (0..n.len)
        .map(|i| {
            n.row_into(i, &mut row);
            agg(&row)
        })
        .collect();
    let name = format!("{label}({})", path_expressions(list));
    Ok(Some(Series::new(name, n.start, n.step, values)))
}

fn aggregate_call(args: &Args<'_>, agg: AggFn, label: &str) -> EvalResult {
    let list = args.series_rest(0)?;
    Ok(aggregate(&list, agg, label)?.into_iter().collect())
}

pub(crate) fn sum_series(args: &Args<'_>) -> EvalResult {
    aggregate_call(args, agg_sum, "sumSeries")
}

pub(crate) fn average_series(args: &Args<'_>) -> EvalResult {
    aggregate_call(args, agg_avg, "averageSeries")
}

pub(crate) fn max_series(args: &Args<'_>) -> EvalResult {
    aggregate_call(args, agg_max, "maxSeries")
}

pub(crate) fn min_series(args: &Args<'_>) -> EvalResult {
    aggregate_call(args, agg_min, "minSeries")
}

fn safe_div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

fn percent(v: Option<f64>, total: Option<f64>) -> Option<f64> {
    safe_div(v, total).map(|q| q * 100.0)
}

/// Divide `a` by `b` pointwise after normalising the pair.
fn pairwise(
    a: &Series,
    b: &Series,
    name: String,
    op: fn(Option<f64>, Option<f64>) -> Option<f64>,
) -> Result<Series, EvalError> {
    let n = normalize(&[a, b]).map_err(EvalError::new)?;
    let mut row = Vec::with_capacity(2);
    let values = (0..n.len)
        .map(|i| {
            n.row_into(i, &mut row);
            op(
                row.first().copied().flatten(),
                row.get(1).copied().flatten(),
            )
        })
        .collect();
    Ok(Series::new(name, n.start, n.step, values))
}

pub(crate) fn as_percent(args: &Args<'_>) -> EvalResult {
    let list = args.series(0)?;
    match args.arg(1) {
        None => {
            if list.is_empty() {
                return Ok(Vec::new());
            }
            let refs: Vec<&Series> = list.iter().collect();
            let n = normalize(&refs).map_err(EvalError::new)?;
            let mut row = Vec::new();
            let totals: Vec<Option<f64>> = (0..n.len)
                .map(|i| {
                    n.row_into(i, &mut row);
                    agg_sum(&row)
                })
                .collect();
            let total_text = format!("sumSeries({})", path_expressions(&list));
            Ok(list
                .iter()
                .zip(&n.columns)
                .map(|(s, col)| {
                    let values = (0..n.len)
                        .map(|i| {
                            percent(
                                col.get(i).copied().flatten(),
                                totals.get(i).copied().flatten(),
                            )
                        })
                        .collect();
                    Series::new(
                        format!("asPercent({},{total_text})", s.name),
                        n.start,
                        n.step,
                        values,
                    )
                })
                .collect())
        }
        Some(a @ (Arg::Int(_) | Arg::Num(_))) => {
            let total = args.float(1)?;
            let text = num_text(a);
            Ok(list
                .into_iter()
                .map(|mut s| {
                    s.name = format!("asPercent({},{text})", s.name);
                    s.path_expression = s.name.clone();
                    for v in &mut s.values {
                        *v = percent(*v, total);
                    }
                    s
                })
                .collect())
        }
        Some(Arg::Expr(_)) => {
            let mut totals = args.series(1)?;
            if totals.len() == 1 {
                let total = totals.remove(0);
                list.iter()
                    .map(|s| {
                        pairwise(
                            s,
                            &total,
                            format!("asPercent({},{})", s.name, total.name),
                            percent,
                        )
                    })
                    .collect()
            } else if totals.len() == list.len() {
                let mut list = list;
                list.sort_by(|a, b| a.name.cmp(&b.name));
                totals.sort_by(|a, b| a.name.cmp(&b.name));
                list.iter()
                    .zip(&totals)
                    .map(|(s, t)| {
                        pairwise(s, t, format!("asPercent({},{})", s.name, t.name), percent)
                    })
                    .collect()
            } else {
                Err(EvalError::new(
                    "asPercent second argument must be missing, a single digit, reference exactly 1 series or reference the same number of series as the first argument",
                ))
            }
        }
        Some(_) => Err(args.type_err(1, "a number or a series list")),
    }
}

pub(crate) fn divide_series(args: &Args<'_>) -> EvalResult {
    let dividends = args.series(0)?;
    let divisors = args.series(1)?;
    let divisor = match divisors.as_slice() {
        [] => {
            // graphite keeps the dividends but blanks them out.
            return Ok(dividends
                .into_iter()
                .map(|mut s| {
                    s.name = format!("divideSeries({},MISSING)", s.name);
                    s.path_expression = s.name.clone();
                    s.values.iter_mut().for_each(|v| *v = None);
                    s
                })
                .collect());
        }
        [one] => one,
        many => {
            return Err(EvalError::new(format!(
                "divideSeries second argument must reference exactly 1 series (got {})",
                many.len()
            )))
        }
    };
    dividends
        .iter()
        .map(|s| {
            pairwise(
                s,
                divisor,
                format!("divideSeries({},{})", s.name, divisor.name),
                safe_div,
            )
        })
        .collect()
}

pub(crate) fn group_by_node(args: &Args<'_>) -> EvalResult {
    let list = args.series(0)?;
    let node = args.int(1)?;
    let node = args.required(1, node)?;
    let callback = args.string(2)?.unwrap_or("average");
    let agg_name = match callback {
        "sumSeries" => "sum",
        "averageSeries" => "average",
        "maxSeries" => "max",
        "minSeries" => "min",
        other => other,
    };
    let agg = agg_fn(agg_name)
        .ok_or_else(|| EvalError::new(format!("groupByNode: unsupported callback {callback:?}")))?;
    let label = match agg_name {
        "avg" => "averageSeries".to_string(),
        other => format!("{other}Series"),
    };
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<Series>> = HashMap::new();
    for s in list {
        let key = node_of("groupByNode", &first_path(&s.name), node)?.to_string();
        match groups.get_mut(&key) {
            Some(g) => g.push(s),
            None => {
                order.push(key.clone());
                groups.insert(key, vec![s]);
            }
        }
    }
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        let members = groups.remove(&key).unwrap_or_default();
        if let Some(mut s) = aggregate(&members, agg, &label)? {
            s.name = key;
            out.push(s);
        }
    }
    Ok(out)
}
