//! The user-behaviour profiler (docs/glossary.md#profiler): what each user's job history
//! says about the demand they will bring, kept as small running tallies.
//!
//! Per user (and per program within a user) it keeps when jobs arrive (by hour of the
//! week), how bursty they are (the inter-arrival distribution, the "think time" from
//! the user's last activity to the next job, and sessions: a gap over
//! [`SESSION_GAP`] starts one), how long jobs run, how many instances they take and
//! which programs they run. Everything is a count or a sum, so a profile is updated
//! one job at a time, in time order, and persists as JSON under `models/` like the
//! forecast state: a cron run reads it, adds the jobs it has not seen and writes it
//! back. The demand predictor ([`demand`]) and the seed's formula ([`seed`]) read it.
//!
//! Times are Unix seconds (f64) in UTC; hours of the week start on Monday 00:00 UTC.

pub mod demand;
pub mod histogram;
pub mod seed;
pub mod tracker;
pub mod week;

use crate::file::FileError;
use crate::jobs::Job;
use histogram::LogHistogram;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use week::WeekHours;

/// A gap between a user's jobs longer than this (seconds) starts a new session.
pub const SESSION_GAP: f64 = 1800.0;
/// Users inactive this long (seconds) leave the active set.
pub const ACTIVE_KEEP: f64 = 4.0 * 3600.0;
/// The least time (seconds) between two prunings of the active set.
const PRUNE_EVERY: f64 = 3600.0;
/// Sizes remembered per user for the recent size mix.
const RECENT: usize = 20;
/// Hours in a week.
pub const WEEK_HOURS: usize = 168;
/// The state file's format version.
const VERSION: u32 = 1;

/// Every user's profile, and what the profiler has seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profiles {
    /// The first arrival seen (Unix seconds).
    pub first: Option<f64>,
    /// The latest arrival seen (Unix seconds).
    pub last: Option<f64>,
    /// Arrivals seen at exactly `last`, so that a later batch repeating that second
    /// skips only those.
    at_last: u64,
    /// Jobs profiled in this pool.
    pub jobs: u64,
    /// Each user's tallies, by user id (written in id order). Hashed: the Azure VM log
    /// has 53,109 of them and ids with long common prefixes, so an ordered map spent
    /// more on comparing ids than on the predictions it looked them up for.
    #[serde(serialize_with = "in_id_order")]
    pub users: HashMap<String, UserProfile>,
    /// Every user's think times together (seconds). This and the next two pooled
    /// histograms are the fallback for users with few samples of their own.
    pub think: LogHistogram,
    /// Every user's arrivals while a job of theirs ran (seconds since their last arrival).
    pub while_running: LogHistogram,
    /// Every user's run-outs (seconds from an arrival to the end of their last running job).
    pub ran_out: LogHistogram,
    /// Session starts of every user (first jobs included), by hour of the week, and
    /// their sizes: the rate at which users who are not active now come back.
    pub session_starts: SessionStarts,
    /// Users active (a job running, or an arrival or release) within [`ACTIVE_KEEP`]
    /// of the latest arrival, and some since (until the set has doubled): the only
    /// ones predicted one by one.
    #[serde(default)]
    pub active: BTreeSet<String>,
    /// When the active set was last pruned, and its size then.
    #[serde(default)]
    pruned_at: Option<f64>,
    #[serde(default)]
    pruned_size: usize,
}

/// Session starts by hour of the week, and the instances their first jobs took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStarts {
    /// Session starts by hour of the week ([`WEEK_HOURS`] counts, Monday 00:00 UTC first).
    pub by_hour_of_week: WeekHours,
    /// The jobs that came with sessions' first jobs (in the same second, the first
    /// included), by instances: a session brings these many jobs per start.
    pub sizes: BTreeMap<u32, u64>,
    /// How much busier than usual for the hour the pool has been lately.
    #[serde(default)]
    pub level: Level,
}

/// Session starts lately against what the hour-of-week rates expected for the same
/// stretch, both decayed with a half-life of [`LEVEL_HALF_LIFE`]: sessions come in
/// waves (a deadline, an outage elsewhere, a tenant scaling out) that a weekly
/// profile averages away.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// When it was last brought up to date (Unix seconds).
    pub at: Option<f64>,
    /// Session starts seen, decayed to `at`.
    pub starts: f64,
    /// Session starts the hour-of-week rates expected over the same stretch, decayed to `at`.
    pub expected: f64,
}

