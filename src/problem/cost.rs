//! The one objective: what a solution costs, so every strategy is priced alike.

use super::{Problem, Solution};
use crate::resource::Resource;
use crate::units::{round6, MIB};

/// What a solution costs and changes, under the problem's objective.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Assessment {
    /// The objective the MIP minimises, priced with the model file's `[weights]`.
    pub objective: f64,
    /// Predicted demand above allocation, in cost units.
    pub shortfall: f64,
    /// Instances whose allocation or host changes.
    pub changes: usize,
    /// Instances that move to another host.
    pub migrations: usize,
    /// Memory copied by migrations, in bytes (each migrant's current `mem` allocation).
    pub bytes_moved: f64,
    /// Credits paid by swap receivers to their donors.
    pub credits_moved: f64,
    /// The part of `objective` from later look-ahead intervals (0 without look-ahead).
    pub later: f64,
}

impl Problem {
    /// Credits paid for swapping `amount` of `r` for one interval.
    pub fn swap_price(&self, r: Resource, amount: f64) -> f64 {
        round6(
            amount / self.policy.unit[r]
                * self.policy.credit_price[r]
                * self.policy.interval_hours(),
        )
    }

    /// Migration cost of moving instance `i` to host `to`.
    pub fn migration_cost(&self, i: usize, to: usize) -> f64 {
        let inst = &self.instances[i];
        let gib = inst.current.mem / 1024.0;
        let factor = if self.same_cell(inst.host, to) {
            1.0
        } else {
            self.policy.weights.cross_cell_factor
        };
        self.policy.weights.migration_per_gib * gib * factor
    }

    /// Whether solution `s` changes instance `i`: moves it or resizes any resource.
    pub fn changes(&self, s: &Solution, i: usize) -> bool {
        let inst = &self.instances[i];
        s.host[i] != inst.host
            || Resource::ALL
                .iter()
                .any(|&r| (s.alloc[i][r] - inst.current[r]).abs() > 1e-9)
    }

    /// The solution that changes nothing.
    pub fn unchanged(&self) -> Solution {
        Solution {
            alloc: self.instances.iter().map(|i| i.current).collect(),
            host: self.instances.iter().map(|i| i.host).collect(),
            swaps: Vec::new(),
            warm: self.pools.iter().map(|p| p.warm).collect(),
            ahead: Vec::new(),
        }
    }

    /// Cost of pool `k` at `warm` warm instances: each one short of the target at
    /// `[pools] cold_start_cost`, each one above it at `idle_warm_cost`, per unit of
    /// what it uses.
    pub fn pool_cost(&self, k: usize, warm: u32) -> f64 {
        let pool = &self.pools[k];
        let Some(target) = pool.target else {
            return 0.0;
        };
        let costs = &self.policy.pools;
        let units: f64 = Resource::ALL
            .iter()
            .map(|&r| pool.size[r] / self.policy.unit[r])
            .sum();
        let (t, n) = (f64::from(target), f64::from(warm));
        units * (costs.cold_start_cost * (t - n).max(0.0) + costs.idle_warm_cost * (n - t).max(0.0))
    }

    /// Cost of changing pool `k` from its current count to `warm`.
    pub fn pool_change_cost(&self, k: usize, warm: u32) -> f64 {
        let pool = &self.pools[k];
        if warm == pool.warm {
            return 0.0;
        }
        let w = &self.policy.weights;
        let moved: f64 = Resource::ALL
            .iter()
            .map(|&r| pool.size[r] / self.policy.unit[r])
            .sum::<f64>()
            * f64::from(warm.abs_diff(pool.warm));
        w.change + w.unit_move * moved
    }

    /// Predicted shortfall of one instance and resource under an allocation, in cost units.
    pub fn shortfall(&self, i: usize, r: Resource, alloc: f64) -> f64 {
        self.instances[i].demand[r].map_or(0.0, |d| (d - alloc).max(0.0)) / self.policy.unit[r]
    }

    /// Weighted shortfall plus idle cost of one instance and resource under an allocation.
    pub fn mismatch_cost(&self, i: usize, r: Resource, alloc: f64) -> f64 {
        self.mismatch_against(self.instances[i].demand[r], r, alloc) + self.unused_cost(i, r, alloc)
    }

