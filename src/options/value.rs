//! How one option's value converts from text (command line, istatd config file), from
//! TOML, and back to text for the usage listing, per field type of the option table.

use super::error::OptionError;

/// The conversions of one option field type.
pub(super) trait OptValue: Sized {
    /// A boolean option takes no value on the command line.
    const IS_BOOL: bool = false;
    fn from_text(s: &str) -> Result<Self, OptionError>;
    fn from_toml(v: &toml::Value) -> Result<Self, OptionError>;
    fn to_text(&self) -> String;
}

impl OptValue for i32 {
    fn from_text(s: &str) -> Result<Self, OptionError> {
        s.parse::<i32>()
            .map_err(|_| OptionError::NotAnInt(s.to_string()))
    }
    fn from_toml(v: &toml::Value) -> Result<Self, OptionError> {
        match v {
            toml::Value::Integer(i) => {
                i32::try_from(*i).map_err(|_| OptionError::DoesNotFitInAnInt(*i))
            }
            _ => Err(OptionError::ExpectedInteger),
        }
    }
    fn to_text(&self) -> String {
        self.to_string()
    }
}

macro_rules! unsigned_opt_value {
    ($($t:ty),*) => {$(
        impl OptValue for $t {
            fn from_text(s: &str) -> Result<Self, OptionError> {
                s.parse::<$t>()
                    .map_err(|_| OptionError::NotANonNegativeInteger(s.to_string()))
            }
            fn from_toml(v: &toml::Value) -> Result<Self, OptionError> {
                match v {
                    toml::Value::Integer(i) => <$t>::try_from(*i)
                        .map_err(|_| OptionError::OutOfRange(*i)),
                    _ => Err(OptionError::ExpectedInteger),
                }
            }
            fn to_text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
unsigned_opt_value!(u32, u64, usize);

impl OptValue for String {
    fn from_text(s: &str) -> Result<Self, OptionError> {
        Ok(s.to_string())
    }
    fn from_toml(v: &toml::Value) -> Result<Self, OptionError> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            _ => Err(OptionError::ExpectedString),
        }
    }
    fn to_text(&self) -> String {
        self.clone()
    }
}

impl OptValue for bool {
    const IS_BOOL: bool = true;
    /// A boolean takes no value: its presence sets true (a value in a config file line
    /// is ignored).
    fn from_text(_: &str) -> Result<Self, OptionError> {
        Ok(true)
    }
    fn from_toml(v: &toml::Value) -> Result<Self, OptionError> {
        match v {
            toml::Value::Boolean(b) => Ok(*b),
            _ => Err(OptionError::ExpectedBool),
        }
    }
    /// `boost::lexical_cast<std::string>(bool)`: `0` / `1`.
    fn to_text(&self) -> String {
        if *self { "1" } else { "0" }.to_string()
    }
}

macro_rules! optional_opt_value {
    ($($t:ty),*) => {$(
        /// Unset shows as the empty string; the empty string unsets.
        impl OptValue for Option<$t> {
            fn from_text(s: &str) -> Result<Self, OptionError> {
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse::<$t>()
                    .map(Some)
                    .map_err(|_| OptionError::NotAnInteger(s.to_string()))
            }
            fn from_toml(v: &toml::Value) -> Result<Self, OptionError> {
                match v {
                    toml::Value::Integer(i) => <$t>::try_from(*i)
                        .map(Some)
                        .map_err(|_| OptionError::OutOfRange(*i)),
                    _ => Err(OptionError::ExpectedInteger),
                }
            }
            fn to_text(&self) -> String {
                self.map(|v| v.to_string()).unwrap_or_default()
            }
        }
    )*};
}
optional_opt_value!(i64, usize);

/// `--pin-cores`: a CPU list.
impl OptValue for Vec<usize> {
    fn from_text(s: &str) -> Result<Self, OptionError> {
        parse_core_list(s)
    }
    fn from_toml(v: &toml::Value) -> Result<Self, OptionError> {
        match v {
            toml::Value::String(s) => parse_core_list(s),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::Integer(i) => {
                        usize::try_from(*i).map_err(|_| OptionError::BadCoreNumber(*i))
                    }
                    _ => Err(OptionError::ExpectedCpuList),
                })
                .collect(),
            _ => Err(OptionError::ExpectedCpuList),
        }
    }
    fn to_text(&self) -> String {
        format_core_list(self)
    }
}

/// Parse a CPU list: comma-separated elements, each `N` or `A-B` (A <= B, span at most
/// 4096); spaces around elements and empty elements are ignored; the empty list means
/// no pinning. Same acceptance as `istatd_shards::parse_cpu_list`.
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, OptionError> {
    istatd_shards::parse_cpu_list(s).map_err(OptionError::BadCpuList)
}

/// Render a CPU list with ranges for runs of consecutive numbers (`0-3,5`).
pub fn format_core_list(cores: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cores.len() {
        let mut j = i;
        while j + 1 < cores.len() && cores[j + 1] == cores[j] + 1 {
            j += 1;
        }
        if j > i {
            parts.push(format!("{}-{}", cores[i], cores[j]));
        } else {
            parts.push(cores[i].to_string());
        }
        i = j + 1;
    }
    parts.join(",")
}
