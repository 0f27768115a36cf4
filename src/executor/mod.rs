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
pub mod journal;

pub use backend::BackendError;
pub use durable::{apply, Report, Request};

use crate::fleet::ledger::{from_micro, micro, LedgerError};
use crate::fleet::lock::LockError;
use crate::fleet::{Fleet, Instance, Pool};
use crate::named::named_enum;
use crate::plan::{Action, Change, Kind, PlanError, VerifiedPlan};
use crate::resource::Resource;
use crate::units::round6;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Tolerance for comparing allocations written with six decimals.
const EPS: f64 = 1e-6;

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

/// What an apply did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Action ids in the order they ran.
    pub applied: Vec<String>,
    /// Skipped action ids, with why.
    pub skipped: Vec<(String, String)>,
    /// The fleet state after the plan, with `last_plan` set to its id.
    pub fleet: Fleet,
}

enum StepError {
    /// The plan does not match the fleet: abort.
    Invalid(String),
    /// Not enough room yet: try another action first.
    NoRoom,
}

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

/// The scheduler's choice among pending actions.
enum Picked {
    /// `actions[k]` ran: the state is now the state after it.
    Run(usize),
    /// Nothing pending.
    Done,
    /// Ready actions exist but none fits yet, and nothing else can make room.
    Stuck,
    /// `actions[k]` does not match the fleet.
    Invalid(usize, String),
}

/// The executor's order: time after time, the first pending action in plan order whose
/// dependencies are finished and which keeps every host within capacity. An action found
/// waiting is set aside until what it waits for changes (its dependency finishing, or an
/// action changing a host it needs room on), so a pick looks only at actions that might
/// run: the order of scanning every pending action each time, without the scan, which
/// made a 77,000-action plan quadratic.
struct Schedule<'p> {
    actions: &'p [Action],
    /// Pending actions (indices into `actions`) that have not run.
    left: BTreeSet<usize>,
    /// Those of them that might run now.
    ready: BTreeSet<usize>,
    /// Per unfinished action id, the pending actions set aside until it finishes.
    after: HashMap<&'p str, Vec<usize>>,
    /// Per host id, the pending actions set aside until something changes there.
    room: HashMap<String, Vec<usize>>,
    finished: HashSet<&'p str>,
}

impl<'p> Schedule<'p> {
    /// `pending` are indices into `actions`; `finished` the ids of actions that count as
    /// done for their dependants (run, or skipped).
    fn new(
        actions: &'p [Action],
        pending: impl Iterator<Item = usize>,
        finished: impl Iterator<Item = &'p str>,
    ) -> Self {
        let left: BTreeSet<usize> = pending.collect();
        Schedule {
            actions,
            ready: left.clone(),
            left,
            after: HashMap::new(),
            room: HashMap::new(),
            finished: finished.collect(),
        }
    }

    /// Runs the next action in `state` (`step` changes the state only when it succeeds).
    fn next(&mut self, state: &mut Fleet, places: &Places, at: DateTime<Utc>) -> Picked {
        while let Some(k) = self.ready.pop_first() {
            // Set aside on two hosts, an action can be woken again after it ran.
            if !self.left.contains(&k) {
                continue;
            }
            let a = &self.actions[k];
            if let Some(d) = a
                .depends_on
                .iter()
                .find(|d| !self.finished.contains(d.as_str()))
            {
                self.after.entry(d.as_str()).or_default().push(k);
                continue;
            }
            // The hosts whose use the action changes, or on which it needs room: an
            // instance's own host (a migrant's alloc changes there) and a migration's target.
            let mut hosts: Vec<String> = Vec::with_capacity(2);
            if a.kind() == Kind::Pool {
                let pool = places.pools.get(&a.instance).map(|&p| &state.pools[p]);
                hosts.extend(pool.map(|p| p.host.clone()));
            } else {
                hosts.extend(places.instance(state, &a.instance).map(|i| i.host.clone()));
                hosts.extend(a.to_host().map(str::to_owned));
            }
            match step(state, places, a, at) {
                Ok(()) => {
                    self.left.remove(&k);
                    for h in &hosts {
                        self.ready.extend(self.room.remove(h).unwrap_or_default());
                    }
                    return Picked::Run(k);
                }
                Err(StepError::NoRoom) => {
                    for h in hosts {
                        self.room.entry(h).or_default().push(k);
                    }
                }
                Err(StepError::Invalid(message)) => {
                    self.ready.insert(k);
                    return Picked::Invalid(k, message);
                }
            }
        }
        if self.left.is_empty() {
            Picked::Done
        } else {
            Picked::Stuck
        }
    }

