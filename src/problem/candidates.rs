//! Migration candidates: which instances may move, and where.
//!
//! A migration column per instance and host would make the MIP quadratic in fleet size;
//! pruning to instances on crowded hosts, and to the hosts with room for them, keeps it
//! linear while leaving the optimiser real choice.

use super::{InstanceSpec, Problem};
use crate::resource::{PerResource, Resource};

impl Problem {
    /// Prunes migrations. Only instances on a host whose free capacity cannot cover its
    /// instances' predicted growth may move, and only to hosts with room for them once
    /// everyone there is sized to forecast, the most predicted headroom first, same cell
    /// first. Of those, only the `MOVERS_PER_MIGRATION` × budget instances that want to
    /// grow most keep their candidates. Hosts are ranked once, so this is linear in instances.
    pub fn choose_candidates(&mut self) {
        let k = self.policy.migration.candidates;
        let (headroom, room) = self.predicted_headroom();
        let mut ranked: Vec<usize> = (0..self.hosts.len()).collect();
        ranked.sort_by(|&a, &b| headroom[b].total_cmp(&headroom[a]).then(a.cmp(&b)));
        let cross = self.policy.migration.allow_cross_cell;
        let crowded = self.crowded();
        for i in 0..self.instances.len() {
            let inst = &self.instances[i];
            // Only a host whose free room cannot cover its predicted growth sends instances away.
            if inst.frozen || !crowded[inst.host] {
                self.instances[i].candidates.clear();
                continue;
            }
            let own = inst.host;
            let fits = |h: usize| {
                Resource::ALL.iter().all(|&r| {
                    let need = inst.demand[r]
                        .unwrap_or(inst.current[r])
                        .min(inst.current[r]);
                    room[h][r] >= need - 1e-9
                })
            };
            let others = ranked.iter().copied().filter(|&h| h != own && fits(h));
            let mut options: Vec<usize> = others
                .clone()
                .filter(|&h| self.same_cell(h, own))
                .take(k)
                .collect();
            if cross && options.len() < k {
                let rest = k - options.len();
                options.extend(others.filter(|&h| !self.same_cell(h, own)).take(rest));
            }
            self.instances[i].candidates = options;
        }
        let keep = self.policy.disruption.max_migrations * MOVERS_PER_MIGRATION;
        let mut movers: Vec<usize> = (0..self.instances.len())
            .filter(|&i| !self.instances[i].candidates.is_empty())
            .collect();
        if movers.len() > keep {
            let growth: Vec<f64> = self.instances.iter().map(|i| self.growth(i)).collect();
            movers.sort_by(|&a, &b| growth[b].total_cmp(&growth[a]).then(a.cmp(&b)));
            for &i in &movers[keep..] {
                self.instances[i].candidates.clear();
            }
        }
    }

    /// How much instance `inst` is predicted to grow, in units summed over resources.
    fn growth(&self, inst: &InstanceSpec) -> f64 {
        Resource::ALL
            .iter()
            .map(|&r| inst.want(r) / self.policy.unit[r])
            .sum()
    }

    /// Per host, whether its instances' predicted growth exceeds its free capacity in some
    /// resource: only swaps (which need credits) or migrations can then cover it.
    fn crowded(&self) -> Vec<bool> {
        let mut used = self.pool_use();
        let mut growth = vec![PerResource::<f64>::default(); self.hosts.len()];
        for inst in &self.instances {
            for r in Resource::ALL {
                used[inst.host][r] += inst.current[r];
                growth[inst.host][r] += inst.want(r);
            }
        }
        (0..self.hosts.len())
            .map(|h| {
                Resource::ALL.iter().any(|&r| {
                    growth[h][r] > (self.hosts[h].capacity[r] - used[h][r]).max(0.0) + 1e-9
                })
            })
            .collect()
    }

    /// Per host, the smallest share of capacity left after predicted demand, and the room
    /// left per resource.
    pub(crate) fn predicted_headroom(&self) -> (Vec<f64>, Vec<PerResource<f64>>) {
        let mut need = self.pool_use();
        for inst in &self.instances {
            for r in Resource::ALL {
                need[inst.host][r] += inst.demand[r].unwrap_or(inst.current[r]);
            }
        }
        let room: Vec<PerResource<f64>> = self
            .hosts
            .iter()
            .zip(&need)
            .map(|(host, need)| PerResource::from_fn(|r| host.capacity[r] - need[r]))
            .collect();
        let share = self
            .hosts
            .iter()
            .zip(&room)
            .map(|(host, room)| {
                Resource::ALL
                    .iter()
                    .map(|&r| match host.capacity[r] {
                        cap if cap > 0.0 => room[r] / cap,
                        _ => 0.0,
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        (share, room)
    }
}

/// Instances kept as migration candidates per migration the budget allows: enough choice
/// for the optimiser, few enough binaries to solve fast (docs/decisions.md#movers-per-migration).
const MOVERS_PER_MIGRATION: usize = 5;
