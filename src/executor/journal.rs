//! The write-ahead journal: what an apply intended and how far it got.
//!
//! A run records the verified plan, the fleet before it and one step per
//! action. A step moves `pending → started → done | failed` (and, on
//! rollback, `done → reverting → reverted`), each move in one transaction with
//! the step's credit movements, so after a crash the journal says exactly
//! which action was in flight and the ledger never holds half a transfer.

use crate::fleet::ledger::{post, sqlite, Ledger, LedgerError};
use crate::fleet::Fleet;
use crate::named::named_enum;
use crate::plan::Plan;
use rusqlite::{params, OptionalExtension, Transaction};
use std::path::Path;

named_enum!(
    /// What happens to the completed part of a plan when an action fails.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum OnFailure: "on_failure" {
        /// Keep the completed actions; run nothing more.
        Stop = "stop",
        /// Undo the completed actions, newest first.
        Rollback = "rollback",
    }
);

named_enum!(
    /// Where a run is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RunStatus: "run status" {
        /// Actions are being applied; if the process died, `apply --resume` finishes the run.
        Running = "running",
        /// An action failed and the completed ones are being undone; unfinished.
        RollingBack = "rolling_back",
        /// Every action not skipped is done.
        Applied = "applied",
        /// An action failed and the run ended there, keeping the completed actions.
        Stopped = "stopped",
        /// An action failed and every completed one was undone.
        RolledBack = "rolled_back",
    }
);
named_enum!(
    /// Where one action is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum StepStatus: "step status" {
        /// Not started yet.
        Pending = "pending",
        /// Its ops are being applied; after a crash, the one action in doubt.
        Started = "started",
        /// In effect, with its credit movements posted.
        Done = "done",
        /// It failed; its ops that took effect were undone (the message says if that failed).
        Failed = "failed",
        /// Never run: skipped in the plan, or left out after a failure.
        Skipped = "skipped",
        /// Being undone in a rollback.
        Reverting = "reverting",
        /// Undone in a rollback, with its credit movements reversed.
        Reverted = "reverted",
    }
);

/// One action's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The action's id, as `a01`.
    pub action: String,
    /// The order it was started in.
    pub seq: Option<i64>,
    /// How far it got.
    pub status: StepStatus,
    /// Why it failed or was skipped; empty otherwise.
    pub message: String,
}

/// One apply of one plan.
#[derive(Debug, Clone)]
pub struct Run {
    /// Its key in the `run` table.
    pub id: i64,
    /// The plan applied, as recorded in full; its digest is checked on read.
    pub plan: Plan,
    /// The backend's name (`sim`, `cgroup`, `exec`); a resume must use the same one.
    pub backend: String,
    /// What the run does when an action fails.
    pub on_failure: OnFailure,
    /// The fleet as it was before the run, which a resume replays the journal on.
    pub fleet_before: Fleet,
    /// Where the run is.
    pub status: RunStatus,
    /// In plan order.
    pub steps: Vec<Step>,
}

/// A journal on a ledger database.
pub struct Journal<'a> {
    /// The database holding the journal and the credit ledger.
    pub ledger: &'a mut Ledger,
    /// RFC 3339 UTC time stamped on the run and its ledger entries: the apply's `--now`.
    pub at: String,
}

