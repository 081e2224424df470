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
    /// The master's store directory.
    #[arg(value_name = "STORE_A")]
    pub store_a: PathBuf,
    /// The slave's store directory.
    #[arg(value_name = "STORE_B")]
    pub store_b: PathBuf,
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
    let report = match verify::verify_stores_excluding(&args.store_a, &args.store_b, &args.exclude)
    {
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
