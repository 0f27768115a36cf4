//! The program itself: variables, rows and objective, built from a [`Problem`].
//!
//! Kept apart from solving so the same program can be solved, warm-started
//! from a greedy plan, or exported for another solver to audit. Every variable
//! and row is named after its entity (`cap[h0,cpu]`, `swap[a>b,mem]`).

use crate::problem::{Problem, Solution, Swap};
use crate::resource::{PerResource, Resource};
use crate::units::round6;
use good_lp::{
    constraint, variable, Constraint, Expression, ProblemVariables, Variable, VariableDefinition,
};
use std::collections::HashMap;

mod ahead;

type Steps = PerResource<Option<Variable>>;
type Land = PerResource<Option<(Variable, Variable)>>;

/// The program under construction: variables with their names, and named rows.
#[derive(Default)]
pub(super) struct Program {
    pub(super) vars: ProblemVariables,
    pub(super) names: Vec<String>,
    pub(super) rows: Vec<(String, Constraint)>,
    pub(super) objective: Expression,
    index: HashMap<Variable, usize>,
    /// Integrality dropped: the LP relaxation, for its bound.
    relaxed: bool,
    /// How many integer columns the program has.
    pub(super) integers: std::cell::Cell<usize>,
}

impl Program {
    /// An integer variable in `[lo, hi]`, or a continuous one when the program is relaxed.
    fn int(&self, lo: f64, hi: f64) -> VariableDefinition {
        let def = variable().min(lo).max(hi);
        if self.relaxed {
            def
        } else {
            self.integers.set(self.integers.get() + 1);
            def.integer()
        }
    }

    fn var(&mut self, name: String, def: VariableDefinition) -> Variable {
        self.names.push(name.clone());
        let v = self.vars.add(def.name(name));
        self.index.insert(v, self.index.len());
        v
    }

    fn row(&mut self, name: String, c: Constraint) {
        self.rows.push((name, c));
    }
}

/// Handles to the decision variables, for reading a solution and seeding a start.
pub(super) struct Decisions {
    up: Vec<Steps>,
    down: Vec<Steps>,
    mismatch: Vec<Steps>,
    /// Per instance and resource, the `(down, up)` step bounds.
    span: Vec<PerResource<(f64, f64)>>,
    /// Per host and resource, whether current allocations already exceed capacity.
    over: Vec<PerResource<bool>>,
    /// Per host and resource, whether its residents' predicted shortfall exceeds its free
    /// room: there a one-step shrink is what funds a short neighbour.
    tight: Vec<PerResource<bool>>,
    /// Cost of resources that cannot change, carried by a fixed column so HiGHS'
    /// objective and bound equal the full objective.
    offset: f64,
    fixed: Option<Variable>,
    change: Vec<Option<Variable>>,
    /// Per instance and resource, whether it grows or shrinks (only under hysteresis).
    grows: Vec<Steps>,
    shrinks: Vec<Steps>,
    migrate: Vec<Vec<(usize, Variable)>>,
    /// Per instance, candidate and resource, the steps `(up, down)` it resizes by on landing.
    land: Vec<Vec<Land>>,
    /// Steps each instance gives and takes in swaps.
    give: Vec<Steps>,
    take: Vec<Steps>,
    /// With a fixed cost per swap: per `(donor, receiver, resource)` the steps swapped and
    /// the pair's indicator.
    pairs: HashMap<(usize, usize, Resource), (Variable, Variable)>,
    index: HashMap<Variable, usize>,
    residents: Vec<Vec<usize>>,
    /// For every host, the instances that may migrate onto it, with the candidate's position.
    arrivals: Vec<Vec<(usize, usize)>>,
    /// Per pool with a target: warm instances started and stopped, the change indicator
    /// and the mismatch cost.
    pools: Vec<Option<PoolVars>>,
    /// Per host and resource, what warm pool instances use now.
    pool_use: Vec<PerResource<f64>>,
    /// Per host and resource, the most room an arrival could find: everyone there shrunk
    /// as far as the program lets them, and every warm pool instance with a target stopped.
    room: Vec<PerResource<f64>>,
    /// What the host's rows allow each resident's moves (see [`caps`]).
    caps: Caps,
    /// The later intervals of a look-ahead.
    later: ahead::Later,
}

