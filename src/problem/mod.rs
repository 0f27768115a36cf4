//! One planning problem: the fleet, what each instance is predicted to need, and the costs.
//!
//! Both strategies (the MIP and the greedy baseline) read a [`Problem`] and
//! return a [`Solution`]; [`Problem::assess`] prices any solution with the one
//! objective, so the two are compared on exactly the same terms.

mod candidates;
mod cost;

pub use cost::Assessment;

use crate::fleet::Fleet;
use crate::forecast::Forecasts;
use crate::policy::Policy;
use crate::resource::{PerResource, Resource};
use crate::units::round6;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashMap};

/// A host as the optimiser sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// The host's id in the fleet file.
    pub id: String,
    /// Its cell: a migration to another cell costs `cross_cell_factor` times more.
    pub cell: String,
    /// Capacity per resource, in cores, MiB and Mbps.
    pub capacity: PerResource<f64>,
}

/// An instance as the optimiser sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// The instance's id in the fleet file.
    pub id: String,
    /// Index of the current host.
    pub host: usize,
    /// Allocation now, per resource (cores, MiB, Mbps).
    pub current: PerResource<f64>,
    /// The least allocation allowed per resource, from the fleet file.
    pub min: PerResource<f64>,
    /// The largest allocation allowed per resource, from the fleet file.
    pub max: PerResource<f64>,
    /// The forecast quantile of demand (with look-ahead, of the first interval's slice of the
    /// horizon), or `None` where there is no telemetry (kept as is).
    pub demand: PerResource<Option<f64>>,
    /// Its recent high usage (see `[forecast] shrink_floor_hours`): never shrunk below it.
    pub floor: PerResource<f64>,
    /// Its peak over the last season and horizon with `[forecast] evidence_margin`, if known,
    /// in whole steps plus the hysteresis minimum less one: allocation above it and the demand
    /// is charged as idle for that long again ([`Problem::unused_cost`]).
    pub ceiling: PerResource<Option<f64>>,
    /// Burst-credit balance now (1 credit = 1 vCPU-minute at 100%).
    pub credits: f64,
    /// The most credits it may hold: 24 h of `earn_rate`.
    pub credit_cap: f64,
    /// Credits earned per hour at the baseline, which is `earn_rate / 60` cores.
    pub earn_rate: f64,
    /// In its cool-down and not short: nothing about it may change this interval.
    pub frozen: bool,
    /// In its cool-down and short in another resource: these resources stay as they are
    /// this interval (the short ones may resize, and it may migrate).
    pub held: PerResource<bool>,
    /// Minutes of cool-down left (0: none), for the later intervals of a look-ahead.
    pub cooling: u32,
    /// Look-ahead: the forecast of each later interval (empty without look-ahead).
    pub ahead: Vec<PerResource<Option<f64>>>,
    /// Other hosts it may migrate to, best first.
    pub candidates: Vec<usize>,
}

impl InstanceSpec {
    /// The least allocation a shrink may leave in `r`: its forecast, or its recent high usage
    /// if higher. `None` without a forecast.
    pub fn keep(&self, r: Resource) -> Option<f64> {
        self.demand[r].map(|d| d.max(self.floor[r]))
    }

    /// How much its forecast exceeds its allocation in `r` (0 without a forecast).
    pub fn want(&self, r: Resource) -> f64 {
        self.demand[r].map_or(0.0, |d| (d - self.current[r]).max(0.0))
    }

    /// Whether resource `r` may change: it has a forecast, room to move and no cool-down.
    pub fn adjustable(&self, r: Resource) -> bool {
        !self.frozen && !self.held[r] && self.demand[r].is_some() && self.max[r] > self.min[r]
    }
}

/// A pool of warm and cold spare instances as the optimiser sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    /// The pool's id in the fleet file.
    pub id: String,
    /// Index of its host.
    pub host: usize,
    /// What one warm instance uses.
    pub size: PerResource<f64>,
    /// Warm instances now.
    pub warm: u32,
    /// Warm plus cold instances: the most that can be warm.
    pub total: u32,
    /// How many should be warm, from the profiler; `None` keeps the count as it is.
    pub target: Option<u32>,
}

