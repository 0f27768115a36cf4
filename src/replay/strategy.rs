//! The strategies a replay compares, and how each turns what it may see into a solution.
//!
//! Every strategy answers with a [`Solution`] to a [`Problem`] built from its own
//! fleet, so each is priced, planned and applied the same way. They differ only
//! in the demand they plan for and the solver: autoscaler baselines (`reactive`,
//! `vpa`) resize towards their estimate within capacity and the disruption
//! budget; `greedy` and `mip` plan for the forecasts; `oracle` runs the MIP, under
//! the same rules, on the demand that actually arrives: a myopic reference that `mip`
//! can beat, not a bound (see [`super::bound`] for the bounds). `foresight` is the
//! same MIP with [`FORESIGHT_INTERVALS`] of look-ahead on the realised peaks, with the
//! shrink floors `mip` has: what the rules allow a planner that knew the coming hours.
//! `mip` minus it is the cost of forecasting and myopia; it minus the lower bound,
//! the cost of the rules.

use crate::forecast::method::{Candidate, Vpa};
use crate::named::named_enum;
use crate::planner::Strategy;
use crate::problem::{Problem, Solution};
use crate::resource::{PerResource, Resource};
use crate::solve::mip::{SolveError, SolveStatus, SolverStats};
use crate::units::round6;

/// `reactive` provisions the last interval's peak plus this share.
pub const REACTIVE_MARGIN: f64 = 0.15;
/// `vpa` provisions this quantile of the decaying histogram (plus 15%, as the VPA recommender).
pub const VPA_QUANTILE: f64 = 0.9;
/// The VPA recommender's default histogram half-life.
pub const VPA_HALF_LIFE_SECONDS: i64 = 86_400;
/// Intervals `foresight` plans jointly, on the realised peaks of each.
pub const FORESIGHT_INTERVALS: u32 = 4;

named_enum!(
    /// A replayed strategy.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Kind: "strategy" {
        /// Keeps the initial allocation.
        Static = "static",
        /// The last interval's peak plus [`REACTIVE_MARGIN`].
        Reactive = "reactive",
        /// A decaying p90 plus 15%, as the Kubernetes VPA recommender.
        Vpa = "vpa",
        /// The seed's `decide_swap` on the forecasts.
        Greedy = "greedy",
        /// Chameleon's MIP on the forecasts.
        Mip = "mip",
        /// The MIP under the same rules on the realised demand: a myopic reference, not
        /// a bound.
        Oracle = "oracle",
        /// The MIP under the same rules, with look-ahead, on the realised demand of the
        /// coming intervals: perfect foresight.
        Foresight = "foresight",
    }
);

impl Kind {
    /// Whether the strategy plans for the forecast engine's quantiles.
    pub fn uses_forecasts(self) -> bool {
        matches!(self, Kind::Greedy | Kind::Mip)
    }

    /// Solves `p` (whose demand is this strategy's estimate) as `plan` and `compare` would.
    pub fn solve(self, p: &Problem) -> Result<(Solution, SolverStats), SolveError> {
        let heuristic = |s: Solution| {
            let stats = SolverStats::heuristic(p, &s, SolveStatus::Heuristic, 0.0);
            Ok((s, stats))
        };
        match self {
            Kind::Static => heuristic(p.unchanged()),
            Kind::Reactive | Kind::Vpa => heuristic(resize_towards(p)),
            Kind::Greedy => Strategy::Greedy.solve(p),
            Kind::Mip | Kind::Oracle | Kind::Foresight => Strategy::Mip.solve(p),
        }
    }
}

/// The peak of `values` plus the reactive margin, if there are any.
pub fn reactive_estimate(values: &[f64]) -> Option<f64> {
    let peak = values.iter().copied().reduce(f64::max)?;
    Some(peak * (1.0 + REACTIVE_MARGIN))
}

/// The VPA estimate of a history sampled every `step_seconds`: decaying p90 plus 15%.
pub fn vpa_estimate(values: &[f64], step_seconds: i64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let half_life = (VPA_HALF_LIFE_SECONDS / step_seconds.max(1)).max(1) as usize;
    let path = Vpa { half_life }.forecast(values, 1, VPA_QUANTILE).ok()?;
    path.base.first().copied()
}

