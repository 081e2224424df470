//! The single table of implemented functions. The evaluator dispatches
//! through it and `render::functions_json` lists it, so the advertised
//! function list cannot drift from what actually runs.

use super::{combine, select, transform, Args, EvalResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    SeriesList,
    SeriesLists,
    Integer,
    Float,
    String,
    Boolean,
    Node,
    IntOrInterval,
    Interval,
    AggFunc,
    AggOrSeriesFunc,
    IntOrInf,
    Any,
}

impl ParamKind {
    /// The type names graphite-web's /functions uses (Grafana reads them).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SeriesList => "seriesList",
            Self::SeriesLists => "seriesLists",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Node => "node",
            Self::IntOrInterval => "intOrInterval",
            Self::Interval => "interval",
            Self::AggFunc => "aggFunc",
            Self::AggOrSeriesFunc => "aggOrSeriesFunc",
            Self::IntOrInf => "intOrInf",
            Self::Any => "any",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
    /// A Python `*args` parameter; only ever the last one.
    pub multiple: bool,
    /// Python literal text of the default, for the signature string.
    pub default: Option<&'static str>,
}

pub struct FuncSpec {
    pub name: &'static str,
    pub group: &'static str,
    pub description: &'static str,
    pub params: &'static [ParamSpec],
    pub(crate) run: fn(&Args<'_>) -> EvalResult,
}

impl FuncSpec {
    /// Python-style signature, e.g. `summarize(seriesList, intervalString, func='sum')`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match (p.multiple, p.default) {
                (true, _) => format!("*{}", p.name),
                (false, Some(d)) => format!("{}={d}", p.name),
                (false, None) => p.name.to_string(),
            })
            .collect();
        format!("{}({})", self.name, params.join(", "))
    }
}

const fn req(name: &'static str, kind: ParamKind) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required: true,
        multiple: false,
        default: None,
    }
}

const fn opt(name: &'static str, kind: ParamKind, default: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required: false,
        multiple: false,
        default: Some(default),
    }
}

const fn many(name: &'static str, kind: ParamKind, required: bool) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required,
        multiple: true,
        default: None,
    }
}

use ParamKind as K;

const SERIES: ParamSpec = req("seriesList", K::SeriesList);