/// Bounds the host's rows imply on its residents' moves, so that indicators' coefficients
/// are as small as the rows allow and the LP relaxation is tighter.
#[derive(Default)]
struct Caps {
    /// Per instance and resource, the most steps it could grow at home.
    grow: Vec<PerResource<f64>>,
    /// Per instance and resource, the most steps it could take by swap.
    take: Vec<PerResource<f64>>,
    /// Per host and resource, the most steps all its residents together could take.
    host_take: Vec<PerResource<f64>>,
}

#[derive(Clone, Copy)]
struct PoolVars {
    start: Variable,
    stop: Variable,
    change: Variable,
    mismatch: Variable,
}

fn steps(x: f64, g: f64) -> f64 {
    (x / g + 1e-9).floor().max(0.0)
}

/// How many steps `(down, up)` instance `i` may usefully move in `r`: up to the whole step
/// that covers its forecast (beyond it, a change only adds idle cost), down never below
/// the forecast (or the recent peak, [`keep`](crate::problem::InstanceSpec::keep)), except on a host already
/// over capacity, and a shrink is at least the hysteresis minimum or nothing. A grow has no
/// minimum: it only ever meets a forecast above the allocation, and holding back a step
/// of it leaves the instance short (docs/formats.md, `[disruption]` `min_change`).
fn useful_steps(
    p: &Problem,
    i: usize,
    r: Resource,
    over_capacity: bool,
    tight: bool,
) -> (f64, f64) {
    let (ms, (down, up)) = (p.min_shrink_steps(r, tight), limits(p, i, r));
    let Some((above, want)) = toward_forecast(p, i, r) else {
        return (down, up);
    };
    // Shrinks: at most the move that meets the forecast, raised to the hysteresis minimum.
    let useful = |limit: f64, want: f64| {
        let span = limit.min(if want >= 1.0 { want.max(ms) } else { 0.0 });
        if span >= ms {
            span
        } else {
            0.0
        }
    };
    // Shrinking stops at the forecast (whole steps above it, at least the minimum), as the
    // seed's donors give only their excess: a credit-less instance shrunk below its need
    // could never buy the room back.
    let above = above.min(down);
    let down = match (over_capacity, above >= ms) {
        (true, _) => useful(down, down),
        (false, true) => above,
        (false, false) => 0.0,
    };
    (down, up.min(want))
}

/// How many steps `(down, up)` a migrant may usefully resize by as it lands: up to its
/// forecast and down to what it keeps, with no hysteresis minimum (the migration is the change).
fn landing_steps(p: &Problem, i: usize, r: Resource) -> (f64, f64) {
    match toward_forecast(p, i, r).filter(|_| p.instances[i].adjustable(r)) {
        Some((above, want)) => {
            let (down, up) = limits(p, i, r);
            (down.min(above), up.min(want))
        }
        None => (0.0, 0.0),
    }
}

/// Whole steps `(down, up)` instance `i` may move in `r` within its min and max.
fn limits(p: &Problem, i: usize, r: Resource) -> (f64, f64) {
    let (inst, g) = (&p.instances[i], p.policy.granularity[r]);
    (
        steps(inst.current[r] - inst.min[r], g),
        steps(inst.max[r] - inst.current[r], g),
    )
}

/// Whole steps `(above, want)` between instance `i`'s allocation in `r` and its forecast:
/// how far it is above what it keeps, and the grow that covers its forecast (with
/// look-ahead, the highest of any interval's: growing now for later may be cheapest).
/// `None` without a forecast.
fn toward_forecast(p: &Problem, i: usize, r: Resource) -> Option<(f64, f64)> {
    let (inst, g) = (&p.instances[i], p.policy.granularity[r]);
    let dem = inst.demand[r]?;
    let keep = inst.keep(r).unwrap_or(dem);
    let peak = inst.ahead.iter().filter_map(|d| d[r]).fold(dem, f64::max);
    Some((
        steps(inst.current[r] - keep, g),
        ((peak - inst.current[r]) / g).ceil().max(0.0),
    ))
}