    /// Action `k` finished: the actions waiting for it may run.
    fn finish(&mut self, k: usize) {
        let id = self.actions[k].id.as_str();
        self.finished.insert(id);
        self.ready.extend(self.after.remove(id).unwrap_or_default());
    }

    /// The ids of the actions that have not run.
    fn left(&self) -> Vec<String> {
        self.left
            .iter()
            .map(|&k| self.actions[k].id.clone())
            .collect()
    }
}

/// Applies a verified plan to a copy of `fleet`, calling `observe` after every step.
pub fn execute(
    plan: &VerifiedPlan,
    fleet: &Fleet,
    path: &Path,
    observe: &mut dyn FnMut(&Fleet),
) -> Result<Outcome, ApplyError> {
    let stamp = plan.created_at();
    let plan = plan.plan();
    let skipped = skipped(&plan.actions);
    let skipped_ids: BTreeSet<&str> = skipped.iter().map(|(id, _)| id.as_str()).collect();
    let pending =
        (0..plan.actions.len()).filter(|&k| !skipped_ids.contains(plan.actions[k].id.as_str()));
    let mut schedule = Schedule::new(&plan.actions, pending, skipped_ids.iter().copied());
    let mut state = fleet.clone();
    let places = Places::of(fleet, &plan.actions);
    let mut applied: Vec<String> = Vec::new();
    loop {
        match schedule.next(&mut state, &places, stamp) {
            Picked::Done => break,
            Picked::Run(k) => {
                observe(&state);
                schedule.finish(k);
                applied.push(plan.actions[k].id.clone());
            }
            Picked::Invalid(k, message) => {
                return Err(ApplyError::Action {
                    path: path.to_owned(),
                    id: plan.actions[k].id.clone(),
                    message,
                })
            }
            Picked::Stuck => {
                return Err(ApplyError::Unorderable {
                    path: path.to_owned(),
                    ids: schedule.left(),
                });
            }
        }
    }
    state.last_plan = Some(plan.plan.id.clone());
    Ok(Outcome {
        applied,
        skipped,
        fleet: state,
    })
}

/// Actions marked `skip`, and every action that depends on a skipped one.
fn skipped(actions: &[Action]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        let before = out.len();
        for a in actions {
            if out.iter().any(|(id, _)| *id == a.id) {
                continue;
            }
            if a.skip {
                out.push((a.id.clone(), "skip = true".into()));
            } else if let Some(d) = a
                .depends_on
                .iter()
                .find(|d| out.iter().any(|(id, _)| id == *d))
            {
                out.push((a.id.clone(), format!("depends on skipped {d}")));
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Where each instance and pool sits in a fleet's lists, by id, and which of them can be
/// on each host while `actions` run: the residents plus the instances migrating there.
/// Actions change entries in place and never add or remove one, so one table serves a
/// whole run instead of a linear search per lookup (the first of duplicate ids wins, as a
/// search would find it).
struct Places {
    instances: HashMap<String, usize>,
    pools: HashMap<String, usize>,
    /// Per host id, in fleet order: instances that may be there, and its pools.
    hosts: HashMap<String, (Vec<usize>, Vec<usize>)>,
}

impl Places {
    fn of(fleet: &Fleet, actions: &[Action]) -> Places {
        let mut places = Places {
            instances: HashMap::with_capacity(fleet.instances.len()),
            pools: HashMap::with_capacity(fleet.pools.len()),
            hosts: HashMap::with_capacity(fleet.hosts.len()),
        };
        for (k, i) in fleet.instances.iter().enumerate() {
            places.instances.entry(i.id.clone()).or_insert(k);
            places.hosts.entry(i.host.clone()).or_default().0.push(k);
        }
        for (k, p) in fleet.pools.iter().enumerate() {
            places.pools.entry(p.id.clone()).or_insert(k);
            places.hosts.entry(p.host.clone()).or_default().1.push(k);
        }
        for a in actions {
            if let (Some(&k), Some(to)) = (places.instances.get(&a.instance), a.to_host()) {
                places.hosts.entry(to.to_owned()).or_default().0.push(k);
            }
        }
        for (instances, _) in places.hosts.values_mut() {
            instances.sort_unstable();
            instances.dedup();
        }
        places
    }

    /// What `host` uses of `r`: [`Fleet::used`], summed in the same order over the few
    /// entries that can be there.
    fn used_of(&self, fleet: &Fleet, host: &str, r: Resource) -> f64 {
        let Some((instances, pools)) = self.hosts.get(host) else {
            return 0.0;
        };
        let instances: f64 = instances
            .iter()
            .map(|&k| &fleet.instances[k])
            .filter(|i| i.host == host)
            .map(|i| i.resource(r).alloc)
            .sum();
        let pools: f64 = pools
            .iter()
            .map(|&k| f64::from(fleet.pools[k].warm) * fleet.pools[k].size()[r])
            .sum();
        instances + pools
    }

    fn instance<'f>(&self, fleet: &'f Fleet, id: &str) -> Option<&'f Instance> {
        self.instances.get(id).map(|&k| &fleet.instances[k])
    }

    fn instance_mut<'f>(&self, fleet: &'f mut Fleet, id: &str) -> Option<&'f mut Instance> {
        self.instances.get(id).map(|&k| &mut fleet.instances[k])
    }
}

