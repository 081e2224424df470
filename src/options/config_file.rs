//! The config file (docs/interfaces.md §7.2): the reference's istatd format (one `--name
//! value` a line, reference `ArgumentBase::parseData`), or TOML for a name ending in
//! `.toml` (port addition; keys are option names without `--`).

use std::path::Path;

use super::error::ConfigError;
use super::table::spec;
use super::Options;
use crate::statline::is_space;

/// Load one config file into `opts`; `shown` is the name used in messages.
pub(super) fn load(opts: &mut Options, path: &Path, shown: &str) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        _ => {
            return Err(ConfigError::NotAFile {
                shown: shown.to_string(),
            })
        }
    }
    let data = std::fs::read(path).map_err(|_| ConfigError::NotReadable {
        shown: shown.to_string(),
    })?;
    if shown.ends_with(".toml") {
        apply_toml(opts, &data)
    } else {
        apply_config_data(opts, &data)
    }
}

/// Apply an istatd-format config file. Lines before a bad line stay applied.
pub(super) fn apply_config_data(opts: &mut Options, data: &[u8]) -> Result<(), ConfigError> {
    let len = data.len();
    let mut pos = 0;
    let mut line_no = 1usize;
    while pos < len {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(len, |p| pos + p);
        let mut start = pos;
        while start < end && is_space(data[start]) {
            start += 1;
        }
        let mut tend = end;
        while tend > start && is_space(data[tend - 1]) {
            tend -= 1;
        }
        let line = &data[start..tend];
        pos = end + 1;
        if !line.is_empty() && line[0] != b'#' {
            apply_config_line(opts, line, line_no)?;
        }
        line_no += 1;
    }
    Ok(())
}

fn apply_config_line(opts: &mut Options, line: &[u8], line_no: usize) -> Result<(), ConfigError> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (key, value) = match line.iter().position(|&b| b == b' ') {
        None => {
            // Only a boolean may stand alone. (The reference looks up the line minus
            // its first two characters, whatever they are.)
            let lone_bool = line.len() > 2
                && std::str::from_utf8(&line[2..])
                    .ok()
                    .and_then(spec)
                    .is_some_and(|s| s.is_bool);
            if !lone_bool {
                return Err(ConfigError::MissingArgument {
                    line: line_no,
                    text: text(line),
                });
            }
            (text(line), String::new())
        }
        Some(split) => {
            let mut vstart = split + 1;
            while vstart < line.len() && is_space(line[vstart]) {
                vstart += 1;
            }
            let mut value = &line[vstart..];
            if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
                value = &value[1..value.len() - 1];
            }
            (text(&line[..split]), text(value))
        }
    };
    let near = |what: &str| ConfigError::Near {
        line: line_no,
        what: what.to_string(),
    };
    // Reference parseArg on { key, value }: not `--x` stops at the key; a bare `--`
    // consumes itself and stops at the value.
    let Some(name) = key.strip_prefix("--") else {
        return Err(near(&key));
    };
    if name.is_empty() {
        return Err(near(&value));
    }
    match opts.set_text(name, &value) {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) | None => Err(near(&key)),
    }
}

/// Apply a TOML config file: keys are option names without `--`, applied in the
/// order they stand in the file.
pub(super) fn apply_toml(opts: &mut Options, data: &[u8]) -> Result<(), ConfigError> {
    let text = std::str::from_utf8(data).map_err(|e| ConfigError::NotUtf8 {
        line: line_of(data, e.valid_up_to()),
    })?;
    let table: std::collections::BTreeMap<String, toml::Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| {
            let message: Vec<&str> = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            ConfigError::TomlSyntax {
                line: e.span().map_or(1, |s| line_of(data, s.start)),
                message: message.join("; "),
            }
        })?;
    let mut entries: Vec<(String, toml::Spanned<toml::Value>)> = table.into_iter().collect();
    entries.sort_by_key(|(_, v)| v.span().start);
    for (key, value) in entries {
        let line = line_of(data, value.span().start);
        match opts.set_toml(&key, value.get_ref()) {
            Some(Ok(())) => {}
            Some(Err(cause)) => return Err(ConfigError::BadValue { line, key, cause }),
            None => return Err(ConfigError::UnknownKey { line, key }),
        }
    }
    Ok(())
}

/// The 1-based line of a byte offset.
fn line_of(data: &[u8], offset: usize) -> usize {
    1 + data[..offset.min(data.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}
