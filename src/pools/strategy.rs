//! The pool strategies' one interface, and the three that need no learning: a fixed
//! keep-alive, a reactive buffer and the oracle.
//!
//! The simulator asks a strategy four things: what to do with instances a job has
//! just released (keep them warm until a time, stop them, or stop them and pre-warm
//! them later), how many unused warm instances it wants after each event (a target
//! the simulator starts or stops instances to meet), when to be asked again without
//! an event, and whether it sees the future. The predictors of pool demand (`seed`
//! and `chameleon`, in [`super::predictive`]) plug in through `idle_target` and
//! `review_every`; a per-application learner like the hybrid histogram through
//! `on_arrival` and `on_release`.

use super::sim::Demand;
use crate::profile::demand::Coverage;

/// What happens to the instances a job releases at `now`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Release {
    /// Warm and unused until `until` (seconds; infinite: until a target trims them).
    Keep {
        /// When they stop if no job takes them (seconds from the origin).
        until: f64,
    },
    /// Stopped now.
    Stop,
    /// Stopped now and started again so as to be ready at `ready` (never before it
    /// could boot), then kept until `until`.
    Prewarm {
        /// When they are up again (seconds from the origin).
        ready: f64,
        /// When they stop if no job takes them (seconds from the origin).
        until: f64,
    },
}

/// A pool strategy; one value per pool, fed that pool's jobs in time order.
pub trait Strategy {
    /// A job of `demand.app` arrives at `now` (learners record it).
    fn on_arrival(&mut self, _now: f64, _demand: &Demand) {}
    /// The job's instances are released at `now`.
    fn on_release(&mut self, now: f64, demand: &Demand) -> Release;
    /// Unused warm instances wanted after an event at `now`, with `busy` held by jobs;
    /// `None` leaves the count to the release decisions.
    fn idle_target(&mut self, _now: f64, _busy: u32) -> Option<u32> {
        None
    }
    /// Seconds between reviews of `idle_target` when no event happens.
    fn review_every(&self) -> Option<f64> {
        None
    }
    /// Knows the arrivals: an instance that expires unused was (in hindsight) stopped
    /// at its release and costs nothing, and if `Some(l)` a job short of warm instances
    /// finds the missing ones pre-warmed exactly in time, each costing `l` seconds of
    /// idle boot. Only the oracle says so.
    fn foresight(&self) -> Option<Foresight> {
        None
    }
    /// How well a predicting strategy's quantiles covered the demand that came.
    fn coverage(&self) -> Option<Coverage> {
        None
    }
}

/// What the oracle's hindsight is allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Foresight {
    /// Misses are pre-warmed in time (the boot fits the idle budget).
    pub prewarm_misses: bool,
}

/// An instance stays warm a fixed time after the job it served ends.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    /// How long a released instance stays warm (seconds).
    pub seconds: f64,
}

impl Strategy for KeepAlive {
    fn on_release(&mut self, now: f64, _: &Demand) -> Release {
        Release::Keep {
            until: now + self.seconds,
        }
    }
}

/// Warm = busy now + a fixed buffer of unused instances, restored after every event.
#[derive(Debug, Clone)]
pub struct Reactive {
    /// Unused warm instances kept beyond the busy ones.
    pub buffer: u32,
}

impl Strategy for Reactive {
    fn on_release(&mut self, _: f64, _: &Demand) -> Release {
        Release::Keep {
            until: f64::INFINITY,
        }
    }
    fn idle_target(&mut self, _: f64, _: u32) -> Option<u32> {
        Some(self.buffer)
    }
}

/// Knows the arrivals. With idle budget `B` and start-up latency `L`, every instance
/// is kept warm through an idle gap only if it is taken again within `min(B, L)`
/// (otherwise it is stopped at its release), and when `L <= B` a job short of warm
/// instances finds them pre-warmed exactly in time (an idle boot of `L` each).
///
/// What it bounds: when `L <= B` it delays no job, so no strategy whose every
/// warm-and-unused stretch (pre-warm boots included) lasts at most `B` delays fewer.
/// Below (`B < L`) no instance can be booted ahead within the budget, and it serves
/// warm the jobs a `B` keep-alive does; that is a reference, not a bound: a job's
/// delay moves its release, so another policy can delay one job longer, release later
/// and catch the next arrival warm (`tests::below_a_boot_the_oracle_is_a_reference`).
/// Every replay sweep has `B >= 1 min >= L` at the default 60 s start-up.
#[derive(Debug, Clone)]
pub struct Oracle {
    /// The idle budget `B`: the longest warm-and-unused stretch it allows (seconds).
    pub budget: f64,
    /// The start-up latency `L` of a cold instance (seconds).
    pub cold_start: f64,
}

impl Strategy for Oracle {
    fn on_release(&mut self, now: f64, _: &Demand) -> Release {
        Release::Keep {
            until: now + self.budget.min(self.cold_start),
        }
    }
    fn foresight(&self) -> Option<Foresight> {
        Some(Foresight {
            prewarm_misses: self.cold_start <= self.budget,
        })
    }
}
