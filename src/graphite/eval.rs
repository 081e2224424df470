//! Synchronous evaluation of a parsed target over data the caller fetched
//! beforehand (see `target::paths`).

mod combine;
mod select;
mod table;
mod transform;

#[cfg(test)]
mod tests;

use std::fmt;

use crate::graphite::series::Series;
use crate::graphite::target::{Arg, Expr};

pub use table::{lookup, FuncSpec, ParamKind, ParamSpec, FUNCTIONS};

/// Data the caller fetched for every `PathRequest`. `series` returns the
/// series for one path (already expanded from globs and named by their
/// concrete metric path), fetched over the window moved by `shift`.
pub trait Fetched {
    fn series(&self, path: &str, shift: i64) -> Vec<Series>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    message: String,
}

impl EvalError {
    pub fn new(message: impl Into<String>) -> Self {
        EvalError {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

pub type EvalResult = Result<Vec<Series>, EvalError>;

/// Evaluate `expr` for the request window `[from, until]` (Unix seconds).
pub fn evaluate(expr: &Expr, data: &dyn Fetched, from: i64, until: i64) -> EvalResult {
    Ctx {
        data,
        from,
        until,
        shift: 0,
    }
    .eval(expr)
}

/// The request window as seen by one sub-expression; timeShift evaluates
/// its argument in a moved window.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    data: &'a dyn Fetched,
    pub from: i64,
    pub until: i64,
    pub shift: i64,
}

impl<'a> Ctx<'a> {
    pub(crate) fn shifted(&self, delta: i64) -> Ctx<'a> {
        Ctx {
            data: self.data,
            from: self.from.saturating_add(delta),
            until: self.until.saturating_add(delta),
            shift: self.shift.saturating_add(delta),
        }
    }

    fn eval(&self, expr: &Expr) -> EvalResult {
        match expr {
            Expr::Path(path) => {
                let mut list = self.data.series(path, self.shift);
                for s in &mut list {
                    if s.step <= 0 {
                        return Err(EvalError::new(format!(
                            "series {:?} has invalid step {}",
                            s.name, s.step
                        )));
                    }
                    // graphite names aggregates after the query, not after
                    // the concrete metrics, so remember the query text.
                    s.path_expression = path.clone();
                    s.fix_end();
                }
                Ok(list)
            }
            Expr::Call { name, args } => {
                let spec = lookup(name)
                    .ok_or_else(|| EvalError::new(format!("unknown function {name:?}")))?;
                let bound = Args::bind(spec, args, *self)?;
                (spec.run)(&bound)
            }
        }
    }
}

/// Call arguments matched to a function's parameter table, Python-style:
/// positionals first, then keywords; a `*param` soaks up the remaining
/// positionals. Values are converted lazily by the typed accessors.
pub(crate) struct Args<'a> {
    spec: &'static FuncSpec,
    slots: Vec<Option<&'a Arg>>,
    rest: Vec<&'a Arg>,
    pub ctx: Ctx<'a>,
}

impl<'a> Args<'a> {
    fn bind(spec: &'static FuncSpec, args: &'a [Arg], ctx: Ctx<'a>) -> Result<Self, EvalError> {
        let f = spec.name;
        let params = spec.params;
        let multi = params.iter().position(|p| p.multiple);
        let mut slots: Vec<Option<&'a Arg>> = vec![None; params.len()];
        let mut rest = Vec::new();
        let mut positional = 0usize;
        let mut seen_kw = false;
        for a in args {
            if let Arg::Kw(k, v) = a {
                seen_kw = true;
                let i = params
                    .iter()
                    .position(|p| p.name == k && !p.multiple)
                    .ok_or_else(|| {
                        EvalError::new(format!("{f}: unexpected keyword argument {k:?}"))
                    })?;
                match slots.get_mut(i) {
                    Some(slot @ None) => *slot = Some(v.as_ref()),
                    _ => {
                        return Err(EvalError::new(format!(
                            "{f}: got multiple values for argument {k:?}"
                        )))
                    }
                }
                continue;
            }
            if seen_kw {
                return Err(EvalError::new(format!(
                    "{f}: positional argument follows keyword argument"
                )));
            }
            match multi {
                Some(m) if positional >= m => {
                    rest.push(a);
                    if let Some(slot @ None) = slots.get_mut(m) {
                        *slot = Some(a);
                    }
                }
                _ => match slots.get_mut(positional) {
                    Some(slot) => *slot = Some(a),
                    None => {
                        return Err(EvalError::new(format!(
                            "{f}: too many arguments (expected at most {}, got {})",
                            params.len(),
                            args.len()
                        )))
                    }
                },
            }
            positional += 1;
        }
        for (p, slot) in params.iter().zip(&slots) {
            if p.required && matches!(slot, None | Some(Arg::None)) {
                return Err(EvalError::new(format!(
                    "{f}: missing required argument {:?}",
                    p.name
                )));
            }
        }
        Ok(Args {
            spec,
            slots,
            rest,
            ctx,
        })
    }

