//! `chameleon` with fault injection, for tests/faults.rs only: built with the
//! `fault-injection` feature (which the tests enable), never by `cargo build --release`.
//! `CHAMELEON_CRASH_AFTER=N` kills the process with SIGKILL at its N-th durable boundary;
//! `CHAMELEON_CHECKPOINT_EVERY=N` writes the fleet file every N actions.

#[path = "../main.rs"]
mod command;

fn main() -> std::process::ExitCode {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    chameleon::executor::durable::faults::set(
        var("CHAMELEON_CRASH_AFTER"),
        var("CHAMELEON_CHECKPOINT_EVERY").map(|n: u64| n as usize),
    );
    command::main()
}
