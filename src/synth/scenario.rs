//! Synthetic scenarios at any scale: a fleet plus telemetry shaped like the real traces.
//!
//! Benchmarks and scale tests need thousands to a hundred thousand instances,
//! far more than the public excerpts hold. Each synthetic instance takes the
//! normalised shape of one shipped fixture series per resource (Bitbrains,
//! Azure, NAB), resamples whole days of it with a random phase, scales it to a
//! log-normal size and adds 5% noise. The fixture excerpts are compiled in,
//! so generation needs no data directory. Instances are generated in
//! parallel from per-instance seeds, so the output depends only on the seed.

use crate::file::FileError;
use crate::fleet::Fleet;
use crate::policy::Policy;
use crate::resource::{PerResource, Resource};
use crate::synth::rng::SplitMix;
use crate::synth::{fleet_from_peaks, SynthError, SynthOptions};
use crate::telemetry::Telemetry;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// The shipped fixture telemetry, the source of every shape.
const FIXTURE: &str = include_str!("../../fixtures/telemetry.csv");

/// Source samples per day (5-minute data).
const DAY: usize = 288;

/// Instances generated per parallel batch (bounds memory).
const BATCH: usize = 512;

/// Median size and log-normal spread of instances per resource.
const MEDIAN: PerResource<f64> = PerResource {
    cpu: 1.0,
    mem: 2048.0,
    net: 20.0,
};
const SPREAD: PerResource<f64> = PerResource {
    cpu: 0.7,
    mem: 0.7,
    net: 1.0,
};

/// Per instance, a value per resource (`None` where the resource has no shape).
pub type PerInstance = Vec<PerResource<Option<f64>>>;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioOptions {
    /// Instances to generate.
    pub instances: usize,
    /// Hosts to place them on.
    pub hosts: usize,
    /// Cells the hosts are divided into.
    pub cells: usize,
    /// Days of telemetry per series.
    pub days: u32,
    /// Random seed: the same seed gives the same fleet and telemetry.
    pub seed: u64,
    /// Telemetry step (a multiple of 5).
    pub step_minutes: u32,
    /// Summed peak demand over capacity on each host.
    pub overcommit: f64,
    /// Time of the first sample.
    pub start: DateTime<Utc>,
}

/// Why a scenario could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
    /// The fleet could not be synthesised.
    #[error(transparent)]
    Fleet(#[from] SynthError),
    /// The scenario options are invalid; the message says how.
    #[error("{0}")]
    Options(String),
}

/// Normalised series (mean 1) per resource, taken from the fixtures.
struct Shapes(PerResource<Vec<Vec<f64>>>);

impl Shapes {
    fn load() -> Shapes {
        let t = Telemetry::from_reader(Path::new("fixtures/telemetry.csv"), FIXTURE.as_bytes())
            .expect("the shipped fixture is valid");
        let mut shapes = PerResource::<Vec<Vec<f64>>>::default();
        for ((_, r), series) in &t.series {
            let values: Vec<f64> = series.values().collect();
            let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
            if mean > 0.0 && values.len() >= DAY {
                shapes[*r].push(values.iter().map(|v| v / mean).collect());
            }
        }
        Shapes(shapes)
    }
}

/// One generated instance: its CSV rows (if asked for), its peak and its last hour's peak.
struct Generated {
    rows: String,
    peak: PerResource<Option<f64>>,
    last_hour: PerResource<Option<f64>>,
}

/// Generates every instance in parallel batches, handing each to `sink` in order.
fn generate_all(
    opts: &ScenarioOptions,
    rows: bool,
    mut sink: impl FnMut(Generated) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let shapes = Shapes::load();
    let stamps = timestamps(opts);
    for first in (0..opts.instances).step_by(BATCH) {
        let last = (first + BATCH).min(opts.instances);
        let batch: Vec<Generated> = (first..last)
            .into_par_iter()
            .map(|k| instance(k, opts, &shapes, &stamps, rows))
            .collect();
        for g in batch {
            sink(g)?;
        }
    }
    Ok(())
}

/// A scenario in memory: the fleet, and each instance's peak over the last hour of its
/// telemetry, a stand-in forecast for benchmarks that exercise the optimiser alone.
pub fn generate(
    opts: &ScenarioOptions,
    policy: &Policy,
) -> Result<(Fleet, PerInstance), ScenarioError> {
    check(opts)?;
    let (mut peaks, mut recent) = (Vec::new(), Vec::new());
    generate_all(opts, false, |g| {
        peaks.push(g.peak);
        recent.push(g.last_hour);
        Ok(())
    })
    .expect("no I/O without rows");
    Ok((fleet(opts, peaks, policy)?, recent))
}

fn fleet(
    opts: &ScenarioOptions,
    peaks: Vec<PerResource<Option<f64>>>,
    policy: &Policy,
) -> Result<Fleet, ScenarioError> {
    let ids = (0..opts.instances).map(instance_id).collect();
    let synth = SynthOptions {
        hosts: opts.hosts,
        cells: opts.cells,
        overcommit: opts.overcommit,
        seed: opts.seed,
    };
    Ok(fleet_from_peaks(ids, peaks, &synth, policy)?)
}

