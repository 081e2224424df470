//! `istatd`: the counter daemon and its file tools (`istatd file dump|info|import`).

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser, Debug)]
#[command(
    name = "istatd",
    version,
    about = "istatd counter daemon and file tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Counter file tools (istatd_filedump, istatd_fileinfo, istatd_import).
    #[command(subcommand)]
    File(cli::FileCmd),
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => std::process::exit(cli::usage_error(&args, e)),
    };
    let code = match parsed.command {
        None => {
            eprintln!("daemon mode is not implemented yet; see `istatd file --help`");
            2
        }
        Some(Command::File(cmd)) => cli::run_file(cmd),
    };
    std::process::exit(code);
}