impl Journal<'_> {
    fn corrupt(&self, message: String) -> LedgerError {
        LedgerError::Corrupt {
            path: self.ledger.path.clone(),
            message,
        }
    }

    /// Records a new run with every action pending (or skipped, with why).
    pub fn begin(
        &mut self,
        plan: &Plan,
        backend: &str,
        on_failure: OnFailure,
        fleet: &Fleet,
        skipped: &[(String, String)],
    ) -> Result<i64, LedgerError> {
        let path = self.ledger.path.clone();
        let tx = self
            .ledger
            .conn
            .transaction()
            .map_err(|e| sqlite(&path, e))?;
        tx.execute(
            "INSERT INTO run (plan_id, digest, plan, backend, on_failure, fleet_before, status, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7)",
            params![
                plan.plan.id,
                plan.plan.digest,
                plan.to_text(),
                backend,
                on_failure.name(),
                fleet.to_toml(),
                self.at
            ],
        )
        .map_err(|e| sqlite(&path, e))?;
        let run = tx.last_insert_rowid();
        for a in &plan.actions {
            let why = skipped
                .iter()
                .find(|(id, _)| *id == a.id)
                .map(|(_, w)| w.as_str());
            let status = if why.is_some() { "skipped" } else { "pending" };
            tx.execute(
                "INSERT INTO step (run, action, status, message) VALUES (?1, ?2, ?3, ?4)",
                params![run, a.id, status, why.unwrap_or("")],
            )
            .map_err(|e| sqlite(&path, e))?;
        }
        tx.commit().map_err(|e| sqlite(&path, e))?;
        Ok(run)
    }

    /// The run that did not finish, if any.
    pub fn unfinished(&self) -> Result<Option<Run>, LedgerError> {
        let l = &self.ledger;
        let row: Option<(i64, String, String, String, String, String, String)> = l
            .conn
            .query_row(
                "SELECT id, plan, backend, on_failure, fleet_before, status, digest FROM run
                 WHERE status IN ('running', 'rolling_back') ORDER BY id LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| l.sqlite_error(e))?;
        let Some((id, plan, backend, on_failure, fleet, status, digest)) = row else {
            return Ok(None);
        };
        let bad = |what: &str, e: String| self.corrupt(format!("run {id}: {what}: {e}"));
        let plan: Plan = toml::from_str(&plan).map_err(|e| bad("plan", e.to_string()))?;
        if plan.compute_digest() != digest || plan.plan.digest != digest {
            return Err(bad("plan", "its digest does not match its content".into()));
        }
        let fleet_before =
            Fleet::parse(&l.path, &fleet).map_err(|e| bad("fleet_before", e.to_string()))?;
        let on_failure = on_failure.parse().map_err(|e| bad("on_failure", e))?;
        let status = status.parse().map_err(|e| bad("status", e))?;
        let steps = self.steps(id)?;
        let ids: Vec<&str> = steps.iter().map(|s| s.action.as_str()).collect();
        let planned: Vec<&str> = plan.actions.iter().map(|a| a.id.as_str()).collect();
        if ids != planned {
            return Err(bad(
                "steps",
                format!("they are {ids:?} but the plan has {planned:?}"),
            ));
        }
        Ok(Some(Run {
            id,
            plan,
            backend,
            on_failure,
            fleet_before,
            status,
            steps,
        }))
    }

    fn steps(&self, run: i64) -> Result<Vec<Step>, LedgerError> {
        let l = &self.ledger;
        let mut st = l
            .conn
            .prepare("SELECT action, seq, status, message FROM step WHERE run = ?1 ORDER BY rowid")
            .map_err(|e| l.sqlite_error(e))?;
        let rows = st
            .query_map([run], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?))
            })
            .map_err(|e| l.sqlite_error(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (action, seq, status, message) = row.map_err(|e| l.sqlite_error(e))?;
            let status = status
                .parse()
                .map_err(|e| self.corrupt(format!("run {run}: {e}")))?;
            out.push(Step {
                action,
                seq,
                status,
                message,
            });
        }
        Ok(out)
    }

    /// How an earlier run of `plan_id` ended, if one did.
    pub fn past(&self, plan_id: &str) -> Result<Option<RunStatus>, LedgerError> {
        let l = &self.ledger;
        let status: Option<String> = l
            .conn
            .query_row(
                "SELECT status FROM run WHERE plan_id = ?1 ORDER BY id DESC LIMIT 1",
                [plan_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| l.sqlite_error(e))?;
        status
            .map(|s| {
                s.parse()
                    .map_err(|e| self.corrupt(format!("plan {plan_id}: {e}")))
            })
            .transpose()
    }

    /// Marks a step started, as the run's `seq`-th.
    pub fn start_step(&mut self, run: i64, action: &str, seq: i64) -> Result<(), LedgerError> {
        let l = &mut *self.ledger;
        l.conn
            .execute(
                "UPDATE step SET status = 'started', message = '', seq = ?3 WHERE run = ?1 AND action = ?2",
                params![run, action, seq],
            )
            .map(|_| ())
            .map_err(|e| l.sqlite_error(e))
    }

    /// Moves a step to `status`, posting its credit movements in the same transaction.
    pub fn set_step(
        &mut self,
        run: i64,
        action: &str,
        status: StepStatus,
        message: &str,
        moves: &[(String, i64)],
    ) -> Result<(), LedgerError> {
        let path = self.ledger.path.clone();
        let tx = self
            .ledger
            .conn
            .transaction()
            .map_err(|e| sqlite(&path, e))?;
        update_step(&tx, &path, run, action, status, message)?;
        let kind = if status == StepStatus::Reverted {
            "reversal"
        } else {
            "transfer"
        };
        post(&tx, &path, moves, kind, run, action, &self.at)?;
        tx.commit().map_err(|e| sqlite(&path, e))
    }

    /// Moves many steps without credit movements (skips) to `status` in one transaction.
    pub fn set_steps(
        &mut self,
        run: i64,
        actions: &[String],
        status: StepStatus,
        message: &str,
    ) -> Result<(), LedgerError> {
        let path = self.ledger.path.clone();
        let tx = self
            .ledger
            .conn
            .transaction()
            .map_err(|e| sqlite(&path, e))?;
        for action in actions {
            update_step(&tx, &path, run, action, status, message)?;
        }
        tx.commit().map_err(|e| sqlite(&path, e))
    }

    /// Moves the run to `status`.
    pub fn set_run(&mut self, run: i64, status: RunStatus) -> Result<(), LedgerError> {
        let l = &mut *self.ledger;
        l.conn
            .execute(
                "UPDATE run SET status = ?2 WHERE id = ?1",
                params![run, status.name()],
            )
            .map(|_| ())
            .map_err(|e| l.sqlite_error(e))
    }
}