/// The planning problem: this interval, and with look-ahead the ones after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Every host, in fleet file order; instances and pools refer to them by index.
    pub hosts: Vec<HostSpec>,
    /// Every instance, in fleet file order; a [`Solution`] is indexed the same way.
    pub instances: Vec<InstanceSpec>,
    /// Every pool of spare instances, in fleet file order.
    pub pools: Vec<PoolSpec>,
    /// The planning model file: granularity, cost units, weights, budgets, solver limits.
    pub policy: Policy,
}

/// A donor gives `amount` of `resource` to a receiver on the same host, which pays `credits`.
#[derive(Debug, Clone, PartialEq)]
pub struct Swap {
    /// Index of the instance that gives.
    pub donor: usize,
    /// Index of the instance that takes, and pays.
    pub receiver: usize,
    /// The resource moved.
    pub resource: Resource,
    /// How much moves, in the resource's units (cores, MiB, Mbps).
    pub amount: f64,
    /// Credits the receiver pays the donor: `credit_price` per cost unit and hour.
    pub credits: f64,
}

/// A strategy's answer: every instance's new allocation and host, the swaps behind them,
/// and every pool's warm count.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// New allocation of each instance (by problem index), in cores, MiB and Mbps.
    pub alloc: Vec<PerResource<f64>>,
    /// New host index of each instance; a host other than its current one is a migration.
    pub host: Vec<usize>,
    /// The donor → receiver swaps that pay for the new allocations.
    pub swaps: Vec<Swap>,
    /// New warm count of each pool (by problem index).
    pub warm: Vec<u32>,
    /// Look-ahead: the allocations planned for each later interval (not emitted). Empty
    /// means held: every later interval keeps `alloc`.
    pub ahead: Vec<Vec<PerResource<f64>>>,
}

impl Solution {
    /// Instance `i`'s allocation in later interval `t` (0 is the one after the first).
    pub fn later(&self, t: usize, i: usize) -> PerResource<f64> {
        self.ahead.get(t).map_or(self.alloc[i], |a| a[i])
    }
}

impl Problem {
    /// Builds the problem from the fleet, the forecasts and the planning model.
    /// With look-ahead, the first interval is provisioned for its own slice of the horizon
    /// and each later one for its slice ([`Demand::by_interval`](crate::forecast::Demand::by_interval)).
    pub fn new(fleet: &Fleet, forecasts: &Forecasts, policy: &Policy) -> Problem {
        // Evidence beats forecasts: usage just seen above the allocation is planned for.
        let margin = 1.0 + policy.forecast.evidence_margin;
        let alloc: HashMap<&str, &crate::fleet::Instance> =
            fleet.instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut p = Self::with_demand(fleet, policy, |id, r| {
            let quantile = forecasts.get(id, r).map(|d| d.quantile)?;
            let key = (id.to_owned(), r);
            Some(match forecasts.peaks.get(&key) {
                Some(&peak) if alloc.get(id).is_some_and(|i| peak > i.resource(r).alloc) => {
                    quantile.max(peak * margin)
                }
                _ => quantile,
            })
        });
        p.set_usage_bounds(forecasts);
        let n = policy.lookahead_intervals.max(1) as usize;
        let seconds = i64::from(policy.interval_minutes) * 60;
        for inst in &mut p.instances {
            if n > 1 {
                let slices = PerResource::from_fn(|r| {
                    forecasts
                        .get(&inst.id, r)
                        .map(|d| d.by_interval(seconds, n))
                });
                let mut each: Vec<PerResource<Option<f64>>> = (0..n)
                    .map(|t| PerResource::from_fn(|r| slices[r].as_ref().map(|v| v[t])))
                    .collect();
                inst.ahead = each.split_off(1);
                inst.demand = each[0];
            }
        }
        if n > 1 {
            p.choose_candidates();
        }
        p
    }

