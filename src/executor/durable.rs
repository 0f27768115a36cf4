//! The durable apply: the in-memory executor's schedule, made real and crash-safe.
//!
//! Under the fleet lock, a plan is verified and dry-run in memory, then
//! journalled, then each action is journalled as started, applied through the
//! backend op by op and journalled as done with its credit movements. The
//! journal is the record of progress; the fleet file is a checkpoint, written
//! every so often and when the run ends. A crash anywhere leaves the journal
//! naming the one action in flight; `--resume` replays the journal, asks the
//! backend which of that action's ops took effect and finishes the rest, so no
//! op runs twice. A failed action skips its dependants and then stops the run
//! or rolls the completed part back, newest first.

use super::backend::BackendError;
use super::backend::{Backend, Context, Effect, Op, Spec};
use super::error::ApplyError;
use super::journal::OnFailure;
use super::journal::{Journal, Run, RunStatus, StepStatus};
use super::schedule::{execute, Picked, Schedule};
use super::step::{step, Places};
use super::undo::Undo;
use crate::file::FileError;
use crate::fleet::ledger::{Ledger, LedgerError};
use crate::fleet::lock::FleetLock;
use crate::fleet::Fleet;
use crate::plan::{Plan, PlanError};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `chameleon apply` was asked to do.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The plan; optional with `resume`.
    pub plan: Option<&'a Path>,
    /// The fleet state file the plan is applied to.
    pub fleet: &'a Path,
    /// The ledger database (default: next to the fleet file).
    pub ledger: Option<&'a Path>,
    /// Where changes are made real; a resume must name the backend the run began with.
    pub backend: &'a Spec,
    /// What to do with the completed actions when one fails.
    pub on_failure: OnFailure,
    /// Finish the interrupted run recorded in the journal (`--resume`).
    pub resume: bool,
    /// How long to wait for another apply or plan to release the fleet.
    pub wait: Duration,
    /// The time the plan's expiry is checked against and the journal is stamped with.
    pub now: DateTime<Utc>,
}

/// How one action ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// The action's id, as `a01`.
    pub action: String,
    /// Where it ended.
    pub status: StepStatus,
    /// Why it failed or was skipped; empty otherwise.
    pub message: String,
}

/// What a durable apply did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The id of the plan applied.
    pub plan_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Whether this finished an interrupted run.
    pub resumed: bool,
    /// Per action, in the order they ran, then those that did not run.
    pub steps: Vec<StepReport>,
    /// The ledger database the run was journalled in.
    pub ledger: PathBuf,
    /// The fleet state after the run, as written to the fleet file.
    pub fleet: Fleet,
}

/// Applies (or resumes) a plan durably; see the module header.
pub fn apply(req: &Request) -> Result<Report, ApplyError> {
    let _lock = FleetLock::acquire(req.fleet, req.wait)?;
    let ledger_path = req
        .ledger
        .map_or_else(|| Ledger::default_path(req.fleet), Path::to_owned);
    Ledger::check_pending(req.fleet, &ledger_path)?;
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
            backend.check(&ops_of(&run.plan, &run.fleet_before))?;
            return Driver::new(journal, backend.as_mut(), req.fleet, run, true)?.drive();
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
                        status: status.name(),
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
    backend.check(&ops_of(verified.plan(), &fleet))?;
    let mut ledger = Ledger::open(&ledger_path)?;
    let mut journal = Journal {
        ledger: &mut ledger,
        at,
    };
    journal.ledger.seed(&fleet, &journal.at.clone())?;
    journal.ledger.check_fleet(&fleet, req.fleet)?;
    journal.ledger.mark_pending(req.fleet)?;
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
    Driver::new(journal, backend.as_mut(), req.fleet, run, false)?.drive()
}

/// The ops of every action `plan` may run (or undo) from `fleet`, for the backend to check.
fn ops_of(plan: &Plan, fleet: &Fleet) -> Vec<Op> {
    let places = Places::of(fleet, &plan.actions);
    plan.actions
        .iter()
        .filter(|a| !a.skip)
        .flat_map(|a| Op::of(a, fleet, &places))
        .collect()
}

/// Fault injection for the crash tests, compiled only with the `fault-injection` feature,
/// so a shipped binary has no way to be killed or slowed from outside. Only the
/// `chameleon-faults` test binary sets it.
#[cfg(feature = "fault-injection")]
pub mod faults {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    static CRASH_AFTER: AtomicU64 = AtomicU64::new(0);
    static BOUNDARIES: AtomicU64 = AtomicU64::new(0);
    static CHECKPOINT_EVERY: AtomicUsize = AtomicUsize::new(0);