fn update_step(
    tx: &Transaction,
    path: &Path,
    run: i64,
    action: &str,
    status: StepStatus,
    message: &str,
) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE step SET status = ?3, message = ?4 WHERE run = ?1 AND action = ?2",
        params![run, action, status.name(), message],
    )
    .map(|_| ())
    .map_err(|e| sqlite(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::ledger::micro;

    fn plan() -> Plan {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/fixture.plan.toml"
        );
        Plan::read(std::path::Path::new(path)).unwrap()
    }

    #[test]
    fn steps_move_with_their_credits_and_runs_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let fleet_path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/fleet.toml");
        let fleet = Fleet::read(std::path::Path::new(fleet_path)).unwrap();
        ledger.seed(&fleet, "t").unwrap();
        let mut j = Journal {
            ledger: &mut ledger,
            at: "t".into(),
        };
        let plan = plan();
        let skipped = [("a02".to_string(), "skip = true".to_string())];
        let id = j
            .begin(&plan, "sim", OnFailure::Rollback, &fleet, &skipped)
            .unwrap();
        let run = j.unfinished().unwrap().unwrap();
        assert_eq!(
            (run.id, run.on_failure, run.status),
            (id, OnFailure::Rollback, RunStatus::Running)
        );
        assert_eq!(run.fleet_before, fleet);
        assert_eq!(run.steps[1].status, StepStatus::Skipped);
        assert_eq!(run.steps[0].status, StepStatus::Pending);
        j.start_step(id, "a01", 1).unwrap();
        let (a, b) = (fleet.instances[0].id.clone(), fleet.instances[1].id.clone());
        let moves = [(a.clone(), -micro(1.5)), (b, micro(1.5))];
        j.set_step(id, "a01", StepStatus::Done, "", &moves).unwrap();
        let step = &j.unfinished().unwrap().unwrap().steps[0];
        assert_eq!((step.seq, step.status), (Some(1), StepStatus::Done));
        let balance = j
            .ledger
            .accounts()
            .unwrap()
            .into_iter()
            .find(|x| x.instance == a)
            .unwrap()
            .balance;
        assert!((balance - (fleet.instances[0].credits - 1.5)).abs() < 1e-9);
        // A movement that breaks an invariant rolls the whole step back.
        let e = j
            .set_step(id, "a03", StepStatus::Done, "", &[(a, micro(1.0))])
            .unwrap_err();
        assert!(e.to_string().contains("not conserved"), "{e}");
        assert_eq!(
            j.unfinished().unwrap().unwrap().steps[2].status,
            StepStatus::Pending
        );
        assert_eq!(j.past(&plan.plan.id).unwrap(), Some(RunStatus::Running));
        j.set_run(id, RunStatus::Applied).unwrap();
        assert!(j.unfinished().unwrap().is_none());
        assert_eq!(j.past(&plan.plan.id).unwrap(), Some(RunStatus::Applied));
    }
}
