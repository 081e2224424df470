//! `istatd file ...`: the file tools' command line (docs/file-format.md, "File tools"). The
//! work is done by the pure functions of `istatd_storage::tools`; this module only reads
//! and writes files and maps results to the reference tools' stderr text and exit codes.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use istatd_storage::format::{FormatError, Header, HEADER_SIZE};
use istatd_storage::tools::{self, ToolError};

#[derive(Subcommand, Debug)]
pub enum FileCmd {
    /// Dump a counter file as CSV, or raw with --full (istatd_filedump).
    Dump {
        /// Raw dump of the header and every slot, without the ring logic.
        #[arg(long)]
        full: bool,
        /// With --full: carry on past header errors, assuming defaults.
        #[arg(long, requires = "full")]
        force: bool,
        path: PathBuf,
    },
    /// Print the header of each counter file (istatd_fileinfo).
    Info {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write buckets read from stdin into an existing counter file (istatd_import).
    ///
    /// Input lines are `time sum sumSq min max count`, or the CSV of `file dump`.
    Import {
        path: Option<PathBuf>,
        /// The counter file (same as PATH, as the reference tool spells it).
        #[arg(long = "stat-file", value_name = "PATH")]
        stat_file: Option<PathBuf>,
        /// Only replace empty buckets; merge into the others.
        #[arg(long = "fill-empty")]
        fill_empty: bool,
    },
}

const DUMP_USAGE: &str = "usage: istatd_filedump [--full [--force]] filename\n\
istatd_filedump dumps the samples from an istatd file, and also \n\
calculates average/standard deviation for each sample as part of the dump. \n";
const INFO_USAGE: &str = "usage: istatd_fileinfo path/to/counterfile [...]\n";
const IMPORT_USAGE: &str = "--fill-empty   (0           )   Instead of always overwriting data, only overwrite buckets that are empty\n\
--stat-file    (            )   name of existing stat file to merge\n";

/// A command line clap refused: the reference tools' usage text and exit 1 for the file
/// tools, clap's own message otherwise. Returns the exit code.
pub fn usage_error(args: &[OsString], e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let word = |i: usize| args.get(i).and_then(|a| a.to_str()).unwrap_or("");
    if word(1) == "file" {
        let usage = match word(2) {
            "dump" => DUMP_USAGE.to_string(),
            "info" => INFO_USAGE.to_string(),
            "import" => format!("{e}{IMPORT_USAGE}"),
            _ => e.exit(),
        };
        eprint!("{usage}");
        return 1;
    }
    e.exit()
}

pub fn run_file(cmd: FileCmd) -> i32 {
    match cmd {
        FileCmd::Dump { full, force, path } => dump(&path, full, force),
        FileCmd::Info { paths } => paths.iter().map(|p| info(p)).sum(),
        FileCmd::Import {
            path,
            stat_file,
            fill_empty,
        } => match stat_file.or(path) {
            Some(p) => import(&p, fill_empty),
            None => {
                eprint!("Need to specify stat file to update\n{IMPORT_USAGE}");
                1
            }
        },
    }
}

fn out(s: &str) {
    // A closed stdout (e.g. `| head`) is not an error of the tool.
    let _ = io::stdout().lock().write_all(s.as_bytes());
}

fn dump(path: &Path, full: bool, force: bool) -> i32 {
    let ok = match fs::read(path) {
        Err(_) => false,
        Ok(bytes) if full => {
            let (stdout, stderr, ok) = tools::dump_full(&bytes, force);
            out(&stdout);
            eprint!("{stderr}");
            ok
        }
        Ok(bytes) => match tools::dump_csv(&bytes) {
            Ok(s) => {
                out(&s);
                true
            }
            Err(_) => false,
        },
    };
    if ok {
        0
    } else {
        eprintln!("Cannot open: {}", path.display());
        1
    }
}

/// One path of `file info`; returns 1 on failure.
fn info(path: &Path) -> i32 {
    use std::os::unix::ffi::OsStrExt;
    let mut head = Vec::with_capacity(HEADER_SIZE);
    let read = File::open(path).and_then(|f| f.take(HEADER_SIZE as u64).read_to_end(&mut head));
    if let Err(e) = read {
        eprintln!("{}: {}", path.display(), strerror(&e));
        return 1;
    }
    match tools::info_bytes(path.as_os_str().as_bytes(), &head) {
        Ok(s) => {
            let _ = io::stdout().lock().write_all(&s);
            0
        }
        Err(mut e) => {
            e.push(b'\n');
            let _ = io::stderr().lock().write_all(&e);
            1
        }
    }
}

/// The io::Error text without Rust's ` (os error N)` suffix, i.e. C's `strerror`.
fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}

/// The reference's exception text for a file its open refused (lib/StatFile.cpp).
fn open_error_what(e: &ToolError, path: &str) -> String {
    match e {
        ToolError::Format(FormatError::BadMagic) => format!("Not an istat file: {path}"),
        ToolError::Format(FormatError::VersionTooNew(_)) => {
            format!("File version is too new: {path}")
        }
        ToolError::Format(f) => format!("{f}: {path}"),
    }
}

/// Why `file import` stopped; shown as the reference's `Exception: <what>; for <file>`.
#[derive(Debug)]
enum ImportError {
    /// The counter file could not be opened for reading or for writing back.
    CannotOpen { name: String, cause: io::Error },
    /// The counter file is not one the tool can use.
    Refused { name: String, cause: ToolError },
    /// Reading stdin or writing the file failed.
    Io(io::Error),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::CannotOpen { name, cause } => {
                write!(f, "Could not open: {name}: {}", strerror(cause))
            }
            ImportError::Refused { name, cause } => f.write_str(&open_error_what(cause, name)),
            ImportError::Io(e) => f.write_str(&strerror(e)),
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ImportError::CannotOpen { cause, .. } => Some(cause),
            ImportError::Io(e) => Some(e),
            ImportError::Refused { .. } => None,
        }
    }
}

impl From<io::Error> for ImportError {
    fn from(e: io::Error) -> Self {
        ImportError::Io(e)
    }
}

fn import(path: &Path, fill_empty: bool) -> i32 {
    let name = path.to_string_lossy();
    match import_inner(path, &name, fill_empty) {
        Ok(()) => 0,
        Err(what) => {
            eprintln!("Exception: {what}; for {name}");
            1
        }
    }
}

fn import_inner(path: &Path, name: &str, fill_empty: bool) -> Result<(), ImportError> {
    let cannot_open = |cause| ImportError::CannotOpen {
        name: name.to_string(),
        cause,
    };
    let refused = |cause| ImportError::Refused {
        name: name.to_string(),
        cause,
    };
    let original = fs::read(path).map_err(cannot_open)?;
    // Validate before reading stdin, as the reference opens the file first.
    Header::parse_checked(&original, original.len() as u64)
        .map_err(|e| refused(ToolError::Format(e)))?;
    let mut input = Vec::new();
    io::stdin().lock().read_to_end(&mut input)?;
    let input = String::from_utf8_lossy(&input);
    let mut bytes = original.clone();
    let report = tools::import(&mut bytes, &input, fill_empty).map_err(refused)?;
    eprint!("{}", report.stderr);
    // Write back the pages that changed (same length; the file is never truncated).
    let page = Header::parse_raw(&bytes).page_size as usize;
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(cannot_open)?;
    for (i, (new, old)) in bytes.chunks(page).zip(original.chunks(page)).enumerate() {
        if new != old {
            file.write_all_at(new, (i * page) as u64)?;
        }
    }
    Ok(())
}
