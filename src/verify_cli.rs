//! `istatd verify [--strict] [--exclude DIR] [--max-report N] STORE_A STORE_B`: compare a slave store
//! (B) with its master's (A) by replica equality (replication.md §2.1). The comparison is
//! `istatd_storage::verify`; this module prints its report and maps it to an exit code:
//! 0 identical, 1 different, 2 usage error or unreadable store directory.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use istatd_storage::verify;

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
        (Some(m), [b]) => crate::verify_live::verify_live(
            m,
            b,
            &args.exclude,
            std::time::Duration::from_secs(args.quiet.max(1)),
        ),
        (None, [a, b]) => {
            verify::verify_stores_excluding(a, b, &args.exclude).map_err(|e| e.to_string())
        }
        (Some(_), _) => Err("with --master give only the slave's store".into()),
        (None, _) => Err("give the master's store and the slave's store".into()),
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
