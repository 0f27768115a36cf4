//! The seed's greedy `decide_swap`, implemented faithfully as the baseline strategy.
//!
//! For each instance whose forecast exceeds its allocation, find instances on
//! the same host with excess, take the one with the most, and swap
//! `min(gap, excess)` if the receiver has the credits to pay. One swap per
//! instance and resource per interval, within the same disruption budget the
//! MIP obeys, so the two are compared fairly.

use crate::problem::{Problem, Solution, Swap};
use crate::resource::Resource;
use crate::units::round6;

/// What the greedy pass has decided so far.
struct State<'p> {
    p: &'p Problem,
    s: Solution,
    residents: Vec<Vec<usize>>,
    /// Credits each instance has paid and received so far.
    paid: Vec<f64>,
    received: Vec<f64>,
    changed: Vec<bool>,
    changes: usize,
    changes_on: Vec<usize>,
}

/// Runs `decide_swap` for every instance and resource, in fleet order.
pub fn solve(p: &Problem) -> Solution {
    let mut st = State {
        p,
        s: p.unchanged(),
        residents: p.residents(),
        paid: vec![0.0; p.instances.len()],
        received: vec![0.0; p.instances.len()],
        changed: vec![false; p.instances.len()],
        changes: 0,
        changes_on: vec![0; p.hosts.len()],
    };
    for j in 0..p.instances.len() {
        for r in Resource::ALL {
            if let Some(swap) = st.decide_swap(j, r) {
                st.execute_swap(swap);
            }
        }
    }
    st.s
}

impl State<'_> {
    /// The seed's pseudocode for one instance `j` and resource `r`.
    fn decide_swap(&self, j: usize, r: Resource) -> Option<Swap> {
        let inst = &self.p.instances[j];
        let g = self.p.policy.granularity[r];
        let gap = inst.demand[r]? - self.s.alloc[j][r];
        if gap <= 0.0 || !inst.adjustable(r) {
            return None;
        }
        let (donor, excess) = self.select_best_instance(j, r)?;
        let room = inst.max[r] - self.s.alloc[j][r];
        let steps = (gap / g - 1e-9)
            .ceil()
            .min((excess / g + 1e-9).floor())
            .min((room / g + 1e-9).floor());
        // Hysteresis: a move below the minimum step is not made.
        let amount = round6(steps * g);
        if steps < self.p.policy.min_steps(r) || amount <= 0.0 || !self.within_budget(j, donor) {
            return None;
        }
        // Payments and receipts are bounded separately (as in the MIP), so the
        // swaps stay valid in any order, including when an operator skips some.
        let credits = self.p.swap_price(r, amount);
        let credit_sufficient = self.paid[j] + credits <= self.p.spendable(j) + 1e-9;
        let d = &self.p.instances[donor];
        let donor_fits = self.received[donor] + credits <= d.credit_cap - d.credits + 1e-9;
        (credit_sufficient && donor_fits).then_some(Swap {
            donor,
            receiver: j,
            resource: r,
            amount,
            credits,
        })
    }

    /// The same-host instance with the most excess: allocation above what it keeps (its
    /// forecast, or its recent peak if higher, as in the MIP) and above its minimum.
    fn select_best_instance(&self, j: usize, r: Resource) -> Option<(usize, f64)> {
        let g = self.p.policy.granularity[r];
        self.residents[self.p.instances[j].host]
            .iter()
            .copied()
            .filter(|&i| i != j && self.p.instances[i].adjustable(r))
            .filter_map(|i| {
                let inst = &self.p.instances[i];
                let alloc = self.s.alloc[i][r];
                let spare = (alloc - inst.keep(r)?).min(alloc - inst.min[r]);
                let excess = (spare / g + 1e-9).floor() * g;
                (excess >= g).then_some((i, excess))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
    }

    /// Whether changing `j` and `donor` (on one host) stays within the disruption budget.
    fn within_budget(&self, j: usize, donor: usize) -> bool {
        let new = usize::from(!self.changed[j]) + usize::from(!self.changed[donor]);
        let host = self.p.instances[j].host;
        let budget = &self.p.policy.disruption;
        self.changes + new <= budget.change_limit(self.p.instances.len())
            && self.changes_on[host] + new <= budget.max_changes_per_host
    }

    /// Applies a swap: allocations, credits and the budget count.
    fn execute_swap(&mut self, swap: Swap) {
        let r = swap.resource;
        self.paid[swap.receiver] += swap.credits;
        self.received[swap.donor] += swap.credits;
        self.s.alloc[swap.receiver][r] = round6(self.s.alloc[swap.receiver][r] + swap.amount);
        self.s.alloc[swap.donor][r] = round6(self.s.alloc[swap.donor][r] - swap.amount);
        for i in [swap.receiver, swap.donor] {
            if !self.changed[i] {
                self.changed[i] = true;
                self.changes += 1;
                self.changes_on[self.p.instances[i].host] += 1;
            }
        }
        self.s.swaps.push(swap);
    }
}