    /// Sets each instance's shrink floor and idle ceiling from its recent usage. The ceiling
    /// is rounded up to a whole step and raised by the hysteresis minimum less one step, so
    /// an allocation rounded up to cover the peak, or within the minimum shrink of it, is
    /// not charged as unused.
    pub fn set_usage_bounds(&mut self, forecasts: &Forecasts) {
        let policy = &self.policy;
        for inst in &mut self.instances {
            let key = |r| (inst.id.clone(), r);
            inst.floor =
                PerResource::from_fn(|r| forecasts.floors.get(&key(r)).copied().unwrap_or(0.0));
            inst.ceiling = PerResource::from_fn(|r| {
                let (c, g) = (*forecasts.ceilings.get(&key(r))?, policy.granularity[r]);
                Some(((c / g - 1e-9).ceil() + policy.min_steps(r) - 1.0) * g)
            });
        }
    }

    /// Builds the problem with demand from any source (forecasts, or realised demand for replay).
    pub fn with_demand(
        fleet: &Fleet,
        policy: &Policy,
        demand: impl Fn(&str, Resource) -> Option<f64>,
    ) -> Problem {
        let hosts: Vec<HostSpec> = fleet
            .hosts
            .iter()
            .map(|h| HostSpec {
                id: h.id.clone(),
                cell: h.cell.clone(),
                capacity: h.capacity(),
            })
            .collect();
        let host_index: HashMap<&str, usize> = hosts
            .iter()
            .enumerate()
            .map(|(k, h)| (h.id.as_str(), k))
            .collect();
        let instances = fleet
            .instances
            .iter()
            .map(|i| InstanceSpec {
                id: i.id.clone(),
                host: host_index[i.host.as_str()],
                current: PerResource::from_fn(|r| i.resource(r).alloc),
                min: PerResource::from_fn(|r| i.resource(r).min),
                max: PerResource::from_fn(|r| i.resource(r).max),
                demand: PerResource::from_fn(|r| demand(&i.id, r)),
                floor: PerResource::default(),
                ceiling: Default::default(),
                credits: i.credits,
                credit_cap: i.credit_cap(),
                earn_rate: i.earn_rate,
                frozen: false,
                held: Default::default(),
                cooling: 0,
                ahead: Vec::new(),
                candidates: Vec::new(),
            })
            .collect();
        let pools = fleet
            .pools
            .iter()
            .map(|p| PoolSpec {
                id: p.id.clone(),
                host: host_index[p.host.as_str()],
                size: p.size(),
                warm: p.warm,
                total: p.warm + p.cold,
                target: None,
            })
            .collect();
        let mut problem = Problem {
            hosts,
            instances,
            pools,
            policy: policy.clone(),
        };
        problem.choose_candidates();
        problem
    }

    /// Freezes the instances a plan changed less than `cooldown_minutes` before `now`, unless
    /// their forecast exceeds their allocation in some resource (shortfall overrides
    /// hysteresis); then only the short resources may resize, the others stay as they are.
    pub fn apply_cooldown(&mut self, fleet: &Fleet, now: DateTime<Utc>) {
        let cooldown = Duration::minutes(i64::from(self.policy.disruption.cooldown_minutes));
        for (spec, inst) in self.instances.iter_mut().zip(&fleet.instances) {
            let left = inst
                .changed_at
                .map_or(Duration::zero(), |t| cooldown - (now - t));
            let recent = left > Duration::zero();
            if recent {
                let minutes = (left.num_seconds() + 59) / 60;
                spec.cooling = u32::try_from(minutes).unwrap_or(u32::MAX);
            }
            if !recent {
                continue;
            }
            let short = PerResource::from_fn(|r| {
                spec.demand[r].is_some_and(|d| d > spec.current[r] + 1e-9)
            });
            if Resource::ALL.iter().any(|&r| short[r]) {
                spec.held = PerResource::from_fn(|r| !short[r]);
            } else {
                spec.frozen = true;
                spec.candidates.clear();
            }
        }
    }

    /// Sets the profiler's warm-count targets (by pool id); reading them refuses any above a
    /// pool's size, and the clamp here only keeps a library caller within it.
    pub fn set_pool_targets(&mut self, targets: &BTreeMap<String, u32>) {
        for pool in &mut self.pools {
            pool.target = targets.get(&pool.id).map(|&t| t.min(pool.total));
        }
    }

    /// Per host and resource, what warm pool instances use now.
    pub fn pool_use(&self) -> Vec<PerResource<f64>> {
        let mut used = vec![PerResource::<f64>::default(); self.hosts.len()];
        for pool in &self.pools {
            for r in Resource::ALL {
                used[pool.host][r] += f64::from(pool.warm) * pool.size[r];
            }
        }
        used
    }