    pub fn func(&self) -> &'static str {
        self.spec.name
    }

    fn param_name(&self, i: usize) -> &'static str {
        self.spec.params.get(i).map_or("?", |p| p.name)
    }

    fn type_err(&self, i: usize, what: &str) -> EvalError {
        EvalError::new(format!(
            "{}: argument {:?} must be {what}",
            self.func(),
            self.param_name(i)
        ))
    }

    /// The argument in slot `i`; an explicit `None` counts as absent.
    pub fn arg(&self, i: usize) -> Option<&'a Arg> {
        match self.slots.get(i).copied().flatten() {
            Some(Arg::None) | None => None,
            Some(a) => Some(a),
        }
    }

    pub fn series(&self, i: usize) -> EvalResult {
        self.series_in(i, &self.ctx)
    }

    pub fn series_in(&self, i: usize, ctx: &Ctx<'_>) -> EvalResult {
        match self.arg(i) {
            Some(Arg::Expr(e)) => ctx.eval(e),
            Some(_) => Err(self.type_err(i, "a series list")),
            None => Err(EvalError::new(format!(
                "{}: missing required argument {:?}",
                self.func(),
                self.param_name(i)
            ))),
        }
    }

    /// All series from a `*seriesLists` parameter, concatenated.
    pub fn series_rest(&self, i: usize) -> EvalResult {
        let mut out = Vec::new();
        for a in &self.rest {
            match a {
                Arg::Expr(e) => out.extend(self.ctx.eval(e)?),
                _ => return Err(self.type_err(i, "a series list")),
            }
        }
        Ok(out)
    }

    pub fn rest(&self) -> &[&'a Arg] {
        &self.rest
    }

    pub fn float(&self, i: usize) -> Result<Option<f64>, EvalError> {
        match self.arg(i) {
            None => Ok(None),
            Some(Arg::Int(v)) => Ok(Some(*v as f64)),
            Some(Arg::Num(v)) => Ok(Some(*v)),
            Some(_) => Err(self.type_err(i, "a number")),
        }
    }

    pub fn int(&self, i: usize) -> Result<Option<i64>, EvalError> {
        match self.arg(i) {
            None => Ok(None),
            Some(a) => arg_int(a)
                .map(Some)
                .ok_or_else(|| self.type_err(i, "an integer")),
        }
    }

    pub fn string(&self, i: usize) -> Result<Option<&'a str>, EvalError> {
        match self.arg(i) {
            None => Ok(None),
            Some(Arg::Str(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.type_err(i, "a string")),
        }
    }

    pub fn boolean(&self, i: usize) -> Result<Option<bool>, EvalError> {
        match self.arg(i) {
            None => Ok(None),
            Some(Arg::Bool(b)) => Ok(Some(*b)),
            Some(Arg::Int(v)) => Ok(Some(*v != 0)),
            Some(_) => Err(self.type_err(i, "a boolean")),
        }
    }

    pub fn required<T>(&self, i: usize, v: Option<T>) -> Result<T, EvalError> {
        v.ok_or_else(|| {
            EvalError::new(format!(
                "{}: missing required argument {:?}",
                self.func(),
                self.param_name(i)
            ))
        })
    }
}

pub(crate) fn arg_int(a: &Arg) -> Option<i64> {
    match a {
        Arg::Int(v) => Some(*v),
        // Python accepts 2.0 where an int is wanted; so do we.
        Arg::Num(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(*v as i64),
        _ => None,
    }
}

/// Python `str()` of a numeric literal, as used in series names.
pub(crate) fn num_text(a: &Arg) -> String {
    match a {
        Arg::Int(v) => v.to_string(),
        Arg::Num(v) => crate::graphite::format::py_float(*v),
        _ => String::new(),
    }
}

/// graphite's `formatPathExpressions`: sorted, de-duplicated, comma-joined.
pub(crate) fn path_expressions(list: &[Series]) -> String {
    let mut exprs: Vec<&str> = list.iter().map(|s| s.path_expression.as_str()).collect();
    exprs.sort_unstable();
    exprs.dedup();
    exprs.join(",")
}

/// How many items Python's `list[:n]` keeps.
pub(crate) fn py_head(len: usize, n: i64) -> usize {
    if n >= 0 {
        usize::try_from(n).unwrap_or(usize::MAX).min(len)
    } else {
        len.saturating_sub(usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX))
    }
}

/// Dot node `idx` of `path` with Python negative indexing.
pub(crate) fn node_of<'p>(func: &str, path: &'p str, idx: i64) -> Result<&'p str, EvalError> {
    let parts: Vec<&str> = path.split('.').collect();
    let len = i64::try_from(parts.len()).unwrap_or(i64::MAX);
    let i = if idx < 0 {
        len.saturating_add(idx)
    } else {
        idx
    };
    usize::try_from(i)
        .ok()
        .and_then(|i| parts.get(i).copied())
        .ok_or_else(|| EvalError::new(format!("{func}: node {idx} out of range for {path:?}")))
}