pub(super) fn build(p: &Problem, relaxed: bool) -> (Program, Decisions) {
    let mut m = Program {
        relaxed,
        ..Program::default()
    };
    let n = p.instances.len();
    let mut d = Decisions {
        up: Vec::with_capacity(n),
        down: Vec::with_capacity(n),
        mismatch: Vec::with_capacity(n),
        span: Vec::with_capacity(n),
        over: over_capacity(p),
        tight: p.tight_hosts(),
        offset: 0.0,
        fixed: None,
        change: Vec::with_capacity(n),
        grows: vec![Steps::default(); n],
        shrinks: vec![Steps::default(); n],
        migrate: Vec::with_capacity(n),
        land: Vec::with_capacity(n),
        give: vec![Steps::default(); n],
        take: vec![Steps::default(); n],
        pairs: HashMap::new(),
        index: HashMap::new(),
        residents: p.residents(),
        arrivals: vec![Vec::new(); p.hosts.len()],
        pools: Vec::with_capacity(p.pools.len()),
        pool_use: p.pool_use(),
        room: Vec::new(),
        caps: Caps::default(),
        later: ahead::Later::new(p.instances.first().map_or(0, |i| i.ahead.len()), n),
    };
    d.room = most_room(p, &d);
    d.caps = caps(p, &d);
    for k in 0..p.pools.len() {
        add_pool(p, &mut m, &mut d, k);
    }
    for i in 0..n {
        add_instance(p, &mut m, &mut d, i);
        for (k, &h) in p.instances[i].candidates.iter().enumerate() {
            d.arrivals[h].push((i, k));
        }
    }
    for h in 0..p.hosts.len() {
        for r in Resource::ALL {
            add_capacity(p, &mut m, &d, h, r);
            add_swaps(p, &mut m, &mut d, h, r);
        }
    }
    add_credits(p, &mut m, &d);
    add_budgets(p, &mut m, &d);
    ahead::add(p, &mut m, &mut d);
    let fixed = m.var("fixed_cost".into(), variable().min(d.offset).max(d.offset));
    m.objective += fixed;
    d.fixed = Some(fixed);
    d.index = std::mem::take(&mut m.index);
    (m, d)
}

