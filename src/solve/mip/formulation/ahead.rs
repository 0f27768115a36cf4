//! Look-ahead: the later intervals of a plan made over several, jointly with the first.
//!
//! Only the first interval is emitted; the later ones are there so that what is done now
//! pays for what is predicted next (grow now or later; do not shrink what will be needed
//! again). Each later interval resizes in whole steps against its own forecast, within the
//! hosts' capacity, the change budgets and the cool-down, and growth beyond a host's free
//! room is a swap the receiver pays for in credits. Later intervals do not migrate: an
//! instance stays where the first interval leaves it, and one that may migrate now keeps
//! its first-interval size (the next run plans again with fresh forecasts anyway).

use super::instance::leave_expr;
use super::pool::pool_expr;
use super::steps::{limits, steps, toward_forecast};
use super::{Decisions, Program, Steps};
use crate::problem::{Problem, Solution};
use crate::resource::{PerResource, Resource};
use crate::units::round6;
use good_lp::{constraint, variable, Expression, Variable};

/// Per later interval `t`, instance and resource: the look-ahead's variables.
pub(super) struct Later {
    /// Steps from the current allocation at the end of interval `t`.
    pub(super) level: Vec<Vec<Steps>>,
    up: Vec<Vec<Steps>>,
    down: Vec<Vec<Steps>>,
    grows: Vec<Vec<Steps>>,
    shrinks: Vec<Vec<Steps>>,
    change: Vec<Vec<Option<Variable>>>,
    mismatch: Vec<Vec<Steps>>,
    give: Vec<Vec<Steps>>,
    take: Vec<Vec<Steps>>,
}

impl Later {
    /// Room for `intervals` later intervals of `n` instances.
    pub(super) fn new(intervals: usize, n: usize) -> Later {
        let steps = || vec![vec![Steps::default(); n]; intervals];
        Later {
            level: steps(),
            up: steps(),
            down: steps(),
            grows: steps(),
            shrinks: steps(),
            change: vec![vec![None; n]; intervals],
            mismatch: steps(),
            give: steps(),
            take: steps(),
        }
    }
}

/// Interval `t` of the look-ahead (0 is the one after the first) as a name suffix.
fn at(t: usize) -> String {
    format!("@{}", t + 2)
}

/// Whether instance `i` may resize `r` in later interval `t`: it cannot migrate now, and
/// has a forecast then and room to move.
fn resizable(p: &Problem, i: usize, r: Resource, t: usize) -> bool {
    let inst = &p.instances[i];
    inst.candidates.is_empty() && inst.ahead[t][r].is_some() && inst.max[r] > inst.min[r]
}

/// Whether instance `i` is still in the cool-down of the change before this plan when later
/// interval `t` starts.
fn cooling(p: &Problem, i: usize, t: usize) -> bool {
    let starts = (t as u64 + 1) * u64::from(p.policy.interval_minutes);
    u64::from(p.instances[i].cooling) > starts
}

/// Whole steps `(below, above)` the current allocation instance `i`'s level in `r` may take
/// in later interval `t`: never below what it keeps then (unless the first interval may
/// already go lower), and never above the step that covers its highest forecast, as the
/// first interval (beyond it a resize only adds idle cost).
fn range(p: &Problem, d: &Decisions, i: usize, r: Resource, t: usize) -> (f64, f64) {
    let inst = &p.instances[i];
    let (g, (down, up)) = (p.policy.granularity[r], limits(p, i, r));
    let keep = inst.ahead[t][r].map_or(0.0, |dem| dem.max(inst.floor[r]));
    let below = down.min(steps(inst.current[r] - keep, g).max(d.span[i][r].0));
    let want = toward_forecast(p, i, r).map_or(0.0, |(_, want)| want);
    let above = up.min(want);
    (below, above)
}

/// Steps from the current allocation after the first interval, where the instance stays
/// (a migrant takes none at home) and wherever it ends up (landing steps included).
fn first_steps(d: &Decisions, i: usize, r: Resource) -> (Option<Expression>, Option<Expression>) {
    let stay = d.up[i][r]
        .zip(d.down[i][r])
        .map(|(u, v)| Expression::from(u) - v);
    let mut total = stay.clone();
    for (lu, ld) in d.land[i].iter().filter_map(|l| l[r]) {
        *total.get_or_insert_with(Expression::default) += Expression::from(lu) - ld;
    }
    (stay, total)
}

