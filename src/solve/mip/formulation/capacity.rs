//! Host capacity: the `cap` row of each host and resource, and the bounds a host's rows
//! imply on its residents' columns ([`Caps`], [`most_room`]).
//!
//! The row counts a migrant on both hosts: at its current size on the one it leaves, and at
//! its landing size on the one it moves to, since the executor moves instances one at a
//! time and an arrival may land before a departure frees its room. The bounds are worked out
//! from [`useful_steps`] before any column exists: the smaller they are, the smaller the
//! coefficients of the indicators they gate, and the tighter the LP relaxation.

use super::pool::{pool_expr, stoppable};
use super::steps::useful_steps;
use super::{Decisions, Program};
use crate::problem::Problem;
use crate::resource::{PerResource, Resource};
use good_lp::{constraint, Expression};

/// Bounds the host's rows imply on its residents' moves, so that indicators' coefficients
/// are as small as the rows allow and the LP relaxation is tighter.
#[derive(Default)]
pub(super) struct Caps {
    /// Per instance and resource, the most steps it could grow at home.
    pub(super) grow: Vec<PerResource<f64>>,
    /// Per instance and resource, the most steps it could take by swap.
    pub(super) take: Vec<PerResource<f64>>,
    /// Per host and resource, the most steps all its residents together could take.
    pub(super) host_take: Vec<PerResource<f64>>,
}

/// Per host and resource, the most room an arrival could find: capacity less what is left
/// with every resident shrunk as far as the program lets it and every stoppable pool
/// instance stopped.
pub(super) fn most_room(p: &Problem, d: &Decisions) -> Vec<PerResource<f64>> {
    let stoppable = stoppable(p);
    let mut floor: Vec<PerResource<f64>> = d
        .pool_use
        .iter()
        .zip(&stoppable)
        .map(|(used, stop)| PerResource::from_fn(|r| used[r] - stop[r]))
        .collect();
    for (i, inst) in p.instances.iter().enumerate() {
        for r in Resource::ALL {
            let (sd, su) = useful_steps(p, i, r, d.over[inst.host][r], d.tight[inst.host][r]);
            let shrink = if inst.adjustable(r) && sd + su >= 1.0 {
                sd
            } else {
                0.0
            };
            floor[inst.host][r] += inst.current[r] - p.policy.granularity[r] * shrink;
        }
    }
    p.hosts
        .iter()
        .zip(&floor)
        .map(|(host, floor)| PerResource::from_fn(|r| host.capacity[r] - floor[r]))
        .collect()
}

/// What the host's rows allow each resident. It grows at home by at most the room left with
/// everyone else shrunk as far as allowed (`cap`), and by at most what it can take by swap
/// plus the host's free capacity and what leavers free (`cover`). It takes at most what its
/// credits pay for and the others can give.
pub(super) fn caps(p: &Problem, d: &Decisions) -> Caps {
    let n = p.instances.len();
    let mut grow = vec![PerResource::from_fn(|_| f64::INFINITY); n];
    let mut take = vec![PerResource::from_fn(|_| 0.0); n];
    let mut host_take = vec![PerResource::from_fn(|_| 0.0); p.hosts.len()];
    let migrations = p.policy.disruption.max_migrations;
    let stoppable = stoppable(p);
    for (h, residents) in d.residents.iter().enumerate() {
        for r in Resource::ALL {
            let g = p.policy.granularity[r];
            let price = p.swap_price(r, g);
            let affordable = |credits: f64| {
                if price > 0.0 {
                    (credits / price + 1e-9).floor()
                } else {
                    f64::INFINITY
                }
            };
            let spans: Vec<(f64, f64)> = residents
                .iter()
                .map(|&i| {
                    let (sd, su) = useful_steps(p, i, r, d.over[h][r], d.tight[h][r]);
                    if p.instances[i].adjustable(r) && sd + su >= 1.0 {
                        (sd, su)
                    } else {
                        (0.0, 0.0)
                    }
                })
                .collect();
            let give: Vec<f64> = residents
                .iter()
                .zip(&spans)
                .map(|(&i, &(sd, _))| {
                    let inst = &p.instances[i];
                    sd.min(affordable(inst.credit_cap - inst.credits)).max(0.0)
                })
                .collect();
            let all_give: f64 = give.iter().sum();
            let used: f64 = residents
                .iter()
                .map(|&i| p.instances[i].current[r])
                .sum::<f64>()
                + d.pool_use[h][r];
            let free = (p.hosts[h].capacity[r] - used).max(0.0) + stoppable[h][r];
            let mut movers: Vec<f64> = residents
                .iter()
                .filter(|&&i| !p.instances[i].candidates.is_empty())
                .map(|&i| p.instances[i].current[r])
                .collect();
            movers.sort_by(|a, b| b.total_cmp(a));
            let all_movers: f64 = movers.iter().sum();
            let top: f64 = movers.iter().take(migrations).sum();
            for (k, &i) in residents.iter().enumerate() {
                let inst = &p.instances[i];
                let (sd, su) = spans[k];
                let own = if inst.candidates.is_empty() {
                    0.0
                } else {
                    inst.current[r]
                };
                let leavers = top.min(all_movers - own);
                let t = su.min(affordable(p.spendable(i))).min(all_give - give[k]);
                let room = ((d.room[h][r] - g * sd) / g + 1e-9).floor();
                let cover = t + ((free + leavers) / g + 1e-9).floor();
                let cap = su.min(room).min(cover).max(0.0);
                grow[i][r] = if cap >= 1.0 { cap } else { 0.0 };
                take[i][r] = t.min(grow[i][r]).max(0.0);
                host_take[h][r] += take[i][r];
            }
        }
    }
    Caps {
        grow,
        take,
        host_take,
    }
}