/// The half-life (seconds) of the level's memory; fixed, not fitted.
pub const LEVEL_HALF_LIFE: f64 = 3600.0;
/// Expected starts the level's ratio is shrunk with, toward 1.
const LEVEL_PRIOR: f64 = 2.0;

impl SessionStarts {
    /// Sessions started, and the jobs that came with their first jobs (those included).
    pub fn counts(&self) -> (u64, u64) {
        (self.by_hour_of_week.total(), self.sizes.values().sum())
    }
}

impl Level {
    /// Starts and expected starts decayed to `now`, where `mean_rate` is the
    /// expected starts per hour since `at`.
    fn decayed(&self, now: f64, mean_rate: f64) -> (f64, f64) {
        let Some(at) = self.at else {
            return (0.0, 0.0);
        };
        let tau = LEVEL_HALF_LIFE / std::f64::consts::LN_2;
        let keep = (-(now - at).max(0.0) / tau).exp();
        let added = mean_rate / 3600.0 * tau * (1.0 - keep);
        (self.starts * keep, self.expected * keep + added)
    }

    /// The ratio of starts to expected starts lately, shrunk toward 1.
    pub fn factor(&self, now: f64, mean_rate: f64) -> f64 {
        let (starts, expected) = self.decayed(now, mean_rate);
        (starts + LEVEL_PRIOR) / (expected + LEVEL_PRIOR)
    }

    /// A session started at `now`.
    fn start(&mut self, now: f64, mean_rate: f64) {
        let (starts, expected) = self.decayed(now, mean_rate);
        *self = Level {
            at: Some(now),
            starts: starts + 1.0,
            expected,
        };
    }
}

/// One user's tallies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    /// Jobs this user submitted.
    pub jobs: u64,
    /// The user's first arrival (Unix seconds).
    pub first: f64,
    /// The user's latest arrival (Unix seconds).
    pub last: f64,
    /// The latest release of instances at or before `last`, if any.
    pub last_release: Option<f64>,
    /// Releases of jobs still running at `last` (their end is known to the log), each
    /// time once.
    pub running: Vec<f64>,
    /// Jobs arrived and not yet finished (a replay learns a run time only at its end).
    pub open: u32,
    /// Arrivals by hour of the week.
    pub by_hour_of_week: WeekHours,
    /// Arrivals that started a session, by hour of the week.
    pub sessions_by_hour_of_week: WeekHours,
    /// Sessions started (the first job starts one, as does a think time over [`SESSION_GAP`]).
    pub sessions: u64,
    /// Seconds between consecutive arrivals.
    pub interarrival: LogHistogram,
    /// Seconds from the user's last release to their next arrival, when none of their
    /// jobs was running or one ended after their previous arrival (the think time:
    /// a user who keeps one job running resubmits another when it ends).
    pub think: LogHistogram,
    /// Seconds from the user's last arrival to the next, when it came while one of
    /// their jobs was still running.
    pub while_running: LogHistogram,
    /// Seconds from an arrival to the end of the user's last running job, when no
    /// arrival came in between (the other way a running stretch ends).
    pub ran_out: LogHistogram,
    /// Run times of finished jobs.
    pub run: LogHistogram,
    /// Jobs finished (their instances released).
    pub finished: u64,
    /// Summed run time of finished jobs (seconds).
    pub run_seconds: f64,
    /// Instance-seconds of finished jobs (instances × run time).
    pub instance_seconds: f64,
    /// Core-seconds of finished jobs whose cores per instance are known.
    pub cpu_seconds: f64,
    /// Finished jobs whose cores per instance are known (those `cpu_seconds` sums).
    pub cpu_known: u64,
    /// Jobs by instances taken.
    pub sizes: BTreeMap<u32, u64>,
    /// The last few jobs' instances, oldest first.
    pub recent: Vec<u32>,
    /// Jobs that took as many instances as the user's job before.
    pub repeats: u64,
    /// Tallies per program the user ran, by program id.
    pub programs: BTreeMap<String, ProgramProfile>,
    /// The program of the latest job.
    pub last_program: String,
    /// When the user's latest session started (Unix seconds).
    #[serde(default)]
    pub session_start: Option<f64>,
}

