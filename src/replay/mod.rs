//! Backtesting: every strategy replayed over real telemetry, side by side.
//!
//! Operators choose a planner by how it would have done on their own history.
//! At each planning interval every strategy sees only the telemetry before it,
//! plans against its own simulated fleet, and that plan goes through the same
//! [`executor::execute`] as `apply`. The demand that then arrives until the next
//! interval is scored against the allocation in force ([`metrics`]), and credit
//! balances move with that realised usage ([`settle_credits`]).

pub mod bound;
pub mod compare;
pub mod credits;
pub mod feedback;
pub mod fold;
pub mod metrics;
pub mod plot;
pub mod strategy;
mod view;

use crate::executor::{self, ApplyError};
use crate::fleet::Fleet;
use crate::forecast::state::State;
use crate::forecast::{Demand, Forecasts, Method};
use crate::plan::{self, Plan, PlanError};
use crate::policy::Policy;
use crate::problem::Problem;
use crate::resource::{PerResource, Resource};
use crate::solve::mip::SolveError;
use crate::telemetry::{Series, Telemetry};
use crate::units::rfc3339;
use bound::Bounds;
use chrono::{DateTime, Duration, Utc};
pub use credits::{settle_credits, Credits};
use metrics::{Details, Summary, Tally};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;
pub use strategy::Kind;
use view::{step_hours, views, Views};

/// Why a replay could not run. Each names the input or the strategy and time at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The telemetry names an instance the fleet does not have.
    #[error("{path}:{line}: unknown instance `{instance}` (not in {fleet})")]
    UnknownInstance {
        /// The telemetry file.
        path: PathBuf,
        /// The line that names it.
        line: u64,
        /// The instance's name.
        instance: String,
        /// The fleet file.
        fleet: PathBuf,
    },
    /// No whole planning interval fits between the start and the end.
    #[error("{path}: no planning interval between {start} and {end} (interval {minutes} min)")]
    EmptyRange {
        /// The telemetry file.
        path: PathBuf,
        /// The replay's start.
        start: String,
        /// The replay's end.
        end: String,
        /// The planning interval, in minutes.
        minutes: u32,
    },
    /// The interval is not positive or no strategy is named.
    #[error("--interval must be positive and --strategies must name at least one strategy")]
    Options,
    /// A strategy is named twice.
    #[error("--strategies names `{0}` twice")]
    Duplicate(Kind),
    /// A strategy's solve failed.
    #[error("{strategy} at {at}: {source}")]
    Solve {
        /// The strategy.
        strategy: Kind,
        /// The planning time.
        at: String,
        /// The solver's error.
        #[source]
        source: SolveError,
    },
    /// A strategy's plan failed verification.
    #[error("{strategy} at {at}: {source}")]
    Verify {
        /// The strategy.
        strategy: Kind,
        /// The planning time.
        at: String,
        /// Why the plan was refused.
        #[source]
        source: Box<PlanError>,
    },
    /// Applying a strategy's plan failed.
    #[error("{strategy} at {at}: {source}")]
    Apply {
        /// The strategy.
        strategy: Kind,
        /// The planning time.
        at: String,
        /// Why the apply failed.
        #[source]
        source: Box<ApplyError>,
    },
}

/// What to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The strategies to replay, each once, in the order the table lists them.
    pub strategies: Vec<Kind>,
    /// Minutes between planning times, each plan's interval.
    pub interval_minutes: u32,
    /// First planning time (default: one season after the first sample, on the interval grid).
    pub start: Option<DateTime<Utc>>,
    /// No interval starts at or after this (default: the end of the telemetry, on the grid).
    pub end: Option<DateTime<Utc>>,
    /// Measure planning time (off: `plan_seconds_*` are `null`, reports are byte-identical).
    pub timing: bool,
    /// The instance whose cpu forecast band is plotted (default: the most variable cpu).
    pub focus: Option<String>,
    /// How credit balances move between plans (`--credits`).
    pub credits: Credits,
}

/// The forecast band and realised cpu demand of one instance, for the plot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Band {
    /// The plotted instance's id.
    pub instance: String,
    /// One entry per planning interval.
    pub steps: Vec<BandStep>,
    /// Realised cpu samples over the replay (Unix seconds, cores).
    pub actual: Vec<(i64, f64)>,
}