    /// The allocation of instance `i` in `r` above which room counts as unused: the larger of
    /// its ceiling and its demand, where it has both.
    pub fn unused_above(&self, i: usize, r: Resource) -> Option<f64> {
        let inst = &self.instances[i];
        Some(inst.ceiling[r]?.max(inst.demand[r]?))
    }

    /// The idle cost of allocation above [`unused_above`](Self::unused_above) for the rest of
    /// the ceiling's span: unused that long, it is expected to stay unused as long again, so
    /// a shrink is weighed against the idle cost it saves over that time rather than over one
    /// interval.
    pub fn unused_cost(&self, i: usize, r: Resource, alloc: f64) -> f64 {
        self.unused_above(i, r)
            .map_or(0.0, |u| self.unused_weight(r) * (alloc - u).max(0.0))
    }

    /// Cost per MiB, core or Mbps of unused allocation above the ceiling: the idle weight for
    /// the intervals of a season and horizon beyond those the plan prices itself (one, or the
    /// look-ahead's).
    pub fn unused_weight(&self, r: Resource) -> f64 {
        let (f, planned) = (
            &self.policy.forecast,
            self.policy.lookahead_intervals.max(1),
        );
        let intervals =
            f64::from(f.ceiling_minutes()) / f64::from(self.policy.interval_minutes.max(1));
        self.policy.weights.idle * (intervals - f64::from(planned)).max(0.0) / self.policy.unit[r]
    }

    /// Weighted shortfall plus idle cost of an allocation against a demand (0 without one).
    pub fn mismatch_against(&self, demand: Option<f64>, r: Resource, alloc: f64) -> f64 {
        let (w, unit) = (&self.policy.weights, self.policy.unit[r]);
        let short = demand.map_or(0.0, |d| (d - alloc).max(0.0)) / unit;
        let idle = demand.map_or(0.0, |d| (alloc - d).max(0.0)) / unit;
        w.shortfall * short + w.idle * idle
    }

    /// Prices a solution under the objective the MIP minimises.
    pub fn assess(&self, s: &Solution) -> Assessment {
        let w = &self.policy.weights;
        let mut a = Assessment::default();
        for (i, inst) in self.instances.iter().enumerate() {
            let mut changed = s.host[i] != inst.host;
            for r in Resource::ALL {
                let new = s.alloc[i][r];
                let moved = (new - inst.current[r]).abs() / self.policy.unit[r];
                changed |= moved > 1e-9;
                a.shortfall += self.shortfall(i, r, new);
                a.objective += self.mismatch_cost(i, r, new) + w.unit_move * moved;
            }
            if s.host[i] != inst.host {
                a.migrations += 1;
                a.bytes_moved += inst.current.mem * MIB;
                a.objective += self.migration_cost(i, s.host[i]);
            }
            if changed {
                a.changes += 1;
                a.objective += w.change;
            }
        }
        for (k, &warm) in s.warm.iter().enumerate() {
            a.objective += self.pool_cost(k, warm) + self.pool_change_cost(k, warm);
        }
        for t in 0..self.instances.first().map_or(0, |i| i.ahead.len()) {
            for (i, inst) in self.instances.iter().enumerate() {
                let (before, after) = match t {
                    0 => (s.alloc[i], s.later(0, i)),
                    _ => (s.later(t - 1, i), s.later(t, i)),
                };
                let mut moved = 0.0;
                for r in Resource::ALL {
                    moved += (after[r] - before[r]).abs() / self.policy.unit[r];
                    a.later += self.mismatch_against(inst.ahead[t][r], r, after[r]);
                }
                if moved > 1e-9 {
                    a.later += w.change + w.unit_move * moved;
                }
            }
        }
        a.objective += a.later;
        a.objective += w.swap * s.swaps.len() as f64;
        a.credits_moved = s.swaps.iter().fold(0.0, |sum, sw| sum + sw.credits);
        a
    }

    /// Credit balances after the solution's swaps.
    pub fn balances(&self, s: &Solution) -> Vec<f64> {
        let mut b: Vec<f64> = self.instances.iter().map(|i| i.credits).collect();
        for sw in &s.swaps {
            b[sw.receiver] -= sw.credits;
            b[sw.donor] += sw.credits;
        }
        b
    }
}