/// What an action changes, as it was before: the instances it names (receiver and donor)
/// or its pool. [`step`] touches nothing else, so restoring this undoes the action; the
/// durable apply walks a rollback back through these instead of through copies of the fleet.
#[derive(Debug, Clone)]
struct Undo {
    instances: Vec<(usize, Instance)>,
    pools: Vec<(usize, Pool)>,
}

impl Undo {
    fn of(fleet: &Fleet, places: &Places, a: &Action) -> Undo {
        if a.kind() == Kind::Pool {
            let pools = places.pools.get(&a.instance).into_iter();
            return Undo {
                instances: Vec::new(),
                pools: pools.map(|&k| (k, fleet.pools[k].clone())).collect(),
            };
        }
        let ids = std::iter::once(a.instance.as_str()).chain(a.donor());
        let mut named: Vec<usize> = ids
            .filter_map(|id| places.instances.get(id).copied())
            .collect();
        named.sort_unstable();
        named.dedup();
        Undo {
            instances: named
                .into_iter()
                .map(|k| (k, fleet.instances[k].clone()))
                .collect(),
            pools: Vec::new(),
        }
    }

    /// Puts the recorded instances and pool back into `fleet`.
    fn restore(&self, fleet: &mut Fleet) {
        for (k, i) in &self.instances {
            fleet.instances[*k] = i.clone();
        }
        for (k, p) in &self.pools {
            fleet.pools[*k] = p.clone();
        }
    }

    /// Copies what the action changed from `from` into `to`.
    fn copy(&self, from: &Fleet, to: &mut Fleet) {
        for (k, _) in &self.instances {
            to.instances[*k] = from.instances[*k].clone();
        }
        for (k, _) in &self.pools {
            to.pools[*k] = from.pools[*k].clone();
        }
    }

    /// The credit movements (micro-credits) from the recorded state to `now`, by instance.
    fn moves(&self, now: &Fleet) -> Vec<(String, i64)> {
        self.instances
            .iter()
            .filter_map(|(k, was)| {
                let delta = micro(now.instances[*k].credits) - micro(was.credits);
                (delta != 0).then(|| (was.id.clone(), delta))
            })
            .collect()
    }
}

/// Applies one action to `fleet`, stamping the instances it changed with `at`.
fn step(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    at: DateTime<Utc>,
) -> Result<(), StepError> {
    match &a.change {
        &Change::Resize { resource, from, to } => resize(fleet, places, a, resource, from, to),
        &Change::Swap {
            ref donor,
            resource,
            from,
            amount,
            credits,
            ..
        } => swap(fleet, places, a, donor, resource, from, amount, credits),
        Change::Migrate {
            from_host, to_host, ..
        } => migrate(fleet, places, a, from_host, to_host),
        &Change::Pool { from, to } => pool(fleet, places, a, from, to),
    }?;
    stamp_changed(fleet, places, a, at);
    Ok(())
}