/// Adds every later interval's variables and rows.
pub(super) fn add(p: &Problem, m: &mut Program, d: &mut Decisions) {
    if d.later.level.is_empty() {
        return;
    }
    let n = p.instances.len();
    // Running steps per instance and resource: at home (for capacity) and in all.
    let mut home: Vec<PerResource<Option<Expression>>> = Vec::with_capacity(n);
    let mut total: Vec<PerResource<Option<Expression>>> = Vec::with_capacity(n);
    for i in 0..n {
        let both = PerResource::from_fn(|r| first_steps(d, i, r));
        home.push(PerResource::from_fn(|r| both[r].0.clone()));
        total.push(PerResource::from_fn(|r| both[r].1.clone()));
    }
    for t in 0..d.later.level.len() {
        let before = home.clone();
        for i in 0..n {
            add_steps(p, m, d, i, t, &mut home[i], &mut total[i]);
        }
        for h in 0..p.hosts.len() {
            for r in Resource::ALL {
                add_host(p, m, d, &before, h, r, t);
            }
        }
        add_credits(p, m, d, t);
        add_budgets(p, m, d, t);
    }
}

/// Instance `i`'s steps, change indicator and mismatch cost in later interval `t`.
fn add_steps(
    p: &Problem,
    m: &mut Program,
    d: &mut Decisions,
    i: usize,
    t: usize,
    home: &mut PerResource<Option<Expression>>,
    total: &mut PerResource<Option<Expression>>,
) {
    let inst = &p.instances[i];
    let (id, w, tag) = (&inst.id, &p.policy.weights, at(t));
    let mut vars = [Steps::default(), Steps::default(), Steps::default()];
    let resizes: Vec<Resource> = Resource::ALL
        .into_iter()
        .filter(|&r| {
            // With no room to move, it keeps its level, unless an earlier later interval
            // may have left it outside this one's range.
            let (below, above) = range(p, d, i, r, t);
            let moved = (0..t).any(|s| d.later.level[s][i][r].is_some());
            resizable(p, i, r, t) && (below + above >= 1.0 || moved)
        })
        .collect();
    let z = (!resizes.is_empty()).then(|| {
        let z = m.var(format!("change[{id}{tag}]"), m.int(0.0, 1.0));
        m.objective += w.change * z;
        z
    });
    for &r in &resizes {
        let g = p.policy.granularity[r];
        let (below, above) = range(p, d, i, r, t);
        let level = m.var(format!("level[{id},{r}{tag}]"), m.int(-below, above));
        // From any level an interval allows to any other.
        let lowest = (0..inst.ahead.len())
            .map(|s| range(p, d, i, r, s).0)
            .fold(d.span[i][r].0, f64::max);
        let span = lowest + above;
        let u = m.var(format!("up[{id},{r}{tag}]"), m.int(0.0, span));
        // In a cool-down it may only grow (see `add_cooldown`).
        let shrink = if cooling(p, i, t) { 0.0 } else { span };
        let v = m.var(format!("down[{id},{r}{tag}]"), m.int(0.0, shrink));
        let before = home[r].clone().unwrap_or_default();
        m.row(
            format!("level_link[{id},{r}{tag}]"),
            constraint!(level - before - u + v == 0.0),
        );
        m.objective += w.unit_move * g / p.policy.unit[r] * (u + v);
        let z = z.expect("a resize has an indicator");
        // A direction per resource, even without hysteresis: growing and shrinking at once
        // would let an instance sell steps it takes back, and bank the credits for later.
        let ms = p.min_shrink_steps(r, d.tight[inst.host][r]);
        let gu = m.var(format!("grows[{id},{r}{tag}]"), m.int(0.0, 1.0));
        let gd = m.var(format!("shrinks[{id},{r}{tag}]"), m.int(0.0, 1.0));
        m.row(
            format!("grow_max[{id},{r}{tag}]"),
            constraint!(u <= span * gu),
        );
        m.row(format!("grow_min[{id},{r}{tag}]"), constraint!(u >= gu));
        m.row(
            format!("shrink_max[{id},{r}{tag}]"),
            constraint!(v <= span * gd),
        );
        m.row(
            format!("shrink_min[{id},{r}{tag}]"),
            constraint!(v >= ms * gd),
        );
        m.row(
            format!("one_direction[{id},{r}{tag}]"),
            constraint!(gu + gd <= z),
        );
        (vars[1][r], vars[2][r]) = (Some(gu), Some(gd));
        (vars[0][r], home[r], total[r]) = (Some(level), Some(level.into()), Some(level.into()));
        d.later.up[t][i][r] = Some(u);
        d.later.down[t][i][r] = Some(v);
    }
    let [level, grows, shrinks] = vars;
    d.later.level[t][i] = level;
    d.later.grows[t][i] = grows;
    d.later.shrinks[t][i] = shrinks;
    d.later.change[t][i] = z;
    if z.is_some() {
        add_cooldown(p, m, d, i, t);
    }
    for r in Resource::ALL {
        let Some(dem) = inst.ahead[t][r] else {
            continue;
        };
        let (a0, g) = (inst.current[r], p.policy.granularity[r]);
        let Some(n) = total[r].clone() else {
            d.offset += p.mismatch_against(Some(dem), r, a0);
            continue;
        };
        let unit = p.policy.unit[r];
        let (ws, wi) = (w.shortfall / unit, w.idle / unit);
        let x = m.var(format!("mismatch[{id},{r}{tag}]"), variable().min(0));
        // The chord between the whole steps around the forecast, where the level can move:
        // exact at every whole step, it stops the relaxation from pricing a fraction.
        let (below, above) = range(p, d, i, r, t);
        if let (Some(level), true) = (d.later.level[t][i][r], below + above >= 1.0) {
            let cost = |n: f64| p.mismatch_against(Some(dem), r, a0 + g * n);
            let k = ((dem - a0) / g).floor().clamp(-below, above - 1.0);
            let slope = cost(k + 1.0) - cost(k);
            m.row(
                format!("mismatch_steps[{id},{r}{tag}]"),
                constraint!(x - slope * level >= cost(k) - slope * k),
            );
        }
        m.row(
            format!("mismatch_short[{id},{r}{tag}]"),
            constraint!(x - ws * (dem - a0) + ws * g * n.clone() >= 0.0),
        );
        m.row(
            format!("mismatch_idle[{id},{r}{tag}]"),
            constraint!(x - wi * (a0 - dem) - wi * g * n >= 0.0),
        );
        m.objective += x;
        d.later.mismatch[t][i][r] = Some(x);
    }
}