/// One program's tallies within a user.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProgramProfile {
    /// Jobs of this program that arrived.
    pub jobs: u64,
    /// Jobs of this program that finished.
    pub finished: u64,
    /// Summed run time of its finished jobs (seconds).
    pub run_seconds: f64,
    /// Instance-seconds of its finished jobs (instances × run time).
    pub instance_seconds: f64,
    /// A path to the program's code, where the log gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The hour of the week (Monday 00:00 UTC is 0) of Unix time `t`.
pub fn hour_of_week(t: f64) -> usize {
    // 1970-01-01 was a Thursday: three days after a Monday.
    let hours = (t / 3600.0).floor() as i64 + 72;
    hours.rem_euclid(WEEK_HOURS as i64) as usize
}

/// How many hours of each hour of the week lie in `[from, to]` (fractions at the ends).
pub fn exposure(from: f64, to: f64) -> [f64; WEEK_HOURS] {
    let mut out = [0.0; WEEK_HOURS];
    if to.is_nan() || from.is_nan() || to <= from {
        return out;
    }
    let span = to - from;
    let weeks = (span / (WEEK_HOURS as f64 * 3600.0)).floor();
    out.iter_mut().for_each(|e| *e = weeks);
    let mut t = from + weeks * WEEK_HOURS as f64 * 3600.0;
    while t < to {
        let next = ((t / 3600.0).floor() + 1.0) * 3600.0;
        let end = next.min(to);
        out[hour_of_week(t)] += (end - t) / 3600.0;
        t = end;
    }
    out
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles {
            first: None,
            last: None,
            at_last: 0,
            jobs: 0,
            users: HashMap::new(),
            think: LogHistogram::default(),
            while_running: LogHistogram::default(),
            ran_out: LogHistogram::default(),
            session_starts: SessionStarts {
                by_hour_of_week: WeekHours::default(),
                sizes: BTreeMap::new(),
                level: Level::default(),
            },
            active: BTreeSet::new(),
            pruned_at: None,
            pruned_size: 0,
        }
    }
}

impl UserProfile {
    fn new(t: f64) -> UserProfile {
        UserProfile {
            jobs: 0,
            first: t,
            last: t,
            last_release: None,
            running: Vec::new(),
            open: 0,
            by_hour_of_week: WeekHours::default(),
            sessions_by_hour_of_week: WeekHours::default(),
            sessions: 0,
            interarrival: LogHistogram::default(),
            think: LogHistogram::default(),
            while_running: LogHistogram::default(),
            ran_out: LogHistogram::default(),
            run: LogHistogram::default(),
            finished: 0,
            run_seconds: 0.0,
            instance_seconds: 0.0,
            cpu_seconds: 0.0,
            cpu_known: 0,
            sizes: BTreeMap::new(),
            recent: Vec::new(),
            repeats: 0,
            programs: BTreeMap::new(),
            last_program: String::new(),
            session_start: None,
        }
    }

    /// The latest activity (arrival or release) at or before `now`.
    pub fn last_activity(&self, now: f64) -> f64 {
        let released = self
            .running
            .iter()
            .copied()
            .filter(|&r| r <= now)
            .fold(self.last_release.unwrap_or(f64::NEG_INFINITY), f64::max);
        self.last.max(released)
    }

    /// Whether one of the user's jobs is running at `now`.
    pub fn running_at(&self, now: f64) -> bool {
        self.open > 0 || self.running.iter().any(|&r| r > now)
    }

    /// The share of jobs taking as many instances as the job before (smoothed).
    pub fn repeat_share(&self) -> f64 {
        (self.repeats as f64 + 1.0) / (self.jobs.saturating_sub(1) as f64 + 2.0)
    }

    /// Jobs per day from the first arrival to `now` (at least one day).
    pub fn jobs_per_day(&self, now: f64) -> f64 {
        self.jobs as f64 / ((now - self.first) / 86_400.0).max(1.0)
    }

    /// Mean instances per job.
    pub fn mean_instances(&self) -> f64 {
        let n: u64 = self.sizes.values().sum();
        if n == 0 {
            return 0.0;
        }
        self.sizes
            .iter()
            .map(|(&k, &c)| f64::from(k) * c as f64)
            .sum::<f64>()
            / n as f64
    }

