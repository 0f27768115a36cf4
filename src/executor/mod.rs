//! The executor (the seed's RPM, docs/glossary.md#rpm): applies a verified plan to the fleet, safely.
//!
//! Actions run in dependency order, and among the ready ones only an action
//! that keeps every host within capacity may run, so no intermediate state
//! overcommits a host. Skipped actions skip their dependants. [`execute`] is
//! that schedule in memory (what `replay` and the property tests use);
//! [`durable::apply`] runs the same schedule through a backend with a
//! write-ahead journal and the credit ledger, so it survives crashes.

pub mod backend;
pub mod durable;
mod error;
pub mod journal;
mod schedule;
mod step;
mod undo;

pub use backend::BackendError;
pub use durable::{apply, Report, Request};
pub use error::ApplyError;
pub use journal::OnFailure;
pub use schedule::{execute, Outcome};
