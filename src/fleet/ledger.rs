//! The credit ledger: the durable source of truth for burst-credit balances.
//!
//! Balances live in one SQLite database per fleet (next to the fleet file by
//! default), together with the executor's write-ahead journal, so an action's
//! credit movements commit in the same transaction as its journal record
//! (docs/decisions.md#one-database).
//! Amounts are integer micro-credits, so conservation is exact. Every write
//! checks the invariants (each movement sums to zero, every balance equals
//! its history and stays within 0 and the cap) before it commits, and every
//! open checks the file's integrity, so a corrupted database is reported, not
//! used. The fleet file's `credits` are a copy the executor keeps in step.

use crate::fleet::Fleet;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Micro-credits per credit.
const MICRO: f64 = 1e6;
/// The schema this build reads and writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE account (
    instance TEXT PRIMARY KEY,
    balance  INTEGER NOT NULL,
    cap      INTEGER NOT NULL
);
CREATE TABLE entry (
    seq      INTEGER PRIMARY KEY,
    instance TEXT NOT NULL REFERENCES account(instance),
    delta    INTEGER NOT NULL,
    balance  INTEGER NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('seed', 'transfer', 'reversal')),
    run      INTEGER,
    action   TEXT,
    at       TEXT NOT NULL
);
CREATE TABLE run (
    id           INTEGER PRIMARY KEY,
    plan_id      TEXT NOT NULL,
    digest       TEXT NOT NULL,
    plan         TEXT NOT NULL,
    backend      TEXT NOT NULL,
    on_failure   TEXT NOT NULL CHECK (on_failure IN ('stop', 'rollback')),
    fleet_before TEXT NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('running', 'rolling_back', 'applied', 'stopped', 'rolled_back')),
    at           TEXT NOT NULL
);
CREATE TABLE step (
    run     INTEGER NOT NULL REFERENCES run(id),
    action  TEXT NOT NULL,
    seq     INTEGER,
    status  TEXT NOT NULL
        CHECK (status IN ('pending', 'started', 'done', 'failed', 'skipped', 'reverting', 'reverted')),
    message TEXT NOT NULL,
    PRIMARY KEY (run, action)
);
";

/// Errors of the ledger database. Each names the database file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite reported an error.
    #[error("{path}: {source}")]
    Sqlite {
        /// The ledger database.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database is corrupt; nothing was changed.
    #[error("{path}: the ledger database is corrupt: {message}; restore it from a backup (nothing was changed)")]
    Corrupt {
        /// The ledger database.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A change would break a ledger invariant, so nothing was written.
    #[error("{path}: ledger invariant violated, nothing written: {message}")]
    Invariant {
        /// The ledger database.
        path: PathBuf,
        /// Which invariant, and how.
        message: String,
    },
    /// There is no ledger database at the path.
    #[error("{path}: no ledger database here (it is created by the first `chameleon apply`)")]
    Missing {
        /// Where the ledger database was looked for.
        path: PathBuf,
    },
    /// An apply with this ledger was interrupted and must be resumed first.
    #[error("{path}: an apply of plan {plan} was interrupted, so the fleet file may not show all it did; finish it with `chameleon apply --resume` first")]
    Interrupted {
        /// The ledger database.
        path: PathBuf,
        /// The interrupted plan's id.
        plan: String,
    },
    /// An apply of the fleet with another ledger was interrupted and must be resumed first.
    #[error("{fleet}: an apply of plan {plan} with the ledger {path} was interrupted, so the fleet file may not show all it did; finish it with `chameleon apply --resume --fleet {fleet} --ledger {path}` first")]
    InterruptedElsewhere {
        /// The fleet file.
        fleet: PathBuf,
        /// The ledger database the interrupted apply used.
        path: PathBuf,
        /// The interrupted plan's id.
        plan: String,
    },
    /// Reading, writing or removing the record of the ledger an apply uses failed.
    #[error("{path}: {source}")]
    Pending {
        /// The record file (`<fleet>.applying`).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The fleet file's credits for an instance disagree with the ledger's.
    #[error("{fleet}: instance `{instance}` has {fleet_credits} credits but the ledger {path} (the source of truth) says {ledger_credits}; run `chameleon ledger --fleet {fleet} --sync` to copy the ledger's balances into the fleet file")]
    Mismatch {
        /// The fleet file.
        fleet: PathBuf,
        /// The ledger database.
        path: PathBuf,
        /// The instance's name.
        instance: String,
        /// The instance's credits in the fleet file.
        fleet_credits: f64,
        /// The instance's credits in the ledger.
        ledger_credits: f64,
    },
}

/// One instance's balance.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The instance's id.
    pub instance: String,
    /// Its balance in credits (stored as micro-credits).
    pub balance: f64,
    /// The most it may hold, in credits: 24 h of its `earn_rate`.
    pub cap: f64,
}

/// One credit movement.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its number in the ledger: entries are numbered in the order they were written.
    pub seq: i64,
    /// The instance whose balance moved.
    pub instance: String,
    /// The change in credits: positive in, negative out.
    pub delta: f64,
    /// The instance's balance after it, in credits.
    pub balance: f64,
    /// `seed`, `transfer` or `reversal`.
    pub kind: String,
    /// The id of the plan whose apply moved it; `None` for a `seed`.
    pub plan: Option<String>,
    /// The id of the action that moved it; `None` for a `seed`.
    pub action: Option<String>,
    /// RFC 3339 UTC time of the apply that wrote it (its `--now`).
    pub at: String,
}