/// Within the cool-down of a change planned before it, an instance may only grow in later
/// interval `t`. At run time a cool-down is lifted for an instance short of its forecast,
/// and growing is what the program does about that; shrinking waits for the cool-down.
fn add_cooldown(p: &Problem, m: &mut Program, d: &Decisions, i: usize, t: usize) {
    let minutes = u64::from(p.policy.interval_minutes);
    let id = &p.instances[i].id;
    // Interval k (0 is the first) starts (k · interval) minutes from now.
    for k in 0..=t {
        if (t as u64 + 1 - k as u64) * minutes >= u64::from(p.policy.disruption.cooldown_minutes) {
            continue;
        }
        let earlier = match k {
            0 => d.change[i],
            _ => d.later.change[k - 1][i],
        };
        let Some(e) = earlier else { continue };
        for r in Resource::ALL {
            if let Some(gd) = d.later.shrinks[t][i][r] {
                m.row(
                    format!("cooldown[{id},{r}{},{}]", at(t), k + 1),
                    constraint!(gd + e <= 1.0),
                );
            }
        }
    }
}

/// What host `h` holds of `r` with everyone at `home` steps, migrations done and pools as
/// the first interval leaves them.
fn used(
    p: &Problem,
    d: &Decisions,
    home: &[PerResource<Option<Expression>>],
    h: usize,
    r: Resource,
) -> Expression {
    let g = p.policy.granularity[r];
    let mut e = Expression::from(d.pool_use[h][r]);
    for &i in &d.residents[h] {
        e += p.instances[i].current[r] - p.instances[i].current[r] * leave_expr(d, i);
        if let Some(n) = &home[i][r] {
            e += g * n.clone();
        }
    }
    for &(i, k) in &d.arrivals[h] {
        e += p.instances[i].current[r] * d.migrate[i][k].1;
        if let Some((lu, ld)) = d.land[i][k][r] {
            e += g * (Expression::from(lu) - ld);
        }
    }
    let (started, stopped) = pool_expr(p, d, h, r);
    e + started - stopped
}