    /// Arrivals by hour of the day (UTC) and by day of the week (Monday first).
    pub fn by_hour_and_weekday(&self) -> ([u64; 24], [u64; 7]) {
        let (mut hours, mut days) = ([0; 24], [0; 7]);
        for (h, c) in self.by_hour_of_week.iter() {
            hours[h % 24] += c;
            days[h / 24] += c;
        }
        (hours, days)
    }

    /// The program this user ran most, with its count.
    pub fn top_program(&self) -> Option<(&str, u64)> {
        self.programs
            .iter()
            .max_by(|a, b| a.1.jobs.cmp(&b.1.jobs).then(b.0.cmp(a.0)))
            .map(|(p, s)| (p.as_str(), s.jobs))
    }

    /// The coefficient of variation of the inter-arrival times, from their histogram's
    /// bin midpoints (1 is a Poisson stream; above it, bursts).
    pub fn burstiness(&self) -> Option<f64> {
        let n = self.interarrival.total();
        if n < 2 {
            return None;
        }
        let points: Vec<f64> = (1..=20)
            .filter_map(|k| self.interarrival.quantile((f64::from(k) - 0.5) / 20.0))
            .collect();
        let mean = points.iter().sum::<f64>() / points.len() as f64;
        let var = points.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / points.len() as f64;
        (mean > 0.0).then(|| var.sqrt() / mean)
    }
}

/// Every pool's profiles: what the state file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Book {
    version: u32,
    /// Each pool's profiles, by pool id.
    pub pools: BTreeMap<String, Profiles>,
}

impl Default for Book {
    fn default() -> Self {
        Book {
            version: VERSION,
            pools: BTreeMap::new(),
        }
    }
}

impl Book {
    /// Reads a state file; a missing file is an empty profile.
    pub fn load(path: &Path) -> Result<Book, FileError> {
        let text = match crate::file::read_text(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Book::default()),
            Err(source) => return Err(FileError::io(path, source)),
        };
        let parse = |line: usize, message: String| FileError::invalid(path, line, message);
        let book: Book = serde_json::from_str(&text).map_err(|e| parse(e.line(), e.to_string()))?;
        if book.version != VERSION {
            return Err(parse(
                1,
                format!(
                    "profile format version {} (this build reads {VERSION})",
                    book.version
                ),
            ));
        }
        for p in book.pools.values() {
            // The first such user by id, whatever the map's order.
            let bad_histogram = p
                .users
                .iter()
                .filter(|(_, u)| {
                    ![
                        &u.interarrival,
                        &u.think,
                        &u.while_running,
                        &u.ran_out,
                        &u.run,
                    ]
                    .iter()
                    .all(|h| h.is_valid())
                })
                .map(|(name, _)| name)
                .min();
            if let Some(user) = bad_histogram {
                return Err(parse(
                    1,
                    format!("user `{user}`: a histogram has the wrong number of bins"),
                ));
            }
        }
        Ok(book)
    }

    /// Writes the state file atomically.
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        let text = serde_json::to_string_pretty(self).expect("profiles serialise") + "\n";
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| FileError::io(path, source))?;
        }
        crate::file::write_atomic(path, text.as_bytes())
            .map_err(|source| FileError::io(path, source))
    }

    /// Adds each pool's jobs it has not seen, up to `until`; returns how many.
    pub fn update(&mut self, jobs: &[Job], until: Option<f64>) -> usize {
        let mut by_pool: BTreeMap<&str, Vec<Job>> = BTreeMap::new();
        for j in jobs {
            by_pool.entry(j.pool.as_str()).or_default().push(j.clone());
        }
        by_pool
            .into_iter()
            .map(|(pool, jobs)| {
                self.pools
                    .entry(pool.to_owned())
                    .or_default()
                    .update(&jobs, until)
            })
            .sum()
    }

    /// Jobs profiled over all pools, and the latest arrival.
    pub fn seen(&self) -> (u64, Option<f64>) {
        let jobs = self.pools.values().map(|p| p.jobs).sum();
        let last = self.pools.values().filter_map(|p| p.last).reduce(f64::max);
        (jobs, last)
    }
}

