#![doc = include_str!("../README.md")]
//!
//! # The library
//!
//! The binary is a thin command line over this crate. The pipeline is
//! [`Telemetry`] → [`Forecasts`] → [`Problem`] → [`Solution`] → [`Plan`] →
//! [`VerifiedPlan`] → an applied [`Fleet`]: telemetry is ingested (and imported from
//! public trace formats), each instance's demand is forecast as a quantile, one
//! mixed-integer program (or the greedy baseline) chooses swaps, resizes and
//! migrations, and the executor applies a reviewed plan to the fleet. [`Run`] is one
//! planning run, lock included. Job logs (who ran what, when, for how long) are
//! imported into one canonical form ([`Job`]) from which the profiler builds each
//! pool's user profiles ([`Book`]) and predicts its warm targets. Every file that
//! cannot be read or is wrong is reported as a [`FileError`] naming the file and line.

pub mod executor;
pub(crate) mod file;
pub mod fleet;
pub mod forecast;
pub(crate) mod id;
pub mod jobs;
pub mod named;
pub mod plan;
pub mod planner;
pub mod policy;
pub mod pools;
pub mod problem;
pub mod profile;
mod progress;
pub mod replay;
pub mod resource;
pub mod solve;
pub mod svg;
pub mod synth;
pub mod telemetry;
pub mod units;

pub use executor::{apply, Request};
pub use file::FileError;
pub use fleet::Fleet;
pub use forecast::Forecasts;
pub use jobs::Job;
pub use plan::{Plan, VerifiedPlan};
pub use planner::{Run, RunInputs, Strategy};
pub use policy::Policy;
pub use problem::{Problem, Solution};
pub use profile::Book;
pub use telemetry::Telemetry;