pub static FUNCTIONS: &[FuncSpec] = &[
    FuncSpec {
        name: "alias",
        group: "Alias",
        description: "Takes one metric or a wildcard seriesList and a string in quotes. Prints the string instead of the metric name in the legend.",
        params: &[SERIES, req("newName", K::String)],
        run: select::alias,
    },
    FuncSpec {
        name: "aliasByNode",
        group: "Alias",
        description: "Takes a seriesList and applies an alias derived from one or more \"node\" portion/s of the target name. Node indices are 0 indexed; negative indices count from the end.",
        params: &[SERIES, many("nodes", K::Node, true)],
        run: select::alias_by_node,
    },
    FuncSpec {
        name: "aliasSub",
        group: "Alias",
        description: "Runs series names through a regex search/replace. Back-references such as \\1 are supported in the replacement.",
        params: &[SERIES, req("search", K::String), req("replace", K::String)],
        run: select::alias_sub,
    },
    FuncSpec {
        name: "asPercent",
        group: "Combine",
        description: "Calculates a percentage of the total of a wildcard series. If total is a number, each series is calculated as a percentage of that number; if it is a seriesList of one series or of as many series as the first argument, series are divided by it (pairwise, sorted by name).",
        params: &[SERIES, opt("total", K::Any, "None")],
        run: combine::as_percent,
    },
    FuncSpec {
        name: "averageSeries",
        group: "Combine",
        description: "Takes one metric or a wildcard seriesList. Draws the average value of all metrics passed at each time.",
        params: &[many("seriesLists", K::SeriesList, true)],
        run: combine::average_series,
    },
    FuncSpec {
        name: "consolidateBy",
        group: "Special",
        description: "Takes one metric or a wildcard seriesList and a consolidation function name ('sum', 'average', 'min', 'max', 'first', 'last') used when more datapoints than maxDataPoints must be drawn.",
        params: &[SERIES, req("consolidationFunc", K::String)],
        run: transform::consolidate_by,
    },
    FuncSpec {
        name: "constantLine",
        group: "Special",
        description: "Takes a float F. Draws a horizontal line at value F across the graph.",
        params: &[req("value", K::Float)],
        run: transform::constant_line,
    },
    FuncSpec {
        name: "divideSeries",
        group: "Combine",
        description: "Takes a dividend metric and a divisor metric and draws the division result. Division by zero or by null gives null.",
        params: &[
            req("dividendSeriesList", K::SeriesList),
            req("divisorSeries", K::SeriesList),
        ],
        run: combine::divide_series,
    },
    FuncSpec {
        name: "groupByNode",
        group: "Combine",
        description: "Takes a seriesList and maps a callback to subgroups within as defined by a common node.",
        params: &[
            SERIES,
            req("nodeNum", K::Node),
            opt("callback", K::AggOrSeriesFunc, "'average'"),
        ],
        run: combine::group_by_node,
    },
    FuncSpec {
        name: "highestCurrent",
        group: "Filter Series",
        description: "Takes one metric or a wildcard seriesList followed by an integer N. Out of all metrics passed, draws only the N metrics with the highest value at the end of the time period specified.",
        params: &[SERIES, opt("n", K::Integer, "1")],
        run: select::highest_current,
    },
    FuncSpec {
        name: "highestMax",
        group: "Filter Series",
        description: "Takes one metric or a wildcard seriesList followed by an integer N. Out of all metrics passed, draws only the N metrics with the highest maximum value in the time period specified.",
        params: &[SERIES, opt("n", K::Integer, "1")],
        run: select::highest_max,
    },
    FuncSpec {
        name: "keepLastValue",
        group: "Transform",
        description: "Takes one metric or a wildcard seriesList, and optionally a limit to the number of 'None' values to skip over. Continues the line with the last received value when gaps ('None' values) appear in your data.",
        params: &[SERIES, opt("limit", K::IntOrInf, "inf")],
        run: transform::keep_last_value,
    },
    FuncSpec {
        name: "limit",
        group: "Filter Series",
        description: "Takes one metric or a wildcard seriesList followed by an integer N. Only draw the first N metrics.",
        params: &[SERIES, req("n", K::Integer)],
        run: select::limit,
    },
    FuncSpec {
        name: "maxSeries",
        group: "Combine",
        description: "Takes one metric or a wildcard seriesList. For each datapoint from each metric passed in, pick the maximum value and graph it.",
        params: &[many("seriesLists", K::SeriesList, true)],
        run: combine::max_series,
    },
    FuncSpec {
        name: "minSeries",
        group: "Combine",
        description: "Takes one metric or a wildcard seriesList. For each datapoint from each metric passed in, pick the minimum value and graph it.",
        params: &[many("seriesLists", K::SeriesList, true)],
        run: combine::min_series,
    },
    FuncSpec {
        name: "movingAverage",
        group: "Calculate",
        description: "Graphs the moving average of a metric (or metrics) over a fixed number of past points, or a time interval. Only data inside the requested window is used: the first points average fewer (or no) values instead of fetching earlier data.",
        params: &[SERIES, req("windowSize", K::IntOrInterval)],
        run: transform::moving_average,
    },
    FuncSpec {
        name: "nonNegativeDerivative",
        group: "Transform",
        description: "Same as the derivative function above, but ignores datapoints that trend down. Useful for counters that increase for a long time, then wrap or reset.",
        params: &[SERIES, opt("maxValue", K::Float, "None")],
        run: transform::non_negative_derivative,
    },
    FuncSpec {
        name: "perSecond",
        group: "Transform",
        description: "NonNegativeDerivative adjusted for the series time interval. This is useful for taking a running total metric and showing how many requests per second were handled.",
        params: &[SERIES, opt("maxValue", K::Float, "None")],
        run: transform::per_second,
    },
    FuncSpec {
        name: "scale",
        group: "Transform",
        description: "Takes one metric or a wildcard seriesList followed by a constant, and multiplies the datapoint by the constant provided at each point.",
        params: &[SERIES, req("factor", K::Float)],
        run: transform::scale,
    },
    FuncSpec {
        name: "scaleToSeconds",
        group: "Transform",
        description: "Takes one metric or a wildcard seriesList and returns \"value per seconds\" where seconds is a last argument to this functions.",
        params: &[SERIES, req("seconds", K::Float)],
        run: transform::scale_to_seconds,
    },
    FuncSpec {
        name: "sortByName",
        group: "Sorting",
        description: "Takes one metric or a wildcard seriesList. Sorts the list of metrics by the metric name, optionally using natural sort order and/or reversed.",
        params: &[
            SERIES,
            opt("natural", K::Boolean, "False"),
            opt("reverse", K::Boolean, "False"),
        ],
        run: select::sort_by_name,
    },
    FuncSpec {
        name: "sumSeries",
        group: "Combine",
        description: "This will add metrics together and return the sum at each datapoint. Nulls are ignored; a point where every series is null stays null.",
        params: &[many("seriesLists", K::SeriesList, true)],
        run: combine::sum_series,
    },
    FuncSpec {
        name: "summarize",
        group: "Transform",
        description: "Summarize the data into interval buckets of a certain size. func is one of 'sum', 'avg'/'average', 'median', 'max', 'min', 'last', 'diff', 'stddev', 'count', 'range', 'multiply'.",
        params: &[
            SERIES,
            req("intervalString", K::Interval),
            opt("func", K::AggFunc, "'sum'"),
            opt("alignToFrom", K::Boolean, "False"),
        ],
        run: transform::summarize,
    },
    FuncSpec {
        name: "timeShift",
        group: "Transform",
        description: "Takes one metric or a wildcard seriesList, followed by a quoted string with the length of time. Draws the selected metrics shifted in time. If no sign is given, a minus sign ( - ) is implied which will shift the metric back in time.",
        params: &[SERIES, req("timeShift", K::Interval)],
        run: transform::time_shift,
    },
    FuncSpec {
        name: "transformNull",
        group: "Transform",
        description: "Takes a metric or wildcard seriesList and replaces null values with the value specified by default (0 if not given).",
        params: &[SERIES, opt("default", K::Float, "0")],
        run: transform::transform_null,
    },
];

pub fn lookup(name: &str) -> Option<&'static FuncSpec> {
    FUNCTIONS.iter().find(|f| f.name == name)
}