    /// Kill the process with SIGKILL at its `crash_after`-th durable boundary (journal
    /// commit, backend op, fleet write), and write the fleet every `checkpoint_every`
    /// actions instead of the size-based default.
    pub fn set(crash_after: Option<u64>, checkpoint_every: Option<usize>) {
        CRASH_AFTER.store(crash_after.unwrap_or(0), Ordering::SeqCst);
        CHECKPOINT_EVERY.store(checkpoint_every.unwrap_or(0), Ordering::SeqCst);
    }

    pub(super) fn crash_point() {
        let n = CRASH_AFTER.load(Ordering::SeqCst);
        if n != 0 && BOUNDARIES.fetch_add(1, Ordering::SeqCst) + 1 == n {
            // SAFETY: kill(2) on our own pid; no memory is involved.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }

    pub(super) fn checkpoint_every() -> Option<usize> {
        Some(CHECKPOINT_EVERY.load(Ordering::SeqCst)).filter(|&n| n > 0)
    }
}

/// A durable boundary, where the crash tests may kill the process.
fn crash_point() {
    #[cfg(feature = "fault-injection")]
    faults::crash_point();
}

/// How many actions may complete between two writes of the fleet file. The journal alone
/// records progress in between: a write serialises the whole fleet (2.4 MB at 10,000
/// instances), and writing it after every action made an apply quadratic in fleet size.
/// Spaced by fleet size, the writes add up to a few fleets' worth however long the plan.
fn checkpoint_every(fleet: &Fleet) -> usize {
    #[cfg(feature = "fault-injection")]
    if let Some(n) = faults::checkpoint_every() {
        return n;
    }
    (fleet.instances.len() / 8).max(256)
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
    /// The fleet with every completed action in effect: what the backend holds.
    state: Fleet,
    places: Places,
    /// The completed actions (done, or being reverted) in the order they ran, with what
    /// each changed.
    undo: Vec<(usize, Undo)>,
    /// The fleet file's text as last read or written: nobody else may change it meanwhile.
    on_disk: String,
    /// Actions completed or reverted since the fleet file last caught up with `state`.
    unwritten: usize,
    /// Write the fleet file when `unwritten` reaches this.
    checkpoint: usize,
    /// The sequence number the next started action gets.
    seq: i64,
}

/// Why an action failed, for the journal.
type Failure = String;

impl<'a, 'j> Driver<'a, 'j> {
    /// Rebuilds the fleet state from the journal: `fleet_before` with the completed actions
    /// replayed in the order they ran. On resume, the fleet file must hold one of the states
    /// the run passed through (a checkpoint), or it was changed behind the lock's back.
    fn new(
        journal: Journal<'j>,
        backend: &'a mut dyn Backend,
        fleet_path: &'a Path,
        run: Run,
        resumed: bool,
    ) -> Result<Self, ApplyError> {
        let index: HashMap<String, usize> = run
            .steps
            .iter()
            .enumerate()
            .map(|(k, s)| (s.action.clone(), k))
            .collect();
        // The plan was verified before it was journalled, and the journal is checked on read.
        let at = DateTime::parse_from_rfc3339(&run.plan.plan.created_at)
            .map_or(DateTime::<Utc>::UNIX_EPOCH, |t| t.with_timezone(&Utc));
        let on_disk = std::fs::read_to_string(fleet_path)
            .map_err(|source| FileError::io(fleet_path, source))?;
        let disk = resumed
            .then(|| Fleet::parse(fleet_path, &on_disk))
            .transpose()?;
        // Reverted actions ran after the completed ones (a rollback goes newest first), so
        // every state the run passed through is `fleet_before` plus a prefix of `history`.
        let mut history: Vec<(i64, usize, StepStatus)> = run
            .steps
            .iter()
            .enumerate()
            .filter_map(|(k, s)| Some((s.seq?, k, s.status)))
            .filter(|(_, _, status)| {
                matches!(
                    status,
                    StepStatus::Done | StepStatus::Reverting | StepStatus::Reverted
                )
            })
            .collect();
        history.sort_unstable_by_key(|&(seq, k, _)| (seq, k));
        let completed = history
            .iter()
            .take_while(|(_, _, status)| *status != StepStatus::Reverted)
            .count();
        if history[completed..]
            .iter()
            .any(|(_, _, status)| *status != StepStatus::Reverted)
        {
            return Err(LedgerError::Corrupt {
                path: journal.ledger.path.clone(),
                message: format!(
                    "run {}: a reverted action is older than a completed one",
                    run.id
                ),
            }
            .into());
        }
        let plan_id = run.plan.plan.id.clone();
        let holds = |state: &Fleet| {
            disk.as_ref().is_some_and(|d| {
                (d.last_plan == state.last_plan || d.last_plan.as_ref() == Some(&plan_id))
                    && d.hosts == state.hosts
                    && d.instances == state.instances
                    && d.pools == state.pools
            })
        };
        let replay_error = |k: usize| ApplyError::Action {
            path: journal.ledger.path.clone(),
            id: run.plan.actions[k].id.clone(),
            message: "the journal's record no longer replays on the fleet it started from".into(),
        };
        let mut state = run.fleet_before.clone();
        let places = Places::of(&state, &run.plan.actions);
        let mut undo = Vec::with_capacity(completed);
        let mut matched = holds(&state);
        for &(_, k, _) in &history[..completed] {
            let a = &run.plan.actions[k];
            undo.push((k, Undo::of(&state, &places, a)));
            step(&mut state, &places, a, at).map_err(|_| replay_error(k))?;
            matched = matched || holds(&state);
        }
        let current = disk.is_none() || holds(&state);
        if !matched && !history[completed..].is_empty() {
            let mut later = state.clone();
            for &(_, k, _) in &history[completed..] {
                step(&mut later, &places, &run.plan.actions[k], at).map_err(|_| replay_error(k))?;
                matched = matched || holds(&later);
            }
        }
        if disk.is_some() && !matched {
            return Err(ApplyError::Changed {
                path: fleet_path.to_owned(),
            });
        }
        let seq = run.steps.iter().filter_map(|s| s.seq).max().unwrap_or(0) + 1;
        Ok(Driver {
            journal,
            backend,
            fleet_path,
            run,
            index,
            resumed,
            at,
            checkpoint: checkpoint_every(&state),
            state,
            places,
            undo,
            on_disk,
            unwritten: usize::from(!current),
            seq,
        })
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
        if status == StepStatus::Started {
            self.journal.start_step(self.run.id, id, self.seq)?;
        } else {
            self.journal
                .set_step(self.run.id, id, status, message, moves)?;
        }
        crash_point();
        let step = &mut self.run.steps[self.index[id]];
        step.status = status;
        step.message = message.to_owned();
        if status == StepStatus::Started {
            step.seq = Some(self.seq);
            self.seq += 1;
        }
        Ok(())
    }

    /// Moves many steps without credit movements to `status`, in one journal commit.
    fn set_all(
        &mut self,
        ids: &[String],
        status: StepStatus,
        message: &str,
    ) -> Result<(), ApplyError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.journal.set_steps(self.run.id, ids, status, message)?;
        crash_point();
        for id in ids {
            let step = &mut self.run.steps[self.index[id]];
            step.status = status;
            step.message = message.to_owned();
        }
        Ok(())
    }

    fn set_run(&mut self, status: RunStatus) -> Result<(), ApplyError> {
        self.journal.set_run(self.run.id, status)?;
        crash_point();
        self.run.status = status;
        Ok(())
    }

    /// Writes `state` to the fleet file, which must still hold what was last read or written.
    fn write(&mut self) -> Result<(), ApplyError> {
        let io = |source| FileError::io(self.fleet_path, source);
        if std::fs::read_to_string(self.fleet_path).map_err(io)? != self.on_disk {
            return Err(ApplyError::Changed {
                path: self.fleet_path.to_owned(),
            });
        }
        let text = self.state.to_toml();
        crate::file::write_atomic(self.fleet_path, text.as_bytes()).map_err(io)?;
        crash_point();
        self.on_disk = text;
        self.unwritten = 0;
        Ok(())
    }

    /// Counts one more action completed or reverted, writing a checkpoint every so often.
    fn progressed(&mut self) -> Result<(), ApplyError> {
        self.unwritten += 1;
        if self.unwritten >= self.checkpoint {
            self.write()?;
        }
        Ok(())
    }

    fn drive(mut self) -> Result<Report, ApplyError> {
        if self.run.status == RunStatus::Running {
            self.forward()?;
        }
        if self.run.status == RunStatus::RollingBack {
            self.rollback()?;
        }
        Ledger::clear_pending(self.fleet_path)?;
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
        // The schedule tries actions on this copy; it is kept equal to `state` after every
        // action. It holds its own copy of the actions, as `self` changes meanwhile.
        let mut trial = self.state.clone();
        let actions = self.run.plan.actions.clone();
        let status = |k: usize| self.run.steps[k].status;
        let pending = (0..actions.len()).filter(|&k| status(k) == StepStatus::Pending);
        let finished = (0..actions.len())
            .filter(|&k| matches!(status(k), StepStatus::Done | StepStatus::Skipped))
            .map(|k| actions[k].id.as_str());
        let mut schedule = Schedule::new(&actions, pending, finished);
        let mut started = self
            .run
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Started)
            .map(|s| s.action.clone());
        loop {
            let (id, resuming) = match started.take() {
                Some(id) => (id, true),
                None => match schedule.next(&mut trial, &self.places, self.at) {
                    Picked::Run(k) => {
                        let id = actions[k].id.clone();
                        self.set(&id, StepStatus::Started, "", &[])?;
                        (id, false)
                    }
                    Picked::Done => break,
                    // The dry run rules both out; should the fleet disagree even so, the
                    // run ends here rather than stay running for every resume to repeat.
                    Picked::Invalid(k, message) => {
                        let id = actions[k].id.clone();
                        self.set(&id, StepStatus::Started, "", &[])?;
                        self.set(&id, StepStatus::Failed, &message, &[])?;
                        return self.fail(&id);
                    }
                    Picked::Stuck => {
                        return self.halt(&format!(
                            "not run: actions {} cannot run without exceeding a host's capacity",
                            schedule.left().join(", ")
                        ));
                    }
                },
            };
            let k = self.index[&id];
            let a = self.run.plan.actions[k].clone();
            let undo = Undo::of(&self.state, &self.places, &a);
            let ops = Op::of(&a, &self.state, &self.places);
            step(&mut self.state, &self.places, &a, self.at).map_err(|_| ApplyError::Action {
                path: self.journal.ledger.path.clone(),
                id: id.clone(),
                message: "the journal's record no longer replays on the fleet it started from"
                    .into(),
            })?;
            let outcome = match self.run_ops(&id, &ops, resuming) {
                Ok(()) => self.commit_done(&id, &ops, &undo.moves(&self.state))?,
                Err(failure) => Err(failure),
            };
            match outcome {
                Ok(()) => {
                    undo.copy(&self.state, &mut trial);
                    self.undo.push((k, undo));
                    schedule.finish(k);
                    self.progressed()?;
                }
                Err(failure) => {
                    undo.restore(&mut self.state);
                    undo.copy(&self.state, &mut trial);
                    self.set(&id, StepStatus::Failed, &failure, &[])?;
                    return self.fail(&id);
                }
            }
        }
        self.state.last_plan = Some(self.run.plan.plan.id.clone());
        self.write()?;
        self.set_run(RunStatus::Applied)
    }

