//! One action applied to the fleet state: a resize, a swap paid in credits, a migration or
//! a pool's warm count, each checked against the fleet and its hosts' capacity.

use crate::fleet::ledger::{from_micro, micro};
use crate::fleet::{Fleet, Instance};
use crate::plan::{Action, Change, Kind};
use crate::resource::Resource;
use crate::units::round6;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Tolerance for comparing allocations written with six decimals.
pub(super) const EPS: f64 = 1e-6;

pub(super) enum StepError {
    /// The plan does not match the fleet: abort.
    Invalid(String),
    /// Not enough room yet: try another action first.
    NoRoom,
}

/// Where each instance and pool sits in a fleet's lists, by id, and which of them can be
/// on each host while `actions` run: the residents plus the instances migrating there.
/// Actions change entries in place and never add or remove one, so one table serves a
/// whole run instead of a linear search per lookup (the first of duplicate ids wins, as a
/// search would find it).
pub(super) struct Places {
    pub(super) instances: HashMap<String, usize>,
    pub(super) pools: HashMap<String, usize>,
    /// Per host id, in fleet order: instances that may be there, and its pools.
    pub(super) hosts: HashMap<String, (Vec<usize>, Vec<usize>)>,
}

impl Places {
    pub(super) fn of(fleet: &Fleet, actions: &[Action]) -> Places {
        let mut places = Places {
            instances: HashMap::with_capacity(fleet.instances.len()),
            pools: HashMap::with_capacity(fleet.pools.len()),
            hosts: HashMap::with_capacity(fleet.hosts.len()),
        };
        for (k, i) in fleet.instances.iter().enumerate() {
            places.instances.entry(i.id.clone()).or_insert(k);
            places.hosts.entry(i.host.clone()).or_default().0.push(k);
        }
        for (k, p) in fleet.pools.iter().enumerate() {
            places.pools.entry(p.id.clone()).or_insert(k);
            places.hosts.entry(p.host.clone()).or_default().1.push(k);
        }
        for a in actions {
            if let (Some(&k), Some(to)) = (places.instances.get(&a.instance), a.to_host()) {
                places.hosts.entry(to.to_owned()).or_default().0.push(k);
            }
        }
        for (instances, _) in places.hosts.values_mut() {
            instances.sort_unstable();
            instances.dedup();
        }
        places
    }

    /// What `host` uses of `r`: [`Fleet::used`], summed in the same order over the few
    /// entries that can be there.
    pub(super) fn used_of(&self, fleet: &Fleet, host: &str, r: Resource) -> f64 {
        let Some((instances, pools)) = self.hosts.get(host) else {
            return 0.0;
        };
        let instances: f64 = instances
            .iter()
            .map(|&k| &fleet.instances[k])
            .filter(|i| i.host == host)
            .map(|i| i.resource(r).alloc)
            .sum();
        let pools: f64 = pools
            .iter()
            .map(|&k| f64::from(fleet.pools[k].warm) * fleet.pools[k].size()[r])
            .sum();
        instances + pools
    }

    pub(super) fn instance<'f>(&self, fleet: &'f Fleet, id: &str) -> Option<&'f Instance> {
        self.instances.get(id).map(|&k| &fleet.instances[k])
    }

    pub(super) fn instance_mut<'f>(
        &self,
        fleet: &'f mut Fleet,
        id: &str,
    ) -> Option<&'f mut Instance> {
        self.instances.get(id).map(|&k| &mut fleet.instances[k])
    }
}

/// Applies one action to `fleet`, stamping the instances it changed with `at`.
pub(super) fn step(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    at: DateTime<Utc>,
) -> Result<(), StepError> {
    match &a.change {
        &Change::Resize { resource, from, to } => resize(fleet, places, a, resource, from, to),
        &Change::Swap {
            ref donor,
            resource,
            from,
            amount,
            credits,
            ..
        } => swap(fleet, places, a, donor, resource, from, amount, credits),
        Change::Migrate {
            from_host, to_host, ..
        } => migrate(fleet, places, a, from_host, to_host),
        &Change::Pool { from, to } => pool(fleet, places, a, from, to),
    }?;
    stamp_changed(fleet, places, a, at);
    Ok(())
}

/// Starts or stops warm instances of a pool; starting needs room for all of them.
pub(super) fn pool(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    from: f64,
    to: f64,
) -> Result<(), StepError> {
    let k = places.pools.get(&a.instance).copied();
    let p = k
        .map(|k| &fleet.pools[k])
        .ok_or_else(|| invalid(format!("unknown pool `{}`", a.instance)))?;
    let total = p.warm + p.cold;
    if (f64::from(p.warm) - from).abs() > EPS {
        return Err(invalid(format!(
            "pool `{}` has {} warm but the plan expects {from}",
            p.id, p.warm
        )));
    }
    if !(to.is_finite() && to >= 0.0 && to.fract() == 0.0 && to <= f64::from(total)) {
        return Err(invalid(format!(
            "pool `{}`: {to} warm is not a whole number in [0, {total}]",
            p.id
        )));
    }
    let to = to as u32;
    if to > p.warm {
        let (host, size, extra) = (p.host.clone(), p.size(), f64::from(to - p.warm));
        if !Resource::ALL
            .iter()
            .all(|&r| fits(fleet, places, &host, r, extra * size[r]))
        {
            return Err(StepError::NoRoom);
        }
    }
    let p = &mut fleet.pools[k.expect("checked")];
    (p.warm, p.cold) = (to, total - to);
    Ok(())
}