/// Starts or stops warm instances of a pool; starting needs room for all of them.
fn pool(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    from: f64,
    to: f64,
) -> Result<(), StepError> {
    let k = places.pools.get(&a.instance).copied();
    let p = k
        .map(|k| &fleet.pools[k])
        .ok_or_else(|| invalid(format!("unknown pool `{}`", a.instance)))?;
    let total = p.warm + p.cold;
    if (f64::from(p.warm) - from).abs() > EPS {
        return Err(invalid(format!(
            "pool `{}` has {} warm but the plan expects {from}",
            p.id, p.warm
        )));
    }
    if !(to.is_finite() && to >= 0.0 && to.fract() == 0.0 && to <= f64::from(total)) {
        return Err(invalid(format!(
            "pool `{}`: {to} warm is not a whole number in [0, {total}]",
            p.id
        )));
    }
    let to = to as u32;
    if to > p.warm {
        let (host, size, extra) = (p.host.clone(), p.size(), f64::from(to - p.warm));
        if !Resource::ALL
            .iter()
            .all(|&r| fits(fleet, places, &host, r, extra * size[r]))
        {
            return Err(StepError::NoRoom);
        }
    }
    let p = &mut fleet.pools[k.expect("checked")];
    (p.warm, p.cold) = (to, total - to);
    Ok(())
}

/// Records when the instances an action touched last changed (the optimiser's cool-down).
fn stamp_changed(fleet: &mut Fleet, places: &Places, a: &Action, at: DateTime<Utc>) {
    if a.kind() == Kind::Pool {
        return;
    }
    for id in std::iter::once(a.instance.as_str()).chain(a.donor()) {
        if let Some(inst) = places.instance_mut(fleet, id) {
            inst.changed_at = Some(at);
        }
    }
}

fn invalid(message: String) -> StepError {
    StepError::Invalid(message)
}