fn most_room(p: &Problem, d: &Decisions) -> Vec<PerResource<f64>> {
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
fn caps(p: &Problem, d: &Decisions) -> Caps {
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

/// Per host and resource, what its warm pool instances with a profiler target use: the
/// program may stop them all.
fn stoppable(p: &Problem) -> Vec<PerResource<f64>> {
    let mut out = vec![PerResource::default(); p.hosts.len()];
    for pool in p.pools.iter().filter(|pool| pool.target.is_some()) {
        for r in Resource::ALL {
            out[pool.host][r] += f64::from(pool.warm) * pool.size[r];
        }
    }
    out
}

fn over_capacity(p: &Problem) -> Vec<PerResource<bool>> {
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

/// A pool with a target: how many warm instances to start or stop. Too few or too many
/// against the target is priced by two planes (`[pools] cold_start_cost` and
/// `idle_warm_cost`), exact at whole counts; any change pays
/// the fixed disruption cost once plus the per-unit cost of what starts or stops.
fn add_pool(p: &Problem, m: &mut Program, d: &mut Decisions, k: usize) {
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
fn pool_expr(p: &Problem, d: &Decisions, h: usize, r: Resource) -> (Expression, Expression) {
    let (mut started, mut stopped) = (Expression::from(0.0), Expression::from(0.0));
    for (pool, vars) in p.pools.iter().zip(&d.pools) {
        if let (true, Some(v)) = (pool.host == h, vars) {
            started += pool.size[r] * v.start;
            stopped += pool.size[r] * v.stop;
        }
    }
    (started, stopped)
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

fn add_instance(p: &Problem, m: &mut Program, d: &mut Decisions, i: usize) {
    let inst = &p.instances[i];
    let w = &p.policy.weights;
    let (mut up, mut down) = (Steps::default(), Steps::default());
    let mut span = PerResource::<(f64, f64)>::default();
    for r in Resource::ALL.into_iter().filter(|&r| inst.adjustable(r)) {
        let g = p.policy.granularity[r];
        let (sd, su) = useful_steps(p, i, r, d.over[inst.host][r], d.tight[inst.host][r]);
        let su = su.min(d.caps.grow[i][r]);
        if sd + su < 1.0 {
            continue;
        }
        let u = m.var(format!("up[{},{r}]", inst.id), m.int(0.0, su));
        let v = m.var(format!("down[{},{r}]", inst.id), m.int(0.0, sd));
        m.objective += w.unit_move * g / p.policy.unit[r] * (u + v);
        span[r] = (sd, su);
        (up[r], down[r]) = (Some(u), Some(v));
    }
    d.up.push(up);
    d.down.push(down);
    d.span.push(span);
    let migrate: Vec<(usize, Variable)> = inst
        .candidates
        .iter()
        .map(|&h| {
            (
                h,
                m.var(
                    format!("migrate[{},{}]", inst.id, p.hosts[h].id),
                    m.int(0.0, 1.0),
                ),
            )
        })
        .collect();
    // A migrant may resize as it lands, by its own steps per candidate (disaggregated, so
    // the LP relaxation cannot land a fraction of the instance at full size).
    let mut land = Vec::with_capacity(migrate.len());
    for &(h, x) in &migrate {
        m.objective += p.migration_cost(i, h) * x;
        let hid = &p.hosts[h].id;
        let steps = PerResource::from_fn(|r| {
            let (sd, su) = landing_steps(p, i, r);
            if sd + su < 1.0 {
                // Landing as it is must fit in the most room the host could offer.
                m.row(
                    format!("land_fit[{},{r},{hid}]", inst.id),
                    constraint!((inst.current[r] - d.room[h][r]) * x <= 0.0),
                );
                return None;
            }
            let lu = m.var(format!("land_up[{},{r},{hid}]", inst.id), m.int(0.0, su));
            let ld = m.var(format!("land_down[{},{r},{hid}]", inst.id), m.int(0.0, sd));
            m.row(
                format!("land_up_link[{},{r},{hid}]", inst.id),
                constraint!(lu <= su * x),
            );
            m.row(
                format!("land_down_link[{},{r},{hid}]", inst.id),
                constraint!(ld <= sd * x),
            );
            let g = p.policy.granularity[r];
            m.objective += w.unit_move * g / p.policy.unit[r] * (lu + ld);
            // The landing size must fit in the most room the host could offer.
            m.row(
                format!("land_fit[{},{r},{hid}]", inst.id),
                constraint!((inst.current[r] - d.room[h][r]) * x + g * lu - g * ld <= 0.0),
            );
            Some((lu, ld))
        });
        land.push(steps);
    }
    d.land.push(land);
    let steps_any = span.iter().any(|(_, &(sd, su))| sd + su > 0.0);
    let change = (steps_any || !migrate.is_empty()).then(|| {
        let z = m.var(format!("change[{}]", inst.id), m.int(0.0, 1.0));
        m.objective += w.change * z;
        z
    });
    d.change.push(change);
    d.migrate.push(migrate);
    link_change(p, m, d, i);
    add_demand(p, m, d, i);
}

/// How many of instance `i`'s candidate hosts it moves to: 0 or 1.
fn leave_expr(d: &Decisions, i: usize) -> Expression {
    d.migrate[i].iter().map(|&(_, x)| x).sum()
}

/// Any step or migration switches the change indicator on. Under hysteresis (a minimum
/// shrink of `ms > 1` steps) a grow or shrink indicator per resource keeps each shrink at 0
/// or at least `ms`, and never both directions at once. A migrant takes no steps here: it
/// resizes on landing instead.
fn link_change(p: &Problem, m: &mut Program, d: &mut Decisions, i: usize) {
    let Some(z) = d.change[i] else { return };
    let id = p.instances[i].id.clone();
    let leave = leave_expr(d, i);
    for r in Resource::ALL {
        let (Some(u), Some(v)) = (d.up[i][r], d.down[i][r]) else {
            continue;
        };
        let (sd, su) = d.span[i][r];
        let ms = p.min_shrink_steps(r, d.tight[p.instances[i].host][r]);
        if ms <= 1.0 {
            m.row(
                format!("change_up[{id},{r}]"),
                constraint!(u + su * leave.clone() <= su * z),
            );
            m.row(
                format!("change_down[{id},{r}]"),
                constraint!(v + sd * leave.clone() <= sd * z),
            );
            continue;
        }
        let (gu, gd) = (
            m.var(format!("grows[{id},{r}]"), m.int(0.0, 1.0)),
            m.var(format!("shrinks[{id},{r}]"), m.int(0.0, 1.0)),
        );
        m.row(format!("grow_max[{id},{r}]"), constraint!(u <= su * gu));
        m.row(format!("grow_min[{id},{r}]"), constraint!(u >= gu));
        m.row(format!("shrink_max[{id},{r}]"), constraint!(v <= sd * gd));
        m.row(format!("shrink_min[{id},{r}]"), constraint!(v >= ms * gd));
        m.row(
            format!("one_direction[{id},{r}]"),
            constraint!(gu + gd + leave.clone() <= z),
        );
        (d.grows[i][r], d.shrinks[i][r]) = (Some(gu), Some(gd));
    }
    m.row(format!("one_host[{id}]"), constraint!(leave <= 1.0));
    for &(h, x) in &d.migrate[i] {
        m.row(
            format!("migrate_link[{id},{}]", p.hosts[h].id),
            constraint!(x <= z),
        );
    }
}

/// Shortfall and idle cost against the forecast quantile, as one variable per instance and
/// resource bounded below by three planes: the shortfall line, the idle line, and the chord
/// between the two whole steps around the forecast. Their maximum equals the true cost at
/// every whole step, so the LP relaxation pays no rounding gap for the granularity.
fn add_demand(p: &Problem, m: &mut Program, d: &mut Decisions, i: usize) {
    let inst = &p.instances[i];
    let mut mismatch = Steps::default();
    for r in Resource::ALL {
        let Some(dem) = inst.demand[r] else { continue };
        let (a0, g) = (inst.current[r], p.policy.granularity[r]);
        let cost = |n: f64| p.mismatch_cost(i, r, a0 + g * n);
        let leave = leave_expr(d, i);
        let landings: Vec<(Variable, Variable)> = d.land[i].iter().filter_map(|l| l[r]).collect();
        let stay = d.up[i][r].zip(d.down[i][r]);
        if stay.is_none() && landings.is_empty() {
            d.offset += cost(0.0);
            continue;
        }
        let ((sd, su), (ld, lu)) = (d.span[i][r], landing_steps(p, i, r));
        let (lo, hi) = (-sd.max(ld), su.max(lu));
        let k = ((dem - a0) / g).floor().clamp(lo, hi - 1.0);
        let (ws, wi) = (
            p.policy.weights.shortfall / p.policy.unit[r],
            p.policy.weights.idle / p.policy.unit[r],
        );
        let id = &inst.id;
        let x = m.var(format!("mismatch[{id},{r}]"), variable().min(0));
        let mut n = Expression::from(0.0);
        for (up, down) in stay.into_iter().chain(landings) {
            n += Expression::from(up) - down;
        }
        let short = ws * (dem - a0) - ws * g * n.clone();
        let idle = wi * (a0 - dem) + wi * g * n.clone();
        let chord = cost(k) + (cost(k + 1.0) - cost(k)) * (n.clone() - k);
        m.row(
            format!("mismatch_short[{id},{r}]"),
            constraint!(x - short >= 0.0),
        );
        m.row(
            format!("mismatch_idle[{id},{r}]"),
            constraint!(x - idle >= 0.0),
        );
        m.row(
            format!("mismatch_steps[{id},{r}]"),
            constraint!(x - chord.clone() >= 0.0),
        );
        // The chord's perspective: with the move's indicator `w` off, `n` is 0 and the cost
        // is `cost(0)`; on, the chord holds. Exact at both ends, it stops the LP relaxation
        // from spreading fractional changes thinly over many instances.
        for j in [k - 1.0, k, k + 1.0] {
            if j < lo || j + 1.0 > hi || (j < 0.0 && j + 1.0 > 0.0) {
                continue;
            }
            // Off only when `n` is 0 or on the other side of 0.
            let side = if j >= 0.0 {
                d.grows[i][r]
            } else {
                d.shrinks[i][r]
            };
            let w = match (side, stay, d.change[i]) {
                (Some(w), ..) => w + leave.clone(),
                (None, Some(_), Some(z)) => z.into(),
                (None, None, _) => leave.clone(),
                (None, Some(_), None) => continue,
            };
            let slope = cost(j + 1.0) - cost(j);
            let lift = cost(0.0) - (cost(j) - slope * j);
            if lift > 1e-9 {
                let secant = cost(j) + slope * (n.clone() - j);
                m.row(
                    format!("mismatch_lift[{id},{r},{j}]"),
                    constraint!(x - secant - lift + lift * w.clone() >= 0.0),
                );
            }
        }
        m.objective += x;
        mismatch[r] = Some(x);
    }
    d.mismatch.push(mismatch);
}

/// Capacity of host `h` in `r`, while migrations land: the executor moves instances one at a
/// time, so an instance leaving `h` still occupies its current allocation there when others
/// arrive (a migrant takes no steps at home, and resizes as it lands).
fn add_capacity(p: &Problem, m: &mut Program, d: &Decisions, h: usize, r: Resource) {
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

/// Swaps on one host: donors give steps, receivers take them, and what is given equals
/// what is taken. Grows beyond the host's free capacity must be taken by swap. Without a
/// fixed cost per swap, pairing donors with receivers needs no variables of its own: at
/// one price per step, any split of the totals pays the same, so [`pair_swaps`] pairs them
/// after solving. With one, [`add_pairs`] pairs them in the program.
fn add_swaps(p: &Problem, m: &mut Program, d: &mut Decisions, h: usize, r: Resource) {
    let g = p.policy.granularity[r];
    let hid = p.hosts[h].id.clone();
    let on: Vec<usize> = d.residents[h]
        .iter()
        .copied()
        .filter(|&i| d.up[i][r].is_some())
        .collect();
    let (mut given, mut taken, mut grows) = (
        Expression::from(0.0),
        Expression::from(0.0),
        Expression::from(0.0),
    );
    for &i in &on {
        let id = &p.instances[i].id;
        let (sd, su) = d.span[i][r];
        // A migrant takes no steps at home (see `link_change`), so it neither gives nor takes.
        // Nobody gives more than the others could take. With that as the coefficient of its
        // shrink (or change) indicator, the LP relaxation cannot fund a small swap with a
        // sliver of a donor.
        let most = sd.min(d.caps.host_take[h][r] - d.caps.take[i][r]);
        if most >= 1.0 {
            let e = m.var(format!("give[{id},{r}]"), m.int(0.0, most));
            let down = d.down[i][r].expect("adjustable");
            m.row(format!("give_le_down[{id},{r}]"), constraint!(e <= down));
            if let (true, Some(w)) = (most < sd, d.shrinks[i][r].or(d.change[i])) {
                m.row(format!("give_need[{id},{r}]"), constraint!(e <= most * w));
            }
            given += e;
            d.give[i][r] = Some(e);
        }
        let up = d.up[i][r].expect("adjustable");
        let most = d.caps.take[i][r].min(su);
        if most >= 1.0 {
            let t = m.var(format!("take[{id},{r}]"), m.int(0.0, most));
            m.row(format!("take_le_up[{id},{r}]"), constraint!(t <= up));
            taken += t;
            d.take[i][r] = Some(t);
        }
        grows += up;
    }
    if p.policy.weights.swap > 0.0 {
        add_pairs(p, m, d, &on, r);
    } else {
        m.row(
            format!("swap_balance[{hid},{r}]"),
            constraint!(given - taken.clone() == 0.0),
        );
    }
    let used: f64 = d.residents[h]
        .iter()
        .map(|&i| p.instances[i].current[r])
        .sum::<f64>()
        + d.pool_use[h][r];
    // Stopping warm pool instances, or instances leaving, frees room for grows; starting
    // pool instances needs only `cap`.
    let (_, stopped) = pool_expr(p, d, h, r);
    let free = Expression::from((p.hosts[h].capacity[r] - used).max(0.0)) + stopped;
    let freed_by = |skip: Option<usize>| {
        let mut e = free.clone();
        for &i in d.residents[h].iter().filter(|&&i| Some(i) != skip) {
            e += p.instances[i].current[r] * leave_expr(d, i);
        }
        e
    };
    // A mover's own departure never makes room for its own growth here: without this
    // (valid) row the LP relaxation lets a fractional departure fund the stay.
    for &j in on.iter().filter(|&&j| !d.migrate[j].is_empty()) {
        let up = d.up[j][r].expect("adjustable");
        m.row(
            format!("cover_self[{},{r}]", p.instances[j].id),
            constraint!(g * up - g * taken.clone() <= freed_by(Some(j))),
        );
    }
    m.row(
        format!("cover[{hid},{r}]"),
        constraint!(g * grows - g * taken <= freed_by(None)),
    );
}

/// Explicit donor → receiver swaps on one host: a flow of steps per pair, whose indicator
/// pays the fixed swap cost once. Each donor's flows add up to what it gives and each
/// receiver's to what it takes.
fn add_pairs(p: &Problem, m: &mut Program, d: &mut Decisions, on: &[usize], r: Resource) {
    let mut incoming: HashMap<usize, Expression> = HashMap::new();
    for &i in on {
        let Some(give) = d.give[i][r] else { continue };
        let donor = &p.instances[i].id;
        let mut out = Expression::from(0.0);
        for &j in on.iter().filter(|&&j| j != i && d.take[j][r].is_some()) {
            let pair = format!("{donor}>{},{r}", p.instances[j].id);
            let most = d.span[i][r].0.min(d.span[j][r].1);
            let f = m.var(format!("swap[{pair}]"), m.int(0.0, most));
            let y = m.var(format!("swap_used[{pair}]"), m.int(0.0, 1.0));
            m.row(format!("swap_link[{pair}]"), constraint!(f <= most * y));
            m.objective += p.policy.weights.swap * y;
            out += f;
            *incoming.entry(j).or_default() += f;
            d.pairs.insert((i, j, r), (f, y));
        }
        m.row(
            format!("swap_give[{donor},{r}]"),
            constraint!(give - out == 0.0),
        );
    }
    for &j in on {
        if let Some(take) = d.take[j][r] {
            let got = incoming.remove(&j).unwrap_or_default();
            m.row(
                format!("swap_take[{},{r}]", p.instances[j].id),
                constraint!(take - got == 0.0),
            );
        }
    }
}

/// Receivers pay donors; nobody pays more than it has or receives more than fits under its
/// cap, bounded separately so balances stay in range in whatever order swaps run.
fn add_credits(p: &Problem, m: &mut Program, d: &Decisions) {
    for (k, inst) in p.instances.iter().enumerate() {
        let (mut pay, mut get) = (Expression::from(0.0), Expression::from(0.0));
        for r in Resource::ALL {
            let price = p.swap_price(r, p.policy.granularity[r]);
            if let Some(t) = d.take[k][r] {
                pay += price * t;
            }
            if let Some(e) = d.give[k][r] {
                get += price * e;
            }
        }
        let id = &inst.id;
        if Resource::ALL.iter().any(|&r| d.take[k][r].is_some()) {
            m.row(
                format!("credit_pay[{id}]"),
                constraint!(pay <= p.spendable(k)),
            );
        }
        if Resource::ALL.iter().any(|&r| d.give[k][r].is_some()) {
            m.row(
                format!("credit_cap[{id}]"),
                constraint!(get <= inst.credit_cap - inst.credits),
            );
        }
    }
}

fn add_budgets(p: &Problem, m: &mut Program, d: &Decisions) {
    let dis = &p.policy.disruption;
    let all: Expression = d.change.iter().flatten().copied().sum();
    m.row(
        "budget_changes".into(),
        constraint!(all <= dis.change_limit(p.instances.len()) as f64),
    );
    for (h, host) in p.hosts.iter().enumerate() {
        let here: Expression = d.residents[h].iter().filter_map(|&i| d.change[i]).sum();
        m.row(
            format!("budget_host[{}]", host.id),
            constraint!(here <= dis.max_changes_per_host as f64),
        );
    }
    let moves: Expression = d.migrate.iter().flatten().map(|&(_, x)| x).sum();
    m.row(
        "budget_migrations".into(),
        constraint!(moves <= dis.max_migrations as f64),
    );
}

pub(super) fn read_solution(p: &Problem, d: &Decisions, v: &[f64]) -> Solution {
    let val = |x: Variable| v[d.index[&x]].round();
    let alloc: Vec<PerResource<f64>> = (0..p.instances.len())
        .map(|i| {
            let landed = d.migrate[i].iter().position(|&(_, x)| val(x) > 0.5);
            PerResource::from_fn(|r| {
                let steps = match (landed, d.up[i][r], d.down[i][r]) {
                    (Some(k), ..) => d.land[i][k][r].map_or(0.0, |(lu, ld)| val(lu) - val(ld)),
                    (None, Some(u), Some(w)) => val(u) - val(w),
                    _ => 0.0,
                };
                round6(p.instances[i].current[r] + p.policy.granularity[r] * steps)
            })
        })
        .collect();
    let host = (0..p.instances.len())
        .map(|i| {
            d.migrate[i]
                .iter()
                .find(|&&(_, x)| val(x) > 0.5)
                .map_or(p.instances[i].host, |&(h, _)| h)
        })
        .collect();
    let steps_of = |x: Option<Variable>| x.map_or(0.0, val);
    let mut swaps = Vec::new();
    if d.pairs.is_empty() {
        for residents in &d.residents {
            for r in Resource::ALL {
                let given: Vec<(usize, f64)> = residents
                    .iter()
                    .map(|&i| (i, steps_of(d.give[i][r])))
                    .collect();
                let taken: Vec<(usize, f64)> = residents
                    .iter()
                    .map(|&i| (i, steps_of(d.take[i][r])))
                    .collect();
                swaps.extend(pair_swaps(p, r, given, taken));
            }
        }
    } else {
        let mut flows: Vec<(usize, Resource, usize, usize, f64)> = d
            .pairs
            .iter()
            .map(|(&(i, j, r), &(f, _))| (p.instances[i].host, r, j, i, val(f)))
            .filter(|&(.., steps)| steps > 0.5)
            .collect();
        // In the same order as `pair_swaps`: by host, resource and receiver.
        flows.sort_by_key(|&(h, r, receiver, donor, _)| (h, r, receiver, donor));
        for (_, r, receiver, donor, steps) in flows {
            let amount = round6(steps * p.policy.granularity[r]);
            swaps.push(Swap {
                donor,
                receiver,
                resource: r,
                amount,
                credits: p.swap_price(r, amount),
            });
        }
    }
    let warm = p
        .pools
        .iter()
        .zip(&d.pools)
        .map(|(pool, vars)| match vars {
            Some(v) => (f64::from(pool.warm) + val(v.start) - val(v.stop)) as u32,
            None => pool.warm,
        })
        .collect();
    Solution {
        ahead: ahead::read(p, d, val, &alloc),
        alloc,
        host,
        swaps,
        warm,
    }
}

/// Pairs each host's donors with its receivers, in index order, into explicit swaps.
fn pair_swaps(
    p: &Problem,
    r: Resource,
    mut given: Vec<(usize, f64)>,
    taken: Vec<(usize, f64)>,
) -> Vec<Swap> {
    let g = p.policy.granularity[r];
    let mut swaps = Vec::new();
    for (receiver, mut want) in taken {
        for (donor, left) in given.iter_mut() {
            if want < 0.5 {
                break;
            }
            if *donor == receiver || *left < 0.5 {
                continue;
            }
            let steps = want.min(*left);
            (*left, want) = (*left - steps, want - steps);
            let amount = round6(steps * g);
            swaps.push(Swap {
                donor: *donor,
                receiver,
                resource: r,
                amount,
                credits: p.swap_price(r, amount),
            });
        }
    }
    swaps
}

/// Column values that reproduce `s` (a greedy plan) in this program, for a warm start.
pub(super) fn start_values(p: &Problem, d: &Decisions, s: &Solution, n: usize) -> Vec<f64> {
    let mut v = vec![0.0; n];
    let mut set = |x: Variable, value: f64| v[d.index[&x]] = value;
    if let Some(fixed) = d.fixed {
        set(fixed, d.offset);
    }
    for (i, inst) in p.instances.iter().enumerate() {
        let moved = s.host[i] != inst.host;
        for r in Resource::ALL {
            let new = s.alloc[i][r];
            if let (Some(u), Some(w), false) = (d.up[i][r], d.down[i][r], moved) {
                let delta = ((new - inst.current[r]) / p.policy.granularity[r]).round();
                set(u, delta.max(0.0));
                set(w, (-delta).max(0.0));
                if let (Some(gu), Some(gd)) = (d.grows[i][r], d.shrinks[i][r]) {
                    set(gu, f64::from(u8::from(delta > 0.0)));
                    set(gd, f64::from(u8::from(delta < 0.0)));
                }
            }
            if let Some(x) = d.mismatch[i][r] {
                set(x, p.mismatch_cost(i, r, new));
            }
        }
        if let Some(z) = d.change[i] {
            set(z, f64::from(u8::from(p.changes(s, i))));
        }
        for (k, &(h, x)) in d.migrate[i].iter().enumerate() {
            if s.host[i] != h {
                continue;
            }
            set(x, 1.0);
            for r in Resource::ALL {
                if let Some((lu, ld)) = d.land[i][k][r] {
                    let delta =
                        ((s.alloc[i][r] - inst.current[r]) / p.policy.granularity[r]).round();
                    set(lu, delta.max(0.0));
                    set(ld, (-delta).max(0.0));
                }
            }
        }
    }
    for (k, vars) in d.pools.iter().enumerate() {
        let Some(pv) = vars else { continue };
        let (now, new) = (p.pools[k].warm, s.warm[k]);
        v[d.index[&pv.start]] = f64::from(new.saturating_sub(now));
        v[d.index[&pv.stop]] = f64::from(now.saturating_sub(new));
        v[d.index[&pv.change]] = f64::from(u8::from(new != now));
        v[d.index[&pv.mismatch]] = p.pool_cost(k, new);
    }
    for sw in &s.swaps {
        let steps = (sw.amount / p.policy.granularity[sw.resource]).round();
        let sides = [
            d.give[sw.donor][sw.resource],
            d.take[sw.receiver][sw.resource],
        ];
        for x in sides.into_iter().flatten() {
            v[d.index[&x]] += steps;
        }
        if let Some(&(f, y)) = d.pairs.get(&(sw.donor, sw.receiver, sw.resource)) {
            v[d.index[&f]] += steps;
            v[d.index[&y]] = 1.0;
        }
    }
    ahead::start(p, d, s, &mut v);
    v
}