/// Records when the instances an action touched last changed (the optimiser's cool-down).
pub(super) fn stamp_changed(fleet: &mut Fleet, places: &Places, a: &Action, at: DateTime<Utc>) {
    if a.kind() == Kind::Pool {
        return;
    }
    for id in std::iter::once(a.instance.as_str()).chain(a.donor()) {
        if let Some(inst) = places.instance_mut(fleet, id) {
            inst.changed_at = Some(at);
        }
    }
}

pub(super) fn invalid(message: String) -> StepError {
    StepError::Invalid(message)
}

pub(super) fn resize(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    r: Resource,
    from: f64,
    to: f64,
) -> Result<(), StepError> {
    let inst = places
        .instance(fleet, &a.instance)
        .ok_or_else(|| invalid(format!("unknown instance `{}`", a.instance)))?;
    let cur = inst.resource(r);
    if (cur.alloc - from).abs() > EPS {
        return Err(invalid(format!(
            "`{}` has {r} {} but the plan expects {from}",
            a.instance, cur.alloc
        )));
    }
    if !to.is_finite() || to < cur.min - EPS || to > cur.max + EPS {
        return Err(invalid(format!(
            "{r} {to} is outside [{}, {}] for `{}`",
            cur.min, cur.max, a.instance
        )));
    }
    let host = inst.host.clone();
    if to > from && !fits(fleet, places, &host, r, to - from) {
        return Err(StepError::NoRoom);
    }
    places
        .instance_mut(fleet, &a.instance)
        .expect("checked")
        .resource_mut(r)
        .alloc = to;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn swap(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    donor_id: &str,
    r: Resource,
    from: f64,
    amount: f64,
    credits: f64,
) -> Result<(), StepError> {
    let find = |id: &str| {
        places
            .instance(fleet, id)
            .ok_or_else(|| invalid(format!("unknown instance `{id}`")))
    };
    let (rec, don) = (find(&a.instance)?, find(donor_id)?);
    let checks = [
        (
            !(amount > 0.0 && amount.is_finite()),
            format!("amount {amount} must be a positive number"),
        ),
        (
            !(credits >= 0.0 && credits.is_finite()),
            format!("credits {credits} must be a number >= 0"),
        ),
        (
            rec.host != don.host,
            format!("`{}` and `{donor_id}` are on different hosts", a.instance),
        ),
        (
            (rec.resource(r).alloc - from).abs() > EPS,
            format!(
                "`{}` has {r} {} but the plan expects {from}",
                a.instance,
                rec.resource(r).alloc
            ),
        ),
        (
            rec.resource(r).alloc + amount > rec.resource(r).max + EPS,
            format!("`{}` would exceed its {r} max", a.instance),
        ),
        (
            don.resource(r).alloc - amount < don.resource(r).min - EPS,
            format!("`{donor_id}` would drop below its {r} min"),
        ),
        // The ledger's rule, in integer micro-credits: what passes here commits there.
        (
            micro(rec.credits) < micro(credits),
            format!(
                "`{}` has {} credits, cannot pay {credits}",
                a.instance, rec.credits
            ),
        ),
        (
            micro(don.credits).saturating_add(micro(credits)) > micro(don.credit_cap()),
            format!("`{donor_id}` would exceed its credit cap"),
        ),
    ];
    if let Some((_, message)) = checks.into_iter().find(|(bad, _)| *bad) {
        return Err(invalid(message));
    }
    let don = places.instance_mut(fleet, donor_id).expect("checked");
    don.resource_mut(r).alloc = round6(don.resource(r).alloc - amount);
    don.credits = from_micro(micro(don.credits).saturating_add(micro(credits)));
    let rec = places.instance_mut(fleet, &a.instance).expect("checked");
    rec.resource_mut(r).alloc = round6(rec.resource(r).alloc + amount);
    rec.credits = from_micro(micro(rec.credits).saturating_sub(micro(credits)));
    Ok(())
}

pub(super) fn migrate(
    fleet: &mut Fleet,
    places: &Places,
    a: &Action,
    from: &str,
    to: &str,
) -> Result<(), StepError> {
    let inst = places
        .instance(fleet, &a.instance)
        .ok_or_else(|| invalid(format!("unknown instance `{}`", a.instance)))?;
    if inst.host != from {
        return Err(invalid(format!(
            "`{}` is on `{}`, not `{from}`",
            a.instance, inst.host
        )));
    }
    if fleet.host(to).is_none() {
        return Err(invalid(format!("unknown host `{to}`")));
    }
    let need = inst.clone();
    if !Resource::ALL
        .iter()
        .all(|&r| fits(fleet, places, to, r, need.resource(r).alloc))
    {
        return Err(StepError::NoRoom);
    }
    places
        .instance_mut(fleet, &a.instance)
        .expect("checked")
        .host = to.to_owned();
    Ok(())
}

/// Whether `extra` more of `r` fits on `host`.
pub(super) fn fits(fleet: &Fleet, places: &Places, host: &str, r: Resource, extra: f64) -> bool {
    let cap = fleet.host(host).map_or(0.0, |h| h.capacity()[r]);
    places.used_of(fleet, host, r) + extra <= cap + EPS
}