impl Profiles {
    /// Adds the jobs (in the file's order, sorted by arrival here) that arrived after
    /// what the profile has seen and at or before `until`; returns how many it added.
    pub fn update(&mut self, jobs: &[Job], until: Option<f64>) -> usize {
        let mut order: Vec<(f64, &Job)> = jobs.iter().map(|j| (arrival(j), j)).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut skip_at_last = self.at_last;
        let mut added = 0;
        for (t, job) in order {
            if until.is_some_and(|u| t > u) {
                break;
            }
            match self.last {
                Some(last) if t < last => continue,
                Some(last) if t == last && skip_at_last > 0 => {
                    skip_at_last -= 1;
                    continue;
                }
                _ => {}
            }
            self.observe(job);
            added += 1;
        }
        added
    }

    /// One whole job: its arrival, then (its end being in the record) its finish.
    pub fn observe(&mut self, job: &Job) {
        let t = arrival(job);
        self.arrive(&job.user, &job.program, t, job.instances);
        let program = self
            .users
            .get_mut(&job.user)
            .and_then(|u| u.programs.get_mut(&job.program));
        if let (Some(p), Some(code)) = (program, &job.code) {
            p.code = Some(code.clone());
        }
        self.finish(
            &job.user,
            &job.program,
            t + job.run_seconds,
            job.run_seconds,
            job.instances,
            job.cpu,
        );
    }

    /// A job of `user` running `program` on `instances` instances arrives at `t`
    /// (not before the previous arrival).
    pub fn arrive(&mut self, user: &str, program: &str, t: f64, instances: u32) {
        if self.last == Some(t) {
            self.at_last += 1;
        } else {
            self.at_last = 1;
        }
        self.first.get_or_insert(t);
        self.last = Some(t);
        self.jobs += 1;
        let how = hour_of_week(t);
        let u = self
            .users
            .entry(user.to_owned())
            .or_insert_with(|| UserProfile::new(t));
        // After each arrival, either another comes while a job still runs, or the
        // last running job ends first and the user thinks from then on.
        let mut think = None;
        if u.jobs > 0 {
            u.interarrival.add(t - u.last);
            let end = u.last_activity(t);
            if u.running_at(t) {
                u.while_running.add(t - u.last);
                self.while_running.add(t - u.last);
                // A job of theirs ended since their last arrival: this one answers it.
                if end > u.last {
                    u.think.add(t - end);
                    self.think.add(t - end);
                }
            } else {
                if end > u.last {
                    u.ran_out.add(end - u.last);
                    self.ran_out.add(end - u.last);
                }
                u.think.add(t - end);
                self.think.add(t - end);
                think = Some(t - end);
            }
            if u.recent.last() == Some(&instances) {
                u.repeats += 1;
            }
        }
        let released = u.running.iter().copied().filter(|&r| r <= t);
        u.last_release = released.fold(u.last_release, |a, r| Some(a.map_or(r, |a| a.max(r))));
        u.running.retain(|&r| r > t);
        if u.jobs == 0 || think.is_some_and(|gap| gap > SESSION_GAP) {
            u.sessions += 1;
            u.sessions_by_hour_of_week.add(how);
            let since = self.session_starts.level.at.unwrap_or(t);
            let rate = demand::mean_session_rate(self.first, &self.session_starts, since, t);
            self.session_starts.level.start(t, rate);
            self.session_starts.by_hour_of_week.add(how);
            *self.session_starts.sizes.entry(instances).or_default() += 1;
            u.session_start = Some(t);
        } else if u.session_start.is_some_and(|s| t - s < demand::SAME_TIME) {
            // It came with its session's first job (a batch): a session brings it too.
            *self.session_starts.sizes.entry(instances).or_default() += 1;
        }
        u.open += 1;
        u.jobs += 1;
        u.last = t;
        u.by_hour_of_week.add(how);
        *u.sizes.entry(instances).or_default() += 1;
        u.recent.push(instances);
        if u.recent.len() > RECENT {
            u.recent.remove(0);
        }
        u.programs.entry(program.to_owned()).or_default().jobs += 1;
        if u.last_program != program {
            u.last_program = program.to_owned();
        }
        // Pruned when it has doubled since it was last (and an hour has passed): a set
        // of thousands is walked once per as many arrivals, and a user kept a little
        // longer costs nothing (predictions skip them).
        let grown = self.active.len() >= 2 * self.pruned_size + 64;
        if grown && self.pruned_at.is_none_or(|at| t >= at + PRUNE_EVERY) {
            self.pruned_at = Some(t);
            let users = &self.users;
            self.active.retain(|name| {
                let u = &users[name];
                u.running_at(t) || t - u.last_activity(t) <= ACTIVE_KEEP
            });
            self.pruned_size = self.active.len();
        }
        self.active.insert(user.to_owned());
    }

