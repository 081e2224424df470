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
    // `istatd file ...` is the tools; anything else is the daemon with the reference's
    // long options.
    if args.get(1).is_some_and(|a| a == "file") {
        let parsed = match Cli::try_parse_from(&args) {
            Ok(c) => c,
            Err(e) => std::process::exit(cli::usage_error(&args, e)),
        };
        let code = match parsed.command {
            Some(Command::File(cmd)) => cli::run_file(cmd),
            None => 2,
        };
        std::process::exit(code);
    }
    let args: Vec<String> = args[1..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(istatd::run::daemon_main(&args));
}
