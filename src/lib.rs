//! Chameleon: a predictive resource planner for virtualised compute.
//!
//! The pipeline is `Telemetry → Forecasts → Problem → Solution → Plan →
//! VerifiedPlan → applied Fleet`: telemetry is ingested (and imported from
//! public trace formats), each instance's demand is forecast as a quantile,
//! one mixed-integer program (or the greedy baseline) chooses swaps, resizes
//! and migrations, and the executor applies a reviewed plan to the fleet. Job logs
//! (who ran what, when, for how long) are imported into one canonical form ([`jobs`]).

pub mod compare;
pub mod executor;
pub mod feedback;
pub mod file;
pub mod fleet;
pub mod forecast;
pub mod id;
pub mod jobs;
pub mod ledger;
pub mod lock;
mod named;
pub mod plan;
pub mod planner;
pub mod policy;
pub mod pool;
pub mod pools;
pub mod problem;
pub mod profile;
pub mod replay;
pub mod resource;
pub mod solve;
pub mod svg;
pub mod synth;
pub mod telemetry;
pub mod units;
