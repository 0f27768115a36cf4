//! Profiling and prediction speed on real job logs: the time to profile a whole log at
//! once, and to replay it as `chameleon` sees it (every arrival and release profiled
//! when it happens, and a prediction of every pool's demand at every review, 60 s
//! apart), per simulated day. The bound is one second per simulated day.
//!
//! Logs: the NASA iPSC SWF log and the Azure 2017 VM arrivals from `../shared/data`
//! when present, else the fixture excerpt. Run: `cargo bench --bench pools`.

use chameleon::jobs::import::{import, Options, Source};
use chameleon::jobs::{self, Job};
use chameleon::pools::targets::PoolSettings;
use chameleon::profile::tracker::Tracker;
use chameleon::profile::{arrival, Book};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn logs() -> Vec<(String, Vec<Job>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("../shared/data");
    let mut out = Vec::new();
    let sources = [
        (
            "nasa-ipsc (swf)",
            Source::Swf,
            data.join("nasa-ipsc-1993-swf/NASA-iPSC-1993-3.1-cln.first60d.swf.gz"),
        ),
        (
            "azure-vm-2017 arrivals",
            Source::AzureVmArrivals,
            data.join("azure-vm-2017-arrivals/traces/v1.dev.txt"),
        ),
    ];
    for (name, source, path) in sources {
        if path.exists() {
            let imported = import(source, &[PathBuf::from(&path)], &Options::default())
                .unwrap_or_else(|e| panic!("{e}"));
            out.push((name.to_owned(), imported.jobs));
        }
    }
    if out.is_empty() {
        let fixture = root.join("fixtures/jobs.csv");
        out.push(("fixture".to_owned(), jobs::read(&fixture).expect("fixture")));
    }
    out
}

/// Seconds spent in each part of the online replay.
#[derive(Default)]
struct Parts {
    predictions: usize,
    /// Profiling arrivals and releases.
    events: f64,
    /// Keeping each pool's job mix current.
    mix: f64,
    /// The demand distribution and its quantile.
    outlook: f64,
    /// The idle count (decided again when the mix moved).
    decide: f64,
}

/// Profiles every arrival and release when it happens and predicts every pool at every
/// review.
fn replay(jobs: &[Job], settings: &PoolSettings, horizon: f64) -> Parts {
    // (time, 0 = release / 1 = arrival, job): releases first at one instant.
    let mut events: Vec<(f64, u8, usize)> = Vec::with_capacity(2 * jobs.len());
    for (k, j) in jobs.iter().enumerate() {
        let a = arrival(j);
        events.push((a, 1, k));
        events.push((a + j.run_seconds, 0, k));
    }
    events.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let (start, end) = (events[0].0, events.last().expect("events").0);
    let mut book = Book::default();
    let mut trackers: BTreeMap<String, Tracker> = BTreeMap::new();
    let mut next = 0;
    let mut parts = Parts::default();
    let mut t = start;
    while t <= end {
        let clock = Instant::now();
        while next < events.len() && events[next].0 <= t {
            let (at, kind, k) = events[next];
            let j = &jobs[k];
            let p = book.pools.entry(j.pool.clone()).or_default();
            trackers
                .entry(j.pool.clone())
                .or_insert_with(|| Tracker::new(horizon, settings.review_seconds))
                .touch(&j.user);
            if kind == 1 {
                p.arrive(&j.user, &j.program, at, j.instances);
            } else {
                p.finish(&j.user, &j.program, at, j.run_seconds, j.instances, j.cpu);
            }
            next += 1;
        }
        parts.events += clock.elapsed().as_secs_f64();
        for (pool, p) in &book.pools {
            let tracker = trackers.get_mut(pool).expect("a tracker per pool");
            let clock = Instant::now();
            tracker.mix(p, t);
            let mixed = Instant::now();
            std::hint::black_box(tracker.outlook().quantile(settings.quantile));
            let outlooked = Instant::now();
            std::hint::black_box(tracker.cheapest_idle(settings.idle_price));
            parts.mix += (mixed - clock).as_secs_f64();
            parts.outlook += (outlooked - mixed).as_secs_f64();
            parts.decide += outlooked.elapsed().as_secs_f64();
            parts.predictions += 1;
        }
        t += settings.review_seconds;
    }
    parts
}

fn main() {
    let settings = PoolSettings::default();
    let horizon = settings.cold_start_seconds + settings.review_seconds;
    println!(
        "{:<24} {:>7} {:>6} {:>5} {:>9} {:>11} {:>8} {:>8} {:>6} {:>9} {:>8} {:>9}",
        "log",
        "jobs",
        "days",
        "pools",
        "profile_s",
        "predictions",
        "replay_s",
        "events_s",
        "mix_s",
        "outlook_s",
        "decide_s",
        "s_per_day"
    );
    for (name, jobs) in logs() {
        let times: Vec<f64> = jobs.iter().map(arrival).collect();
        let span = times.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - times.iter().copied().fold(f64::INFINITY, f64::min);
        let days = span / 86_400.0;
        let clock = Instant::now();
        let mut book = Book::default();
        book.update(&jobs, None);
        let profile = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let parts = replay(&jobs, &settings, horizon);
        let seconds = clock.elapsed().as_secs_f64();
        println!(
            "{:<24} {:>7} {:>6.2} {:>5} {:>9.3} {:>11} {:>8.2} {:>8.2} {:>6.2} {:>9.2} {:>8.2} {:>9.3}",
            name,
            jobs.len(),
            days,
            book.pools.len(),
            profile,
            parts.predictions,
            seconds,
            parts.events,
            parts.mix,
            parts.outlook,
            parts.decide,
            (profile + seconds) / days
        );
    }
}