/// An autoscaler's answer: resize each instance to its estimate rounded up to a
/// granularity step, within its bounds, host capacity and the disruption budget.
/// The instances that gain the most (then lose the most) go first.
pub fn resize_towards(p: &Problem) -> Solution {
    let mut s = p.unchanged();
    let target: Vec<PerResource<f64>> = (0..p.instances.len()).map(|i| target(p, i)).collect();
    let mut order: Vec<usize> = (0..p.instances.len())
        .filter(|&i| Resource::ALL.iter().any(|&r| target[i][r] != s.alloc[i][r]))
        .collect();
    let urgency = |i: usize| {
        let inst = &p.instances[i];
        Resource::ALL.iter().fold((0.0, 0.0), |(up, down), &r| {
            let d = (target[i][r] - inst.current[r]) / p.policy.unit[r];
            (up + d.max(0.0), down + (-d).max(0.0))
        })
    };
    order.sort_by(|&a, &b| {
        let (ua, da) = urgency(a);
        let (ub, db) = urgency(b);
        ub.total_cmp(&ua).then(db.total_cmp(&da)).then(a.cmp(&b))
    });
    let budget = &p.policy.disruption;
    let mut per_host = vec![0usize; p.hosts.len()];
    let chosen: Vec<usize> = order
        .into_iter()
        .filter(|&i| {
            let h = p.instances[i].host;
            let total: usize = per_host.iter().sum();
            let ok = total < budget.change_limit(p.instances.len())
                && per_host[h] < budget.max_changes_per_host;
            per_host[h] += usize::from(ok);
            ok
        })
        .collect();
    for &i in &chosen {
        for r in Resource::ALL {
            s.alloc[i][r] = s.alloc[i][r].min(target[i][r]);
        }
    }
    let mut used: Vec<PerResource<f64>> = vec![PerResource::default(); p.hosts.len()];
    for (i, inst) in p.instances.iter().enumerate() {
        for r in Resource::ALL {
            used[inst.host][r] += s.alloc[i][r];
        }
    }
    for &i in &chosen {
        let h = p.instances[i].host;
        for r in Resource::ALL {
            let g = p.policy.granularity[r];
            let room = p.hosts[h].capacity[r] - used[h][r];
            let want = target[i][r] - s.alloc[i][r];
            let steps = (want / g - 1e-9).ceil().min((room / g + 1e-9).floor());
            if steps > 0.0 {
                let grow = round6(steps * g);
                s.alloc[i][r] = round6(s.alloc[i][r] + grow);
                used[h][r] += grow;
            }
        }
    }
    s
}

/// The estimate rounded up to a granularity step and clamped to the bounds; unchanged
/// where there is no estimate or the resource is fixed.
fn target(p: &Problem, i: usize) -> PerResource<f64> {
    let inst = &p.instances[i];
    PerResource::from_fn(|r| match inst.demand[r] {
        Some(d) if inst.adjustable(r) => {
            let g = p.policy.granularity[r];
            round6(((d / g - 1e-9).ceil() * g).clamp(inst.min[r], inst.max[r]))
        }
        _ => inst.current[r],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Fleet;
    use crate::policy::Policy;
    use std::path::Path;

    const FLEET: &str = r#"
[[host]]
id = "h"
cell = "c"
cpu = 4.0
mem = 4096.0
net = 100.0

[[instance]]
id = "a"
host = "h"
credits = 0.0
earn_rate = 6.0
cpu = { alloc = 2.0, min = 0.5, max = 4.0 }
mem = { alloc = 1024.0, min = 256.0, max = 2048.0 }
net = { alloc = 10.0, min = 10.0, max = 10.0 }

[[instance]]
id = "b"
host = "h"
credits = 0.0
earn_rate = 6.0
cpu = { alloc = 2.0, min = 0.5, max = 4.0 }
mem = { alloc = 1024.0, min = 256.0, max = 2048.0 }
net = { alloc = 10.0, min = 10.0, max = 10.0 }
"#;

    #[test]
    fn resizing_shrinks_first_and_grows_within_the_room_left() {
        let fleet = Fleet::parse(Path::new("f.toml"), FLEET).unwrap();
        let demand = |id: &str, r: Resource| match (id, r) {
            ("a", Resource::Cpu) => Some(3.6),
            ("b", Resource::Cpu) => Some(0.6),
            _ => None,
        };
        let mut policy = Policy::default();
        policy.disruption.max_changes_percent = 100.0;
        let p = Problem::with_demand(&fleet, &policy, demand);
        let s = resize_towards(&p);
        // b shrinks to 0.75 (0.6 rounded up); a wants 3.75 and gets all 3.25 left.
        assert_eq!((s.alloc[0].cpu, s.alloc[1].cpu), (3.25, 0.75));
        assert_eq!((s.alloc[0].mem, s.alloc[1].mem), (1024.0, 1024.0));
    }

    #[test]
    fn estimates_follow_their_rules() {
        assert_eq!(reactive_estimate(&[1.0, 4.0, 2.0]), Some(4.0 * 1.15));
        assert_eq!(reactive_estimate(&[]), None);
        let v = vpa_estimate(&[10.0; 30], 300).unwrap();
        assert!((v - 11.5).abs() < 1e-9, "{v}");
        assert_eq!("oracle".parse::<Kind>(), Ok(Kind::Oracle));
        assert!("best".parse::<Kind>().is_err());
    }
}
