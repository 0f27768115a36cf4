//! Warm pools with a profiler target: how many warm instances to start or stop.
//!
//! Warm instances use their host's capacity like residents ([`pool_expr`]), but only stopping
//! them funds a resident's growth (the `cover` rows): a start needs room in `cap` alone. A pool
//! without a target keeps its count and has no columns; one with a target may stop all its
//! warm instances, which is the room [`stoppable`] counts.

use super::{Decisions, Program};
use crate::problem::Problem;
use crate::resource::{PerResource, Resource};
use good_lp::{constraint, variable, Expression, Variable};

/// A pool's columns: warm instances started and stopped, the change indicator and the
/// mismatch cost.
#[derive(Clone, Copy)]
pub(super) struct PoolVars {
    /// Warm instances started (cold ones warmed).
    pub(super) start: Variable,
    /// Warm instances stopped.
    pub(super) stop: Variable,
    /// 1 if the warm count changes.
    pub(super) change: Variable,
    /// Cost of the warm count against the target.
    pub(super) mismatch: Variable,
}

/// A pool with a target: how many warm instances to start or stop. Too few or too many
/// against the target is priced by two planes (`[pools] cold_start_cost` and
/// `idle_warm_cost`), exact at whole counts; any change pays
/// the fixed disruption cost once plus the per-unit cost of what starts or stops.
pub(super) fn add_pool(p: &Problem, m: &mut Program, d: &mut Decisions, k: usize) {
    let pool = &p.pools[k];
    let Some(target) = pool.target else {
        d.pools.push(None);
        return;
    };
    let (w, costs) = (&p.policy.weights, &p.policy.pools);
    let units: f64 = Resource::ALL
        .iter()
        .map(|&r| pool.size[r] / p.policy.unit[r])
        .sum();
    let id = &pool.id;
    let (w0, total) = (f64::from(pool.warm), f64::from(pool.total));
    let start = m.var(format!("pool_start[{id}]"), m.int(0.0, total - w0));
    let stop = m.var(format!("pool_stop[{id}]"), m.int(0.0, w0));
    let change = m.var(format!("pool_change[{id}]"), m.int(0.0, 1.0));
    let mismatch = m.var(format!("pool_mismatch[{id}]"), variable().min(0));
    let warm = Expression::from(w0) + start - stop;
    let t = f64::from(target);
    m.row(
        format!("pool_short[{id}]"),
        constraint!(mismatch - units * costs.cold_start_cost * (t - warm.clone()) >= 0.0),
    );
    m.row(
        format!("pool_idle[{id}]"),
        constraint!(mismatch - units * costs.idle_warm_cost * (warm - t) >= 0.0),
    );
    m.row(
        format!("pool_change_link[{id}]"),
        constraint!(start + stop <= total * change),
    );
    m.objective += mismatch + w.change * change + w.unit_move * units * (start + stop);
    d.pools.push(Some(PoolVars {
        start,
        stop,
        change,
        mismatch,
    }));
}

/// Warm pool instances on host `h`, in `r`: `(now, started − stopped)`.
pub(super) fn pool_expr(
    p: &Problem,
    d: &Decisions,
    h: usize,
    r: Resource,
) -> (Expression, Expression) {
    let (mut started, mut stopped) = (Expression::from(0.0), Expression::from(0.0));
    for (pool, vars) in p.pools.iter().zip(&d.pools) {
        if let (true, Some(v)) = (pool.host == h, vars) {
            started += pool.size[r] * v.start;
            stopped += pool.size[r] * v.stop;
        }
    }
    (started, stopped)
}

/// Per host and resource, what its warm pool instances with a profiler target use: the
/// program may stop them all.
pub(super) fn stoppable(p: &Problem) -> Vec<PerResource<f64>> {
    let mut out = vec![PerResource::default(); p.hosts.len()];
    for pool in p.pools.iter().filter(|pool| pool.target.is_some()) {
        for r in Resource::ALL {
            out[pool.host][r] += f64::from(pool.warm) * pool.size[r];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::stoppable;
    use crate::solve::mip::formulation::tests::{pool, this_interval, Built};
    use crate::solve::mip::solve;

    #[test]
    fn a_pool_with_a_target_starts_at_most_its_cold_and_stops_at_most_its_warm_instances() {
        let mut p = this_interval(16.0, &[(1.0, 0.0, 1.0)]);
        p.pools = vec![pool("pool", 4, 6, Some(5))];
        let built = Built::new(&p);
        assert_eq!(built.bounds("pool_start[pool]"), Some((0.0, 2.0)));
        assert_eq!(built.bounds("pool_stop[pool]"), Some((0.0, 4.0)));
        // Far from its target either way, it goes as far as those let it.
        for (target, warm) in [(20, 6), (0, 0)] {
            p.pools[0].target = Some(target);
            assert_eq!(solve(&p, None).unwrap().0.warm, [warm], "target {target}");
        }
    }

    #[test]
    fn a_pool_without_a_target_keeps_its_count_and_has_no_columns() {
        let mut p = this_interval(16.0, &[(1.0, 0.0, 1.0)]);
        p.pools = vec![pool("kept", 2, 5, None), pool("aimed", 1, 5, Some(3))];
        let built = Built::new(&p);
        assert_eq!(built.bounds("pool_start[kept]"), None);
        assert_eq!(built.bounds("pool_stop[kept]"), None);
        assert!(built.bounds("pool_start[aimed]").is_some());
        assert_eq!(solve(&p, None).unwrap().0.warm, [2, 3]);
        // Only the pool with a target may stop its warm instances.
        assert_eq!(stoppable(&p)[0].cpu, 1.0);
    }
}
