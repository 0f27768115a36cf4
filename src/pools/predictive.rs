//! The two strategies that predict a pool's demand from user profiles: `chameleon`
//! (the profiler's demand distribution, calibrated) and `seed` (the design seed's
//! weighted formula). Both learn online from the replayed log, past jobs only: a job
//! is profiled when it arrives, its run time when it ends.
//!
//! `chameleon` keeps the number of unused warm instances that minimises the jobs
//! expected to wait for a cold start, plus a price per idle instance, over the demand
//! predicted to arrive before an instance started now could boot and the next review
//! (start-up latency plus review period): counting jobs rather than instances, it
//! does not hold a wide job's many instances to save that one job; `seed` keeps, for every user active within
//! its window, the instances the seed's formula gives that user.

use super::sim::Demand;
use super::strategy::{Release, Strategy};
use crate::profile::demand::{self, Calibrator, Coverage};
use crate::profile::seed::{SeedModel, SeedWeights};
use crate::profile::{Profiles, ACTIVE_KEEP};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the profile-based strategies need to know about the log.
#[derive(Debug, Clone)]
pub struct Context {
    /// The Unix time of the replay's origin (0 seconds).
    pub origin: f64,
    /// User and program names by the indices in [`Demand`].
    pub users: Arc<Vec<String>>,
    pub programs: Arc<Vec<String>>,
    /// Seconds between reviews.
    pub review: f64,
    /// The first judged time (replay seconds); earlier windows calibrate but do not count.
    pub judged_from: f64,
}

impl Context {
    fn arrive(&self, p: &mut Profiles, now: f64, d: &Demand) {
        let (user, program) = (&self.users[d.app], &self.programs[d.program]);
        p.arrive(user, program, self.origin + now, d.instances);
    }

    fn finish(&self, p: &mut Profiles, now: f64, d: &Demand) {
        let (user, program) = (&self.users[d.app], &self.programs[d.program]);
        p.finish(user, program, self.origin + now, d.run, d.instances, None);
    }
}

/// Warm = the idle count that minimises the jobs expected to wait for a cold start
/// within start-up + review, plus `price` per idle instance; the calibrator follows
/// the `quantile` of the same predicted demand.
pub struct Predictive {
    ctx: Context,
    profiles: Profiles,
    horizon: f64,
    price: f64,
    calibrator: Calibrator,
    mix: Mix,
    /// The last mix decided on and its idle count: most events leave the mix as is.
    last: Option<(BTreeMap<u32, f64>, u32)>,
}

/// The predicted job mix, recomputed for every user at each review and, between
/// reviews, only for the users with an arrival or a release since (the others'
/// chances move little within a review period).
#[derive(Default)]
struct Mix {
    at: Option<f64>,
    total: BTreeMap<u32, f64>,
    users: BTreeMap<String, Vec<(u32, f64)>>,
    touched: BTreeSet<String>,
}

impl Mix {
    fn update(
        &mut self,
        p: &Profiles,
        now: f64,
        t: f64,
        horizon: f64,
        review: f64,
    ) -> &BTreeMap<u32, f64> {
        if self.at.is_none_or(|at| now >= at + review) {
            self.at = Some(now);
            self.total = demand::session_mix(p, t, horizon);
            self.users.clear();
            for (name, u) in p.active.iter().map(|n| (n, &p.users[n])) {
                let part = demand::user_mix(p, u, t, horizon);
                demand::add(&mut self.total, &part, 1.0);
                self.users.insert(name.clone(), part);
            }
            self.touched.clear();
        }
        for name in std::mem::take(&mut self.touched) {
            if let Some(old) = self.users.remove(&name) {
                demand::add(&mut self.total, &old, -1.0);
            }
            if let Some(u) = p.users.get(&name).filter(|_| p.active.contains(&name)) {
                let part = demand::user_mix(p, u, t, horizon);
                demand::add(&mut self.total, &part, 1.0);
                self.users.insert(name, part);
            }
        }
        &self.total
    }
}

