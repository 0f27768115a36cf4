//! What an allocation costs against its forecast: shortfall below it and idle allocation
//! above it, in one column per instance and resource.
//!
//! The column is bounded below by planes rather than tied to the steps: the shortfall and
//! idle lines, the steeper idle line above the ceiling (room unused for a day), the chord
//! between the whole steps around the forecast, and that chord's perspective on the move's
//! indicator. Their maximum is exact at every whole step, so the LP relaxation pays no
//! rounding gap for the granularity and cannot spread fractional changes thinly over many
//! instances. A resource nothing can move costs a constant, carried by the program's fixed
//! column.

use super::instance::leave_expr;
use super::steps::landing_steps;
use super::{Decisions, Program, Steps};
use crate::problem::Problem;
use crate::resource::Resource;
use good_lp::{constraint, variable, Expression, Variable};

/// Shortfall and idle cost against the forecast quantile, as one variable per instance and
/// resource bounded below by planes: the shortfall line, the idle line (steeper above the
/// ceiling), and the chord between the two whole steps around the forecast. Their maximum
/// equals the true cost at every whole step, so the LP relaxation pays no rounding gap for the granularity.
pub(super) fn add_demand(p: &Problem, m: &mut Program, d: &mut Decisions, i: usize) {
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
        let wu = p.unused_weight(r);
        if let Some(u) = p
            .unused_above(i, r)
            .filter(|&u| wu > 0.0 && u < a0 + g * hi)
        {
            let unused = wi * (a0 - dem) + wu * (a0 - u) + (wi + wu) * g * n.clone();
            m.row(
                format!("mismatch_unused[{id},{r}]"),
                constraint!(x - unused >= 0.0),
            );
        }
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

#[cfg(test)]
mod tests {
    use crate::problem::Problem;
    use crate::resource::Resource::Cpu;
    use crate::solve::mip::formulation::tests::{this_interval, Built};

    /// The least cost the `mismatch_*` rows of instance `id` allow, its columns `at` these
    /// values (and the cost column at 0).
    fn least(built: &Built, id: &str, at: &[(&str, f64)]) -> f64 {
        let cost = format!("mismatch[{id},cpu]");
        let mut most = f64::NEG_INFINITY;
        for row in built.rows("mismatch_") {
            if row.contains(&format!("[{id},cpu")) {
                // Each row reads `planes - cost <= 0`.
                assert_eq!(built.row(row).0[&cost], -1.0, "{row}");
                most = most.max(built.value(row, at));
            }
        }
        most
    }

    /// The true cost of instance `i` moved by `n` steps of 0.25 cores.
    fn cost(p: &Problem, i: usize, n: f64) -> f64 {
        p.mismatch_cost(i, Cpu, p.instances[i].current.cpu + 0.25 * n)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_mismatch_planes_are_exact_at_every_whole_step() {
        // vm-0 may grow 3 steps toward 1.6 cores, vm-1 shrink 5.
        let p = this_interval(8.0, &[(1.0, 0.0, 1.6), (3.0, 0.0, 1.6)]);
        let built = Built::new(&p);
        for n in 0..=3 {
            let (n, on) = (f64::from(n), f64::from(u8::from(n > 0)));
            let at = [
                ("up[vm-0,cpu]", n),
                ("grows[vm-0,cpu]", on),
                ("change[vm-0]", on),
            ];
            let (least, cost) = (least(&built, "vm-0", &at), cost(&p, 0, n));
            assert!(close(least, cost), "up {n}: {least} against {cost}");
        }
        for n in 0..=5 {
            let (n, on) = (f64::from(n), f64::from(u8::from(n > 0)));
            let at = [
                ("down[vm-1,cpu]", n),
                ("shrinks[vm-1,cpu]", on),
                ("change[vm-1]", on),
            ];
            let (least, cost) = (least(&built, "vm-1", &at), cost(&p, 1, -n));
            assert!(close(least, cost), "down {n}: {least} against {cost}");
        }
    }

    #[test]
    fn a_fraction_of_a_step_costs_at_least_the_chord_between_its_whole_steps() {
        // 0.1 cores short: a step covers it, 0.4 of one would meet it exactly.
        let p = this_interval(8.0, &[(1.0, 0.0, 1.1)]);
        let at = [
            ("up[vm-0,cpu]", 0.4),
            ("grows[vm-0,cpu]", 1.0),
            ("change[vm-0]", 1.0),
        ];
        let least = least(&Built::new(&p), "vm-0", &at);
        let chord = cost(&p, 0, 0.0) + 0.4 * (cost(&p, 0, 1.0) - cost(&p, 0, 0.0));
        assert!(
            cost(&p, 0, 0.4) < 1e-9 && close(least, chord),
            "{least} against {chord}"
        );
    }

    #[test]
    fn a_fraction_of_a_change_costs_that_fraction_of_the_whole_change() {
        // The LP relaxation may take a fraction `t` of the grow that covers 1.6 cores (three
        // steps): it pays `t` of that grow's cost and `1 - t` of staying.
        let p = this_interval(8.0, &[(1.0, 0.0, 1.6)]);
        let built = Built::new(&p);
        for t in [0.25, 0.5, 0.75] {
            let at = [
                ("up[vm-0,cpu]", 3.0 * t),
                ("grows[vm-0,cpu]", t),
                ("change[vm-0]", t),
            ];
            let least = least(&built, "vm-0", &at);
            let mix = (1.0 - t) * cost(&p, 0, 0.0) + t * cost(&p, 0, 3.0);
            assert!(close(least, mix), "{t}: {least} against {mix}");
        }
    }
}
