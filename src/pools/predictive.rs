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
use crate::profile::demand::{Calibrator, Coverage};
use crate::profile::seed::{SeedModel, SeedWeights};
use crate::profile::tracker::Tracker;
use crate::profile::{Profiles, ACTIVE_KEEP};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// What the profile-based strategies need to know about the log.
#[derive(Debug, Clone)]
pub struct Context {
    /// The Unix time of the replay's origin (0 seconds).
    pub origin: f64,
    /// User names by [`Demand::app`].
    pub users: Arc<Vec<String>>,
    /// Program names by [`Demand::program`].
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
    price: f64,
    calibrator: Calibrator,
    tracker: Tracker,
}

impl Predictive {
    /// A fresh strategy: `quantile` is the `[pools] quantile` its calibrator aims at,
    /// `price` what one idle instance costs in expected waiting jobs, `cold_start` the
    /// start-up latency (seconds).
    pub fn new(ctx: Context, quantile: f64, price: f64, cold_start: f64) -> Predictive {
        let horizon = cold_start + ctx.review;
        Predictive {
            calibrator: Calibrator::new(quantile, horizon, ctx.review),
            tracker: Tracker::new(horizon, ctx.review),
            ctx,
            profiles: Profiles::default(),
            price,
        }
    }
}

impl Strategy for Predictive {
    fn on_arrival(&mut self, now: f64, d: &Demand) {
        self.ctx.arrive(&mut self.profiles, now, d);
        self.calibrator.arrival(now, d.instances);
        self.tracker.touch(&self.ctx.users[d.app]);
    }

    fn on_release(&mut self, now: f64, d: &Demand) -> Release {
        self.ctx.finish(&mut self.profiles, now, d);
        self.tracker.touch(&self.ctx.users[d.app]);
        Release::Keep {
            until: f64::INFINITY,
        }
    }

    fn idle_target(&mut self, now: f64, _busy: u32) -> Option<u32> {
        self.tracker.mix(&self.profiles, self.ctx.origin + now);
        let judged = now >= self.ctx.judged_from;
        let tracker = &mut self.tracker;
        self.calibrator
            .tick(now, judged, || tracker.outlook().clone());
        Some(self.tracker.cheapest_idle(self.price))
    }

    fn review_every(&self) -> Option<f64> {
        Some(self.ctx.review)
    }

    fn coverage(&self) -> Option<Coverage> {
        Some(self.calibrator.coverage())
    }
}

/// Seconds between refits of the seed's scales.
const SEED_REFIT: f64 = 3600.0;

/// Warm = the seed formula's instances for every user active (an arrival or a
/// release) within `active` seconds. Its scales, the factors' least and greatest over
/// all users, are refitted hourly, and the users in the window are kept as their
/// events enter and leave it: a log of tens of thousands of users is not walked at
/// every review.
pub struct Seed {
    ctx: Context,
    profiles: Profiles,
    weights: SeedWeights,
    active: f64,
    model: Option<(f64, SeedModel)>,
    /// Events within the window (replay seconds, user index), and users by events.
    events: VecDeque<(f64, usize)>,
    in_window: BTreeMap<usize, u32>,
}

impl Seed {
    /// A fresh strategy counting users active within `active_seconds` (at most
    /// [`ACTIVE_KEEP`]), with the `[pools.seed]` weights.
    pub fn new(ctx: Context, weights: SeedWeights, active_seconds: f64) -> Seed {
        Seed {
            ctx,
            profiles: Profiles::default(),
            weights,
            active: active_seconds.min(ACTIVE_KEEP),
            model: None,
            events: VecDeque::new(),
            in_window: BTreeMap::new(),
        }
    }

    fn saw(&mut self, now: f64, app: usize) {
        self.events.push_back((now, app));
        *self.in_window.entry(app).or_default() += 1;
    }
}

impl Strategy for Seed {
    fn on_arrival(&mut self, now: f64, d: &Demand) {
        self.ctx.arrive(&mut self.profiles, now, d);
        self.saw(now, d.app);
    }

    fn on_release(&mut self, now: f64, d: &Demand) -> Release {
        self.ctx.finish(&mut self.profiles, now, d);
        self.saw(now, d.app);
        Release::Keep {
            until: f64::INFINITY,
        }
    }

    fn idle_target(&mut self, now: f64, _busy: u32) -> Option<u32> {
        let t = self.ctx.origin + now;
        let stale = self
            .model
            .as_ref()
            .is_none_or(|(at, _)| now >= at + SEED_REFIT);
        if stale {
            self.model = Some((now, SeedModel::fit(&self.profiles, &self.weights, t)));
        }
        while let Some(&(at, app)) = self.events.front() {
            if now - at <= self.active {
                break;
            }
            self.events.pop_front();
            if let Some(n) = self.in_window.get_mut(&app) {
                *n -= 1;
                if *n == 0 {
                    self.in_window.remove(&app);
                }
            }
        }
        let model = &self.model.as_ref().expect("fitted").1;
        let users = &self.profiles.users;
        let active = self
            .in_window
            .keys()
            .filter_map(|&app| users.get(&self.ctx.users[app]));
        Some(active.map(|u| model.predict(u, t).1).sum())
    }

    fn review_every(&self) -> Option<f64> {
        Some(self.ctx.review)
    }
}
