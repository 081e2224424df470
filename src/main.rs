//! `istatd`: the counter daemon, its file tools (`istatd file dump|info|import`) and the
//! store comparison (`istatd verify`).

use clap::{Parser, Subcommand};

mod cli;
mod verify_cli;
mod verify_live;

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
    /// Compare a slave store (STORE_B) with its master's (STORE_A) by replica equality.
    Verify(verify_cli::VerifyArgs),
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `istatd file ...` is the tools and `istatd verify ...` the store comparison;
    // anything else is the daemon with the reference's long options.
    if args.get(1).is_some_and(|a| a == "file" || a == "verify") {
        let parsed = match Cli::try_parse_from(&args) {
            Ok(c) => c,
            Err(e) if args[1] == "verify" => std::process::exit(verify_cli::usage_error(e)),
            Err(e) => std::process::exit(cli::usage_error(&args, e)),
        };
        let code = match parsed.command {
            Some(Command::File(cmd)) => cli::run_file(cmd),
            Some(Command::Verify(a)) => verify_cli::run(a),
            None => 2,
        };
        std::process::exit(code);
    }
    if let Some(code) = help_or_version(&args) {
        std::process::exit(code);
    }
    let args: Vec<String> = args[1..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(istatd::daemon::startup::daemon_main(&args));
}

/// `istatd --help` / `-h` (the daemon's usage text, as the reference prints it after a
/// command-line error, with the defaults), `--version` / `-V`, `istatd help` (the
/// subcommands), `istatd help man` (a man page) and `istatd help completions bash`:
/// on stdout, exit 0. Only as the whole command line, so that they never change how a
/// daemon command line is read.
fn help_or_version(args: &[std::ffi::OsString]) -> Option<i32> {
    use clap::CommandFactory;
    let words: Vec<&str> = args[1..].iter().filter_map(|a| a.to_str()).collect();
    match words.as_slice() {
        ["help", "man"] => {
            print!(
                "{}",
                istatd::options::man_page(&istatd::options::Options::default())
            );
            return Some(0);
        }
        ["help", "completions", "bash"] => {
            print!("{}", istatd::options::bash_completion());
            return Some(0);
        }
        _ => {}
    }
    if args.len() != 2 {
        return None;
    }
    match args[1].to_str()? {
        "--help" | "-h" => {
            print!(
                "{}",
                istatd::options::usage(&istatd::options::Options::default())
            );
        }
        "--version" | "-V" => println!("istatd {}", istatd::options::BUILD_STAMP),
        "help" => {
            let mut cmd = Cli::command().override_usage(
                "istatd [--OPTION VALUE]...   (the daemon; `istatd --help` lists its options)\n       \
                 istatd <COMMAND>",
            );
            print!("{}", cmd.render_long_help());
        }
        _ => return None,
    }
    Some(0)
}