    /// The active users: those with a job running or active within [`ACTIVE_KEEP`].
    pub fn active_users(&self) -> impl Iterator<Item = &UserProfile> {
        self.active.iter().map(|name| &self.users[name])
    }

    /// A job of `user` running `program` released its instances at `t` after running
    /// `run` seconds; `cpu` is cores per instance, where known.
    pub fn finish(
        &mut self,
        user: &str,
        program: &str,
        t: f64,
        run: f64,
        instances: u32,
        cpu: Option<f64>,
    ) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        // Jobs of one batch often end together: one entry says as much.
        if !u.running.contains(&t) {
            u.running.push(t);
        }
        u.open = u.open.saturating_sub(1);
        u.finished += 1;
        u.run.add(run);
        u.run_seconds += run;
        let work = f64::from(instances) * run;
        u.instance_seconds += work;
        if let Some(c) = cpu {
            u.cpu_seconds += c * work;
            u.cpu_known += 1;
        }
        let p = u.programs.entry(program.to_owned()).or_default();
        p.finished += 1;
        p.run_seconds += run;
        p.instance_seconds += work;
    }
}

/// One user's profile as people read it (`chameleon profile`, its `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    /// The pool the user's jobs ran in (an id).
    pub pool: String,
    /// The user's id.
    pub user: String,
    /// Jobs profiled.
    pub jobs: u64,
    /// Jobs per day from the user's first arrival to now (over at least one day).
    pub jobs_per_day: f64,
    /// Sessions started.
    pub sessions: u64,
    /// The hour of the day (UTC, 0–23) with the most arrivals.
    pub peak_hour: usize,
    /// The weekday (0 = Monday) with the most arrivals.
    pub peak_weekday: usize,
    /// Arrivals by hour of the day (UTC).
    pub hourly: [u64; 24],
    /// Arrivals by weekday, Monday first.
    pub weekly: [u64; 7],
    /// Coefficient of variation of inter-arrival times (1: Poisson; more: bursts).
    pub burstiness: Option<f64>,
    /// Median think time (seconds, from the histogram); `None` while there is none.
    pub median_think_seconds: Option<f64>,
    /// Median run time of finished jobs (seconds, from the histogram).
    pub median_run_seconds: Option<f64>,
    /// 90th percentile of run time of finished jobs (seconds, from the histogram).
    pub p90_run_seconds: Option<f64>,
    /// Mean instances per job.
    pub mean_instances: f64,
    /// Instance-hours of finished jobs (instances × run time).
    pub instance_hours: f64,
    /// Core-hours of jobs whose cores are known.
    pub cpu_hours: Option<f64>,
    /// Distinct programs the user ran.
    pub programs: usize,
    /// The program the user ran most.
    pub top_program: Option<String>,
    /// The seed's four raw factors: frequency (jobs per day), intensity (instances per job),
    /// complexity (instance-hours per job) and duration (minutes per job).
    pub seed_factors: [f64; 4],
    /// The seed's normalised demand score (1–10).
    pub seed_demand: f64,
    /// The instances the seed's formula maps that demand to.
    pub seed_instances: u32,
}

