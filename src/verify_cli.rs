//! `istatd verify [--strict] [--exclude DIR] [--max-report N] STORE_A STORE_B`: compare a
//! slave store (B) with its master's (A) by replica equality (docs/replication-protocol.md,
//! "Replica equality and residual risks"). The comparison is `istatd_storage::verify`; this
//! module prints its report and maps it to an exit code: 0 identical, 1 different, 2 usage
//! error or unreadable store directory.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use istatd_storage::verify;

use crate::verify_live::{verify_live, LiveError};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Also fail when the slave's store holds files the master's does not.
    #[arg(long)]
    pub strict: bool,
    /// Leave out the files under this directory of the stores (repeatable), e.g.
    /// `istatd` for a running master's own counters.
    #[arg(long, value_name = "DIR")]
    pub exclude: Vec<PathBuf>,
    /// Print at most N report lines before the summary line.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_report: usize,
    /// Compare with a running master read over its replication port (HOST:PORT)
    /// instead of a master store directory; then only STORE_B is given.
    #[arg(long, value_name = "HOST:PORT")]
    pub master: Option<String>,
    /// With --master: seconds without a PDU that end the master's announcements and
    /// the wait for answers.
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    pub quiet: u64,
    /// STORE_A (the master's store) and STORE_B (the slave's), or only STORE_B with
    /// --master.
    #[arg(value_name = "STORE", required = true, num_args = 1..=2)]
    pub stores: Vec<PathBuf>,
}

/// Exit code when the stores differ.
const DIFFERENT: i32 = 1;
/// Exit code for a bad command line or an unreadable store directory.
const USAGE: i32 = 2;

/// Why `istatd verify` could not compare the stores (exit 2).
#[derive(Debug)]
pub enum VerifyError {
    /// `--master` and two stores.
    TwoStoresWithMaster,
    /// One store and no `--master`.
    OneStoreWithoutMaster,
    /// A store directory could not be read (`istatd_storage::verify`'s reason).
    Stores(String),
    /// The live master could not be read.
    Live(LiveError),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::TwoStoresWithMaster => {
                f.write_str("with --master give only the slave's store")
            }
            VerifyError::OneStoreWithoutMaster => {
                f.write_str("give the master's store and the slave's store")
            }
            VerifyError::Stores(why) => f.write_str(why),
            VerifyError::Live(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VerifyError::Live(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LiveError> for VerifyError {
    fn from(e: LiveError) -> Self {
        VerifyError::Live(e)
    }
}

/// A command line clap refused: its message, exit 2 (0 for `--help`).
pub fn usage_error(e: clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() {
        USAGE
    } else {
        0
    }
}

pub fn run(args: VerifyArgs) -> i32 {
    let result = match (&args.master, args.stores.as_slice()) {
        (Some(m), [b]) => verify_live(
            m,
            b,
            &args.exclude,
            std::time::Duration::from_secs(args.quiet.max(1)),
        )
        .map_err(VerifyError::from),
        (None, [a, b]) => verify::verify_stores_excluding(a, b, &args.exclude)
            .map_err(|e| VerifyError::Stores(e.to_string())),
        (Some(_), _) => Err(VerifyError::TwoStoresWithMaster),
        (None, _) => Err(VerifyError::OneStoreWithoutMaster),
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("istatd verify: {e}");
            return USAGE;
        }
    };
    let mut out = BufWriter::new(io::stdout().lock());
    // A closed stdout (e.g. `| head`) does not change the verdict.
    for line in report.lines(args.max_report) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{}", report.summary());
    let _ = out.flush();
    if report.is_identical(args.strict) {
        0
    } else {
        DIFFERENT
    }
}
