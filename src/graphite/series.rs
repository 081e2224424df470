//! Time series values and graphite-style normalisation of several series
//! onto one step.

/// Largest step normalisation will produce; beyond this the LCM of odd
/// steps is almost certainly a mistake and would blow up arithmetic.
const MAX_STEP: i64 = 100 * 365 * 86400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consolidation {
    #[default]
    Average,
    Sum,
    Min,
    Max,
    Last,
    First,
}

impl Consolidation {
    /// Names accepted by consolidateBy (plus graphite's `avg` alias).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "average" | "avg" => Self::Average,
            "sum" => Self::Sum,
            "min" => Self::Min,
            "max" => Self::Max,
            "last" => Self::Last,
            "first" => Self::First,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Average => "average",
            Self::Sum => "sum",
            Self::Min => "min",
            Self::Max => "max",
            Self::Last => "last",
            Self::First => "first",
        }
    }

    /// Nulls are ignored; a bucket with no values at all is null.
    pub fn apply(self, bucket: &[Option<f64>]) -> Option<f64> {
        let mut it = bucket.iter().flatten().copied();
        match self {
            Self::First => it.next(),
            Self::Last => it.last(),
            Self::Sum => it.reduce(|a, b| a + b),
            Self::Min => it.reduce(f64::min),
            Self::Max => it.reduce(f64::max),
            Self::Average => {
                let (sum, n) = it.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
                (n > 0).then(|| sum / n as f64)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// The expression that produced the series; graphite uses it (not the
    /// name) when naming aggregates like `sumSeries(a.*)`.
    pub path_expression: String,
    pub start: i64,
    /// Exclusive: `start + values.len() * step` (whisper convention).
    pub end: i64,
    pub step: i64,
    pub values: Vec<Option<f64>>,
    pub consolidation: Consolidation,
}

impl Series {
    pub fn new(name: impl Into<String>, start: i64, step: i64, values: Vec<Option<f64>>) -> Self {
        let name = name.into();
        let end = end_of(start, step, values.len());
        Series {
            path_expression: name.clone(),
            name,
            start,
            end,
            step,
            values,
            consolidation: Consolidation::Average,
        }
    }

    pub fn timestamp(&self, i: usize) -> i64 {
        offset(self.start, self.step, i)
    }

    /// Re-derives `end` after `values` or `start` changed.
    pub fn fix_end(&mut self) {
        self.end = end_of(self.start, self.step, self.values.len());
    }

    /// Buckets of `values_per_point` consecutive values, each reduced with
    /// the series' consolidation function (length rounds up).
    pub fn consolidated(&self, values_per_point: usize) -> Vec<Option<f64>> {
        if values_per_point <= 1 {
            return self.values.clone();
        }
        self.values
            .chunks(values_per_point)
            .map(|c| self.consolidation.apply(c))
            .collect()
    }
}

pub(crate) fn offset(start: i64, step: i64, i: usize) -> i64 {
    let i = i64::try_from(i).unwrap_or(i64::MAX);
    start.saturating_add(step.saturating_mul(i))
}

fn end_of(start: i64, step: i64, len: usize) -> i64 {
    offset(start, step, len)
}

pub fn gcd(mut a: i64, mut b: i64) -> i64 {
    a = a.saturating_abs();
    b = b.saturating_abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// `None` on overflow or a non-positive input.
pub fn lcm(a: i64, b: i64) -> Option<i64> {
    if a <= 0 || b <= 0 {
        return None;
    }
    (a / gcd(a, b)).checked_mul(b)
}

/// Several series brought to one step, as graphite's `normalize()` does
/// before combining them. Values stay aligned by index, like graphite's
/// `zip_longest`; in practice every input comes from the same fetch window.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// One consolidated value vector per input series, in input order.
    pub columns: Vec<Vec<Option<f64>>>,
    /// Length of the longest column; shorter columns read as null.
    pub len: usize,
}

impl Normalized {
    /// Values of every input at index `i` (missing entries are null).
    pub fn row_into(&self, i: usize, out: &mut Vec<Option<f64>>) {
        out.clear();
        out.extend(self.columns.iter().map(|c| c.get(i).copied().flatten()));
    }
}

pub fn normalize(series: &[&Series]) -> Result<Normalized, String> {
    let first = series
        .first()
        .ok_or_else(|| "no series to normalize".to_string())?;
    let mut step = 1i64;
    for s in series {
        step = lcm(step, s.step)
            .filter(|&v| v <= MAX_STEP)
            .ok_or_else(|| format!("cannot find a common step for series {:?}", s.name))?;
    }
    let mut start = first.start;
    let mut end = first.end;
    let mut columns = Vec::with_capacity(series.len());
    for s in series {
        start = start.min(s.start);
        end = end.max(s.end);
        let vpp = usize::try_from(step / s.step).unwrap_or(1);
        columns.push(s.consolidated(vpp));
    }
    let len = columns.iter().map(Vec::len).max().unwrap_or(0);
    let span = end.saturating_sub(start).max(0);
    end = start.saturating_add(span - span % step);
    Ok(Normalized {
        start,
        end,
        step,
        columns,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consolidation_functions() {
        let b = [Some(1.0), None, Some(3.0)];
        assert_eq!(Consolidation::Average.apply(&b), Some(2.0));
        assert_eq!(Consolidation::Sum.apply(&b), Some(4.0));
        assert_eq!(Consolidation::Min.apply(&b), Some(1.0));
        assert_eq!(Consolidation::Max.apply(&b), Some(3.0));
        assert_eq!(Consolidation::First.apply(&b), Some(1.0));
        assert_eq!(Consolidation::Last.apply(&b), Some(3.0));
        assert_eq!(Consolidation::Sum.apply(&[None, None]), None);
        assert_eq!(Consolidation::Average.apply(&[]), None);
    }

    #[test]
    fn normalize_to_lcm() {
        let a = Series::new("a", 0, 10, vec![Some(1.0), Some(3.0), Some(5.0), None]);
        let mut b = Series::new("b", 0, 20, vec![Some(7.0), None]);
        b.consolidation = Consolidation::Sum;
        let n = normalize(&[&a, &b]).unwrap();
        assert_eq!(n.step, 20);
        assert_eq!(n.start, 0);
        assert_eq!(n.end, 40);
        assert_eq!(n.columns[0], vec![Some(2.0), Some(5.0)]);
        assert_eq!(n.columns[1], vec![Some(7.0), None]);
        let mut row = Vec::new();
        n.row_into(1, &mut row);
        assert_eq!(row, vec![Some(5.0), None]);
    }

    #[test]
    fn normalize_rejects_bad_steps() {
        let a = Series::new("a", 0, 0, vec![]);
        assert!(normalize(&[&a]).is_err());
        let b = Series::new("b", 0, i64::MAX - 1, vec![]);
        let c = Series::new("c", 0, i64::MAX - 2, vec![]);
        assert!(normalize(&[&b, &c]).is_err());
        assert!(normalize(&[]).is_err());
    }

    #[test]
    fn lcm_gcd() {
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(lcm(4, 6), Some(12));
        assert_eq!(lcm(0, 6), None);
        assert_eq!(lcm(i64::MAX, i64::MAX - 1), None);
    }
}