/// Swaps on host `h` in `r` in later interval `t`, where something resizes then: growth
/// beyond the room the interval before left is taken from donors shrinking in the same
/// interval. As what is taken is at most what shrinks, this also keeps the host within
/// capacity at the end of the interval.
fn add_host(
    p: &Problem,
    m: &mut Program,
    d: &mut Decisions,
    before: &[PerResource<Option<Expression>>],
    h: usize,
    r: Resource,
    t: usize,
) {
    let resizing: Vec<usize> = d.residents[h]
        .iter()
        .copied()
        .filter(|&i| d.later.up[t][i][r].is_some())
        .collect();
    if resizing.is_empty() {
        return;
    }
    let (hid, tag, cap, g) = (
        &p.hosts[h].id,
        at(t),
        p.hosts[h].capacity[r],
        p.policy.granularity[r],
    );
    let (mut given, mut taken, mut grows) = (
        Expression::from(0.0),
        Expression::from(0.0),
        Expression::from(0.0),
    );
    for i in resizing {
        let (Some(u), Some(v)) = (d.later.up[t][i][r], d.later.down[t][i][r]) else {
            continue;
        };
        let (id, (down, up)) = (&p.instances[i].id, limits(p, i, r));
        let e = m.var(format!("give[{id},{r}{tag}]"), m.int(0.0, down + up));
        let k = m.var(format!("take[{id},{r}{tag}]"), m.int(0.0, down + up));
        m.row(format!("give_le_down[{id},{r}{tag}]"), constraint!(e <= v));
        m.row(format!("take_le_up[{id},{r}{tag}]"), constraint!(k <= u));
        given += e;
        taken += k;
        grows += u;
        d.later.give[t][i][r] = Some(e);
        d.later.take[t][i][r] = Some(k);
    }
    m.row(
        format!("swap_balance[{hid},{r}{tag}]"),
        constraint!(given - taken.clone() == 0.0),
    );
    m.row(
        format!("cover[{hid},{r}{tag}]"),
        constraint!(used(p, d, before, h, r) + g * grows - g * taken <= cap),
    );
}

/// What instance `i` pays and is paid for swaps: in the first interval, and in each later
/// one up to `t`.
fn credit_flows(p: &Problem, d: &Decisions, i: usize, t: usize) -> Vec<(Expression, Expression)> {
    let flow = |take: &Steps, give: &Steps| {
        let (mut pay, mut get) = (Expression::from(0.0), Expression::from(0.0));
        for r in Resource::ALL {
            let price = p.swap_price(r, p.policy.granularity[r]);
            if let Some(k) = take[r] {
                pay += price * k;
            }
            if let Some(e) = give[r] {
                get += price * e;
            }
        }
        (pay, get)
    };
    std::iter::once(flow(&d.take[i], &d.give[i]))
        .chain((0..=t).map(|s| flow(&d.later.take[s][i], &d.later.give[s][i])))
        .collect()
}

/// Credits in later interval `t`. A receiver pays from its balance as it stands then: what
/// it had, less what its predicted use burns through that interval (earnings ignored, so
/// this errs on the safe side), less what it paid and plus what it was paid before. The row
/// holds only when it pays (`pays`); a balance run down by bursting is no error by itself.
/// A donor's balance stays under its cap, burns ignored likewise.
fn add_credits(p: &Problem, m: &mut Program, d: &Decisions, t: usize) {
    for (i, inst) in p.instances.iter().enumerate() {
        let takes: Vec<(Resource, Variable)> = Resource::ALL
            .into_iter()
            .filter_map(|r| d.later.take[t][i][r].map(|k| (r, k)))
            .collect();
        let gives = Resource::ALL
            .iter()
            .any(|&r| d.later.give[t][i][r].is_some());
        if takes.is_empty() && !gives {
            continue;
        }
        let flows = credit_flows(p, d, i, t);
        let (id, tag) = (&inst.id, at(t));
        // Paid minus received over the intervals before this one, and this one's payment.
        let mut net = Expression::from(0.0);
        for (pay, get) in &flows[..flows.len() - 1] {
            net += pay.clone() - get.clone();
        }
        let (pay, get) = flows
            .last()
            .expect("the first interval and this one")
            .clone();
        if !takes.is_empty() {
            let pays = m.var(format!("pays[{id}{tag}]"), m.int(0.0, 1.0));
            let mut most = 0.0;
            for &(r, k) in &takes {
                let (down, up) = limits(p, i, r);
                let steps = down + up;
                m.row(
                    format!("pays_link[{id},{r}{tag}]"),
                    constraint!(k <= steps * pays),
                );
                most += p.swap_price(r, p.policy.granularity[r]) * steps;
            }
            let burnt = inst.credits - p.spendable_by(i, t + 1).min(inst.credits);
            let big = most * (t as f64 + 2.0) + inst.credits + burnt.abs() + inst.credit_cap;
            m.row(
                format!("credit_pay[{id}{tag}]"),
                constraint!(pay + net.clone() + big * pays <= inst.credits - burnt + big),
            );
        }
        if gives {
            m.row(
                format!("credit_cap[{id}{tag}]"),
                constraint!(get - net <= inst.credit_cap - inst.credits),
            );
        }
    }
}

