//! The `chameleon` command: parses arguments, calls the library, maps outcomes to exit codes.

mod cli;

use clap::Parser;
use std::process::ExitCode;

/// Also the entry point of `chameleon-faults` (src/bin), the test build with fault hooks.
pub(crate) fn main() -> ExitCode {
    // `chameleon ledger … | head -1` ends quietly when the reader goes away, as `cat` does.
    // SAFETY: restores the default action of one signal before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1, never 2 (which `--detailed-exitcode` reserves for changes).
            let _ = e.print();
            return ExitCode::from(u8::from(e.use_stderr()));
        }
    };
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::message(&e));
            ExitCode::from(1)
        }
    }
}