    /// Per host and resource, whether its residents' predicted shortfall (at the highest
    /// demand of any planned interval) exceeds its free room. There a one-step shrink is what
    /// funds a short neighbour, so hysteresis asks no more of it (docs/formats.md,
    /// `min_change`).
    pub fn tight_hosts(&self) -> Vec<PerResource<bool>> {
        let mut free: Vec<PerResource<f64>> = self.hosts.iter().map(|h| h.capacity).collect();
        for (f, used) in free.iter_mut().zip(self.pool_use()) {
            for r in Resource::ALL {
                f[r] -= used[r];
            }
        }
        let mut short = vec![PerResource::from_fn(|_| 0.0); self.hosts.len()];
        for inst in &self.instances {
            for r in Resource::ALL {
                free[inst.host][r] -= inst.current[r];
                let peak = inst.ahead.iter().filter_map(|d| d[r]).chain(inst.demand[r]);
                short[inst.host][r] += peak
                    .map(|d| (d - inst.current[r]).max(0.0))
                    .fold(0.0, f64::max);
            }
        }
        free.iter()
            .zip(&short)
            .map(|(free, short)| PerResource::from_fn(|r| short[r] > free[r].max(0.0) + 1e-9))
            .collect()
    }

    /// The smallest shrink in whole steps of `r`: the policy's hysteresis minimum, or one
    /// step on a [tight](Problem::tight_hosts) host.
    pub fn min_shrink_steps(&self, r: Resource, tight: bool) -> f64 {
        if tight {
            1.0
        } else {
            self.policy.min_steps(r)
        }
    }