/// The change budgets hold in every later interval too.
fn add_budgets(p: &Problem, m: &mut Program, d: &Decisions, t: usize) {
    let dis = &p.policy.disruption;
    let changes = &d.later.change[t];
    if changes.iter().all(Option::is_none) {
        return;
    }
    let all: Expression = changes.iter().flatten().copied().sum();
    m.row(
        format!("budget_changes{}", at(t)),
        constraint!(all <= dis.change_limit(p.instances.len()) as f64),
    );
    for (h, host) in p.hosts.iter().enumerate() {
        let here: Vec<Variable> = d.residents[h].iter().filter_map(|&i| changes[i]).collect();
        if !here.is_empty() {
            let here: Expression = here.into_iter().sum();
            m.row(
                format!("budget_host[{}{}]", host.id, at(t)),
                constraint!(here <= dis.max_changes_per_host as f64),
            );
        }
    }
}

/// Each later interval's allocations from the solved columns (`first` is the first
/// interval's); instances with nothing to resize then keep the interval before's.
pub(super) fn read(
    p: &Problem,
    d: &Decisions,
    val: impl Fn(Variable) -> f64,
    first: &[PerResource<f64>],
) -> Vec<Vec<PerResource<f64>>> {
    let mut out: Vec<Vec<PerResource<f64>>> = Vec::with_capacity(d.later.level.len());
    for t in 0..d.later.level.len() {
        let prev = out.last().map_or(first, Vec::as_slice);
        let now = (0..p.instances.len())
            .map(|i| {
                PerResource::from_fn(|r| match d.later.level[t][i][r] {
                    Some(n) => round6(p.instances[i].current[r] + p.policy.granularity[r] * val(n)),
                    None => prev[i][r],
                })
            })
            .collect();
        out.push(now);
    }
    out
}