/// One interval of the plotted instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandStep {
    /// The interval's start, unix seconds.
    pub t: i64,
    /// Forecast mean and quantile, if forecasts ran.
    pub forecast: Option<(f64, f64)>,
    /// The `mip` allocation in force, if `mip` ran.
    pub alloc: Option<f64>,
}

/// A finished replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The first planning time.
    pub start: DateTime<Utc>,
    /// The end of the replayed range: no interval starts at or after it.
    pub end: DateTime<Utc>,
    /// Minutes between planning times.
    pub interval_minutes: u32,
    /// Interval start times (Unix seconds).
    pub times: Vec<i64>,
    /// Each strategy's scores, in the order they were asked for.
    pub tallies: Vec<(Kind, Tally)>,
    /// What no strategy (`pooled`) or no non-migrating one (`per_host`) can beat.
    pub bounds: Bounds,
    /// The focus instance's cpu forecast band, for the plot.
    pub band: Band,
    /// The model file's cost unit per resource (1 core, 1 GiB, 100 Mbps as shipped).
    pub unit: crate::resource::PerResource<f64>,
}

/// The JSON report (format in docs/formats.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The fleet file's name.
    pub fleet: String,
    /// The telemetry file's name.
    pub telemetry: String,
    /// The first planning time (RFC 3339).
    pub start: String,
    /// The end of the replayed range (RFC 3339): no interval starts at or after it.
    pub end: String,
    /// Minutes between planning times.
    pub interval_minutes: u32,
    /// Planning intervals replayed.
    pub intervals: usize,
    /// Each strategy's headline figures, by strategy name.
    pub strategies: BTreeMap<String, Summary>,
    /// Each strategy's remaining figures, by strategy name.
    pub details: BTreeMap<String, Details>,
    /// Lower bounds on shortage: `pooled` for every strategy, `per_host` for those
    /// that do not migrate.
    pub bounds: BTreeMap<String, bound::Summary>,
}

/// One strategy's simulated world.
struct Sim {
    kind: Kind,
    fleet: Fleet,
    tally: Tally,
}

impl Sim {
    /// One interval: plan and apply at `now`, score what arrives, settle credits.
    fn step(
        &mut self,
        telemetry: &Telemetry,
        policy: &Policy,
        views: &Views,
        now: DateTime<Utc>,
        opts: &Options,
    ) -> Result<(), ReplayError> {
        plan_and_apply(self, telemetry, policy, views, now, opts.timing)?;
        let index: HashMap<&str, &crate::fleet::Instance> = self
            .fleet
            .instances
            .iter()
            .map(|i| (i.id.as_str(), i))
            .collect();
        let alloc = |id: &str, r: Resource| index[id].resource(r).alloc;
        self.tally.score(&views.realised, alloc, &policy.unit);
        if opts.credits == Credits::Usage {
            settle_credits(&mut self.fleet, &views.realised);
        }
        Ok(())
    }
}

/// Replays `opts.strategies` over `telemetry` from `fleet`; `fleet_path` names the fleet in errors.
pub fn run(
    fleet: &Fleet,
    fleet_path: &Path,
    telemetry: &Telemetry,
    policy: &Policy,
    opts: &Options,
) -> Result<Replay, ReplayError> {
    check(fleet, fleet_path, telemetry, opts)?;
    let mut policy = policy.clone();
    policy.interval_minutes = opts.interval_minutes;
    policy.plan_ttl_minutes = policy.plan_ttl_minutes.max(1);
    let step = Duration::minutes(i64::from(opts.interval_minutes));
    let (start, end) = range(telemetry, &policy, opts);
    let times: Vec<i64> = (0..)
        .map(|k| start + step * k)
        .take_while(|t| *t < end)
        .map(|t| t.timestamp())
        .collect();
    if times.is_empty() {
        return Err(ReplayError::EmptyRange {
            path: telemetry.path.clone(),
            start: rfc3339(start),
            end: rfc3339(end),
            minutes: opts.interval_minutes,
        });
    }
    let mut sims: Vec<Sim> = opts
        .strategies
        .iter()
        .map(|&kind| Sim {
            kind,
            fleet: fleet.clone(),
            tally: Tally::default(),
        })
        .collect();
    let steps = step_hours(telemetry);
    let mut state = State::default();
    let focus = opts
        .focus
        .clone()
        .unwrap_or_else(|| most_variable_cpu(telemetry, start, end));
    let mut band = Band {
        instance: focus.clone(),
        ..Band::default()
    };
    let mut bounds = Bounds::default();
    let bar = crate::progress::bar(
        times.len() as u64,
        50,
        "replay {bar:40} {pos}/{len} intervals, eta {eta}",
    );
    for &t in &times {
        let now = DateTime::from_timestamp(t, 0).expect("interval times are valid");
        let until = (now + step).min(end).timestamp();
        let views = views(telemetry, &policy, opts, &steps, now, until, &mut state);
        bounds.add(fleet, &views.realised);
        for sim in &mut sims {
            sim.step(telemetry, &policy, &views, now, opts)?;
        }
        record_band(&mut band, &sims, &views, t);
        bar.inc(1);
    }
    bar.finish_and_clear();
    band.actual = telemetry
        .get(&focus, Resource::Cpu)
        .map(|s| s.window(start.timestamp(), end.timestamp()))
        .unwrap_or_default();
    Ok(Replay {
        start,
        end,
        interval_minutes: opts.interval_minutes,
        times,
        tallies: sims.into_iter().map(|s| (s.kind, s.tally)).collect(),
        bounds,
        band,
        unit: policy.unit,
    })
}