/// An open ledger database.
pub struct Ledger {
    pub(crate) conn: Connection,
    /// The database file, named in every error.
    pub path: PathBuf,
}

/// Credits as integer micro-credits.
pub fn micro(credits: f64) -> i64 {
    (credits * MICRO).round() as i64
}

/// Integer micro-credits as credits.
pub fn from_micro(micro: i64) -> f64 {
    micro as f64 / MICRO
}

impl Ledger {
    /// The default database of a fleet file: `fleet.toml` → `fleet.ledger.sqlite`, beside
    /// the real file when `fleet` is a symlink.
    pub fn default_path(fleet: &Path) -> PathBuf {
        crate::file::real_path(fleet).with_extension("ledger.sqlite")
    }

    /// Opens the database, creating it if it does not exist, and checks its integrity. An
    /// existing file that is not a ledger (empty, or another database) is an error: only a
    /// missing file is started afresh, so no history is ever silently replaced.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if !path.exists() {
            Self::create(path)?;
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| sqlite(path, e))?;
        let ledger = Ledger {
            conn,
            path: path.to_owned(),
        };
        ledger.check_integrity()?;
        Ok(ledger)
    }

    /// Creates a new database with the schema beside `path` and renames it into place, so a
    /// crash leaves either no ledger or a whole one, never an empty file.
    fn create(path: &Path) -> Result<(), LedgerError> {
        let mut name = path.as_os_str().to_owned();
        name.push(".new");
        let tmp = PathBuf::from(name);
        let _ = std::fs::remove_file(&tmp);
        let conn = Connection::open(&tmp).map_err(|e| sqlite(&tmp, e))?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(|e| sqlite(&tmp, e))?;
        conn.close().map_err(|(_, e)| sqlite(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| LedgerError::Corrupt {
            path: path.to_owned(),
            message: format!("cannot put the new ledger in place: {e}"),
        })
    }

    /// Opens an existing database (for reading), checking its integrity.
    pub fn open_existing(path: &Path) -> Result<Ledger, LedgerError> {
        if !path.exists() {
            return Err(LedgerError::Missing {
                path: path.to_owned(),
            });
        }
        Self::open(path)
    }

    /// Where an apply records the ledger it uses while it runs: `fleet.toml` →
    /// `fleet.toml.applying`, beside the real file. The interrupted-run guard lives in the
    /// ledger, and a ledger can be anywhere (`--ledger`); this record is how a later command
    /// given another ledger, or none, still finds it.
    pub fn pending_path(fleet: &Path) -> PathBuf {
        let mut name = crate::file::real_path(fleet).into_os_string();
        name.push(".applying");
        PathBuf::from(name)
    }

    /// Records, durably and before its run is journalled, that an apply of `fleet` uses this
    /// ledger.
    pub fn mark_pending(&self, fleet: &Path) -> Result<(), LedgerError> {
        use std::os::unix::ffi::OsStrExt;
        let path = Self::pending_path(fleet);
        let mut text = crate::file::real_path(&self.path).into_os_string();
        text.push("\n");
        crate::file::write_atomic(&path, text.as_bytes())
            .map_err(|source| LedgerError::Pending { path, source })
    }

    /// Removes the record once the run has ended.
    pub fn clear_pending(fleet: &Path) -> Result<(), LedgerError> {
        let path = Self::pending_path(fleet);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(LedgerError::Pending { path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// Fails if the ledger that the last apply of `fleet` recorded is not `given` and holds
    /// an interrupted run. A record whose run has ended (a crash before it was removed) is
    /// removed. Call it holding the fleet lock.
    pub fn check_pending(fleet: &Path, given: &Path) -> Result<(), LedgerError> {
        use std::os::unix::ffi::OsStrExt;
        let path = Self::pending_path(fleet);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(LedgerError::Pending { path, source }),
        };
        let recorded = PathBuf::from(std::ffi::OsStr::from_bytes(text.trim_ascii_end()));
        if crate::file::real_path(&recorded) == crate::file::real_path(given) {
            return Ok(());
        }
        match Self::check_not_interrupted(&recorded) {
            Err(LedgerError::Interrupted { plan, .. }) => Err(LedgerError::InterruptedElsewhere {
                fleet: fleet.to_owned(),
                path: recorded,
                plan,
            }),
            Err(e) => Err(e),
            Ok(()) => Self::clear_pending(fleet),
        }
    }

    /// Fails if an apply of `fleet` was interrupted, in the ledger `given` or in the one its
    /// last apply recorded.
    pub fn check_settled(fleet: &Path, given: &Path) -> Result<(), LedgerError> {
        Self::check_not_interrupted(given)?;
        Self::check_pending(fleet, given)
    }

    /// Fails if an apply recorded in the database at `path` (if there is one) was
    /// interrupted: until it is resumed, the fleet file lags behind what the journal and the
    /// backend hold, so nothing else may read or rewrite it.
    pub fn check_not_interrupted(path: &Path) -> Result<(), LedgerError> {
        if !path.exists() {
            return Ok(());
        }
        let ledger = Ledger::open(path)?;
        let plan: Option<String> = ledger
            .conn
            .query_row(
                "SELECT plan_id FROM run WHERE status IN ('running', 'rolling_back') ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| ledger.sqlite_error(e))?;
        match plan {
            Some(plan) => Err(LedgerError::Interrupted {
                path: path.to_owned(),
                plan,
            }),
            None => Ok(()),
        }
    }

    fn corrupt(&self, message: impl Into<String>) -> LedgerError {
        LedgerError::Corrupt {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    pub(crate) fn sqlite_error(&self, e: rusqlite::Error) -> LedgerError {
        sqlite(&self.path, e)
    }

    /// Checks page integrity, that the file holds a ledger of this schema version, and that
    /// every balance equals the sum of its entries.
    fn check_integrity(&self) -> Result<(), LedgerError> {
        let c = &self.conn;
        // Read only until the file is known to be a ledger: a foreign file stays untouched.
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.sqlite_error(e))?;
        let tables: i64 = c
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| self.sqlite_error(e))?;
        match (version, tables) {
            (SCHEMA_VERSION, _) => {}
            (0, 0) => {
                return Err(self.corrupt(
                    "the file exists but holds no ledger (empty, or never written); \
                     move it away to start a new ledger",
                ))
            }
            (v, _) => {
                return Err(self.corrupt(format!("schema version {v}, expected {SCHEMA_VERSION}")))
            }
        }
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(|e| self.sqlite_error(e))?;
        let check: String = c
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| self.sqlite_error(e))?;
        if check != "ok" {
            return Err(self.corrupt(format!("integrity check: {check}")));
        }
        self.check_balances()
    }

    /// Every balance equals the sum of its entries and lies within 0 and the cap.
    fn check_balances(&self) -> Result<(), LedgerError> {
        let bad: Option<(String, i64, i64, i64)> = self
            .conn
            .query_row(
                "SELECT a.instance, a.balance, a.cap, coalesce(sum(e.delta), 0) AS total
                 FROM account a LEFT JOIN entry e ON e.instance = a.instance
                 GROUP BY a.instance
                 HAVING total != a.balance OR a.balance < 0 OR a.balance > a.cap
                 LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| self.sqlite_error(e))?;
        match bad {
            None => Ok(()),
            Some((id, balance, cap, total)) => Err(self.corrupt(format!(
                "account `{id}` has balance {} but its entries sum to {} (cap {})",
                from_micro(balance),
                from_micro(total),
                from_micro(cap)
            ))),
        }
    }

    /// Opens an account, with a `seed` entry, for every fleet instance the ledger does not
    /// know yet, and updates caps from the fleet's earn rates. Returns how many were seeded.
    pub fn seed(&mut self, fleet: &Fleet, at: &str) -> Result<usize, LedgerError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sqlite(&path, e))?;
        let mut seeded = 0;
        for i in &fleet.instances {
            let cap = micro(i.credit_cap());
            let known = tx
                .execute(
                    "UPDATE account SET cap = ?2 WHERE instance = ?1",
                    params![i.id, cap],
                )
                .map_err(|e| sqlite(&path, e))?;
            if known == 0 {
                let balance = micro(i.credits);
                tx.execute(
                    "INSERT INTO account (instance, balance, cap) VALUES (?1, ?2, ?3)",
                    params![i.id, balance, cap],
                )
                .map_err(|e| sqlite(&path, e))?;
                tx.execute(
                    "INSERT INTO entry (instance, delta, balance, kind, at) VALUES (?1, ?2, ?2, 'seed', ?3)",
                    params![i.id, balance, at],
                )
                .map_err(|e| sqlite(&path, e))?;
                seeded += 1;
            }
        }
        check_conserved(&tx, &path)?;
        tx.commit().map_err(|e| sqlite(&path, e))?;
        Ok(seeded)
    }

    /// Fails unless every fleet instance's `credits` equal its ledger balance.
    pub fn check_fleet(&self, fleet: &Fleet, fleet_path: &Path) -> Result<(), LedgerError> {
        let positions = positions(fleet);
        for a in self.accounts()? {
            if let Some(i) = positions
                .get(a.instance.as_str())
                .map(|&k| &fleet.instances[k])
            {
                if micro(i.credits) != micro(a.balance) {
                    return Err(LedgerError::Mismatch {
                        fleet: fleet_path.to_owned(),
                        path: self.path.clone(),
                        instance: a.instance,
                        fleet_credits: i.credits,
                        ledger_credits: a.balance,
                    });
                }
            }
        }
        Ok(())
    }

    /// Copies the ledger's balances into `fleet`'s `credits`; returns how many changed.
    pub fn sync_fleet(&self, fleet: &mut Fleet) -> Result<usize, LedgerError> {
        let positions = positions(fleet);
        let balances: Vec<(usize, f64)> = self
            .accounts()?
            .into_iter()
            .filter_map(|a| Some((*positions.get(a.instance.as_str())?, a.balance)))
            .collect();
        let mut changed = 0;
        for (k, balance) in balances {
            let i = &mut fleet.instances[k];
            if micro(i.credits) != micro(balance) {
                i.credits = balance;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Every account, by instance id.
    pub fn accounts(&self) -> Result<Vec<Account>, LedgerError> {
        let mut st = self
            .conn
            .prepare("SELECT instance, balance, cap FROM account ORDER BY instance")
            .map_err(|e| self.sqlite_error(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(Account {
                    instance: r.get(0)?,
                    balance: from_micro(r.get(1)?),
                    cap: from_micro(r.get(2)?),
                })
            })
            .map_err(|e| self.sqlite_error(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.sqlite_error(e))
    }

    /// The history, oldest first, of one instance or of all.
    pub fn history(&self, instance: Option<&str>) -> Result<Vec<Entry>, LedgerError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT e.seq, e.instance, e.delta, e.balance, e.kind, r.plan_id, e.action, e.at
                 FROM entry e LEFT JOIN run r ON r.id = e.run
                 WHERE ?1 IS NULL OR e.instance = ?1 ORDER BY e.seq",
            )
            .map_err(|e| self.sqlite_error(e))?;
        let rows = st
            .query_map([instance], |r| {
                Ok(Entry {
                    seq: r.get(0)?,
                    instance: r.get(1)?,
                    delta: from_micro(r.get(2)?),
                    balance: from_micro(r.get(3)?),
                    kind: r.get(4)?,
                    plan: r.get(5)?,
                    action: r.get(6)?,
                    at: r.get(7)?,
                })
            })
            .map_err(|e| self.sqlite_error(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.sqlite_error(e))
    }

    /// The balances and history as a table, for `chameleon ledger`.
    pub fn render(&self, instance: Option<&str>) -> Result<String, LedgerError> {
        use std::fmt::Write as _;
        let accounts: Vec<Account> = self
            .accounts()?
            .into_iter()
            .filter(|a| instance.is_none_or(|i| i == a.instance))
            .collect();
        let w = accounts
            .iter()
            .map(|a| a.instance.len())
            .max()
            .unwrap_or(0)
            .max(8);
        let mut out = format!("{:<w$} {:>14} {:>14}\n", "instance", "balance", "cap");
        for a in &accounts {
            let _ = writeln!(
                out,
                "{:<w$} {:>14.6} {:>14.6}",
                a.instance, a.balance, a.cap
            );
        }
        let _ = writeln!(
            out,
            "\n{:>5} {:<w$} {:<9} {:>14} {:>14}  {:<20}  plan/action",
            "seq", "instance", "kind", "delta", "balance", "at"
        );
        for e in self.history(instance)? {
            let source = match (&e.plan, &e.action) {
                (Some(p), Some(a)) => format!("{p}/{a}"),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "{:>5} {:<w$} {:<9} {:>14.6} {:>14.6}  {:<20}  {source}",
                e.seq, e.instance, e.kind, e.delta, e.balance, e.at
            );
        }
        Ok(out)
    }
}

/// An SQLite error on the database at `path`; a damaged file is reported as corrupt.
pub(crate) fn sqlite(path: &Path, source: rusqlite::Error) -> LedgerError {
    match source {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) =>
        {
            LedgerError::Corrupt {
                path: path.to_owned(),
                message: source.to_string(),
            }
        }
        source => LedgerError::Sqlite {
            path: path.to_owned(),
            source,
        },
    }
}

/// Each instance's position in `fleet`, by id (the first, should ids repeat): a lookup per
/// account instead of a search of the fleet.
fn positions(fleet: &Fleet) -> HashMap<&str, usize> {
    let mut positions = HashMap::with_capacity(fleet.instances.len());
    for (k, i) in fleet.instances.iter().enumerate() {
        positions.entry(i.id.as_str()).or_insert(k);
    }
    positions
}

/// Posts one action's credit movements (instance, micro-credit delta) inside `tx`.
pub(crate) fn post(
    tx: &Transaction,
    path: &Path,
    moves: &[(String, i64)],
    kind: &str,
    run: i64,
    action: &str,
    at: &str,
) -> Result<(), LedgerError> {
    for (instance, delta) in moves {
        let balance: i64 = tx
            .query_row(
                "UPDATE account SET balance = balance + ?2 WHERE instance = ?1 RETURNING balance",
                params![instance, delta],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| sqlite(path, e))?
            .ok_or_else(|| LedgerError::Invariant {
                path: path.to_owned(),
                message: format!("no account for instance `{instance}`"),
            })?;
        tx.execute(
            "INSERT INTO entry (instance, delta, balance, kind, run, action, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![instance, delta, balance, kind, run, action, at],
        )
        .map_err(|e| sqlite(path, e))?;
    }
    // Each action conserves credits, so the whole ledger does; `seed` checks the whole
    // (every balance against every seed) once per apply, as summing it per action made
    // applying quadratic in fleet size.
    let sum: i64 = moves.iter().map(|(_, delta)| delta).sum();
    if sum != 0 {
        return Err(LedgerError::Invariant {
            path: path.to_owned(),
            message: format!(
                "credits not conserved: `{action}`'s movements sum to {}",
                from_micro(sum)
            ),
        });
    }
    let touched: Vec<&str> = moves.iter().map(|(i, _)| i.as_str()).collect();
    check_bounds(tx, path, &touched)
}

/// Conservation: all balances sum to all seeds, checked inside the transaction.
fn check_conserved(tx: &Transaction, path: &Path) -> Result<(), LedgerError> {
    let (balances, seeds): (i64, i64) = tx
        .query_row(
            "SELECT (SELECT coalesce(sum(balance), 0) FROM account),
                    (SELECT coalesce(sum(delta), 0) FROM entry WHERE kind = 'seed')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| sqlite(path, e))?;
    if balances != seeds {
        return Err(LedgerError::Invariant {
            path: path.to_owned(),
            message: format!(
                "credits not conserved: balances sum to {} but {} were seeded",
                from_micro(balances),
                from_micro(seeds)
            ),
        });
    }
    Ok(())
}

/// Every `touched` account stays within `[0, cap]`, checked inside the transaction.
fn check_bounds(tx: &Transaction, path: &Path, touched: &[&str]) -> Result<(), LedgerError> {
    let fail = |message: String| LedgerError::Invariant {
        path: path.to_owned(),
        message,
    };
    for id in touched {
        let (balance, cap): (i64, i64) = tx
            .query_row(
                "SELECT balance, cap FROM account WHERE instance = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| sqlite(path, e))?;
        if !(0..=cap).contains(&balance) {
            return Err(fail(format!(
                "`{id}` would hold {} credits, outside [0, {}]",
                from_micro(balance),
                from_micro(cap)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> Fleet {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/fleet.toml"))
                .unwrap();
        Fleet::parse(Path::new("fleet.toml"), &text).unwrap()
    }

    /// Only a missing file starts a new ledger: an empty, one-byte or foreign file is an
    /// error naming it, and is left as it was.
    #[test]
    fn an_existing_file_that_is_not_a_ledger_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x);")
            .unwrap();
        for (name, bytes) in [("empty", &b""[..]), ("one", &b"x"[..])] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let e = Ledger::open(&path).err().expect("refused").to_string();
            assert!(e.contains(name), "{e}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was written");
        }
        let e = Ledger::open(&other).err().expect("refused").to_string();
        assert!(
            e.contains("other.sqlite") && e.contains("schema version 0"),
            "{e}"
        );
        let fresh = dir.path().join("fresh.sqlite");
        Ledger::open(&fresh).unwrap();
        assert!(!dir.path().join("fresh.sqlite.new").exists());
        Ledger::open(&fresh).unwrap();
    }

    #[test]
    fn seeds_once_and_matches_the_fleet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let f = fleet();
        let mut l = Ledger::open(&path).unwrap();
        assert_eq!(l.seed(&f, "t0").unwrap(), f.instances.len());
        assert_eq!(l.seed(&f, "t1").unwrap(), 0);
        l.check_fleet(&f, Path::new("fleet.toml")).unwrap();
        let total: f64 = l.accounts().unwrap().iter().map(|a| a.balance).sum();
        assert!((total - f.total_credits()).abs() < 1e-6);
        let mut changed = f.clone();
        changed.instances[0].credits += 1.0;
        let e = l
            .check_fleet(&changed, Path::new("fleet.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("the source of truth"), "{e}");
        assert_eq!(l.sync_fleet(&mut changed).unwrap(), 1);
        assert_eq!(changed, f);
    }

    #[test]
    fn refuses_moves_that_break_conservation_or_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let f = fleet();
        let mut l = Ledger::open(&path).unwrap();
        l.seed(&f, "t0").unwrap();
        let (a, b) = (f.instances[0].id.clone(), f.instances[1].id.clone());
        let tx = l.conn.transaction().unwrap();
        let e = post(&tx, &path, &[(a.clone(), 1)], "transfer", 0, "x", "t").unwrap_err();
        assert!(e.to_string().contains("not conserved"), "{e}");
        drop(tx);
        let tx = l.conn.transaction().unwrap();
        let huge = micro(1e9);
        let e = post(
            &tx,
            &path,
            &[(a, -huge), (b, huge)],
            "transfer",
            0,
            "x",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("outside [0, "), "{e}");
        drop(tx);
        l.check_fleet(&f, Path::new("fleet.toml")).unwrap();
    }

    #[test]
    fn detects_a_tampered_balance_and_a_garbage_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let mut l = Ledger::open(&path).unwrap();
        l.seed(&fleet(), "t0").unwrap();
        l.conn
            .execute("UPDATE account SET balance = balance + 5", [])
            .unwrap();
        drop(l);
        let e = Ledger::open(&path).err().unwrap().to_string();
        assert!(
            e.contains("l.sqlite: the ledger database is corrupt: account"),
            "{e}"
        );
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let e = Ledger::open(&path).err().unwrap().to_string();
        assert!(
            e.contains("l.sqlite: the ledger database is corrupt"),
            "{e}"
        );
    }
}