/// Sets the later intervals' columns to reproduce `s` (held, for a greedy plan).
pub(super) fn start(p: &Problem, d: &Decisions, s: &Solution, v: &mut [f64]) {
    let mut set = |x: Variable, value: f64| v[d.index[&x]] = value;
    for t in 0..d.later.level.len() {
        for (i, inst) in p.instances.iter().enumerate() {
            let (before, after) = match t {
                0 => (s.alloc[i], s.later(0, i)),
                _ => (s.later(t - 1, i), s.later(t, i)),
            };
            let mut changed = false;
            for r in Resource::ALL {
                let g = p.policy.granularity[r];
                let delta = ((after[r] - before[r]) / g).round();
                changed |= delta != 0.0;
                if let Some(n) = d.later.level[t][i][r] {
                    set(n, ((after[r] - inst.current[r]) / g).round());
                }
                let pairs = [
                    (d.later.up[t][i][r], delta.max(0.0)),
                    (d.later.down[t][i][r], (-delta).max(0.0)),
                    (d.later.grows[t][i][r], f64::from(u8::from(delta > 0.0))),
                    (d.later.shrinks[t][i][r], f64::from(u8::from(delta < 0.0))),
                ];
                for (x, value) in pairs {
                    if let Some(x) = x {
                        set(x, value);
                    }
                }
                if let Some(x) = d.later.mismatch[t][i][r] {
                    set(x, p.mismatch_against(inst.ahead[t][r], r, after[r]));
                }
            }
            if let Some(z) = d.later.change[t][i] {
                set(z, f64::from(u8::from(changed)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::problem::Problem;
    use crate::solve::mip::formulation::tests::{myopic, problem};
    use crate::solve::mip::solve;

    /// CPU of instance `i` in each interval of the solution.
    fn cpu_path(p: &Problem, i: usize) -> Vec<f64> {
        let (s, _) = solve(p, None).unwrap();
        std::iter::once(s.alloc[i].cpu)
            .chain((0..s.ahead.len()).map(|t| s.later(t, i).cpu))
            .collect()
    }

    #[test]
    fn a_peak_in_the_last_interval_is_met_then_and_not_paid_for_as_idle_before() {
        // Growing now costs 2 idle cores for three intervals; growing in the last one only
        // the change.
        let p = problem(8.0, &[(1.0, 0.0, [1.0, 1.0, 1.0, 3.0])]);
        assert_eq!(cpu_path(&p, 0), vec![1.0, 1.0, 1.0, 3.0]);
        // Provisioned for the whole horizon's peak instead, it grows now.
        let mut peak = myopic(p);
        peak.instances[0].demand.cpu = Some(3.0);
        assert_eq!(cpu_path(&peak, 0), vec![3.0]);
    }

    #[test]
    fn a_dip_is_not_shrunk_when_the_need_returns() {
        // Idle costs 2 a core: a one-interval view shrinks the dip by 2 cores (saving 4 for a
        // change costing 3), but growing back in the next interval costs 3 more.
        let mut p = problem(8.0, &[(3.0, 0.0, [1.0, 3.0, 3.0, 3.0])]);
        p.policy.weights.idle = 2.0;
        assert_eq!(cpu_path(&p, 0), vec![3.0; 4]);
        assert_eq!(cpu_path(&myopic(p), 0), vec![1.0]);
    }

    #[test]
    fn later_growth_beyond_free_room_is_a_swap_the_receiver_pays_for() {
        // A full host: vm-0 needs 3 cores from the second interval, vm-1 can give 2 then.
        // A core for 15 minutes costs 15 credits, and at 3 cores vm-0 burns 30 credits an
        // interval (its baseline is one core).
        let with = |credits| {
            let p = problem(
                4.0,
                &[
                    (1.0, credits, [1.0, 3.0, 3.0, 3.0]),
                    (3.0, 0.0, [3.0, 1.0, 1.0, 1.0]),
                ],
            );
            (cpu_path(&p, 0), cpu_path(&p, 1))
        };
        // 60 credits: 30 burnt by the second interval, 30 to pay for two cores then.
        let full = (vec![1.0, 3.0, 3.0, 3.0], vec![3.0, 1.0, 1.0, 1.0]);
        assert_eq!(with(60.0), full);
        // 59: it pays for what it can (1.75 cores, 26.25 of the 29 credits left), and takes
        // the last step in the third interval from the room the donor freed (a grow has no
        // hysteresis minimum).
        assert_eq!(with(59.0).0, vec![1.0, 2.75, 3.0, 3.0]);
        // 30: nothing left after the burn; it waits for the freed room.
        assert_eq!(with(30.0).0, vec![1.0, 1.0, 3.0, 3.0]);
        // With free room, no credits are needed.
        let roomy = problem(6.0, &[(1.0, 0.0, [1.0, 3.0, 3.0, 3.0])]);
        assert_eq!(cpu_path(&roomy, 0), vec![1.0, 3.0, 3.0, 3.0]);
    }

    #[test]
    fn the_plan_is_priced_as_assessed_and_never_worse_than_holding_greedy() {
        let p = problem(
            4.0,
            &[
                (1.0, 80.0, [1.0, 3.0, 2.0, 3.0]),
                (3.0, 0.0, [3.0, 1.0, 1.0, 1.0]),
            ],
        );
        let greedy = crate::solve::greedy::solve(&p);
        let (s, stats) = solve(&p, Some(&greedy)).unwrap();
        assert!(
            stats.gap().is_some_and(|g| g <= 1e-9),
            "HiGHS' bound equals the assessed objective"
        );
        let (mip, held) = (p.assess(&s), p.assess(&greedy));
        assert!(mip.objective <= held.objective, "{mip:?} vs {held:?}");
        assert!(mip.later > 0.0 && s.ahead.len() == 3);
    }
}
