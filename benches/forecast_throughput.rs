//! Forecast throughput on synthetic fleets: cold (selection), warm unchanged (reuse)
//! and warm 15 minutes later, with three new samples per series (refit of the stored choice).
//!
//! `BENCH_INSTANCES` (default 300) instances × 3 resources × `BENCH_DAYS` (default 7)
//! days of 5-minute samples. Run: `BENCH_INSTANCES=10000 cargo bench --bench forecast_throughput`;
//! peak memory with `/usr/bin/time -v target/release/deps/forecast_throughput-*`.

use chameleon::forecast::state::State;
use chameleon::forecast::{Forecasts, Settings};
use chameleon::resource::Resource;
use chameleon::telemetry::{Series, Telemetry};
use chrono::{DateTime, Duration, Utc};
use std::time::Instant;

const STEP: i64 = 300;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic generator in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One of four shapes by `kind`: daily cycle, random walk, spiky noise, level shift.
fn value(kind: usize, i: usize, n: usize, level: &mut f64, rng: &mut Lcg) -> f64 {
    let day = (i as f64 / 288.0 * std::f64::consts::TAU).sin();
    let e = rng.next() - 0.5;
    let v = match kind {
        0 => 50.0 + 20.0 * day + 5.0 * e,
        1 => {
            *level = (*level + e).max(0.0);
            *level
        }
        2 if rng.next() < 0.01 => 400.0,
        2 => 20.0 + 3.0 * e,
        _ if i > n - 200 => 80.0 + 4.0 * e,
        _ => 30.0 + 4.0 * e,
    };
    v.max(0.0)
}

fn series(seed: u64, start: i64, n: usize) -> Series {
    let mut rng = Lcg(seed);
    let mut level = 10.0;
    let kind = (seed % 4) as usize;
    let points: Vec<(i64, f64)> = (0..n)
        .map(|i| {
            (
                start + i as i64 * STEP,
                value(kind, i, n, &mut level, &mut rng),
            )
        })
        .collect();
    Series::from_points(points, 0)
}

fn fleet(instances: usize, start: i64, n: usize) -> Telemetry {
    let mut t = Telemetry::default();
    for i in 0..instances {
        for (j, r) in Resource::ALL.into_iter().enumerate() {
            let seed = (i * 3 + j) as u64;
            t.series
                .insert((format!("vm-{i:05}"), r), series(seed, start, n));
        }
    }
    t
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`
/// (0 where that is not readable): with other work on the machine, CPU time per
/// series is steadier than wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn timed(label: &str, series: usize, f: impl FnOnce() -> Forecasts) -> Forecasts {
    let (clock, cpu) = (Instant::now(), cpu_seconds());
    let out = f();
    let s = clock.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let work: Vec<String> = out
        .work
        .iter()
        .map(|(w, n)| format!("{n} {}", w.name()))
        .collect();
    println!(
        "{label:<22} {series:>7} series {s:>9.2} s {:>8.3} ms/series, cpu {cpu:>8.2} s {:>7.3} ms/series  ({})",
        s * 1000.0 / series as f64,
        cpu * 1000.0 / series as f64,
        work.join(", ")
    );
    out
}

fn main() {
    let instances = env("BENCH_INSTANCES", 300);
    let days = env("BENCH_DAYS", 7);
    let n = days * 288;
    let start: DateTime<Utc> = "2024-03-01T00:00:00Z".parse().expect("valid time");
    let now = start + Duration::seconds(n as i64 * STEP);
    let clock = Instant::now();
    // Three samples beyond `now`: the warm run 15 minutes later sees them as new data.
    let t = fleet(instances, start.timestamp(), n + 3);
    let count = t.series.len();
    println!(
        "{instances} instances x 3 resources x {days} days of 5-minute samples, {} threads; generated in {:.1} s",
        rayon::current_num_threads(),
        clock.elapsed().as_secs_f64()
    );
    let settings = Settings::default();
    let mut state = State::default();
    timed("cold (selection)", count, || {
        Forecasts::build_with_state(&t, now, &settings, &mut state)
    });
    timed("warm, unchanged", count, || {
        Forecasts::build_with_state(&t, now, &settings, &mut state)
    });
    let later = now + Duration::minutes(15);
    timed("warm, +15 min of data", count, || {
        Forecasts::build_with_state(&t, later, &settings, &mut state)
    });
}