/// Writes `fleet.toml` and `telemetry.csv` into `dir` and returns the fleet.
pub fn write(opts: &ScenarioOptions, policy: &Policy, dir: &Path) -> Result<Fleet, ScenarioError> {
    check(opts)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| FileError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let csv_path = dir.join("telemetry.csv");
    let file = std::fs::File::create(&csv_path).map_err(io(&csv_path))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "timestamp,instance,resource,value").map_err(io(&csv_path))?;
    let mut peaks = Vec::with_capacity(opts.instances);
    generate_all(opts, true, |g| {
        peaks.push(g.peak);
        out.write_all(g.rows.as_bytes())
    })
    .map_err(io(&csv_path))?;
    out.flush().map_err(io(&csv_path))?;
    let fleet = fleet(opts, peaks, policy)?;
    let fleet_path = dir.join("fleet.toml");
    fleet.write_atomic(&fleet_path)?;
    Ok(fleet)
}

fn check(opts: &ScenarioOptions) -> Result<(), ScenarioError> {
    if opts.instances == 0 || opts.days == 0 {
        return Err(ScenarioError::Options(
            "--instances and --days must be > 0".into(),
        ));
    }
    if opts.step_minutes == 0 || !opts.step_minutes.is_multiple_of(5) {
        return Err(ScenarioError::Options(
            "--step-minutes must be a positive multiple of 5".into(),
        ));
    }
    Ok(())
}

/// Instance ids sort in generation order.
fn instance_id(k: usize) -> String {
    format!("vm{k:06}")
}

fn timestamps(opts: &ScenarioOptions) -> Vec<String> {
    let steps = opts.days as usize * 1440 / opts.step_minutes as usize;
    (0..steps)
        .map(|t| {
            let at = opts.start + Duration::minutes(t as i64 * i64::from(opts.step_minutes));
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        })
        .collect()
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut SplitMix) -> f64 {
    let u = rng.unit().max(f64::MIN_POSITIVE);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos()
}

fn instance(
    k: usize,
    opts: &ScenarioOptions,
    shapes: &Shapes,
    stamps: &[String],
    with_rows: bool,
) -> Generated {
    let mut rng = SplitMix(opts.seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let id = instance_id(k);
    let mut rows = String::with_capacity(if with_rows { stamps.len() * 3 * 48 } else { 0 });
    let (mut peak, mut last_hour) = (PerResource::default(), PerResource::default());
    let hour = (60 / opts.step_minutes as usize).max(1);
    for r in Resource::ALL {
        let pool = &shapes.0[r];
        if pool.is_empty() {
            continue;
        }
        let shape = &pool[rng.below(pool.len())];
        let size = (MEDIAN[r].ln() + SPREAD[r] * normal(&mut rng)).exp();
        let series = resample(shape, size, opts, stamps.len(), &mut rng);
        peak[r] = series.iter().copied().reduce(f64::max);
        last_hour[r] = series[series.len().saturating_sub(hour)..]
            .iter()
            .copied()
            .reduce(f64::max);
        if with_rows {
            for (stamp, v) in stamps.iter().zip(&series) {
                rows.push_str(&format!("{stamp},{id},{r},{v:.4}\n"));
            }
        }
    }
    Generated {
        rows,
        peak,
        last_hour,
    }
}

/// Day-block bootstrap of `shape` with a random phase, scaled to `size`, with 5% noise,
/// averaged to the output step.
fn resample(
    shape: &[f64],
    size: f64,
    opts: &ScenarioOptions,
    steps: usize,
    rng: &mut SplitMix,
) -> Vec<f64> {
    let days = shape.len() / DAY;
    let phase = rng.below(DAY);
    let per_step = opts.step_minutes as usize / 5;
    let mut day = rng.below(days);
    (0..steps)
        .map(|t| {
            let sum: f64 = (0..per_step)
                .map(|j| {
                    let minute = t * per_step + j;
                    if minute.is_multiple_of(DAY) && minute > 0 {
                        day = rng.below(days);
                    }
                    let v = shape[day * DAY + (minute + phase) % DAY];
                    (v * size * (1.0 + 0.05 * normal(rng))).max(0.0)
                })
                .sum();
            sum / per_step as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(instances: usize) -> ScenarioOptions {
        ScenarioOptions {
            instances,
            hosts: 4,
            cells: 2,
            days: 1,
            seed: 9,
            step_minutes: 15,
            overcommit: 1.3,
            start: "2024-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn writes_a_valid_deterministic_scenario() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let fleet = write(&opts(20), &Policy::default(), a.path()).unwrap();
        write(&opts(20), &Policy::default(), b.path()).unwrap();
        for f in ["fleet.toml", "telemetry.csv"] {
            let (x, y) = (
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
            );
            assert!(x == y, "{f} differs between runs");
        }
        assert_eq!(fleet.instances.len(), 20);
        let t = Telemetry::read(&a.path().join("telemetry.csv")).unwrap();
        assert_eq!(t.series.len(), 60);
        assert!(t
            .series
            .values()
            .all(|s| s.len() == 96 && s.step_seconds() == Some(900)));
        Fleet::read(&a.path().join("fleet.toml")).unwrap();
    }

    #[test]
    fn rejects_bad_options() {
        let dir = tempfile::tempdir().unwrap();
        let bad = ScenarioOptions {
            step_minutes: 7,
            ..opts(4)
        };
        assert!(write(&bad, &Policy::default(), dir.path()).is_err());
        let bad = ScenarioOptions {
            instances: 2,
            ..opts(2)
        };
        assert!(write(&bad, &Policy::default(), dir.path())
            .unwrap_err()
            .to_string()
            .contains("cannot fill"));
    }
}