impl Profiles {
    /// Every user's summary at `now`, most jobs first (then by name).
    pub fn summaries(&self, pool: &str, now: f64, weights: &seed::SeedWeights) -> Vec<UserSummary> {
        let model = seed::SeedModel::fit(self, weights, now);
        let peak = |v: &[u64]| {
            (0..v.len())
                .max_by(|&a, &b| v[a].cmp(&v[b]).then(b.cmp(&a)))
                .unwrap_or(0)
        };
        let mut out: Vec<UserSummary> = self
            .users
            .iter()
            .map(|(name, u)| {
                let (hourly, weekly) = u.by_hour_and_weekday();
                let (demand, instances) = model.predict(u, now);
                UserSummary {
                    pool: pool.to_owned(),
                    user: name.clone(),
                    jobs: u.jobs,
                    jobs_per_day: u.jobs_per_day(now),
                    sessions: u.sessions,
                    peak_hour: peak(&hourly),
                    peak_weekday: peak(&weekly),
                    hourly,
                    weekly,
                    burstiness: u.burstiness(),
                    median_think_seconds: u.think.quantile(0.5),
                    median_run_seconds: u.run.quantile(0.5),
                    p90_run_seconds: u.run.quantile(0.9),
                    mean_instances: u.mean_instances(),
                    instance_hours: u.instance_seconds / 3600.0,
                    cpu_hours: (u.cpu_known > 0).then(|| u.cpu_seconds / 3600.0),
                    programs: u.programs.len(),
                    top_program: u.top_program().map(|(p, _)| p.to_owned()),
                    seed_factors: seed::factors(u, now),
                    seed_demand: demand,
                    seed_instances: instances,
                }
            })
            .collect();
        out.sort_by(|a, b| b.jobs.cmp(&a.jobs).then(a.user.cmp(&b.user)));
        out
    }
}

/// Users in id order, whatever the map's: the same profile writes the same file.
fn in_id_order<S: serde::Serializer>(
    users: &HashMap<String, UserProfile>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    users
        .iter()
        .collect::<BTreeMap<_, _>>()
        .serialize(serializer)
}

