//! The credit ledger during a replay: balances move with realised usage.
//!
//! Swaps are paid in credits, so how balances evolve decides which swaps stay
//! possible. The rule is AWS burstable style and documented in docs/formats.md.

use super::metrics::Window;
use crate::fleet::Fleet;
use crate::named::named_enum;
use crate::resource::Resource;
use crate::units::round6;
use std::collections::HashMap;

named_enum!(
    /// How credit balances move between plans.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Credits: "credit mode" {
        /// Earned at `earn_rate`, spent by the cpu actually used ([`settle_credits`]).
        Usage = "usage",
        /// Only swaps move credits, as between two `plan` runs without a ledger (an ablation).
        Frozen = "frozen",
    }
);

/// Credit balances follow realised cpu usage, AWS burstable style: per sample an
/// instance earns `earn_rate` credits an hour and spends 60 credits per core-hour
/// it used, where usage is demand capped at its allocation; the balance stays in
/// `[0, cap]`. An instance without cpu samples in the interval keeps its balance.
pub fn settle_credits(fleet: &mut Fleet, window: &Window) {
    let index: HashMap<&str, usize> = fleet
        .instances
        .iter()
        .enumerate()
        .map(|(k, i)| (i.id.as_str(), k))
        .collect();
    let mut balances: Vec<f64> = fleet.instances.iter().map(|i| i.credits).collect();
    for &(id, r, hours, ref points) in window {
        if r != Resource::Cpu {
            continue;
        }
        let k = index[id];
        let inst = &fleet.instances[k];
        for &(_, v) in points {
            let used = v.min(inst.cpu.alloc);
            let next = balances[k] + (inst.earn_rate - 60.0 * used) * hours;
            balances[k] = next.clamp(0.0, inst.credit_cap());
        }
    }
    for (inst, b) in fleet.instances.iter_mut().zip(balances) {
        inst.credits = round6(b);
    }
}
