//! The fleet lock: one writer of a fleet's state at a time.
//!
//! `apply` changes the fleet file, the journal and the machines; `plan` reads
//! the fleet and writes forecast state. Both take an exclusive `flock` on
//! `<fleet>.lock` for their whole run, so two applies, or a plan racing an
//! apply, cannot interleave. The kernel drops the lock when the holder dies,
//! even by SIGKILL, so a crashed apply never leaves a stale lock behind.

use crate::file::FileError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a waiting process retries the lock.
const POLL: Duration = Duration::from_millis(20);

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Opening the lock file failed.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
    /// Another process held the lock for the whole wait.
    #[error("{path}: another chameleon process holds the fleet lock (waited {waited_secs} s); retry later or pass --wait SECS")]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// How long it waited, in seconds.
        waited_secs: u64,
    },
}

/// An exclusive lock on a fleet, held until dropped.
#[derive(Debug)]
pub struct FleetLock {
    _file: File,
    /// The lock file, `<fleet file>.lock`.
    pub path: PathBuf,
}

impl FleetLock {
    /// The lock file of a fleet file: `fleet.toml` → `fleet.toml.lock`, beside the real
    /// file when `fleet` is a symlink.
    pub fn path_for(fleet: &Path) -> PathBuf {
        let mut name = crate::file::real_path(fleet).into_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of `fleet`, waiting up to `wait` for another holder to finish.
    pub fn acquire(fleet: &Path, wait: Duration) -> Result<FleetLock, LockError> {
        // No lock file is left behind for a fleet that is not there.
        std::fs::metadata(fleet).map_err(|source| FileError::io(fleet, source))?;
        let path = Self::path_for(fleet);
        let io = |source| LockError::from(FileError::io(&path, source));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(FleetLock { _file: file, path }),
                Err(TryLockError::WouldBlock) if start.elapsed() < wait => std::thread::sleep(POLL),
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Busy {
                        path,
                        waited_secs: wait.as_secs(),
                    })
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = dir.path().join("fleet.toml");
        let e = FleetLock::acquire(&fleet, Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("fleet.toml: No such file"), "{e}");
        assert!(!FleetLock::path_for(&fleet).exists());
        std::fs::write(&fleet, "").unwrap();
        let first = FleetLock::acquire(&fleet, Duration::ZERO).unwrap();
        let e = FleetLock::acquire(&fleet, Duration::from_millis(50)).unwrap_err();
        assert!(
            e.to_string()
                .contains("fleet.toml.lock: another chameleon process holds the fleet lock"),
            "{e}"
        );
        drop(first);
        // Released at once; the wait covers a child that another test forks while the
        // descriptor is open, which shares the lock until it execs.
        FleetLock::acquire(&fleet, Duration::from_secs(5)).unwrap();
    }
}
