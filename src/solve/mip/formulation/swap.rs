//! Swaps on one host: donors give steps, receivers take them and pay in credits.
//!
//! Growth beyond a host's free room (and what stopped pool instances and leavers free) must
//! be taken by swap: a grow never takes unpaid the room a neighbour's shrink frees
//! (docs/decisions.md#no-unpaid-room). Without a fixed cost per swap no pair needs a column:
//! at one price per step any split of the totals pays the same, so [`pair_swaps`] pairs
//! donors with receivers after solving (docs/decisions.md#swap-pairs-off); with one,
//! [`add_pairs`] pairs them in the program.

use super::instance::leave_expr;
use super::pool::pool_expr;
use super::{Decisions, Program};
use crate::problem::{Problem, Swap};
use crate::resource::Resource;
use crate::units::round6;
use good_lp::{constraint, Expression};
use std::collections::HashMap;

/// Swaps on one host: donors give steps, receivers take them, and what is given equals
/// what is taken. Grows beyond the host's free capacity must be taken by swap. Without a
/// fixed cost per swap, pairing donors with receivers needs no variables of its own: at
/// one price per step, any split of the totals pays the same, so [`pair_swaps`] pairs them
/// after solving. With one, [`add_pairs`] pairs them in the program.
pub(super) fn add_swaps(p: &Problem, m: &mut Program, d: &mut Decisions, h: usize, r: Resource) {
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
pub(super) fn add_credits(p: &Problem, m: &mut Program, d: &Decisions) {
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

/// Pairs each host's donors with its receivers, in index order, into explicit swaps.
pub(super) fn pair_swaps(
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

#[cfg(test)]
mod tests {
    use super::pair_swaps;
    use crate::problem::{Problem, Swap};
    use crate::resource::Resource::Cpu;
    use crate::solve::mip::formulation::tests::{this_interval, Built};
    use crate::solve::mip::solve;

    /// A full host: vm-0 needs 2 more cores, vm-1 has 2 to give. Needing 3 cores, vm-0 burns
    /// 30 credits this interval; a core for the interval costs 15 more.
    fn full(credits: f64) -> Problem {
        this_interval(4.0, &[(1.0, credits, 3.0), (3.0, 0.0, 1.0)])
    }

    fn swap(donor: usize, receiver: usize, amount: f64) -> Swap {
        Swap {
            donor,
            receiver,
            resource: Cpu,
            amount,
            credits: 15.0 * amount,
        }
    }

    #[test]
    fn growth_beyond_the_free_room_is_a_swap_the_receiver_pays_for() {
        // 45 credits: 30 burnt, 15 to pay for one core; the donor's shrink beyond what it
        // gives frees room vm-0 may not take unpaid.
        let (s, _) = solve(&full(45.0), None).unwrap();
        assert_eq!((s.alloc[0].cpu, s.alloc[1].cpu), (2.0, 1.0));
        assert_eq!(s.swaps, [swap(1, 0, 1.0)]);
        let (s, _) = solve(&full(30.0), None).unwrap();
        assert_eq!(s.alloc[0].cpu, 1.0);
        assert!(s.swaps.is_empty());
    }

    #[test]
    fn with_a_fixed_cost_per_swap_the_program_pairs_donors_with_receivers() {
        let mut p = full(45.0);
        p.policy.weights.swap = 1.0;
        assert!(Built::new(&p).bounds("swap[vm-1>vm-0,cpu]").is_some());
        let (s, _) = solve(&p, None).unwrap();
        assert_eq!(s.swaps, [swap(1, 0, 1.0)]);
    }

    #[test]
    fn after_solving_donors_are_paired_with_receivers_in_index_order() {
        let p = this_interval(16.0, &[(1.0, 0.0, 1.0); 4]);
        // Steps given and taken. vm-1 takes vm-0's step, none of its own, and one of vm-2's;
        // vm-3 takes one of vm-1's.
        let given = vec![(0, 1.0), (1, 2.0), (2, 2.0)];
        let taken = vec![(1, 2.0), (3, 1.0)];
        let expected = [swap(0, 1, 0.25), swap(2, 1, 0.25), swap(1, 3, 0.25)];
        assert_eq!(pair_swaps(&p, Cpu, given, taken), expected);
    }
}
