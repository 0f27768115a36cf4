//! The durable apply: the in-memory executor's schedule, made real and crash-safe.
//!
//! Under the fleet lock, a plan is verified and dry-run in memory, then
//! journalled, then each action is journalled as started, applied through the
//! backend op by op, written to the fleet file and journalled as done with its
//! credit movements. A crash anywhere leaves the journal naming the one action
//! in flight; `--resume` asks the fleet file and the backend which of its ops
//! took effect and finishes the rest, so no op runs twice. A failed action
//! skips its dependants and then stops the run or rolls the completed part
//! back, newest first.

use super::backend::{Backend, Context, Effect, Op, Spec};
use super::journal::{Journal, Run, RunStatus, StepStatus};
use super::{execute, pick, ApplyError, OnFailure, Picked};
use crate::fleet::Fleet;
use crate::ledger::{micro, Ledger, LedgerError};
use crate::lock::FleetLock;
use crate::plan::{Action, Plan, PlanError};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What `chameleon apply` was asked to do.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The plan; optional with `resume`.
    pub plan: Option<&'a Path>,
    pub fleet: &'a Path,
    /// The ledger database (default: next to the fleet file).
    pub ledger: Option<&'a Path>,
    pub backend: &'a Spec,
    pub on_failure: OnFailure,
    pub resume: bool,
    /// How long to wait for another apply or plan to release the fleet.
    pub wait: Duration,
    pub now: DateTime<Utc>,
}

/// How one action ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub action: String,
    pub status: StepStatus,
    pub message: String,
}

/// What a durable apply did.
#[derive(Debug, Clone)]
pub struct Report {
    pub plan_id: String,
    pub status: RunStatus,
    /// Whether this finished an interrupted run.
    pub resumed: bool,
    /// Per action, in the order they ran, then those that did not run.
    pub steps: Vec<StepReport>,
    pub ledger: PathBuf,
    pub fleet: Fleet,
}

/// Applies (or resumes) a plan durably; see the module header.
pub fn apply(req: &Request) -> Result<Report, ApplyError> {
    let _lock = FleetLock::acquire(req.fleet, req.wait)?;
    let ledger_path = req
        .ledger
        .map_or_else(|| Ledger::default_path(req.fleet), Path::to_owned);
    let at = req.now.to_rfc3339_opts(SecondsFormat::Secs, true);
    // A first apply creates the database only once the plan has passed every check.
    if ledger_path.exists() {
        let mut ledger = Ledger::open(&ledger_path)?;
        let journal = Journal {
            ledger: &mut ledger,
            at: at.clone(),
        };
        if let Some(run) = journal.unfinished()? {
            if !req.resume {
                return Err(ApplyError::Interrupted {
                    path: ledger_path,
                    plan: run.plan.plan.id,
                });
            }
            if run.backend != req.backend.name() {
                return Err(ApplyError::OtherBackend {
                    path: ledger_path,
                    recorded: run.backend,
                    given: req.backend.name(),
                });
            }
            let mut backend = Spec::open(req.backend)?;
            return Driver::new(journal, backend.as_mut(), req.fleet, run, true).drive();
        }
        if let Some(plan_path) = req.plan {
            let id = Plan::read(plan_path)?.plan.id;
            match journal.past(&id)? {
                Some(RunStatus::Applied) => {
                    return Err(PlanError::AlreadyApplied {
                        path: plan_path.to_owned(),
                        id,
                    }
                    .into())
                }
                Some(status) => {
                    return Err(ApplyError::AlreadyRan {
                        path: plan_path.to_owned(),
                        id,
                        status: status.as_str(),
                    })
                }
                None => {}
            }
        }
    }
    let Some(plan_path) = req.plan else {
        return Err(ApplyError::NothingToResume { path: ledger_path });
    };
    let fleet = Fleet::read(req.fleet)?;
    let plan = Plan::read(plan_path)?;
    let verified = plan.verify(plan_path, &fleet, req.now)?;
    let dry = execute(&verified, &fleet, plan_path, &mut |_| {})?;
    let mut backend = Spec::open(req.backend)?;
    let mut ledger = Ledger::open(&ledger_path)?;
    let mut journal = Journal {
        ledger: &mut ledger,
        at,
    };
    journal.ledger.seed(&fleet, &journal.at.clone())?;
    journal.ledger.check_fleet(&fleet, req.fleet)?;
    let plan = verified.plan().clone();
    let id = journal.begin(
        &plan,
        req.backend.name(),
        req.on_failure,
        &fleet,
        &dry.skipped,
    )?;
    crash_point();
    let run = journal
        .unfinished()?
        .filter(|r| r.id == id)
        .ok_or_else(|| LedgerError::Corrupt {
            path: ledger_path.clone(),
            message: format!("run {id} is not there after it was written"),
        })?;
    Driver::new(journal, backend.as_mut(), req.fleet, run, false).drive()
}