    /// Indices of the instances currently on host `h` (a scan; see [`Problem::residents`]).
    pub fn on_host(&self, h: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.instances.len()).filter(move |&i| self.instances[i].host == h)
    }

    /// For every host, the indices of the instances currently on it.
    pub fn residents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.hosts.len()];
        for (i, inst) in self.instances.iter().enumerate() {
            out[inst.host].push(i);
        }
        out
    }

    /// Whether two hosts share a cell.
    pub fn same_cell(&self, a: usize, b: usize) -> bool {
        self.hosts[a].cell == self.hosts[b].cell
    }

    /// Credits instance `i` may pay for swaps now: its balance, less what its predicted CPU use
    /// above the baseline burns this interval beyond what it earns (AWS burstable accounting:
    /// earn `earn_rate` an hour, spend 60 credits per core-hour used).
    pub fn spendable(&self, i: usize) -> f64 {
        let inst = &self.instances[i];
        let used = inst.demand.cpu.unwrap_or(0.0) * 60.0;
        let burn = (used - inst.earn_rate).max(0.0) * self.policy.interval_hours();
        round6((inst.credits - burn).max(0.0))
    }

    /// Credits instance `i` may still pay in interval `k` of a look-ahead (0 is the first):
    /// its balance less what its predicted CPU use burns through the end of that interval.
    pub fn spendable_by(&self, i: usize, k: usize) -> f64 {
        let inst = &self.instances[i];
        let burn = |cpu: Option<f64>| (cpu.unwrap_or(0.0) * 60.0 - inst.earn_rate).max(0.0);
        let burnt: f64 = std::iter::once(inst.demand.cpu)
            .chain(inst.ahead.iter().map(|d| d.cpu))
            .take(k + 1)
            .map(burn)
            .sum();
        round6((inst.credits - burnt * self.policy.interval_hours()).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const FLEET: &str = r#"
[[host]]
id = "h0"
cell = "c0"
cpu = 8.0
mem = 8192.0
net = 1000.0

[[instance]]
id = "a"
host = "h0"
credits = 30.0
earn_rate = 12.0
changed_at = "2024-03-07T00:00:00Z"
cpu = { alloc = 2.0, min = 0.25, max = 4.0 }
mem = { alloc = 1024.0, min = 256.0, max = 4096.0 }
net = { alloc = 100.0, min = 10.0, max = 500.0 }
"#;

    fn problem(cpu_demand: f64) -> (Fleet, Problem) {
        let fleet = Fleet::parse(Path::new("fleet.toml"), FLEET).unwrap();
        let p = Problem::with_demand(&fleet, &Policy::default(), |_, r| {
            Some(if r == Resource::Cpu { cpu_demand } else { 0.0 })
        });
        (fleet, p)
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        "2024-03-07T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn cooldown_freezes_recent_changes_unless_short() {
        let (fleet, mut p) = problem(1.0);
        p.apply_cooldown(&fleet, at(30));
        assert!(p.instances[0].frozen, "changed 30 min ago, cool-down 60");
        assert!(!p.instances[0].adjustable(Resource::Cpu));
        assert!(p.instances[0].candidates.is_empty());
        let (fleet, mut p) = problem(1.0);
        p.apply_cooldown(&fleet, at(60));
        assert!(!p.instances[0].frozen, "the cool-down is over");
        let (fleet, mut p) = problem(3.0);
        p.apply_cooldown(&fleet, at(30));
        assert!(
            !p.instances[0].frozen,
            "predicted shortfall overrides the cool-down"
        );
        // Only for the short resource: memory (demand 0, well below) stays as it is.
        let inst = &p.instances[0];
        assert!(inst.adjustable(Resource::Cpu));
        assert!(!inst.adjustable(Resource::Mem), "{inst:?}");
        assert!(inst.held.mem && !inst.held.cpu, "{inst:?}");
    }

    #[test]
    fn shrinks_stop_at_the_recent_usage_floor() {
        // `b` is short by 1.5 cores on a full host; idle `a` gives that and frees the rest,
        // unless it is a burster whose recent usage sets a floor.
        let text = FLEET
            .replace("cpu = 8.0", "cpu = 4.0")
            .replace("changed_at = \"2024-03-07T00:00:00Z\"\n", "")
            + &FLEET[FLEET.find("[[instance]]").unwrap()..]
                .replace("id = \"a\"", "id = \"b\"")
                .replace("credits = 30.0", "credits = 280.0")
                .replace("changed_at = \"2024-03-07T00:00:00Z\"\n", "");
        let fleet = Fleet::parse(Path::new("fleet.toml"), &text).unwrap();
        let mut policy = Policy::default();
        policy.disruption.max_changes_percent = 100.0;
        let after = |floor: f64, b: f64| {
            let mut p = Problem::with_demand(&fleet, &policy, |id, r| {
                Some(match (id, r) {
                    ("a", Resource::Cpu) => 0.05,
                    ("b", Resource::Cpu) => b,
                    _ => 0.0,
                })
            });
            p.instances[0].floor.cpu = floor;
            let (s, _) = crate::solve::mip::solve(&p, None).unwrap();
            (s.alloc[0].cpu, s.alloc[1].cpu)
        };
        let cpu_after = |floor: f64| after(floor, 3.5);
        assert_eq!(cpu_after(0.0), (0.25, 3.5));
        assert_eq!(cpu_after(1.5), (1.5, 2.5));
        assert_eq!(
            cpu_after(1.4),
            (1.5, 2.5),
            "whole steps, never below the floor"
        );
        assert_eq!(
            cpu_after(1.6),
            (1.75, 2.25),
            "on a host too tight for b's need, one step funds it"
        );
        assert_eq!(
            after(1.6, 2.0),
            (2.0, 2.0),
            "with nobody short, one step is under the hysteresis minimum"
        );
    }

    /// Room above the peak of the last day is priced as unused for a day more, so it is
    /// given back, though one interval's idle cost would not pay the change.
    #[test]
    fn idle_room_above_the_days_peak_is_given_back() {
        let text = FLEET
            .replace("alloc = 2.0", "alloc = 3.0")
            .replace("changed_at = \"2024-03-07T00:00:00Z\"\n", "");
        let fleet = Fleet::parse(Path::new("fleet.toml"), &text).unwrap();
        let mut policy = Policy::default();
        policy.disruption.max_changes_percent = 100.0;
        let cpu_after = |ceiling: Option<f64>, floor: f64| {
            let mut p = Problem::with_demand(&fleet, &policy, |_, r| {
                Some(
                    fleet.instances[0]
                        .resource(r)
                        .alloc
                        .min(if r == Resource::Cpu { 0.5 } else { f64::MAX }),
                )
            });
            p.instances[0].ceiling.cpu = ceiling;
            p.instances[0].floor.cpu = floor;
            let (s, _) = crate::solve::mip::solve(&p, None).unwrap();
            s.alloc[0].cpu
        };
        // 2.5 idle cores cost 2.5 an interval; giving them back costs 2 + 0.5 x 2.5.
        assert_eq!(
            cpu_after(None, 0.0),
            3.0,
            "one interval does not pay the change"
        );
        assert_eq!(
            cpu_after(Some(1.0), 0.0),
            0.5,
            "room unused for a day is given back"
        );
        assert_eq!(cpu_after(Some(3.5), 0.0), 3.0, "the day's peak needed it");
        assert_eq!(cpu_after(Some(1.0), 1.5), 1.5, "never below the floor");
        // The ceiling a plan uses: 2.6 in whole steps (2.75), raised by the two-step
        // minimum shrink less one step, so 3 cores are within it and stay.
        let mut p = Problem::with_demand(&fleet, &policy, |_, _| None);
        let mut f = Forecasts::default();
        f.ceilings.insert(("a".into(), Resource::Cpu), 2.6);
        p.set_usage_bounds(&f);
        assert_eq!(p.instances[0].ceiling.cpu, Some(3.0));
    }

    /// An instance seen using more than its allocation plans for that peak plus the margin
    /// even when its forecast says less; below the allocation the forecast stands.
    #[test]
    fn evidence_above_the_allocation_raises_the_demand() {
        let fleet = Fleet::parse(Path::new("fleet.toml"), FLEET).unwrap();
        let forecasts = |peak: f64| {
            let key = ("a".to_owned(), Resource::Cpu);
            let mut f = Forecasts::default();
            f.demands.insert(
                key.clone(),
                crate::forecast::Demand::fixed(
                    &[1.0],
                    1.0,
                    crate::forecast::Method::Vpa,
                    String::new(),
                ),
            );
            f.peaks.insert(key, peak);
            f
        };
        let policy = Policy::default();
        let demand = |peak| {
            Problem::new(&fleet, &forecasts(peak), &policy).instances[0]
                .demand
                .cpu
        };
        assert_eq!(demand(3.0), Some(3.0 * 1.15), "3 cores seen, 2 allocated");
        assert_eq!(demand(1.5), Some(1.0), "below the allocation: the forecast");
        let mut off = policy.clone();
        off.forecast.evidence_margin = 0.0;
        let p = Problem::new(&fleet, &forecasts(3.0), &off);
        assert_eq!(p.instances[0].demand.cpu, Some(3.0));
    }

    /// A short instance grows by one step into the one free step of its host, though the
    /// hysteresis minimum is two steps: the minimum binds shrinks only.
    #[test]
    fn a_short_instance_grows_by_less_than_the_hysteresis_minimum() {
        let text = FLEET
            .replace("cpu = 8.0", "cpu = 2.25")
            .replace("changed_at = \"2024-03-07T00:00:00Z\"\n", "");
        let fleet = Fleet::parse(Path::new("fleet.toml"), &text).unwrap();
        let mut policy = Policy::default();
        policy.disruption.max_changes_percent = 100.0;
        assert_eq!(policy.min_steps(Resource::Cpu), 2.0);
        let p = Problem::with_demand(&fleet, &policy, |_, r| {
            Some(if r == Resource::Cpu { 3.0 } else { 0.0 })
        });
        let (s, _) = crate::solve::mip::solve(&p, None).unwrap();
        assert_eq!(s.alloc[0].cpu, 2.25);
    }

    #[test]
    fn spendable_credits_keep_the_predicted_burst() {
        // Baseline 12 credits/h = 0.2 cores. At 1 core the instance burns 60 - 12 = 48
        // credits an hour, 12 in a 15-minute interval, so 18 of its 30 are spendable.
        let (_, p) = problem(1.0);
        assert_eq!(p.spendable(0), 18.0);
        // Below the baseline it earns, but cannot pay with credits it has not earned yet.
        let (_, p) = problem(0.1);
        assert_eq!(p.spendable(0), 30.0);
        // A heavy burst leaves nothing to pay with: it may not receive.
        let (_, p) = problem(4.0);
        assert_eq!(p.spendable(0), 0.0);
    }
}
