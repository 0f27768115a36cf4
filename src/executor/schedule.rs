//! The executor's order, in memory: dependency order, and among the ready actions only one
//! that keeps every host within capacity, so no intermediate state overcommits a host.
//! [`execute`] is what `replay` and the property tests use; the durable apply runs the
//! same [`Schedule`] through a backend.

use super::error::ApplyError;
use super::step::{step, Places, StepError};
use crate::fleet::Fleet;
use crate::plan::{Action, Kind, VerifiedPlan};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

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

/// The scheduler's choice among pending actions.
pub(super) enum Picked {
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
pub(super) struct Schedule<'p> {
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
    pub(super) fn new(
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
    pub(super) fn next(&mut self, state: &mut Fleet, places: &Places, at: DateTime<Utc>) -> Picked {
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
    pub(super) fn finish(&mut self, k: usize) {
        let id = self.actions[k].id.as_str();
        self.finished.insert(id);
        self.ready.extend(self.after.remove(id).unwrap_or_default());
    }

    /// The ids of the actions that have not run.
    pub(super) fn left(&self) -> Vec<String> {
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
pub(super) fn skipped(actions: &[Action]) -> Vec<(String, String)> {
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

#[cfg(test)]
mod tests {
    use super::super::undo::Undo;
    use super::*;
    use crate::fleet::ledger::micro;
    use crate::fleet::Instance;
    use crate::fleet::{Allocation, Host};
    use crate::plan::Change;
    use crate::plan::Plan;
    use crate::resource::Resource;

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