fn resize(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    r: Resource,
    from: f64,
    to: f64,
) -> Result<(), StepError> {
    let inst = places
        .instance(fleet, &a.instance)
        .ok_or_else(|| invalid(format!("unknown instance `{}`", a.instance)))?;
    let cur = inst.resource(r);
    if (cur.alloc - from).abs() > EPS {
        return Err(invalid(format!(
            "`{}` has {r} {} but the plan expects {from}",
            a.instance, cur.alloc
        )));
    }
    if !to.is_finite() || to < cur.min - EPS || to > cur.max + EPS {
        return Err(invalid(format!(
            "{r} {to} is outside [{}, {}] for `{}`",
            cur.min, cur.max, a.instance
        )));
    }
    let host = inst.host.clone();
    if to > from && !fits(fleet, places, &host, r, to - from) {
        return Err(StepError::NoRoom);
    }
    places
        .instance_mut(fleet, &a.instance)
        .expect("checked")
        .resource_mut(r)
        .alloc = to;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn swap(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    donor_id: &str,
    r: Resource,
    from: f64,
    amount: f64,
    credits: f64,
) -> Result<(), StepError> {
    let find = |id: &str| {
        places
            .instance(fleet, id)
            .ok_or_else(|| invalid(format!("unknown instance `{id}`")))
    };
    let (rec, don) = (find(&a.instance)?, find(donor_id)?);
    let checks = [
        (
            !(amount > 0.0 && amount.is_finite()),
            format!("amount {amount} must be a positive number"),
        ),
        (
            !(credits >= 0.0 && credits.is_finite()),
            format!("credits {credits} must be a number >= 0"),
        ),
        (
            rec.host != don.host,
            format!("`{}` and `{donor_id}` are on different hosts", a.instance),
        ),
        (
            (rec.resource(r).alloc - from).abs() > EPS,
            format!(
                "`{}` has {r} {} but the plan expects {from}",
                a.instance,
                rec.resource(r).alloc
            ),
        ),
        (
            rec.resource(r).alloc + amount > rec.resource(r).max + EPS,
            format!("`{}` would exceed its {r} max", a.instance),
        ),
        (
            don.resource(r).alloc - amount < don.resource(r).min - EPS,
            format!("`{donor_id}` would drop below its {r} min"),
        ),
        // The ledger's rule, in integer micro-credits: what passes here commits there.
        (
            micro(rec.credits) < micro(credits),
            format!(
                "`{}` has {} credits, cannot pay {credits}",
                a.instance, rec.credits
            ),
        ),
        (
            micro(don.credits).saturating_add(micro(credits)) > micro(don.credit_cap()),
            format!("`{donor_id}` would exceed its credit cap"),
        ),
    ];
    if let Some((_, message)) = checks.into_iter().find(|(bad, _)| *bad) {
        return Err(invalid(message));
    }
    let don = places.instance_mut(fleet, donor_id).expect("checked");
    don.resource_mut(r).alloc = round6(don.resource(r).alloc - amount);
    don.credits = from_micro(micro(don.credits).saturating_add(micro(credits)));
    let rec = places.instance_mut(fleet, &a.instance).expect("checked");
    rec.resource_mut(r).alloc = round6(rec.resource(r).alloc + amount);
    rec.credits = from_micro(micro(rec.credits).saturating_sub(micro(credits)));
    Ok(())
}

fn migrate(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    from: &str,
    to: &str,
) -> Result<(), StepError> {
    let inst = places
        .instance(fleet, &a.instance)
        .ok_or_else(|| invalid(format!("unknown instance `{}`", a.instance)))?;
    if inst.host != from {
        return Err(invalid(format!(
            "`{}` is on `{}`, not `{from}`",
            a.instance, inst.host
        )));
    }
    if fleet.host(to).is_none() {
        return Err(invalid(format!("unknown host `{to}`")));
    }
    let need = inst.clone();
    if !Resource::ALL
        .iter()
        .all(|&r| fits(fleet, places, to, r, need.resource(r).alloc))
    {
        return Err(StepError::NoRoom);
    }
    places
        .instance_mut(fleet, &a.instance)
        .expect("checked")
        .host = to.to_owned();
    Ok(())
}

/// Whether `extra` more of `r` fits on `host`.
fn fits(fleet: &Fleet, places: &Places, host: &str, r: Resource, extra: f64) -> bool {
    let cap = fleet.host(host).map_or(0.0, |h| h.capacity()[r]);
    places.used_of(fleet, host, r) + extra <= cap + EPS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{Allocation, Host};
    use crate::plan::Plan;

    /// The order `Schedule` stands for: each time, scan every pending action in plan order.
    fn scanned(actions: &[Action], fleet: &Fleet, at: DateTime<Utc>) -> Vec<usize> {
        let (mut state, places) = (fleet.clone(), Places::of(fleet, actions));
        let mut pending: Vec<usize> = (0..actions.len()).collect();
        let mut done: HashSet<&str> = HashSet::new();
        let mut order = Vec::new();
        'next: while !pending.is_empty() {
            for (j, &k) in pending.iter().enumerate() {
                let a = &actions[k];
                if a.depends_on.iter().all(|d| done.contains(d.as_str()))
                    && step(&mut state, &places, a, at).is_ok()
                {
                    order.push(k);
                    done.insert(a.id.as_str());
                    pending.remove(j);
                    continue 'next;
                }
            }
            break;
        }
        order
    }

    fn scheduled(actions: &[Action], fleet: &Fleet, at: DateTime<Utc>) -> Vec<usize> {
        let (mut state, places) = (fleet.clone(), Places::of(fleet, actions));
        let mut schedule = Schedule::new(actions, 0..actions.len(), std::iter::empty());
        let mut order = Vec::new();
        loop {
            match schedule.next(&mut state, &places, at) {
                Picked::Run(k) => {
                    schedule.finish(k);
                    order.push(k);
                }
                Picked::Invalid(k, m) => panic!("{k}: {m}"),
                Picked::Stuck => panic!("stuck"),
                Picked::Done => return order,
            }
        }
    }

    fn instance(id: &str, host: &str, cpu: f64) -> Instance {
        let fixed = |v| Allocation {
            alloc: v,
            min: v,
            max: v,
        };
        Instance {
            id: id.into(),
            host: host.into(),
            pool: None,
            credits: 0.0,
            earn_rate: 0.0,
            changed_at: None,
            cpu: Allocation {
                alloc: cpu,
                min: 1.0,
                max: 4.0,
            },
            mem: fixed(1024.0),
            net: fixed(10.0),
        }
    }

    fn action(id: &str, instance: &str, change: Change) -> Action {
        Action {
            id: id.into(),
            instance: instance.into(),
            change,
            reason: String::new(),
            depends_on: Vec::new(),
            skip: false,
        }
    }

    /// An action set aside for room wakes up when anything changes a host it needs room on
    /// or its instance's own host: here `c` fits on `h0` only once it shrank on `h1`, and a
    /// grow on a full host waits for a departure. The order is the full scan's.
    #[test]
    fn set_aside_actions_wake_when_their_hosts_change() {
        let host = |id: &str| Host {
            id: id.into(),
            cell: "c0".into(),
            cpu: 4.0,
            mem: 1e6,
            net: 1e6,
        };
        let fleet = Fleet {
            last_plan: None,
            hosts: vec![host("h0"), host("h1"), host("h2")],
            instances: vec![
                instance("a", "h0", 2.0),
                instance("c", "h1", 3.0),
                instance("d", "h2", 2.0),
                instance("e", "h2", 2.0),
            ],
            pools: Vec::new(),
        };
        let migrate = |id, inst: &str, from: &str, to: &str| {
            let change = Change::Migrate {
                from_host: from.into(),
                to_host: to.into(),
                bytes: 0,
            };
            action(id, inst, change)
        };
        let resize = |id, inst: &str, from, to| {
            let change = Change::Resize {
                resource: Resource::Cpu,
                from,
                to,
            };
            action(id, inst, change)
        };
        let actions = vec![
            migrate("move-c", "c", "h1", "h0"),
            resize("grow-d", "d", 2.0, 3.0),
            resize("shrink-c", "c", 3.0, 2.0),
            migrate("move-e", "e", "h2", "h1"),
        ];
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let order = scheduled(&actions, &fleet, at);
        assert_eq!(order, vec![2, 0, 3, 1]);
        assert_eq!(order, scanned(&actions, &fleet, at));
    }

    /// Each step of the fixture plan changes only what its `Undo` records, restoring the
    /// record gives back the fleet before it, and its credit movements are the whole
    /// fleet's: what the durable apply's journal and rollback rely on. Hosts' use read
    /// through `Places` equals a full scan's, bit for bit, migrations included.
    #[test]
    fn an_undo_record_holds_everything_a_step_changes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut fleet = Fleet::read(&root.join("fixtures/fleet.toml")).unwrap();
        let plan = Plan::read(&root.join("tests/golden/fixture.plan.toml")).unwrap();
        let at = DateTime::parse_from_rfc3339(&plan.plan.created_at)
            .unwrap()
            .with_timezone(&Utc);
        let places = Places::of(&fleet, &plan.actions);
        let mut schedule = Schedule::new(&plan.actions, 0..plan.actions.len(), std::iter::empty());
        let mut kinds = BTreeSet::new();
        for _ in 0..plan.actions.len() {
            let before = fleet.clone();
            let mut trial = fleet.clone();
            let Picked::Run(k) = schedule.next(&mut trial, &places, at) else {
                panic!("the fixture plan runs to the end");
            };
            schedule.finish(k);
            let a = &plan.actions[k];
            let undo = Undo::of(&fleet, &places, a);
            assert!(step(&mut fleet, &places, a, at).is_ok(), "{}", a.id);
            assert_eq!(fleet, trial, "{}", a.id);
            let mut restored = fleet.clone();
            undo.restore(&mut restored);
            assert_eq!(restored, before, "{}: restoring", a.id);
            let mut copied = before.clone();
            undo.copy(&fleet, &mut copied);
            assert_eq!(copied, fleet, "{}: changed outside the record", a.id);
            let all: Vec<(String, i64)> = before
                .instances
                .iter()
                .zip(&fleet.instances)
                .filter_map(|(b, f)| {
                    let delta = micro(f.credits) - micro(b.credits);
                    (delta != 0).then(|| (f.id.clone(), delta))
                })
                .collect();
            assert_eq!(undo.moves(&fleet), all, "{}: credit movements", a.id);
            for h in &fleet.hosts {
                for r in Resource::ALL {
                    let (fast, slow) = (places.used_of(&fleet, &h.id, r), fleet.used(&h.id)[r]);
                    assert_eq!(fast.to_bits(), slow.to_bits(), "{}: {} {r}", a.id, h.id);
                }
            }
            kinds.insert(a.kind().name());
        }
        assert!(matches!(
            schedule.next(&mut fleet.clone(), &places, at),
            Picked::Done
        ));
        let start = Fleet::read(&root.join("fixtures/fleet.toml")).unwrap();
        assert_eq!(
            scheduled(&plan.actions, &start, at),
            scanned(&plan.actions, &start, at)
        );
        assert_eq!(kinds.len(), 3, "{kinds:?}");
    }
}