/// Per host and resource, whether what is there now (pools included) exceeds capacity.
pub(super) fn over_capacity(p: &Problem) -> Vec<PerResource<bool>> {
    let mut used = p.pool_use();
    for inst in &p.instances {
        for r in Resource::ALL {
            used[inst.host][r] += inst.current[r];
        }
    }
    p.hosts
        .iter()
        .zip(&used)
        .map(|(h, u)| PerResource::from_fn(|r| u[r] > h.capacity[r] + 1e-9))
        .collect()
}

/// The allocation of instance `i` in `r` as an expression of its step variables.
fn alloc_expr(p: &Problem, d: &Decisions, i: usize, r: Resource) -> Expression {
    let g = p.policy.granularity[r];
    let mut e = Expression::from(p.instances[i].current[r]);
    if let (Some(u), Some(v)) = (d.up[i][r], d.down[i][r]) {
        e += g * u - g * v;
    }
    e
}

/// Capacity of host `h` in `r`, while migrations land: the executor moves instances one at a
/// time, so an instance leaving `h` still occupies its current allocation there when others
/// arrive (a migrant takes no steps at home, and resizes as it lands).
pub(super) fn add_capacity(p: &Problem, m: &mut Program, d: &Decisions, h: usize, r: Resource) {
    let mut used = Expression::from(0.0);
    for &i in &d.residents[h] {
        used += alloc_expr(p, d, i, r);
    }
    for &(i, k) in &d.arrivals[h] {
        used += p.instances[i].current[r] * d.migrate[i][k].1;
        if let Some((lu, ld)) = d.land[i][k][r] {
            used += p.policy.granularity[r] * (Expression::from(lu) - ld);
        }
    }
    let (started, stopped) = pool_expr(p, d, h, r);
    used += d.pool_use[h][r] + started - stopped;
    let cap = p.hosts[h].capacity[r];
    m.row(
        format!("cap[{},{r}]", p.hosts[h].id),
        constraint!(used <= cap),
    );
}

#[cfg(test)]
mod tests {
    use crate::solve::mip::formulation::tests::{pool, terms, this_interval, Built};
    use crate::solve::mip::solve;

    #[test]
    fn the_capacity_row_counts_every_residents_steps_and_the_pools_starts_and_stops() {
        let mut p = this_interval(4.0, &[(1.0, 0.0, 2.0), (1.0, 0.0, 0.5)]);
        p.pools = vec![pool("pool", 1, 3, Some(2))];
        let (coefficients, constant) = Built::new(&p).row("cap[h0,cpu]");
        let expected = [
            ("up[vm-0,cpu]", 0.25),
            ("down[vm-0,cpu]", -0.25),
            ("up[vm-1,cpu]", 0.25),
            ("down[vm-1,cpu]", -0.25),
            ("pool_start[pool]", 1.0),
            ("pool_stop[pool]", -1.0),
        ];
        assert_eq!(coefficients, terms(&expected));
        // What is there now, less the capacity: 1 + 1 cores and one warm pool instance, of 4.
        assert_eq!(constant, -1.0);
    }

    #[test]
    fn pool_starts_fit_in_the_hosts_free_capacity() {
        // 3 cores free: the pool's target of 5 one-core instances would need 5.
        let mut p = this_interval(4.0, &[(1.0, 0.0, 1.0)]);
        p.pools = vec![pool("pool", 0, 5, Some(5))];
        let (s, _) = solve(&p, None).unwrap();
        assert_eq!(s.warm, [3]);
    }

    #[test]
    fn the_most_room_counts_residents_shrunk_to_their_forecast_and_stoppable_pools_stopped() {
        // 4 cores: a resident at 3 that needs 1, and a warm one-core pool instance.
        let mut p = this_interval(4.0, &[(3.0, 0.0, 1.0)]);
        p.pools = vec![pool("pool", 1, 1, Some(0))];
        assert_eq!(Built::new(&p).decisions.room[0].cpu, 3.0);
        // Without a target the pool keeps its instance, and its core.
        p.pools[0].target = None;
        assert_eq!(Built::new(&p).decisions.room[0].cpu, 2.0);
    }

    #[test]
    fn a_resident_grows_at_home_by_no_more_than_its_credits_take_beyond_the_free_room() {
        // A full host: vm-0 needs 3 more cores, vm-1 can give 2. At 4 cores vm-0 burns 45
        // credits this interval; 15 more buy one core (4 steps), from vm-1.
        let p = |credits| this_interval(4.0, &[(1.0, credits, 4.0), (3.0, 0.0, 1.0)]);
        let poor = Built::new(&p(60.0));
        assert_eq!(poor.decisions.caps.grow[0].cpu, 4.0);
        assert_eq!(poor.decisions.caps.take[0].cpu, 4.0);
        assert_eq!(poor.bounds("up[vm-0,cpu]"), Some((0.0, 4.0)));
        // Rich, it grows by all vm-1 gives: the most room its host can make.
        let rich = Built::new(&p(1000.0));
        assert_eq!(rich.bounds("up[vm-0,cpu]"), Some((0.0, 8.0)));
    }
}
