//! Why a plan was not applied, or not completely: the executor's one error.

use super::backend::BackendError;
use crate::fleet::ledger::LedgerError;
use crate::fleet::lock::LockError;
use crate::plan::PlanError;
use std::path::PathBuf;

/// Why a plan was not applied (or not completely).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
    /// The plan could not be read or verified.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The ledger refused the change.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The fleet lock was not taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The backend could not be set up or an op failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// An earlier apply was interrupted and must be resumed before a new plan is applied.
    #[error("{path}: an apply of plan {plan} was interrupted; finish it with `chameleon apply --resume` before applying another plan")]
    Interrupted {
        /// The ledger database.
        path: PathBuf,
        /// The interrupted plan's id.
        plan: String,
    },
    /// A resume was asked with another backend than the interrupted apply used.
    #[error("{path}: the interrupted apply used the {recorded} backend; resume it with `--backend {recorded}` (not {given})")]
    OtherBackend {
        /// The ledger database.
        path: PathBuf,
        /// The backend the interrupted apply used.
        recorded: String,
        /// The backend asked for now.
        given: &'static str,
    },
    /// A resume was asked but no apply was interrupted.
    #[error("{path}: no interrupted apply to resume")]
    NothingToResume {
        /// The ledger database.
        path: PathBuf,
    },
    /// The plan already ran on this fleet.
    #[error("{path}: plan {id} already ran on this fleet and was {status}; make a new plan")]
    AlreadyRan {
        /// The plan file.
        path: PathBuf,
        /// The plan's id.
        id: String,
        /// How its run ended.
        status: &'static str,
    },
    /// Undoing a completed action failed during a rollback.
    #[error("{path}: rollback of action {id} failed: {message}; fix the backend and run `chameleon apply --resume`")]
    RollbackFailed {
        /// The ledger database.
        path: PathBuf,
        /// The action's id.
        id: String,
        /// Why undoing it failed.
        message: String,
    },
    /// An action was invalid or failed.
    #[error("{path}: action {id}: {message}")]
    Action {
        /// The file the failure is reported against.
        path: PathBuf,
        /// The action's id.
        id: String,
        /// Why it failed.
        message: String,
    },
    /// The fleet file changed while the plan was being applied.
    #[error("{path}: the fleet changed while the plan was being applied")]
    Changed {
        /// The fleet file.
        path: PathBuf,
    },
    /// No order of the remaining actions stays within every host's capacity.
    #[error("{path}: actions {} cannot run without exceeding a host's capacity", ids.join(", "))]
    Unorderable {
        /// The file the failure is reported against.
        path: PathBuf,
        /// The ids of the actions left.
        ids: Vec<String>,
    },
}
