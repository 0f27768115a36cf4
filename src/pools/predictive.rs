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
use crate::profile::Profiles;
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
        }
    }
}

impl Strategy for Predictive {
    fn on_arrival(&mut self, now: f64, d: &Demand) {
        self.ctx.arrive(&mut self.profiles, now, d);
        self.calibrator.arrival(now, d.instances);
    }

    fn on_release(&mut self, now: f64, d: &Demand) -> Release {
        self.ctx.finish(&mut self.profiles, now, d);
        Release::Keep {
            until: f64::INFINITY,
        }
    }

    fn idle_target(&mut self, now: f64, _busy: u32) -> Option<u32> {
        let t = self.ctx.origin + now;
        let mix = demand::job_mix(&self.profiles, t, self.horizon);
        let judged = now >= self.ctx.judged_from;
        self.calibrator.tick(now, judged, &demand::compound(&mix));
        let largest = mix.keys().next_back().copied().unwrap_or(0);
        Some(demand::cheapest_idle(
            &mix,
            self.price,
            (3 * largest).min(1024),
        ))
    }

    fn review_every(&self) -> Option<f64> {
        Some(self.ctx.review)
    }

    fn coverage(&self) -> Option<Coverage> {
        Some(self.calibrator.coverage())
    }
}

/// Warm = the seed formula's instances for every user active within `active` seconds.
pub struct Seed {
    ctx: Context,
    profiles: Profiles,
    weights: SeedWeights,
    active: f64,
}

impl Seed {
    pub fn new(ctx: Context, weights: SeedWeights, active_seconds: f64) -> Seed {
        Seed {
            ctx,
            profiles: Profiles::default(),
            weights,
            active: active_seconds,
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
        let model = SeedModel::fit(&self.profiles, &self.weights, t);
        let active = self
            .profiles
            .users
            .values()
            .filter(|u| t - u.last_activity(t) <= self.active);
        Some(active.map(|u| model.predict(u, t).1).sum())
    }

    fn review_every(&self) -> Option<f64> {
        Some(self.ctx.review)
    }
}
