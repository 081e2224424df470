//! Renaming, filtering and ordering of series lists.

use super::{arg_int, node_of, py_head, Args, EvalError, EvalResult};
use crate::graphite::regex::Regex;
use crate::graphite::series::Series;
use crate::graphite::target::first_path;

pub(crate) fn alias(args: &Args<'_>) -> EvalResult {
    let name = args.string(1)?;
    let name = args.required(1, name)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.name = name.to_string();
    }
    Ok(list)
}

pub(crate) fn alias_by_node(args: &Args<'_>) -> EvalResult {
    let nodes = args
        .rest()
        .iter()
        .map(|a| arg_int(a).ok_or_else(|| args.type_err(1, "integers")))
        .collect::<Result<Vec<i64>, _>>()?;
    let mut list = args.series(0)?;
    for s in &mut list {
        // Works on the innermost metric path, so `sumSeries(a.b.c)` still
        // has nodes a, b and c.
        let path = first_path(&s.name);
        let parts = nodes
            .iter()
            .map(|&n| node_of("aliasByNode", &path, n))
            .collect::<Result<Vec<&str>, _>>()?;
        s.name = parts.join(".");
    }
    Ok(list)
}

pub(crate) fn alias_sub(args: &Args<'_>) -> EvalResult {
    let search = args.string(1)?;
    let search = args.required(1, search)?;
    let replace = args.string(2)?;
    let replace = args.required(2, replace)?;
    let re = Regex::new(search).map_err(|e| EvalError::new(format!("aliasSub: {e}")))?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.name = re
            .replace_all(&s.name, replace)
            .map_err(|e| EvalError::new(format!("aliasSub: {e}")))?;
    }
    Ok(list)
}

/// Descending by `key`, null keys last, equal keys in input order (Python's
/// stable `sorted(..., reverse=True)`), then the first `n`.
fn highest(args: &Args<'_>, key: fn(&Series) -> Option<f64>) -> EvalResult {
    let n = args.int(1)?.unwrap_or(1);
    let list = args.series(0)?;
    let mut keyed: Vec<(f64, Series)> = list
        .into_iter()
        .map(|s| (key(&s).unwrap_or(f64::NEG_INFINITY), s))
        .collect();
    // total_cmp: a NaN from the store must not break the sort's ordering contract.
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    let keep = py_head(keyed.len(), n);
    Ok(keyed.into_iter().take(keep).map(|(_, s)| s).collect())
}

pub(crate) fn highest_current(args: &Args<'_>) -> EvalResult {
    highest(args, |s| s.values.iter().rev().find_map(|v| *v))
}

pub(crate) fn highest_max(args: &Args<'_>) -> EvalResult {
    highest(args, |s| {
        s.values.iter().flatten().copied().reduce(f64::max)
    })
}

pub(crate) fn limit(args: &Args<'_>) -> EvalResult {
    let n = args.int(1)?;
    let n = args.required(1, n)?;
    let mut list = args.series(0)?;
    list.truncate(py_head(list.len(), n));
    Ok(list)
}

/// graphite's natural sort key: digit runs zero-padded to a fixed width.
fn natural_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if !digits.is_empty() {
            for _ in digits.len()..10 {
                out.push('0');
            }
            out.push_str(digits);
            digits.clear();
        }
    };
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

pub(crate) fn sort_by_name(args: &Args<'_>) -> EvalResult {
    let natural = args.boolean(1)?.unwrap_or(false);
    let reverse = args.boolean(2)?.unwrap_or(false);
    let list = args.series(0)?;
    let mut keyed: Vec<(String, Series)> = list
        .into_iter()
        .map(|s| {
            let key = if natural {
                natural_key(&s.name)
            } else {
                s.name.clone()
            };
            (key, s)
        })
        .collect();
    // Stable in both directions, as Python's sorted(reverse=True) is.
    if reverse {
        keyed.sort_by(|a, b| b.0.cmp(&a.0));
    } else {
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(keyed.into_iter().map(|(_, s)| s).collect())
}
