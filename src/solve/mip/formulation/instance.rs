//! One instance's columns: its up and down steps, a migration per candidate host with the
//! steps it resizes by as it lands, and the change indicator any move switches on.
//!
//! A migrant takes no steps at home: it resizes as it lands, by landing columns of its own
//! per candidate (disaggregated, so the LP relaxation cannot land a fraction of the instance
//! at full size). Under hysteresis a grow and a shrink indicator per resource keep a shrink
//! at 0 or at least the minimum, and the two directions apart.

use super::steps::{landing_steps, useful_steps};
use super::{demand, Decisions, Program, Steps};
use crate::problem::Problem;
use crate::resource::{PerResource, Resource};
use good_lp::{constraint, Expression, Variable};

/// Instance `i`'s step columns, its candidate migrations with their landing steps, its
/// change indicator, and its mismatch cost.
pub(super) fn add_instance(p: &Problem, m: &mut Program, d: &mut Decisions, i: usize) {
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
    demand::add_demand(p, m, d, i);
}

/// How many of instance `i`'s candidate hosts it moves to: 0 or 1.
pub(super) fn leave_expr(d: &Decisions, i: usize) -> Expression {
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

#[cfg(test)]
mod tests {
    use crate::solve::mip::formulation::tests::{host, terms, this_interval, Built};
    use crate::solve::mip::solve;

    #[test]
    fn an_instance_with_no_useful_move_has_no_columns_and_no_change_indicator() {
        // vm-0 is at its forecast, vm-1 below it.
        let built = Built::new(&this_interval(8.0, &[(1.0, 0.0, 1.0), (1.0, 0.0, 2.0)]));
        for name in ["up[vm-0,cpu]", "down[vm-0,cpu]", "change[vm-0]"] {
            assert_eq!(built.bounds(name), None, "{name}");
        }
        for name in ["up[vm-1,cpu]", "down[vm-1,cpu]", "change[vm-1]"] {
            assert!(built.bounds(name).is_some(), "{name}");
        }
    }

    #[test]
    fn under_hysteresis_a_shrink_is_none_or_at_least_the_minimum_and_one_way_at_a_time() {
        // Five steps above its forecast, on a host with room: the minimum shrink is 2 steps.
        let built = Built::new(&this_interval(8.0, &[(3.0, 0.0, 1.6)]));
        // `down` is at most 5 steps, and only with `shrinks` on; then at least 2.
        let (row, _) = built.row("shrink_max[vm-0,cpu]");
        assert_eq!(
            row,
            terms(&[("down[vm-0,cpu]", 1.0), ("shrinks[vm-0,cpu]", -5.0)])
        );
        let (row, _) = built.row("shrink_min[vm-0,cpu]");
        assert_eq!(
            row,
            terms(&[("down[vm-0,cpu]", -1.0), ("shrinks[vm-0,cpu]", 2.0)])
        );
        let (row, _) = built.row("one_direction[vm-0,cpu]");
        let one_way = [
            ("grows[vm-0,cpu]", 1.0),
            ("shrinks[vm-0,cpu]", 1.0),
            ("change[vm-0]", -1.0),
        ];
        assert_eq!(row, terms(&one_way));
        // On a tight host (vm-1 is short and there is no room) one step is enough: the change
        // indicator alone gates the shrink.
        let built = Built::new(&this_interval(4.0, &[(3.0, 0.0, 1.6), (1.0, 0.0, 4.0)]));
        assert_eq!(built.bounds("shrinks[vm-0,cpu]"), None);
        let (row, _) = built.row("change_down[vm-0,cpu]");
        assert_eq!(
            row,
            terms(&[("down[vm-0,cpu]", 1.0), ("change[vm-0]", -5.0)])
        );
    }

    #[test]
    fn a_migrant_resizes_to_its_forecast_as_it_lands() {
        // A full host: vm-0 needs 3 cores and has no credits; another host has room.
        let mut p = this_interval(2.0, &[(1.0, 0.0, 3.0), (1.0, 0.0, 1.0)]);
        p.hosts.push(host("h1", 8.0));
        p.instances[0].candidates = vec![1];
        let (s, _) = solve(&p, None).unwrap();
        assert_eq!((s.host[0], s.alloc[0].cpu), (1, 3.0));
    }
}
