//! The daemon's command line (docs/interfaces.md §7.1): the defaults, then the config file,
//! then the arguments (reference `ArgumentBase::parseArg` loop, plus `--name=value` and
//! a usage error for a missing value).

use std::path::Path;

use super::config_file;
use super::error::OptionsError;
use super::table::spec;
use super::validate::combine_paths;
use super::{Options, IMPLICIT_CONFIG};

/// Parse the daemon's arguments (`args` without the program name) with `cwd` the launch
/// directory: defaults, then the config file, then the command line (§7.1, §7.2).
/// Notices (`Not a file: istatd.cfg`, `File not readable: istatd.cfg`) are written to
/// stderr; [`parse_with_notices`] returns them instead.
pub fn parse(args: &[String], cwd: &Path) -> Result<Options, OptionsError> {
    let (opts, notices) = parse_with_notices(args, cwd)?;
    for n in notices {
        eprintln!("{n}");
    }
    Ok(opts)
}

/// [`parse`], returning the non-fatal notices for the caller to print.
pub fn parse_with_notices(
    args: &[String],
    cwd: &Path,
) -> Result<(Options, Vec<String>), OptionsError> {
    let mut opts = Options::default();
    let mut notices = Vec::new();

    // The reference scans every argument for a literal `--config` and takes the next
    // argument, wherever it is; the last occurrence wins (daemon/main.cpp main()).
    let mut explicit: Option<&str> = None;
    for (i, a) in args.iter().enumerate() {
        if a == "--config" {
            if let Some(v) = args.get(i + 1) {
                explicit = Some(v);
            }
        } else if let Some(v) = a.strip_prefix("--config=") {
            explicit = Some(v);
        }
    }
    match explicit {
        Some(v) => {
            let path = combine_paths(cwd, v);
            let shown = path.to_string_lossy().into_owned();
            opts.config = shown.clone();
            // An explicit file that is missing or unreadable: exit 1 (reference).
            config_file::load(&mut opts, &path, &shown)?;
        }
        None => {
            let path = cwd.join(IMPLICIT_CONFIG);
            match config_file::load(&mut opts, &path, IMPLICIT_CONFIG) {
                Ok(()) => {}
                // Missing or unreadable implicit file: print and go on (reference).
                Err(e) if e.is_missing_file() => notices.push(e.to_string()),
                // Port (§9 item 24): a broken implicit file is fatal.
                Err(e) => return Err(e.into()),
            }
        }
    }

    apply_command_line(&mut opts, args)?;
    Ok((opts, notices))
}

/// Apply the command line on top of the defaults and the config file.
fn apply_command_line(opts: &mut Options, args: &[String]) -> Result<(), OptionsError> {
    let near = |opts: &Options, arg: &str| {
        OptionsError::with_usage(format!("Command line error near {arg}"), opts)
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let Some(body) = arg.strip_prefix("--") else {
            return Err(near(opts, arg));
        };
        if body.is_empty() {
            // `--` ends the options; anything after it is a leftover.
            return match args.get(i + 1) {
                Some(next) => Err(near(opts, next)),
                None => Ok(()),
            };
        }
        let (name, inline) = match spec(body) {
            Some(_) => (body, None),
            None => match body.split_once('=') {
                Some((n, v)) if spec(n).is_some() => (n, Some(v)),
                _ => return Err(near(opts, arg)),
            },
        };
        let is_bool = spec(name).is_some_and(|s| s.is_bool);
        let (value, used) = if is_bool {
            if inline.is_some() {
                return Err(near(opts, arg));
            }
            ("", 1)
        } else if let Some(v) = inline {
            (v, 1)
        } else if let Some(v) = args.get(i + 1) {
            (v.as_str(), 2)
        } else {
            return Err(OptionsError::with_usage(
                format!("Argument requires a value: --{name}"),
                opts,
            ));
        };
        match opts.set_text(name, value) {
            Some(Ok(())) => {}
            // The reference reports the option, not the value.
            _ => return Err(near(opts, arg)),
        }
        i += used;
    }
    Ok(())
}