/// The test hook: with `CHAMELEON_CRASH_AFTER=N`, the process kills itself with SIGKILL at
/// its N-th durable boundary (journal commit, backend op, fleet write).
fn crash_point() {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let Some(n) = std::env::var("CHAMELEON_CRASH_AFTER")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if COUNT.fetch_add(1, Ordering::SeqCst) + 1 == n {
        // SAFETY: kill(2) on our own pid; no memory is involved.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

struct Driver<'a, 'j> {
    journal: Journal<'j>,
    backend: &'a mut dyn Backend,
    fleet_path: &'a Path,
    /// Its steps are in plan order, one per action.
    run: Run,
    /// Action id → index into the plan's actions and the run's steps.
    index: HashMap<String, usize>,
    resumed: bool,
    /// When the plan was made: what changed instances are stamped with.
    at: DateTime<Utc>,
}

/// Why an action failed, for the journal.
type Failure = String;

impl<'a, 'j> Driver<'a, 'j> {
    fn new(
        journal: Journal<'j>,
        backend: &'a mut dyn Backend,
        fleet_path: &'a Path,
        run: Run,
        resumed: bool,
    ) -> Self {
        let index = run
            .steps
            .iter()
            .enumerate()
            .map(|(k, s)| (s.action.clone(), k))
            .collect();
        // The plan was verified before it was journalled, and the journal is checked on read.
        let at = DateTime::parse_from_rfc3339(&run.plan.plan.created_at)
            .map_or(DateTime::<Utc>::UNIX_EPOCH, |t| t.with_timezone(&Utc));
        Driver {
            journal,
            backend,
            fleet_path,
            run,
            index,
            resumed,
            at,
        }
    }

    fn action(&self, id: &str) -> Action {
        self.run.plan.actions[self.index[id]].clone()
    }

    fn status(&self, id: &str) -> StepStatus {
        self.run.steps[self.index[id]].status
    }

    fn set(
        &mut self,
        id: &str,
        status: StepStatus,
        message: &str,
        moves: &[(String, i64)],
    ) -> Result<(), ApplyError> {
        self.journal
            .set_step(self.run.id, id, status, message, moves)?;
        crash_point();
        let seq = self
            .run
            .steps
            .iter()
            .filter_map(|s| s.seq)
            .max()
            .unwrap_or(0)
            + 1;
        let step = &mut self.run.steps[self.index[id]];
        step.status = status;
        step.message = message.to_owned();
        if status == StepStatus::Started {
            step.seq = Some(seq);
        }
        Ok(())
    }

    fn set_run(&mut self, status: RunStatus) -> Result<(), ApplyError> {
        self.journal.set_run(self.run.id, status)?;
        crash_point();
        self.run.status = status;
        Ok(())
    }

    /// The completed actions in the order they ran, each with the fleet state before it.
    fn completed(&self) -> Result<Vec<(Action, Fleet)>, ApplyError> {
        let mut done: Vec<_> = self
            .run
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Done | StepStatus::Reverting))
            .collect();
        done.sort_by_key(|s| s.seq);
        let mut state = self.run.fleet_before.clone();
        let mut out = Vec::new();
        for s in done {
            let a = self.action(&s.action);
            let after = self.after(&state, &a)?;
            out.push((a, std::mem::replace(&mut state, after)));
        }
        Ok(out)
    }

    /// The state after `a` runs in `state`.
    fn after(&self, state: &Fleet, a: &Action) -> Result<Fleet, ApplyError> {
        let mut next = state.clone();
        super::step(&mut next, a, self.at).map_err(|_| ApplyError::Action {
            path: self.journal.ledger.path.clone(),
            id: a.id.clone(),
            message: "the journal's record no longer replays on the fleet it started from".into(),
        })?;
        Ok(next)
    }

    fn state(&self) -> Result<Fleet, ApplyError> {
        let completed = self.completed()?;
        match completed.last() {
            Some((a, before)) => self.after(before, a),
            None => Ok(self.run.fleet_before.clone()),
        }
    }

    fn drive(mut self) -> Result<Report, ApplyError> {
        if self.run.status == RunStatus::Running {
            self.forward()?;
        }
        if self.run.status == RunStatus::RollingBack {
            self.rollback()?;
        }
        Ok(self.report())
    }

    fn forward(&mut self) -> Result<(), ApplyError> {
        // A crash right after an action failed: finish handling the failure.
        if let Some(failed) = self
            .run
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
        {
            let id = failed.action.clone();
            return self.fail(&id);
        }
        let mut state = self.state()?;
        loop {
            let started = self
                .run
                .steps
                .iter()
                .find(|s| s.status == StepStatus::Started)
                .map(|s| s.action.clone());
            let (id, resuming) = match started {
                Some(id) => (id, true),
                None => match self.next(&state)? {
                    Some(id) => {
                        self.set(&id, StepStatus::Started, "", &[])?;
                        (id, false)
                    }
                    None => break,
                },
            };
            let a = self.action(&id);
            let after = self.after(&state, &a)?;
            match self.perform(&a, &state, &after, resuming)? {
                Ok(()) => {
                    self.set(&id, StepStatus::Done, "", &moves(&state, &after))?;
                    state = after;
                }
                Err(failure) => {
                    self.set(&id, StepStatus::Failed, &failure, &[])?;
                    return self.fail(&id);
                }
            }
        }
        let mut last = state;
        last.last_plan = Some(self.run.plan.plan.id.clone());
        last.write_atomic(self.fleet_path)?;
        crash_point();
        self.set_run(RunStatus::Applied)
    }

    /// The next action the in-memory schedule runs, if any.
    fn next(&self, state: &Fleet) -> Result<Option<String>, ApplyError> {
        let pending: Vec<Action> = self
            .run
            .plan
            .actions
            .iter()
            .filter(|a| self.status(&a.id) == StepStatus::Pending)
            .cloned()
            .collect();
        let refs: Vec<&Action> = pending.iter().collect();
        let finished = |d: &str| matches!(self.status(d), StepStatus::Done | StepStatus::Skipped);
        match pick(&refs, &finished, &mut state.clone(), self.at) {
            Picked::Run(k) => Ok(Some(refs[k].id.clone())),
            Picked::Done => Ok(None),
            Picked::Invalid(k, message) => Err(ApplyError::Action {
                path: self.journal.ledger.path.clone(),
                id: refs[k].id.clone(),
                message,
            }),
            Picked::Stuck => Err(ApplyError::Unorderable {
                path: self.journal.ledger.path.clone(),
                ids: refs.iter().map(|a| a.id.clone()).collect(),
            }),
        }
    }

    /// Runs `a`'s ops, taking the fleet file from `before` to `after`.
    fn perform(
        &mut self,
        a: &Action,
        before: &Fleet,
        after: &Fleet,
        resuming: bool,
    ) -> Result<Result<(), Failure>, ApplyError> {
        self.transition(&a.id, &Op::of(a, before), before, after, resuming)
    }

    /// Undoes `a`'s ops, newest first, taking the fleet file back from `after` to `before`.
    fn perform_inverse(
        &mut self,
        a: &Action,
        before: &Fleet,
        after: &Fleet,
        resuming: bool,
    ) -> Result<Result<(), Failure>, ApplyError> {
        let undo: Vec<Op> = Op::of(a, before).iter().rev().map(Op::inverse).collect();
        self.transition(&a.id, &undo, after, before, resuming)
    }

    /// Runs `ops` (on resume, only those not yet in effect) and writes the fleet file `to`,
    /// which must hold `from` (or, on resume, may already hold `to`). An op failure undoes
    /// the ops before it and is returned as the action's failure.
    fn transition(
        &mut self,
        action: &str,
        ops: &[Op],
        from: &Fleet,
        to: &Fleet,
        resuming: bool,
    ) -> Result<Result<(), Failure>, ApplyError> {
        let on_disk = Fleet::read(self.fleet_path)?;
        if resuming && on_disk == *to {
            return Ok(Ok(()));
        }
        if on_disk != *from {
            return Err(ApplyError::Changed {
                path: self.fleet_path.to_owned(),
            });
        }
        if let Err(failure) = self.run_ops(action, ops, resuming) {
            return Ok(Err(failure));
        }
        to.write_atomic(self.fleet_path)?;
        crash_point();
        Ok(Ok(()))
    }

    /// Applies ops in order; on a failure, undoes the ones applied.
    fn run_ops(&mut self, action: &str, ops: &[Op], resuming: bool) -> Result<(), Failure> {
        let plan = self.run.plan.plan.id.clone();
        let cx = Context {
            plan: &plan,
            action,
        };
        for (k, op) in ops.iter().enumerate() {
            let result = if resuming {
                match self.backend.observe(op, cx) {
                    Ok(Effect::Applied) => continue,
                    Ok(Effect::NotApplied) => self.backend.apply(op, cx),
                    Ok(Effect::Unknown(why)) => Err(super::BackendError::Failed(format!(
                        "in doubt after a crash: {why}"
                    ))),
                    Err(e) => Err(e),
                }
            } else {
                self.backend.apply(op, cx)
            };
            crash_point();
            if let Err(e) = result {
                let mut failure = e.to_string();
                for done in ops[..k].iter().rev() {
                    if let Err(undo) = self.backend.apply(&done.inverse(), cx) {
                        failure += &format!("; undoing its earlier part also failed, the backend may be inconsistent: {undo}");
                    }
                }
                return Err(failure);
            }
        }
        Ok(())
    }

    /// After `failed` failed: skips its dependants, then stops or starts the rollback.
    fn fail(&mut self, failed: &str) -> Result<(), ApplyError> {
        let mut blocked = vec![failed.to_owned()];
        while let Some(a) = self.run.plan.actions.iter().find(|a| {
            self.status(&a.id) == StepStatus::Pending
                && a.depends_on.iter().any(|d| blocked.contains(d))
        }) {
            let id = a.id.clone();
            let why = format!("depends on failed {failed}");
            self.set(&id, StepStatus::Skipped, &why, &[])?;
            blocked.push(id);
        }
        let (verb, status) = match self.run.on_failure {
            OnFailure::Stop => ("stopped", RunStatus::Stopped),
            OnFailure::Rollback => ("rolled back", RunStatus::RollingBack),
        };
        self.skip_pending(&format!("not run: {verb} after {failed} failed"))?;
        self.set_run(status)
    }

    fn skip_pending(&mut self, why: &str) -> Result<(), ApplyError> {
        let pending: Vec<String> = self
            .run
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Pending)
            .map(|s| s.action.clone())
            .collect();
        for id in pending {
            self.set(&id, StepStatus::Skipped, why, &[])?;
        }
        Ok(())
    }

    /// Undoes the completed actions, newest first, restoring the fleet file and the ledger.
    fn rollback(&mut self) -> Result<(), ApplyError> {
        self.skip_pending("not run: rolled back")?;
        for (a, before) in self.completed()?.into_iter().rev() {
            let after = self.after(&before, &a)?;
            let resuming = self.status(&a.id) == StepStatus::Reverting;
            if !resuming {
                self.set(&a.id, StepStatus::Reverting, "", &[])?;
            }
            match self.perform_inverse(&a, &before, &after, resuming)? {
                Ok(()) => self.set(&a.id, StepStatus::Reverted, "", &moves(&after, &before))?,
                Err(failure) => {
                    return Err(ApplyError::RollbackFailed {
                        path: self.journal.ledger.path.clone(),
                        id: a.id.clone(),
                        message: failure,
                    })
                }
            }
        }
        self.set_run(RunStatus::RolledBack)
    }

    fn report(self) -> Report {
        let mut steps = self.run.steps.clone();
        steps.sort_by_key(|s| s.seq.unwrap_or(i64::MAX));
        let fleet = Fleet::read(self.fleet_path).unwrap_or_else(|_| self.run.fleet_before.clone());
        Report {
            plan_id: self.run.plan.plan.id.clone(),
            status: self.run.status,
            resumed: self.resumed,
            steps: steps
                .iter()
                .map(|s| StepReport {
                    action: s.action.clone(),
                    status: s.status,
                    message: s.message.clone(),
                })
                .collect(),
            ledger: self.journal.ledger.path.clone(),
            fleet,
        }
    }
}

/// The credit movements (micro-credits) from `before` to `after`, by instance.
fn moves(before: &Fleet, after: &Fleet) -> Vec<(String, i64)> {
    let old: BTreeMap<&str, i64> = before
        .instances
        .iter()
        .map(|i| (i.id.as_str(), micro(i.credits)))
        .collect();
    after
        .instances
        .iter()
        .filter_map(|i| {
            let delta = micro(i.credits) - old.get(i.id.as_str()).copied().unwrap_or(0);
            (delta != 0).then(|| (i.id.clone(), delta))
        })
        .collect()
}