impl Replay {
    /// The report; `fleet` and `telemetry` are the input file names recorded in it.
    pub fn report(&self, fleet: &Path, telemetry: &Path) -> Report {
        let name = |p: &Path| {
            p.file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        };
        Report {
            fleet: name(fleet),
            telemetry: name(telemetry),
            start: rfc3339(self.start),
            end: rfc3339(self.end),
            interval_minutes: self.interval_minutes,
            intervals: self.times.len(),
            strategies: self
                .tallies
                .iter()
                .map(|(k, t)| (k.name().to_owned(), t.summary()))
                .collect(),
            details: self
                .tallies
                .iter()
                .map(|(k, t)| (k.name().to_owned(), t.details(&self.unit)))
                .collect(),
            bounds: self.bounds.summaries(&self.unit),
        }
    }

    /// The terminal table, strategies in the order they were asked for.
    pub fn table(&self) -> String {
        let rows: Vec<_> = self
            .tallies
            .iter()
            .map(|(k, t)| (k.name().to_owned(), t.summary(), t.details(&self.unit)))
            .collect();
        metrics::table(&rows) + &self.bounds.line(&self.unit)
    }
}

fn check(
    fleet: &Fleet,
    fleet_path: &Path,
    telemetry: &Telemetry,
    opts: &Options,
) -> Result<(), ReplayError> {
    if opts.interval_minutes == 0 || opts.strategies.is_empty() {
        return Err(ReplayError::Options);
    }
    for (k, kind) in opts.strategies.iter().enumerate() {
        if opts.strategies[..k].contains(kind) {
            return Err(ReplayError::Duplicate(*kind));
        }
    }
    match telemetry.first_unknown(fleet) {
        Some((instance, line)) => Err(ReplayError::UnknownInstance {
            path: telemetry.path.clone(),
            line,
            instance: instance.to_owned(),
            fleet: fleet_path.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The replay's start and end: as given, or one season after the first sample to
/// the end of the last interval holding a sample, on the interval grid.
fn range(telemetry: &Telemetry, policy: &Policy, opts: &Options) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = telemetry
        .series
        .values()
        .filter_map(Series::first_time)
        .min()
        .unwrap_or(0);
    let last = telemetry
        .series
        .values()
        .filter_map(Series::last_time)
        .max()
        .unwrap_or(0);
    let grid = i64::from(opts.interval_minutes) * 60;
    let up = |t: i64| t.div_euclid(grid) * grid + if t.rem_euclid(grid) == 0 { 0 } else { grid };
    let season = i64::from(policy.forecast.season_minutes) * 60;
    let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
    let start = opts.start.unwrap_or_else(|| at(up(first + season)));
    let end = opts.end.unwrap_or_else(|| at(up(last + 1)));
    (start, end)
}

/// The instance whose cpu demand varies most (standard deviation) over the replay.
fn most_variable_cpu(telemetry: &Telemetry, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let (lo, hi) = (start.timestamp(), end.timestamp());
    let spread = |points: &[(i64, f64)]| {
        let w: Vec<f64> = points.iter().map(|p| p.1).collect();
        let n = w.len().max(1) as f64;
        let mean = w.iter().sum::<f64>() / n;
        w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n
    };
    telemetry
        .series
        .iter()
        .filter(|((_, r), _)| *r == Resource::Cpu)
        .map(|((id, _), s)| (id, spread(&s.window(lo, hi))))
        .fold(None, |best: Option<(&String, f64)>, (id, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((id, v)),
        })
        .map_or(String::new(), |(id, _)| id.clone())
}

/// Plans with `sim`'s strategy at `now` and applies the plan to its fleet through the executor.
fn plan_and_apply(
    sim: &mut Sim,
    telemetry: &Telemetry,
    policy: &Policy,
    views: &Views,
    now: DateTime<Utc>,
    timing: bool,
) -> Result<(), ReplayError> {
    let kind = sim.kind;
    let clock = Instant::now();
    let (problem, forecasts, shared_seconds) = problem_for(sim, policy, views, now);
    let (solution, stats) = kind.solve(&problem).map_err(|source| ReplayError::Solve {
        strategy: kind,
        at: rfc3339(now),
        source,
    })?;
    if timing {
        sim.tally
            .plan_seconds
            .push(clock.elapsed().as_secs_f64() + shared_seconds);
    }
    let plan = Plan::build(
        &plan::Inputs {
            fleet: &sim.fleet,
            telemetry,
            forecasts: &forecasts,
            problem: &problem,
            strategy: kind.name(),
            stats: &stats,
            record_timing: false,
        },
        &solution,
    );
    if plan.has_changes() {
        apply(sim, plan, now)?;
    }
    Ok(())
}

/// The problem `sim`'s strategy solves at `now` (with the cool-down, as `plan` has it),
/// the demand records its plan carries, and the seconds spent on estimates shared with
/// other strategies.
fn problem_for<'v>(
    sim: &Sim,
    policy: &Policy,
    views: &'v Views,
    now: DateTime<Utc>,
) -> (Problem, Cow<'v, Forecasts>, f64) {
    let (mut problem, forecasts, seconds) = match (&views.forecasts, views.estimates.get(&sim.kind))
    {
        (Some((f, seconds)), _) if sim.kind.uses_forecasts() => (
            Problem::new(&sim.fleet, f, policy),
            Cow::Borrowed(f),
            *seconds,
        ),
        (f, Some(e)) if sim.kind == Kind::Foresight => (
            foresight_problem(&sim.fleet, policy, e, f.as_ref().map(|(f, _)| f)),
            Cow::Owned(synthetic_forecasts(sim.kind, &e.demand, now)),
            e.seconds,
        ),
        (_, Some(e)) => {
            let demand = |id: &str, r: Resource| e.demand.get(&(id.to_owned(), r)).copied();
            (
                Problem::with_demand(&sim.fleet, policy, demand),
                Cow::Owned(synthetic_forecasts(sim.kind, &e.demand, now)),
                e.seconds,
            )
        }
        _ => (
            Problem::with_demand(&sim.fleet, policy, |_, _| None),
            Cow::Owned(Forecasts {
                now,
                ..Forecasts::default()
            }),
            0.0,
        ),
    };
    problem.apply_cooldown(&sim.fleet, now);
    (problem, forecasts, seconds)
}

/// Foresight's problem: the MIP's rules, with look-ahead over the realised peaks of the coming
/// intervals, and the shrink floors and idle ceilings that `mip` gets from its forecasts.
fn foresight_problem(
    fleet: &Fleet,
    policy: &Policy,
    e: &view::Estimates,
    forecasts: Option<&Forecasts>,
) -> Problem {
    let mut policy = policy.clone();
    policy.lookahead_intervals = strategy::FORESIGHT_INTERVALS;
    let mut p = Problem::with_demand(fleet, &policy, |id, r| {
        e.demand.get(&(id.to_owned(), r)).copied()
    });
    let later = strategy::FORESIGHT_INTERVALS as usize - 1;
    for inst in &mut p.instances {
        let key = |r| (inst.id.clone(), r);
        inst.ahead = (0..later)
            .map(|k| PerResource::from_fn(|r| e.ahead.get(&key(r)).and_then(|v| v[k])))
            .collect();
    }
    if let Some(f) = forecasts {
        p.set_usage_bounds(f);
    }
    p.choose_candidates();
    p
}

/// Verifies `plan` against `sim`'s fleet, applies it with the executor and counts what it did.
fn apply(sim: &mut Sim, plan: Plan, now: DateTime<Utc>) -> Result<(), ReplayError> {
    let (kind, at) = (sim.kind, rfc3339(now));
    let totals = plan.plan.totals.clone();
    let path = PathBuf::from(format!("replay/{kind}/{}.plan.toml", plan.plan.id));
    let verified = plan
        .verify(&path, &sim.fleet, now)
        .map_err(|e| ReplayError::Verify {
            strategy: kind,
            at: at.clone(),
            source: Box::new(e),
        })?;
    let outcome = executor::execute(&verified, &sim.fleet, &path, &mut |_| {}).map_err(|e| {
        ReplayError::Apply {
            strategy: kind,
            at,
            source: Box::new(e),
        }
    })?;
    sim.fleet = outcome.fleet;
    let t = &mut sim.tally;
    t.changes += totals.changes as u64;
    t.migrations += totals.migrations as u64;
    t.bytes_moved += totals.bytes_moved;
    t.credits_spent += totals.credits_moved;
    Ok(())
}

/// Demand records for a plan made from a baseline's estimates, so its reasons say what it used.
fn synthetic_forecasts(
    kind: Kind,
    map: &BTreeMap<(String, Resource), f64>,
    now: DateTime<Utc>,
) -> Forecasts {
    let (method, note) = match kind {
        Kind::Vpa => (Method::Vpa, "vpa: decaying p90 + 15%"),
        Kind::Oracle => (
            Method::RecentPeak,
            "oracle: realised peak of the coming interval",
        ),
        Kind::Foresight => (
            Method::RecentPeak,
            "foresight: realised peaks of the coming intervals",
        ),
        _ => (Method::RecentPeak, "reactive: last interval's peak + 15%"),
    };
    Forecasts {
        demands: map
            .iter()
            .map(|(k, &v)| (k.clone(), Demand::fixed(&[v], v, method, note.to_owned())))
            .collect(),
        now,
        ..Forecasts::default()
    }
}

fn record_band(band: &mut Band, sims: &[Sim], views: &Views, t: i64) {
    let forecast = views
        .forecasts
        .as_ref()
        .and_then(|(f, _)| f.get(&band.instance, Resource::Cpu))
        .map(|d| (d.mean, d.quantile));
    let alloc = sims
        .iter()
        .find(|s| s.kind == Kind::Mip)
        .and_then(|s| s.fleet.instance(&band.instance))
        .map(|i| i.cpu.alloc);
    band.steps.push(BandStep { t, forecast, alloc });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::round6;

    fn fixtures() -> (Fleet, Telemetry) {
        let fleet = Fleet::parse(
            Path::new("fixtures/fleet.toml"),
            include_str!("../../fixtures/fleet.toml"),
        )
        .unwrap();
        let csv = include_str!("../../fixtures/telemetry.csv");
        let t =
            Telemetry::from_reader(Path::new("fixtures/telemetry.csv"), csv.as_bytes()).unwrap();
        (fleet, t)
    }

    /// Options for a replay of `strategies` at 15-minute intervals, credits following usage.
    fn options(strategies: Vec<Kind>) -> Options {
        Options {
            strategies,
            interval_minutes: 15,
            start: None,
            end: None,
            timing: false,
            focus: None,
            credits: Credits::Usage,
        }
    }

    /// The oracle's own objective is the MIP's, on the demand that arrives: from the
    /// same fleet, no strategy's plan scores better on it, at any of these times.
    #[test]
    fn the_oracle_is_never_worse_on_its_own_objective() {
        let (fleet, t) = fixtures();
        let policy = Policy::default();
        let opts = options(Kind::ALL.to_vec());
        let steps = step_hours(&t);
        let mut state = State::default();
        for at in [
            "2024-03-05T03:00:00Z",
            "2024-03-05T14:15:00Z",
            "2024-03-06T09:30:00Z",
            "2024-03-06T20:45:00Z",
        ] {
            let now: DateTime<Utc> = at.parse().unwrap();
            let until = (now + Duration::minutes(15)).timestamp();
            let v = views(&t, &policy, &opts, &steps, now, until, &mut state);
            let realised = &v.estimates[&Kind::Oracle].demand;
            let oracle_problem = Problem::with_demand(&fleet, &policy, |id, r| {
                realised.get(&(id.to_owned(), r)).copied()
            });
            let (best, _) = Kind::Oracle.solve(&oracle_problem).unwrap();
            let floor = oracle_problem.assess(&best).objective;
            for kind in Kind::ALL {
                let sim = Sim {
                    kind,
                    fleet: fleet.clone(),
                    tally: Tally::default(),
                };
                let (p, _, _) = problem_for(&sim, &policy, &v, now);
                let (s, _) = kind.solve(&p).unwrap();
                let cost = oracle_problem.assess(&s).objective;
                assert!(floor <= cost + 1e-6, "{at}: oracle {floor} > {kind} {cost}");
            }
        }
    }

    /// Foresight plans with look-ahead for the realised peak of each coming interval, and
    /// keeps the shrink floors `mip` has.
    #[test]
    fn foresight_sees_the_peaks_of_the_coming_intervals_and_keeps_the_floors() {
        let (fleet, t) = fixtures();
        let policy = Policy::default();
        let opts = options(vec![Kind::Mip, Kind::Foresight]);
        let now: DateTime<Utc> = "2024-03-06T09:30:00Z".parse().unwrap();
        let until = (now + Duration::minutes(15)).timestamp();
        let v = views(
            &t,
            &policy,
            &opts,
            &step_hours(&t),
            now,
            until,
            &mut State::default(),
        );
        let sim = Sim {
            kind: Kind::Foresight,
            fleet: fleet.clone(),
            tally: Tally::default(),
        };
        let (p, _, _) = problem_for(&sim, &policy, &v, now);
        let (f, _) = v.forecasts.as_ref().unwrap();
        let mut floors = 0;
        for inst in &p.instances {
            assert_eq!(inst.ahead.len(), strategy::FORESIGHT_INTERVALS as usize - 1);
            for r in Resource::ALL {
                let Some(s) = t.series.get(&(inst.id.clone(), r)) else {
                    continue;
                };
                for (k, later) in inst.ahead.iter().enumerate() {
                    let from = now.timestamp() + 900 * (k as i64 + 1);
                    let peak = s
                        .window(from, from + 900)
                        .iter()
                        .map(|p| p.1)
                        .reduce(f64::max);
                    assert_eq!(later[r], peak, "{} {r} interval {}", inst.id, k + 1);
                }
                let floor = f.floors.get(&(inst.id.clone(), r)).copied().unwrap_or(0.0);
                assert_eq!(inst.floor[r], floor);
                floors += usize::from(floor > 0.0);
            }
        }
        assert!(floors > 0, "the fixture has shrink floors");
        let (s, _) = Kind::Foresight.solve(&p).unwrap();
        assert_eq!(s.ahead.len(), strategy::FORESIGHT_INTERVALS as usize - 1);
    }

    #[test]
    fn credits_follow_usage_within_zero_and_the_cap() {
        let (mut fleet, _) = fixtures();
        let id = fleet.instances[0].id.clone();
        let (rate, alloc, cap) = {
            let i = &mut fleet.instances[0];
            i.credits = 10.0;
            (i.earn_rate, i.cpu.alloc, i.credit_cap())
        };
        // An hour idle earns `rate`; an hour far above the allocation spends 60 per allocated core.
        let idle = [(0, 0.0)];
        settle_credits(
            &mut fleet,
            &vec![(id.as_str(), Resource::Cpu, 1.0, idle.to_vec())],
        );
        assert_eq!(fleet.instances[0].credits, round6(10.0 + rate));
        let busy = [(0, alloc * 100.0)];
        let hours = (10.0 + rate) / (60.0 * alloc - rate) / 2.0;
        settle_credits(
            &mut fleet,
            &vec![(id.as_str(), Resource::Cpu, hours, busy.to_vec())],
        );
        assert_eq!(fleet.instances[0].credits, round6((10.0 + rate) / 2.0));
        settle_credits(
            &mut fleet,
            &vec![(id.as_str(), Resource::Cpu, 10.0, busy.to_vec())],
        );
        assert_eq!(fleet.instances[0].credits, 0.0);
        settle_credits(
            &mut fleet,
            &vec![(id.as_str(), Resource::Cpu, 1000.0, idle.to_vec())],
        );
        assert_eq!(fleet.instances[0].credits, round6(cap));
    }
}
