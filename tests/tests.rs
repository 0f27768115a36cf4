//! The integration tests, one binary with a module per area (ripgrep's layout): run one area
//! with `cargo test --release --test tests cli::`. The real-cgroup test (`cgroups.rs`) and
//! the fuzzer (`fuzz.rs`) have their own harness and stay binaries of their own.
//! `Cargo.toml` sets `autotests = false`, so the modules beside this file are not built
//! as binaries of their own.

// Helpers: the real binary, fixture workspaces, golden files, the seeded generator.
mod util;

// The real `chameleon` binary on the shipped fixtures; golden files.
mod cli;
// Invariants over random fleets: problem → strategy → plan → verify → execute.
mod properties;
// Brute force against HiGHS on tiny problems.
mod oracle;
// `chameleon replay`: metrics by hand, lower bounds, the binary on the fixtures.
mod replay;
// The `cgroup` backend through the binary on a fake cgroup v2 tree.
mod backends;
// SIGKILL, failure and rollback of `apply`, through `chameleon-faults`.
mod faults;