/// A job's arrival in Unix seconds: its start where the log has one, else its submit.
pub fn arrival(job: &Job) -> f64 {
    crate::units::unix_seconds(job.start.unwrap_or(job.submit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_of_the_week_start_on_monday() {
        // 2024-01-01 00:00 UTC was a Monday; 1970-01-01 00:00 a Thursday.
        assert_eq!(hour_of_week(1_704_067_200.0), 0);
        assert_eq!(hour_of_week(1_704_067_200.0 + 3600.0 * 25.5), 25);
        assert_eq!(hour_of_week(0.0), 72);
        let e = exposure(1_704_067_200.0 - 1800.0, 1_704_067_200.0 + 8.0 * 86_400.0);
        assert!((e.iter().sum::<f64>() - (8.0 * 24.0 + 0.5)).abs() < 1e-9);
        assert_eq!(e[0], 2.0);
        assert_eq!(e[167], 1.5);
        assert_eq!(e[30], 1.0);
    }

    /// A job of `user` running program `p` at Unix second `t` on `n` instances.
    pub(super) fn job(user: &str, t: i64, run: f64, n: u32) -> Job {
        let at = chrono::DateTime::from_timestamp(t, 0).unwrap();
        Job {
            submit: at,
            start: Some(at),
            user: user.into(),
            program: "p".into(),
            code: None,
            pool: "default".into(),
            run_seconds: run,
            instances: n,
            cpu: None,
            mem: None,
            censored: false,
        }
    }

    #[test]
    fn think_time_runs_from_the_later_of_the_last_arrival_and_release() {
        let mut p = Profiles::default();
        // Arrives at 0 for 100 s; runs out at 100; next at 160 (think 60 from the
        // release); next at 170 while the second runs (10 s after the arrival at 160).
        p.update(
            &[
                job("a", 0, 100.0, 2),
                job("a", 160, 1000.0, 4),
                job("a", 170, 5.0, 4),
            ],
            None,
        );
        let u = &p.users["a"];
        let totals = (u.think.total(), u.while_running.total(), u.ran_out.total());
        assert_eq!(totals, (1, 1, 1));
        // Bins: 10 s in [10, 13.3), 60 s in [56.2, 75), 100 s in [100, 133).
        assert_eq!((u.think.cdf(56.0), u.think.cdf(75.0)), (0.0, 1.0));
        assert_eq!(
            (u.while_running.cdf(9.9), u.while_running.cdf(13.4)),
            (0.0, 1.0)
        );
        assert_eq!((u.ran_out.cdf(99.0), u.ran_out.cdf(134.0)), (0.0, 1.0));
        assert_eq!(
            (u.repeats, u.running_at(171.0), u.running_at(1160.0)),
            (1, true, false)
        );
        assert_eq!(u.interarrival.total(), 2);
        assert_eq!((u.jobs, u.sessions, u.finished), (3, 1, 3));
        assert_eq!(u.sizes.get(&4), Some(&2));
        assert_eq!(u.instance_seconds, 200.0 + 4000.0 + 20.0);
        assert_eq!(u.last_activity(1000.0), 175.0);
    }

    #[test]
    fn an_update_adds_only_what_it_has_not_seen_and_is_the_same_as_one_pass() {
        let jobs = [
            job("a", 0, 10.0, 1),
            job("b", 3600, 10.0, 2),
            job("b", 3600, 20.0, 2),
            job("a", 9000, 5.0, 1),
            job("c", 90_000, 5.0, 8),
        ];
        let mut whole = Profiles::default();
        assert_eq!(whole.update(&jobs, None), 5);
        let mut parts = Profiles::default();
        // The first batch ends in the middle of the two jobs at 3600.
        assert_eq!(parts.update(&jobs[..2], None), 2);
        assert_eq!(parts.update(&jobs, Some(50_000.0)), 2);
        assert_eq!(parts.update(&jobs, None), 1);
        assert_eq!(parts.update(&jobs, None), 0);
        assert_eq!(parts, whole);
        assert_eq!(whole.users["b"].sessions, 1);
        assert_eq!(whole.users["a"].sessions, 2);
        assert_eq!(whole.session_starts.by_hour_of_week.total(), 4);
        assert!(whole.active.contains("c"));
    }

    /// Starts at the expected rate keep the level near 1; a burst raises it and a
    /// quiet spell lowers it, each fading with the half-life.
    #[test]
    fn the_level_follows_starts_against_the_expected_rate() {
        let per_hour = 12.0;
        let mut level = Level::default();
        let mut t = 0.0;
        for _ in 0..120 {
            t += 300.0;
            level.start(t, per_hour);
        }
        let steady = level.factor(t, per_hour);
        assert!((steady - 1.0).abs() < 0.05, "{steady}");
        for _ in 0..36 {
            t += 100.0;
            level.start(t, per_hour);
        }
        let burst = level.factor(t, per_hour);
        assert!(burst > 1.8, "{burst}");
        let later = level.factor(t + 3.0 * LEVEL_HALF_LIFE, per_hour);
        assert!(later < 0.5, "{later}");
        let halfway = level.factor(t + LEVEL_HALF_LIFE, per_hour);
        assert!(halfway < burst && halfway > later, "{halfway}");
    }

    /// The active set drops users idle for over [`ACTIVE_KEEP`] once it has doubled.
    #[test]
    fn the_active_set_is_pruned_when_it_has_doubled() {
        let mut jobs: Vec<Job> = (0..100)
            .map(|k| job(&format!("u{k:03}"), k, 10.0, 1))
            .collect();
        jobs.extend((0..100).map(|k| job(&format!("v{k:03}"), 20_000 + k, 10.0, 1)));
        let mut p = Profiles::default();
        p.update(&jobs, None);
        assert_eq!(p.active.len(), 100);
        assert!(p.active.iter().all(|name| name.starts_with('v')));
    }

    #[test]
    fn a_saved_profile_loads_back_and_a_damaged_one_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models/profiles.json");
        assert_eq!(Book::load(&path).unwrap(), Book::default());
        let mut p = Book::default();
        p.update(&[job("a", 0, 10.0, 1), job("a", 50, 10.0, 3)], None);
        p.save(&path).unwrap();
        assert_eq!(Book::load(&path).unwrap(), p);
        assert_eq!(p.seen(), (2, Some(50.0)));
        let text =
            std::fs::read_to_string(&path)
                .unwrap()
                .replacen("\"jobs\": 2", "\"jobs\": x", 1);
        std::fs::write(&path, text).unwrap();
        let e = Book::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:", path.display())) && e.contains("expected"),
            "{e}"
        );
        // A week with an hour missing is refused, by its line.
        p.save(&path).unwrap();
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let hours = &mut v["pools"]["default"]["users"]["a"]["by_hour_of_week"];
        hours.as_array_mut().unwrap().pop();
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let e = Book::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:", path.display())) && e.contains("168 counts"),
            "{e}"
        );
    }
}