impl Predictive {
    pub fn new(ctx: Context, quantile: f64, price: f64, cold_start: f64) -> Predictive {
        let horizon = cold_start + ctx.review;
        Predictive {
            calibrator: Calibrator::new(quantile, horizon, ctx.review),
            ctx,
            profiles: Profiles::default(),
            horizon,
            price,
            mix: Mix::default(),
            last: None,
        }
    }
}

impl Strategy for Predictive {
    fn on_arrival(&mut self, now: f64, d: &Demand) {
        self.ctx.arrive(&mut self.profiles, now, d);
        self.calibrator.arrival(now, d.instances);
        self.mix.touched.insert(self.ctx.users[d.app].clone());
    }

    fn on_release(&mut self, now: f64, d: &Demand) -> Release {
        self.ctx.finish(&mut self.profiles, now, d);
        self.mix.touched.insert(self.ctx.users[d.app].clone());
        Release::Keep {
            until: f64::INFINITY,
        }
    }

    fn idle_target(&mut self, now: f64, _busy: u32) -> Option<u32> {
        let t = self.ctx.origin + now;
        let (p, review) = (&self.profiles, self.ctx.review);
        let mix = self.mix.update(p, now, t, self.horizon, review);
        let judged = now >= self.ctx.judged_from;
        self.calibrator.tick(now, judged, || demand::compound(mix));
        // Decided again when the mix moved by more than 1% of its jobs (or 0.001).
        let lambda: f64 = mix.values().sum();
        let moved = |seen: &BTreeMap<u32, f64>| {
            let changed = mix
                .iter()
                .map(|(n, w)| (w - seen.get(n).unwrap_or(&0.0)).abs());
            let gone = seen
                .iter()
                .filter(|(n, _)| !mix.contains_key(n))
                .map(|(_, w)| w.abs());
            changed.chain(gone).sum::<f64>() > 0.01 * lambda + 1e-3
        };
        match &self.last {
            Some((seen, idle)) if !moved(seen) => Some(*idle),
            _ => {
                let idle = demand::cheapest_idle(mix, self.price);
                self.last = Some((mix.clone(), idle));
                Some(idle)
            }
        }
    }

    fn review_every(&self) -> Option<f64> {
        Some(self.ctx.review)
    }

    fn coverage(&self) -> Option<Coverage> {
        Some(self.calibrator.coverage())
    }
}

/// Warm = the seed formula's instances for every user active within `active` seconds
/// (its scales refitted over all users at each review).
pub struct Seed {
    ctx: Context,
    profiles: Profiles,
    weights: SeedWeights,
    active: f64,
    model: Option<(f64, SeedModel)>,
}

impl Seed {
    pub fn new(ctx: Context, weights: SeedWeights, active_seconds: f64) -> Seed {
        Seed {
            ctx,
            profiles: Profiles::default(),
            weights,
            active: active_seconds.min(ACTIVE_KEEP),
            model: None,
        }
    }
}

impl Strategy for Seed {
    fn on_arrival(&mut self, now: f64, d: &Demand) {
        self.ctx.arrive(&mut self.profiles, now, d);
    }

    fn on_release(&mut self, now: f64, d: &Demand) -> Release {
        self.ctx.finish(&mut self.profiles, now, d);
        Release::Keep {
            until: f64::INFINITY,
        }
    }

    fn idle_target(&mut self, now: f64, _busy: u32) -> Option<u32> {
        let t = self.ctx.origin + now;
        let stale = self
            .model
            .as_ref()
            .is_none_or(|(at, _)| now >= at + self.ctx.review);
        if stale {
            self.model = Some((now, SeedModel::fit(&self.profiles, &self.weights, t)));
        }
        let model = &self.model.as_ref().expect("fitted").1;
        let window = self.active;
        let active = self
            .profiles
            .active_users()
            .filter(|u| t - u.last_activity(t) <= window);
        Some(active.map(|u| model.predict(u, t).1).sum())
    }

    fn review_every(&self) -> Option<f64> {
        Some(self.ctx.review)
    }
}