    /// Applies ops in order (on resume, only those not yet in effect); on a failure, undoes
    /// the ones applied and returns the action's failure.
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
                    Ok(Effect::Unknown(why)) => Err(BackendError::Failed(format!(
                        "in doubt after a crash: {why}"
                    ))),
                    Err(e) => Err(e),
                }
            } else {
                self.backend.apply(op, cx)
            };
            crash_point();
            if let Err(e) = result {
                // A command can fail (or time out) after making its change: ask the
                // backend, as a resume does, and undo the op too if it took effect.
                let (took, doubt) = match self.backend.observe(op, cx) {
                    Ok(Effect::Applied) => (k + 1, String::new()),
                    Ok(Effect::NotApplied) => (k, String::new()),
                    Ok(Effect::Unknown(why)) => {
                        (k, format!("; whether it took effect is in doubt: {why}"))
                    }
                    Err(why) => (k, format!("; whether it took effect is in doubt: {why}")),
                };
                return Err(self.undo_ops(action, &ops[..took], format!("{e}{doubt}")));
            }
        }
        Ok(())
    }

    /// Journals action `id` as done with its credit movements. A movement the ledger refuses
    /// (a rule the dry run missed) would be refused on every resume: the ops are undone and
    /// the action's failure returned instead.
    fn commit_done(
        &mut self,
        id: &str,
        ops: &[Op],
        moves: &[(String, i64)],
    ) -> Result<Result<(), Failure>, ApplyError> {
        match self.set(id, StepStatus::Done, "", moves) {
            Ok(()) => Ok(Ok(())),
            Err(ApplyError::Ledger(e @ LedgerError::Invariant { .. })) => {
                Ok(Err(self.undo_ops(id, ops, e.to_string())))
            }
            Err(e) => Err(e),
        }
    }

    /// Undoes `ops` (all in effect), newest first; `failure` with what could not be undone.
    fn undo_ops(&mut self, action: &str, ops: &[Op], mut failure: Failure) -> Failure {
        let plan = self.run.plan.plan.id.clone();
        let cx = Context {
            plan: &plan,
            action,
        };
        for done in ops.iter().rev() {
            if let Err(undo) = self.backend.apply(&done.inverse(), cx) {
                failure +=
                    &format!("; undoing it also failed, the backend may be inconsistent: {undo}");
            }
        }
        failure
    }

    /// After `failed` failed: skips its dependants, then stops (the fleet file keeping the
    /// completed part) or starts the rollback.
    fn fail(&mut self, failed: &str) -> Result<(), ApplyError> {
        let mut blocked: HashSet<String> = HashSet::from([failed.to_owned()]);
        loop {
            let dependants: Vec<String> = self
                .run
                .plan
                .actions
                .iter()
                .zip(&self.run.steps)
                .filter(|(a, s)| {
                    s.status == StepStatus::Pending
                        && a.depends_on.iter().any(|d| blocked.contains(d))
                })
                .map(|(a, _)| a.id.clone())
                .collect();
            if dependants.is_empty() {
                break;
            }
            let why = format!("depends on failed {failed}");
            self.set_all(&dependants, StepStatus::Skipped, &why)?;
            blocked.extend(dependants);
        }
        let verb = match self.run.on_failure {
            OnFailure::Stop => "stopped",
            OnFailure::Rollback => "rolled back",
        };
        self.halt(&format!("not run: {verb} after {failed} failed"))
    }

    /// Skips what is pending, then stops (the fleet file keeping the completed part) or
    /// starts the rollback.
    fn halt(&mut self, why: &str) -> Result<(), ApplyError> {
        let status = match self.run.on_failure {
            OnFailure::Stop => RunStatus::Stopped,
            OnFailure::Rollback => RunStatus::RollingBack,
        };
        self.skip_pending(why)?;
        if status == RunStatus::Stopped && self.unwritten > 0 {
            self.write()?;
        }
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
        self.set_all(&pending, StepStatus::Skipped, why)
    }

    /// Undoes the completed actions, newest first, restoring the fleet file and the ledger.
    fn rollback(&mut self) -> Result<(), ApplyError> {
        self.skip_pending("not run: rolled back")?;
        while let Some((k, undo)) = self.undo.pop() {
            let a = self.run.plan.actions[k].clone();
            let resuming = self.status(&a.id) == StepStatus::Reverting;
            if !resuming {
                self.set(&a.id, StepStatus::Reverting, "", &[])?;
            }
            let after = Undo::of(&self.state, &self.places, &a);
            undo.restore(&mut self.state);
            let ops: Vec<Op> = Op::of(&a, &self.state, &self.places)
                .iter()
                .rev()
                .map(Op::inverse)
                .collect();
            match self.run_ops(&a.id, &ops, resuming) {
                Ok(()) => {
                    self.set(&a.id, StepStatus::Reverted, "", &after.moves(&self.state))?;
                    self.progressed()?;
                }
                Err(failure) => {
                    after.restore(&mut self.state);
                    self.undo.push((k, undo));
                    // The fleet file shows what is in effect for whoever fixes the backend.
                    if self.unwritten > 0 {
                        self.write()?;
                    }
                    return Err(ApplyError::RollbackFailed {
                        path: self.journal.ledger.path.clone(),
                        id: a.id.clone(),
                        message: failure,
                    });
                }
            }
        }
        if self.unwritten > 0 {
            self.write()?;
        }
        self.set_run(RunStatus::RolledBack)
    }

    fn report(self) -> Report {
        let mut steps = self.run.steps.clone();
        steps.sort_by_key(|s| s.seq.unwrap_or(i64::MAX));
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
            fleet: self.state,
        }
    }
}
