//! How far each instance may usefully move, in whole granularity steps: the bounds of its
//! step and landing columns, settled before any row is written.
//!
//! A bound stops where a move stops paying, which keeps the program small and its
//! relaxation tight. So a grow stops at the step that covers the forecast (rounded up), and
//! a shrink at the forecast or what the instance keeps (rounded down, so never below it),
//! and is at least the hysteresis minimum or nothing; only on a host already over capacity
//! may a shrink go lower.

use crate::problem::Problem;
use crate::resource::Resource;

/// Whole steps of size `g` in `x`: rounded down, forgiving float error, and never negative.
pub(super) fn steps(x: f64, g: f64) -> f64 {
    (x / g + 1e-9).floor().max(0.0)
}

/// How many steps `(down, up)` instance `i` may usefully move in `r`: up to the whole step
/// that covers its forecast (beyond it, a change only adds idle cost), down never below
/// the forecast (or the recent peak, [`keep`](crate::problem::InstanceSpec::keep)), except on a host already
/// over capacity, and a shrink is at least the hysteresis minimum or nothing. A grow has no
/// minimum: it only ever meets a forecast above the allocation, and holding back a step
/// of it leaves the instance short (docs/formats.md, `[disruption]` `min_change`).
pub(super) fn useful_steps(
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
pub(super) fn landing_steps(p: &Problem, i: usize, r: Resource) -> (f64, f64) {
    match toward_forecast(p, i, r).filter(|_| p.instances[i].adjustable(r)) {
        Some((above, want)) => {
            let (down, up) = limits(p, i, r);
            (down.min(above), up.min(want))
        }
        None => (0.0, 0.0),
    }
}

/// Whole steps `(down, up)` instance `i` may move in `r` within its min and max.
pub(super) fn limits(p: &Problem, i: usize, r: Resource) -> (f64, f64) {
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
pub(super) fn toward_forecast(p: &Problem, i: usize, r: Resource) -> Option<(f64, f64)> {
    let (inst, g) = (&p.instances[i], p.policy.granularity[r]);
    let dem = inst.demand[r]?;
    let keep = inst.keep(r).unwrap_or(dem);
    let peak = inst.ahead.iter().filter_map(|d| d[r]).fold(dem, f64::max);
    Some((
        steps(inst.current[r] - keep, g),
        ((peak - inst.current[r]) / g).ceil().max(0.0),
    ))
}

#[cfg(test)]
mod tests {
    use super::{landing_steps, steps, useful_steps};
    use crate::resource::Resource::Cpu;
    use crate::solve::mip::formulation::tests::this_interval;

    #[test]
    fn steps_round_down_forgiving_float_error_and_are_never_negative() {
        assert_eq!(steps(0.6, 0.25), 2.0);
        // 0.7 - 0.2 is 0.49999999999999994: still two steps of 0.25.
        assert_eq!(steps(0.7 - 0.2, 0.25), 2.0);
        assert_eq!(steps(-0.5, 0.25), 0.0);
    }

    #[test]
    fn a_grow_stops_at_the_step_that_covers_the_forecast() {
        // 0.6 cores short: three steps of 0.25 cover it, two would leave it short.
        let p = this_interval(8.0, &[(1.0, 0.0, 1.6)]);
        assert_eq!(useful_steps(&p, 0, Cpu, false, false), (0.0, 3.0));
        assert_eq!(landing_steps(&p, 0, Cpu), (0.0, 3.0));
    }

    #[test]
    fn a_shrink_stops_at_the_forecast_or_what_the_instance_keeps() {
        // 1.4 cores above the forecast: five whole steps, not six.
        let mut p = this_interval(8.0, &[(3.0, 0.0, 1.6)]);
        assert_eq!(useful_steps(&p, 0, Cpu, false, false), (5.0, 0.0));
        // Its recent high usage is kept too.
        p.instances[0].floor.cpu = 2.5;
        assert_eq!(useful_steps(&p, 0, Cpu, false, false), (2.0, 0.0));
    }

    #[test]
    fn a_shrink_below_the_hysteresis_minimum_is_none_unless_the_host_is_tight() {
        // One step above the forecast; the model's minimum shrink is two steps.
        let p = this_interval(8.0, &[(2.0, 0.0, 1.75)]);
        assert_eq!(p.policy.min_steps(Cpu), 2.0);
        assert_eq!(useful_steps(&p, 0, Cpu, false, false), (0.0, 0.0));
        assert_eq!(useful_steps(&p, 0, Cpu, false, true), (1.0, 0.0));
        // Landing has no minimum: the migration is the change.
        assert_eq!(landing_steps(&p, 0, Cpu), (1.0, 0.0));
    }

    #[test]
    fn on_a_host_over_capacity_a_shrink_may_go_below_the_forecast_to_the_minimum() {
        let p = this_interval(8.0, &[(3.0, 0.0, 1.6)]);
        // From 3 cores down to the 0.25 minimum: 11 steps.
        assert_eq!(useful_steps(&p, 0, Cpu, true, false), (11.0, 0.0));
    }
}
