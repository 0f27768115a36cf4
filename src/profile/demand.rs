//! The pool-demand predictor: how many instances the jobs arriving in a coming window
//! will ask for, as a whole distribution, built from the profiles.
//!
//! Each user brings a Poisson number of jobs in the window, with a mean from one of
//! three clocks. While one of their jobs runs, it is the chance that the stretch since
//! their last arrival, now `s` long, ends in another arrival within the window rather
//! than in the job running out (competing risks, from the two histograms). When none
//! runs and their last release is at most [`SESSION_GAP`] ago, or a job of theirs
//! ended after their last arrival while another still runs (for users with think
//! times of their own), it is the hazard of their think-time distribution since that
//! release, `(F(s + H) − F(s)) / (1 − F(s))` (the larger of the two when both apply).
//! A chance `p` is the mean `−ln(1 − p)`; users with fewer than [`MIN_GAPS`]
//! observations use everyone's. Each of their jobs takes the size of the job before with the share of
//! repeats they have shown, else one of their last few jobs' sizes. Users between
//! sessions (and users not seen yet) come back at the pool's rate of session starts
//! at this hour of the week, smoothed toward its rate at any hour and scaled by how
//! much busier than that the last hour or so has been, each with the jobs sessions
//! start with (a batch's, all in its first second) and their sizes: one aggregate, so
//! a prediction costs the active users only, however many the log has seen.
//! The total is a compound Poisson variable, computed exactly by Panjer's recursion
//! (a normal approximation when the mean count is large). Deciding how many to keep
//! warm, the jobs of a session start count as one batch, a geometric number of jobs
//! with the pool's mean per start: a batch's jobs all want an instance at once. The
//! quantiles keep them Poisson, with the same mean; the calibrator corrects their level.
//!
//! Windows where nobody arrives are the common case, so a low quantile is 0; the
//! [`Calibrator`] measures how often a quantile covered what came and adjusts the level
//! it asks for (adaptive conformal inference, Gibbs and Candès 2021) so that the share
//! covered matches the requested one.

use super::{exposure, hour_of_week, Profiles, SessionStarts, UserProfile, SESSION_GAP};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// Think times a user needs before their own distribution is used.
pub const MIN_GAPS: u64 = 5;
/// Pseudo-hours pulling an hour-of-week rate toward the user's rate at any hour.
const PRIOR_HOURS: f64 = 4.0;
/// The largest idle count [`cheapest_idle`] considers.
pub const MAX_IDLE: u32 = 4096;
/// Logs stamp whole seconds (the Azure VM log whole 5-minute bins): what came within
/// this many seconds of the last event came with it and has been seen, so the gaps
/// shorter than it (a batch's jobs, 0 s apart) are not waited for again.
pub const SAME_TIME: f64 = 1.0;
/// Above this expected number of jobs, the normal approximation.
const EXACT_UP_TO: f64 = 200.0;

/// The distribution of the instances that jobs arriving in a window ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Outlook {
    /// `P(N = n)` for `n` up to where the rest is below 1e-9.
    Exact(Vec<f64>),
    /// Mean and standard deviation.
    Normal(f64, f64),
}

impl Outlook {
    /// The smallest `n` with `P(N <= n) >= q`.
    pub fn quantile(&self, q: f64) -> u32 {
        match self {
            Outlook::Exact(p) => {
                let mut cdf = 0.0;
                for (n, &pn) in p.iter().enumerate() {
                    cdf += pn;
                    if cdf >= q - 1e-12 {
                        return n as u32;
                    }
                }
                p.len().saturating_sub(1) as u32
            }
            Outlook::Normal(m, sd) => {
                let z = normal_quantile(q.clamp(1e-9, 1.0 - 1e-9));
                (m + z * sd).ceil().max(0.0) as u32
            }
        }
    }

    /// `P(N <= n)`.
    pub fn cdf(&self, n: u32) -> f64 {
        match self {
            Outlook::Exact(p) => p.iter().take(n as usize + 1).sum::<f64>().min(1.0),
            Outlook::Normal(m, sd) => normal_cdf((f64::from(n) + 0.5 - m) / sd.max(1e-9)),
        }
    }

    /// The expected number of instances.
    pub fn mean(&self) -> f64 {
        match self {
            Outlook::Exact(p) => p.iter().enumerate().map(|(n, pn)| n as f64 * pn).sum(),
            Outlook::Normal(m, _) => *m,
        }
    }
}

/// Expected number of an active user's jobs arriving in `(now, now + horizon]`, and
/// whether it is quiet (see [`UserPart`]); `None` when they are between sessions (the
/// pool's session rate covers them).
fn user_jobs(p: &Profiles, u: &UserProfile, now: f64, horizon: f64) -> Option<(f64, bool)> {
    let chance = |x: f64| -(1.0 - x.clamp(0.0, 1.0 - 1e-9)).ln();
    if u.running_at(now) {
        // Competing risks since the last arrival: another arrival, or running out.
        let s = (now - u.last).max(SAME_TIME);
        let own = u.while_running.total() + u.ran_out.total() >= MIN_GAPS;
        let (arrive, out) = if own {
            (&u.while_running, &u.ran_out)
        } else {
            (&p.while_running, &p.ran_out)
        };
        let arriving = arrive.above(s);
        let at_risk = arriving + out.above(s);
        let events = arriving - arrive.above(s + horizon);
        let racing = if at_risk > 0.0 { events / at_risk } else { 0.0 };
        if let Some(end) = answering(u, now) {
            let (after, quiet) = after_release(p, u, now - end, horizon);
            return Some((chance(racing.max(after)), arriving <= 0.0 && quiet));
        }
        return Some((chance(racing), arriving <= 0.0));
    }
    let idle = now - u.last_activity(now);
    if idle.max(SAME_TIME) > SESSION_GAP {
        return None;
    }
    let (after, quiet) = after_release(p, u, idle, horizon);
    Some((chance(after), quiet))
}

/// The release `u` may be answering: a job of theirs that ended after their last
/// arrival while another still runs, when they have think times of their own (a user
/// known to resubmit).
pub fn answering(u: &UserProfile, now: f64) -> Option<f64> {
    let end = u.last_activity(now);
    (end > u.last && u.think.total() >= MIN_GAPS).then_some(end)
}

/// The chance that `u` arrives within `horizon` when their last release was `idle`
/// seconds ago (their think-time hazard), and whether it is quiet.
fn after_release(p: &Profiles, u: &UserProfile, idle: f64, horizon: f64) -> (f64, bool) {
    let idle = idle.max(SAME_TIME);
    let think = if u.think.total() >= MIN_GAPS {
        &u.think
    } else {
        &p.think
    };
    let (f0, f1) = (think.cdf(idle), think.cdf(idle + horizon));
    if f0 < 1.0 {
        ((f1 - f0) / (1.0 - f0), false)
    } else {
        (0.0, true)
    }
}

/// The integral of an hourly rate (per hour of the week) over `(now, now + horizon]`.
fn over_hours(now: f64, horizon: f64, rate: &impl Fn(usize) -> f64) -> f64 {
    let (mut t, end, mut sum) = (now, now + horizon, 0.0);
    while t < end {
        let next = (((t / 3600.0).floor() + 1.0) * 3600.0).min(end);
        sum += rate(hour_of_week(t)) * (next - t) / 3600.0;
        t = next;
    }
    sum
}

/// Adds `weight` spread over a size histogram into `mix`.
fn spread(
    mix: &mut BTreeMap<u32, f64>,
    weight: f64,
    sizes: impl Iterator<Item = (u32, f64)> + Clone,
) {
    let total: f64 = sizes.clone().map(|(_, c)| c).sum();
    if total <= 0.0 || weight <= 0.0 {
        return;
    }
    for (n, c) in sizes {
        *mix.entry(n).or_default() += weight * c / total;
    }
}

/// The demand (instances) of the jobs that will arrive in `(now, now + horizon]`.
pub fn new_demand(p: &Profiles, now: f64, horizon: f64) -> Outlook {
    compound(&job_mix(p, now, horizon))
}

/// Expected jobs arriving in `(now, now + horizon]` by instances taken.
pub fn job_mix(p: &Profiles, now: f64, horizon: f64) -> BTreeMap<u32, f64> {
    let mut mix = session_mix(p, now, horizon);
    for part in p
        .active_users()
        .filter_map(|u| user_part(p, u, now, horizon))
    {
        add(&mut mix, &part.mix, 1.0);
    }
    mix
}

/// Adds `sign` times `part` into `mix`, dropping what cancels out.
pub fn add(mix: &mut BTreeMap<u32, f64>, part: &[(u32, f64)], sign: f64) {
    for &(n, w) in part {
        let e = mix.entry(n).or_default();
        *e += sign * w;
        if *e <= 1e-12 {
            mix.remove(&n);
        }
    }
}

/// One active user's expected jobs in a window, by instances taken.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPart {
    /// Expected jobs in the window, by instances per job.
    pub mix: Vec<(u32, f64)>,
    /// Time alone brings nothing more: no gap behind their chance is as long as the
    /// time since their last event, so only their next arrival or release (or the
    /// pooled histograms growing, for users who read those) can change it.
    pub quiet: bool,
}

/// One active user's expected jobs in `(now, now + horizon]` by instances taken (the
/// size of their job before again, or one of their last few), or `None` between
/// sessions.
pub fn user_part(p: &Profiles, u: &UserProfile, now: f64, horizon: f64) -> Option<UserPart> {
    let (jobs, quiet) = user_jobs(p, u, now, horizon)?;
    Some(UserPart {
        mix: sizes_of(u, jobs),
        quiet,
    })
}

/// `jobs` of `u`'s spread over their sizes: the size of the job before with their
/// share of repeats, else one of their last few jobs'.
fn sizes_of(u: &UserProfile, jobs: f64) -> Vec<(u32, f64)> {
    if jobs <= 0.0 {
        return Vec::new();
    }
    let repeat = u.repeat_share();
    let last = u
        .recent
        .last()
        .map(|&n| (n, repeat * u.recent.len() as f64 / (1.0 - repeat)));
    let mut mix: Vec<(u32, f64)> = u.recent.iter().map(|&n| (n, 1.0)).chain(last).collect();
    let total: f64 = mix.iter().map(|x| x.1).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    mix.sort_unstable_by_key(|x| x.0);
    mix.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    for x in &mut mix {
        x.1 *= jobs / total;
    }
    mix
}

/// Users between sessions (and users not seen yet): the pool's session starts at this
/// hour of the week, smoothed toward its rate at any hour and scaled by how busy the
/// pool has been lately against that ([`Level`](super::Level)), each bringing the
/// jobs sessions start with (a batch's, all in its first second), with their sizes.
pub fn session_mix(p: &Profiles, now: f64, horizon: f64) -> BTreeMap<u32, f64> {
    let mut mix = BTreeMap::new();
    let Some(first) = p.first else {
        return mix;
    };
    let starts = &p.session_starts;
    let rate = session_rates(first, starts, now);
    let level = &starts.level;
    let since = level.at.unwrap_or(now).min(now);
    let factor = level.factor(now, mean_rate(&rate, since, now));
    let (started, with_starts) = starts.counts();
    let per_session = with_starts as f64 / started.max(1) as f64;
    let jobs = over_hours(now, horizon, &rate) * factor * per_session;
    spread(
        &mut mix,
        jobs,
        starts.sizes.iter().map(|(&n, &c)| (n, c as f64)),
    );
    mix
}

/// The pool's session starts per hour at each hour of the week, as seen from `first`
/// to `now`, smoothed toward its rate at any hour.
fn session_rates(first: f64, starts: &SessionStarts, now: f64) -> impl Fn(usize) -> f64 + '_ {
    let hours = exposure(first, now.max(first));
    let total_hours: f64 = hours.iter().sum();
    let any_hour = starts.by_hour_of_week.total() as f64 / total_hours.max(1.0);
    move |h: usize| {
        (starts.by_hour_of_week.get(h) as f64 + PRIOR_HOURS * any_hour) / (hours[h] + PRIOR_HOURS)
    }
}

/// The mean of an hourly rate over `(from, to]` (its value at `to` when that is empty).
fn mean_rate(rate: impl Fn(usize) -> f64, from: f64, to: f64) -> f64 {
    if to > from {
        over_hours(from, to - from, &rate) / ((to - from) / 3600.0)
    } else {
        rate(hour_of_week(to))
    }
}

/// The pool's mean rate of session starts per hour over `(from, to]`, as seen by `to`.
pub fn mean_session_rate(first: Option<f64>, starts: &SessionStarts, from: f64, to: f64) -> f64 {
    first.map_or(0.0, |first| {
        mean_rate(session_rates(first, starts, to), from, to)
    })
}

/// Jobs served in arrival order from `d` idle instances wait when the instances taken
/// so far exceed `d`: the expected number that wait, for every `d` up to `max`, with
/// jobs arriving as `mix` and their number as `count` says, sizes independent.
///
/// That is `E[N] - sum_j P(N >= j) P(S_j <= d)`, where `S_j` is the first `j` jobs'
/// instances. With `F` a job's size as a generating function, the sum over `j` is
/// `F (1 - G_N(F)) / (1 - F)` (as `sum_j P(N >= j) x^j = x (1 - G_N(x)) / (1 - x)`),
/// and `G_N(F)`, the law of all the window's instances, is a compound Poisson
/// variable (single jobs of size `F`, and batches, each a geometric number of jobs),
/// so every term comes from a recursion over instance counts up to `max`: the cost
/// does not grow with the number of jobs a busy window holds.
pub fn expected_waiting(mix: &BTreeMap<u32, f64>, max: u32, count: Count) -> Vec<f64> {
    let lambda: f64 = mix.values().sum();
    if lambda <= 0.0 {
        return vec![0.0; max as usize + 1];
    }
    // Counted in cells of `g` instances (at most CELLS of them), sizes rounded up to
    // their class and then to whole cells (at least one): a wide or busy pool costs no
    // more than a small one, and the count only errs toward waiting. Sizes of `len`
    // cells or more never fit, so they leave the recursions (and always wait).
    let g = (max as usize + 1).div_ceil(CELLS).max(1);
    let len = max as usize / g + 1;
    let mut f = vec![0.0; len];
    for (&n, &w) in mix {
        let k = (size_class(n) as usize).div_ceil(g).max(1);
        if k < len {
            f[k] += w / lambda;
        }
    }
    let sizes: Vec<(usize, f64)> = (1..len)
        .filter(|&k| f[k] > 0.0)
        .map(|k| (k, f[k]))
        .collect();
    let q = count.batch.clamp(0.0, 0.95);
    let sessions = if q > 0.0 {
        count.sessions.clamp(0.0, lambda)
    } else {
        0.0
    };
    let (single, batches) = (lambda - sessions, sessions * (1.0 - q));
    let mut rate: Vec<f64> = f.iter().map(|&fk| single * fk).collect();
    if batches > 0.0 {
        for (r, h) in rate.iter_mut().zip(batch_cells(&f, &sizes, q)) {
            *r += batches * h;
        }
    }
    let a = jobs_reaching(&f, &sizes, &rate, single + batches);
    let mut below = 0.0;
    let cells: Vec<f64> = a
        .iter()
        .map(|&x| {
            below += x;
            (lambda - below).max(0.0)
        })
        .collect();
    // `d` idle instances fill `d / g` whole cells.
    (0..=max as usize).map(|d| cells[d / g]).collect()
}

/// The cells a batch takes, one job of `f` and then another with chance `q`:
/// `h = (1 - q) f + q f h`. Each term is pushed forward into the sums of the later
/// ones (`ahead`), here and in [`jobs_reaching`], so the additions do not wait on one
/// another.
fn batch_cells(f: &[f64], sizes: &[(usize, f64)], q: f64) -> Vec<f64> {
    let mut ahead = vec![0.0; f.len()];
    let mut h = vec![0.0; f.len()];
    for i in 1..f.len() {
        h[i] = (1.0 - q) * f[i] + q * ahead[i];
        push(&mut ahead, i, sizes, h[i]);
    }
    h
}

/// `a[i]`, the expected number of a window's jobs after which exactly `i` cells are
/// taken, `F (1 - G_N(F)) / (1 - F)`: `a = f + f * (a - all)`, where `all`, the law of
/// the cells the whole window takes, is compound Poisson with `rate[k]` groups of `k`
/// cells (Panjer's recursion; `groups` of them in all).
fn jobs_reaching(f: &[f64], sizes: &[(usize, f64)], rate: &[f64], groups: f64) -> Vec<f64> {
    let len = f.len();
    let weighted: Vec<(usize, f64)> = (1..len)
        .filter(|&k| rate[k] > 0.0)
        .map(|k| (k, k as f64 * rate[k]))
        .collect();
    let (mut all_ahead, mut gap_ahead) = (vec![0.0; len], vec![0.0; len]);
    let mut a = vec![0.0; len];
    let mut all = (-groups).exp();
    for i in 0..len {
        if i > 0 {
            all = all_ahead[i] / i as f64;
            a[i] = f[i] + gap_ahead[i];
        }
        push(&mut all_ahead, i, &weighted, all);
        push(&mut gap_ahead, i, sizes, a[i] - all);
    }
    a
}

/// Adds `x` times each `(k, w)` of `terms` into `ahead[i + k]`, as far as it reaches.
fn push(ahead: &mut [f64], i: usize, terms: &[(usize, f64)], x: f64) {
    let room = ahead.len() - i;
    for &(k, w) in terms.iter().take_while(|&&(k, _)| k < room) {
        ahead[i + k] += w * x;
    }
}

/// How the jobs of a window come: `sessions` of the expected jobs belong to sessions
/// that start with a batch, a geometric number of jobs with chance `batch` that one
/// more comes; the rest come one by one (Poisson).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Count {
    /// Expected jobs from session starts.
    pub sessions: f64,
    /// The chance that a session's batch holds one more job.
    pub batch: f64,
}

/// Cells [`expected_waiting`] counts in, at most.
const CELLS: usize = 512;

/// A size rounded up to its class: exact up to 8, then `2^k` times 1, 1.25, 1.5 or
/// 1.75 (powers of two stay as they are).
fn size_class(n: u32) -> u32 {
    if n <= 8 {
        return n;
    }
    let quarter = u64::from((1u32 << (31 - n.leading_zeros())) / 4);
    let class = u64::from(n).div_ceil(quarter) * quarter;
    u32::try_from(class).unwrap_or(u32::MAX)
}

/// The idle count that minimises expected waiting jobs plus `price` per idle instance.
///
/// Sizes are at least 1, so the running total of instances taken passes each count
/// at most once: one more idle instance spares at most one job, and only when demand
/// reaches it. No count above the `1 - price` quantile of the demand can pay for
/// itself, so the search stops there (and at [`MAX_IDLE`]); `outlook` is
/// `compound(mix)`, whose count is Poisson: its quantile bounds nothing when jobs come
/// in batches, so then the search doubles its range while the best count is at its
/// edge.
pub fn cheapest_idle(mix: &BTreeMap<u32, f64>, outlook: &Outlook, price: f64, count: Count) -> u32 {
    let mut max = outlook.quantile(1.0 - price).min(MAX_IDLE);
    loop {
        let waiting = expected_waiting(mix, max, count);
        let best = (0..waiting.len())
            .min_by(|&a, &b| {
                let cost = |d: usize| waiting[d] + price * d as f64;
                cost(a).total_cmp(&cost(b)).then(a.cmp(&b))
            })
            .unwrap_or(0) as u32;
        if count.batch <= 0.0 || best < max || max == 0 || max >= MAX_IDLE {
            return best;
        }
        max = (2 * max).min(MAX_IDLE);
    }
}

/// The chance that a session's batch holds one more job: the geometric law with the
/// pool's mean jobs per session start.
pub fn session_batch(p: &Profiles) -> f64 {
    let (started, jobs) = p.session_starts.counts();
    if started == 0 || jobs <= started {
        return 0.0;
    }
    1.0 - started as f64 / jobs as f64
}

/// The compound Poisson distribution whose jobs of size `n` arrive at mean `mix[n]`.
pub fn compound(mix: &BTreeMap<u32, f64>) -> Outlook {
    let lambda: f64 = mix.values().sum();
    if lambda <= 0.0 {
        return Outlook::Exact(vec![1.0]);
    }
    if lambda > EXACT_UP_TO {
        let m: f64 = mix.iter().map(|(&n, &w)| f64::from(n) * w).sum();
        let v: f64 = mix.iter().map(|(&n, &w)| f64::from(n).powi(2) * w).sum();
        return Outlook::Normal(m, v.sqrt());
    }
    // Panjer: g_0 = e^-lambda, g_n = (1/n) sum_k k lambda_k g_{n-k}.
    // (size, size × mean), ascending.
    let sizes: Vec<(usize, f64)> = mix
        .iter()
        .filter(|(&n, _)| n > 0)
        .map(|(&n, &w)| (n as usize, f64::from(n) * w))
        .collect();
    let zero = mix.get(&0).copied().unwrap_or(0.0);
    let mut g = vec![(-(lambda - zero)).exp()];
    let mut cdf = g[0];
    let mean: f64 = sizes.iter().map(|&(_, kw)| kw).sum();
    let cap = ((mean + 12.0 * mean.max(1.0).sqrt() * 4.0) as usize + 64).min(1 << 20);
    // Each g_m is pushed forward when known: `ahead[m mod ring]` sums `k lambda_k g_(m-k)`
    // for the `m` not reached yet (at most the largest size ahead), so the terms add
    // independently and only `g_n = ahead[n] / n` waits on the one before.
    // Sizes of `cap` or more are never read back (`g_0` holds their chance of none).
    let reach = sizes.partition_point(|&(k, _)| k < cap);
    let sizes = &sizes[..reach];
    let ring = (sizes.last().map_or(0, |&(k, _)| k) + 1).next_power_of_two();
    let mut ahead = vec![0.0; ring];
    let forward = |ahead: &mut [f64], n: usize, gn: f64| {
        for &(k, kw) in sizes {
            ahead[(n + k) & (ring - 1)] += kw * gn;
        }
    };
    forward(&mut ahead, 0, g[0]);
    while cdf < 1.0 - 1e-9 && g.len() < cap {
        let n = g.len();
        let slot = &mut ahead[n & (ring - 1)];
        let gn = *slot * (1.0 / n as f64);
        *slot = 0.0;
        forward(&mut ahead, n, gn);
        cdf += gn;
        g.push(gn);
    }
    Outlook::Exact(g)
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

/// Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

/// The standard normal quantile, by bisection on the cdf (enough for sizing pools).
fn normal_quantile(q: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// How well the quantile a calibrator asked for covered what arrived.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// The requested share of windows covered.
    pub target: f64,
    /// Windows judged.
    pub windows: u64,
    /// The share whose arrivals stayed within the predicted quantile.
    pub covered: f64,
    /// The mean predicted probability of that (what the model expected before the
    /// calibrator's adjustment).
    pub expected: f64,
    /// The level the calibrator ended at.
    pub level: f64,
}

impl Coverage {
    /// Both pools' windows together (shares weighted by windows; the later level).
    pub fn merge(&self, other: &Coverage) -> Coverage {
        let (a, b) = (self.windows as f64, other.windows as f64);
        let mix = |x: f64, y: f64| {
            if a + b > 0.0 {
                (a * x + b * y) / (a + b)
            } else {
                x
            }
        };
        Coverage {
            target: self.target,
            windows: self.windows + other.windows,
            covered: mix(self.covered, other.covered),
            expected: mix(self.expected, other.expected),
            level: other.level,
        }
    }
}

/// Adaptive conformal calibration of the quantile level, over windows of `horizon`
/// seconds starting every `step`.
#[derive(Debug, Clone)]
pub struct Calibrator {
    target: f64,
    level: f64,
    gamma: f64,
    horizon: f64,
    step: f64,
    next: Option<f64>,
    /// Open windows: start, predicted quantile, its predicted probability, judged.
    open: VecDeque<(f64, u32, f64, bool)>,
    arrivals: VecDeque<(f64, u32)>,
    windows: u64,
    covered: u64,
    expected: f64,
}

impl Calibrator {
    /// Aims at `target` coverage from the level `target`, with windows of `horizon`
    /// seconds opened every `step`.
    pub fn new(target: f64, horizon: f64, step: f64) -> Calibrator {
        Calibrator {
            target,
            level: target,
            gamma: 0.005,
            horizon,
            step,
            next: None,
            open: VecDeque::new(),
            arrivals: VecDeque::new(),
            windows: 0,
            covered: 0,
            expected: 0.0,
        }
    }

    /// The level to ask the predictor for now.
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Jobs asking for `n` instances arrived at `t`.
    pub fn arrival(&mut self, t: f64, n: u32) {
        self.arrivals.push_back((t, n));
    }

    /// Closes the windows that ended by `now` and, at each step boundary, opens one with
    /// the predictor's outlook for it (asked for only then); `judged` says whether it
    /// counts in the coverage.
    pub fn tick(&mut self, now: f64, judged: bool, outlook: impl FnOnce() -> Outlook) {
        while let Some(&(start, q, expected, counts)) = self.open.front() {
            if start + self.horizon > now {
                break;
            }
            self.open.pop_front();
            let end = start + self.horizon;
            let came: u64 = self
                .arrivals
                .iter()
                .filter(|&&(t, _)| t > start && t <= end)
                .map(|&(_, n)| u64::from(n))
                .sum();
            let hit = came <= u64::from(q);
            let miss = if hit { 0.0 } else { 1.0 };
            self.level =
                (self.level + self.gamma * (miss - (1.0 - self.target))).clamp(0.0, 1.0 - 1e-9);
            if counts {
                self.windows += 1;
                self.covered += u64::from(hit);
                self.expected += expected;
            }
        }
        let oldest = self.open.front().map_or(now, |w| w.0);
        while self.arrivals.front().is_some_and(|&(t, _)| t <= oldest) {
            self.arrivals.pop_front();
        }
        let next = *self.next.get_or_insert(now);
        if now >= next {
            let outlook = outlook();
            let q = outlook.quantile(self.level);
            self.open.push_back((now, q, outlook.cdf(q), judged));
            self.next = Some(next + self.step * ((now - next) / self.step).floor() + self.step);
        }
    }

    /// The coverage of the judged windows so far.
    pub fn coverage(&self) -> Coverage {
        let n = self.windows.max(1) as f64;
        Coverage {
            target: self.target,
            windows: self.windows,
            covered: self.covered as f64 / n,
            expected: self.expected / n,
            level: self.level,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Poisson(1) jobs of size 1 and 2 with means 0.5 each: checked against a direct
    /// convolution of the two Poisson laws.
    #[test]
    fn panjer_matches_a_direct_convolution() {
        let mix = BTreeMap::from([(1, 0.5), (2, 0.5)]);
        let Outlook::Exact(g) = compound(&mix) else {
            panic!("exact expected")
        };
        let pois = |k: u32| {
            (-0.5f64).exp() * 0.5f64.powi(k as i32) / (1..=k).map(f64::from).product::<f64>()
        };
        for n in 0..8u32 {
            let direct: f64 = (0..=n / 2).map(|b| pois(b) * pois(n - 2 * b)).sum();
            assert!(
                (g[n as usize] - direct).abs() < 1e-12,
                "n={n}: {} vs {direct}",
                g[n as usize]
            );
        }
        let o = Outlook::Exact(g);
        assert!((o.mean() - 1.5).abs() < 1e-6);
        assert_eq!(o.quantile(0.0), 0);
        assert!(o.cdf(o.quantile(0.9)) >= 0.9 && o.cdf(o.quantile(0.9) - 1) < 0.9);
    }

    /// Poisson(0.5) one-instance jobs: with `d` idle, `E[(N - d)+]` wait, i.e. 0.5 at
    /// 0 and `e^-0.5 - 0.5` at 1; the cheapest count follows the price. A rare wide job
    /// is not worth holding its 64 instances for.
    #[test]
    fn expected_waiting_jobs_and_the_cheapest_idle_count() {
        let mix = BTreeMap::from([(1, 0.5)]);
        let w = expected_waiting(&mix, 3, Count::default());
        assert!((w[0] - 0.5).abs() < 1e-6, "{w:?}");
        assert!((w[1] - ((-0.5f64).exp() - 0.5)).abs() < 1e-6, "{w:?}");
        assert!(w.windows(2).all(|p| p[1] <= p[0]));
        assert_eq!(
            cheapest_idle(&mix, &compound(&mix), 0.3, Count::default()),
            1
        );
        assert_eq!(
            cheapest_idle(&mix, &compound(&mix), 0.45, Count::default()),
            0
        );
        let wide = BTreeMap::from([(1, 0.5), (64, 0.1)]);
        let d = cheapest_idle(&wide, &compound(&wide), 0.01, Count::default());
        assert!((1..64).contains(&d), "{d}");
    }

    /// A user who keeps one job running and resubmits a short one 5 s after each ends
    /// (after runs of 100 to 1000 s): just after a release they are expected back at
    /// once, though the gaps between their arrivals say only one in four comes within
    /// the window; while the short job runs, the gaps decide.
    #[test]
    fn a_release_while_another_job_runs_starts_the_think_clock() {
        let mut p = Profiles::default();
        p.arrive("a", "daemon", 0.0, 1);
        let mut t = 10.0;
        for k in 0..12 {
            let run = 100.0 + 300.0 * f64::from(k % 4);
            p.arrive("a", "short", t, 4);
            p.finish("a", "short", t + run, run, 4, None);
            t += run + 5.0;
        }
        let u = &p.users["a"];
        assert_eq!((u.think.total(), u.while_running.total()), (11, 12));
        let jobs = |now: f64| -> f64 {
            let part = user_part(&p, u, now, 120.0).expect("active");
            part.mix.iter().map(|x| x.1).sum()
        };
        // One second after the last short job ended (its run was 1000 s).
        assert!(jobs(t - 4.0) > 3.0, "{}", jobs(t - 4.0));
        p.arrive("a", "short", t, 4);
        let u = &p.users["a"];
        let part = user_part(&p, u, t + 101.0, 120.0).expect("active");
        let racing: f64 = part.mix.iter().map(|x| x.1).sum();
        assert!(racing < 0.5, "{racing}");
    }

    /// A session that starts with a batch (three jobs in its first second) brings
    /// three jobs: the pool's session rate is weighted by the jobs sessions start with.
    #[test]
    fn sessions_bring_the_jobs_of_their_first_second() {
        let pool = |batch: u32| {
            let mut p = Profiles::default();
            for k in 0..50u32 {
                let t = 1_700_000_000.0 + 600.0 * f64::from(k);
                for _ in 0..batch {
                    p.arrive(&format!("b{k}"), "vm", t, 2);
                }
            }
            let mix = session_mix(&p, 1_700_000_000.0 + 600.0 * 50.0, 120.0);
            assert_eq!(mix.keys().copied().collect::<Vec<_>>(), [2]);
            mix.values().sum::<f64>()
        };
        let (one, three) = (pool(1), pool(3));
        assert!(one > 0.0);
        assert!((three / one - 3.0).abs() < 1e-9, "{one} {three}");
    }

    /// The same expected jobs held in batches wait more at a small idle count, so the
    /// cheapest count grows; with no batches it is the Poisson answer.
    #[test]
    fn batches_make_holding_more_worth_it() {
        let mix = BTreeMap::from([(1, 1.0)]);
        let o = compound(&mix);
        let plain = cheapest_idle(&mix, &o, 0.01, Count::default());
        let batched = Count {
            sessions: 1.0,
            batch: 0.7,
        };
        let w = expected_waiting(&mix, 12, batched);
        assert!((w[0] - 1.0).abs() < 1e-4, "{w:?}");
        assert!(w[3] > expected_waiting(&mix, 12, Count::default())[3]);
        assert!(cheapest_idle(&mix, &o, 0.01, batched) > plain);
        assert_eq!(
            cheapest_idle(
                &mix,
                &o,
                0.01,
                Count {
                    sessions: 1.0,
                    batch: 0.0
                }
            ),
            plain
        );
    }

    /// Sizes round up to their class, and a wide pool is counted in cells.
    #[test]
    fn size_classes_round_up_and_keep_powers_of_two() {
        let got: Vec<u32> = [1, 8, 9, 10, 11, 16, 17, 20, 21, 100, 128, 129]
            .into_iter()
            .map(size_class)
            .collect();
        assert_eq!(got, [1, 8, 10, 10, 12, 16, 20, 20, 24, 112, 128, 160]);
        assert_eq!(size_class(u32::MAX), u32::MAX);
        // A job of no instances counts as one cell's, never as none.
        assert_eq!(
            expected_waiting(&BTreeMap::from([(0, 0.5)]), 3, Count::default()),
            expected_waiting(&BTreeMap::from([(1, 0.5)]), 3, Count::default())
        );
        // A wide pool is counted in cells, erring toward waiting.
        let mix = BTreeMap::from([(300, 2.0)]);
        let coarse = expected_waiting(&mix, 3000, Count::default());
        assert!((coarse[0] - 2.0).abs() < 1e-6 && coarse[2999] <= coarse[300]);
        assert!(coarse[320] >= coarse[1000] && coarse[320] > 0.0);
    }

    /// The generating-function recursion equals the definition, summed term by term:
    /// `sum_j P(N >= j) P(S_j > m)` over whole cells, for narrow, wide and busy mixes,
    /// with jobs one by one (Poisson) and in geometric batches (Pólya–Aeppli: single
    /// jobs at 0.7 of the mean, batches of one more job with chance 0.6).
    #[test]
    fn expected_waiting_equals_its_definition() {
        let fact = |k: usize| (1..=k).map(|x| x as f64).product::<f64>();
        let poisson = |m: f64, k: usize| (-m).exp() * m.powi(k as i32) / fact(k);
        // P(N = k) for `single` Poisson jobs and `batches` Poisson batches of a
        // geometric size: over the number of batches b and the ways of splitting the
        // batches' jobs into b of at least one (C(n-1, b-1)).
        let count_law = |single: f64, batches: f64, q: f64, k: usize| -> f64 {
            let choose = |n: usize, b: usize| fact(n) / (fact(b) * fact(n - b));
            let aeppli = |n: usize| -> f64 {
                if n == 0 {
                    return (-batches).exp();
                }
                (1..=n)
                    .map(|b| {
                        poisson(batches, b)
                            * choose(n - 1, b - 1)
                            * (1.0 - q).powi(b as i32)
                            * q.powi((n - b) as i32)
                    })
                    .sum()
            };
            (0..=k).map(|i| poisson(single, i) * aeppli(k - i)).sum()
        };
        let reference = |mix: &BTreeMap<u32, f64>, max: u32, count: Count| -> Vec<f64> {
            let lambda: f64 = mix.values().sum();
            let q = count.batch;
            let (single, batches) = (lambda - count.sessions, count.sessions * (1.0 - q));
            let g = (max as usize + 1).div_ceil(CELLS).max(1);
            let len = max as usize / g + 1;
            let mut law = vec![0.0; len];
            law[0] = 1.0;
            let mut out = vec![0.0; len];
            let mut at_least = 1.0 - count_law(single, batches, q, 0);
            for j in 1..=150 {
                let mut next = vec![0.0; len];
                for (n, &pn) in law.iter().enumerate() {
                    for (&size, &w) in mix {
                        let k = (size_class(size) as usize).div_ceil(g);
                        if n + k < len {
                            next[n + k] += pn * w / lambda;
                        }
                    }
                }
                law = next;
                let mut cdf = 0.0;
                for (m, o) in out.iter_mut().enumerate() {
                    cdf += law[m];
                    *o += at_least * (1.0 - cdf).max(0.0);
                }
                at_least -= count_law(single, batches, q, j);
            }
            assert!(
                at_least.abs() < 1e-12,
                "the reference sums every likely count"
            );
            (0..=max as usize).map(|d| out[d / g]).collect()
        };
        let batched = Count {
            sessions: 0.3,
            batch: 0.6,
        };
        let mixes = [
            (BTreeMap::from([(1, 0.5)]), 6, Count::default()),
            (
                BTreeMap::from([(1, 2.0), (3, 0.7), (12, 0.1)]),
                40,
                Count::default(),
            ),
            (BTreeMap::from([(2, 30.0), (5, 4.0)]), 90, Count::default()),
            (
                BTreeMap::from([(300, 2.0), (7, 1.0)]),
                3000,
                Count::default(),
            ),
            (BTreeMap::from([(40, 6.0)]), 50, Count::default()),
            (BTreeMap::from([(1, 1.0)]), 12, batched),
            (BTreeMap::from([(1, 2.0), (3, 0.7), (12, 0.1)]), 40, batched),
            (BTreeMap::from([(300, 2.0), (7, 1.0)]), 3000, batched),
            (BTreeMap::from([(1, 1.0), (30, 0.3)]), 20, batched),
        ];
        for (mix, max, count) in mixes {
            let count = Count {
                sessions: count.sessions * mix.values().sum::<f64>(),
                ..count
            };
            let (got, want) = (
                expected_waiting(&mix, max, count),
                reference(&mix, max, count),
            );
            for (d, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() < 1e-9, "{mix:?} {count:?} d={d}: {a} vs {b}");
            }
        }
    }

    /// Twenty one-instance jobs expected: with `d` idle, about `E[(N - d)+]` wait, so
    /// well past twelve jobs are counted, and holding about twenty is cheapest at a
    /// low price.
    #[test]
    fn busy_windows_count_every_likely_job() {
        let mix = BTreeMap::from([(1, 20.0)]);
        let w = expected_waiting(&mix, 60, Count::default());
        assert!((w[0] - 20.0).abs() < 1e-6, "{}", w[0]);
        assert!(w[30] < 0.05 && w[30] > 0.0, "{}", w[30]);
        let d = cheapest_idle(&mix, &compound(&mix), 0.01, Count::default());
        assert!((25..=40).contains(&d), "{d}");
        // A thousand: every idle count up to 500 is passed, so `1000 - d` wait.
        let w = expected_waiting(&BTreeMap::from([(1, 1000.0)]), 500, Count::default());
        assert!(w
            .iter()
            .enumerate()
            .all(|(d, x)| (x - (1000.0 - d as f64)).abs() < 1e-6));
    }

    #[test]
    fn the_normal_approximation_has_the_compound_moments() {
        let mix = BTreeMap::from([(2, 300.0)]);
        let o = compound(&mix);
        assert_eq!(o, Outlook::Normal(600.0, (1200.0f64).sqrt()));
        let q = o.quantile(0.5);
        assert!((599..=601).contains(&q), "{q}");
        assert!(o.quantile(0.99) > 650);
    }

    /// A calibrator whose predictor always says 0 while one job in four windows comes:
    /// it misses about a quarter of windows and raises its level while it does.
    #[test]
    fn the_calibrator_counts_misses_and_raises_its_level() {
        let mut c = Calibrator::new(0.9, 60.0, 60.0);
        for k in 0..400 {
            let t = f64::from(k) * 60.0;
            if k % 4 == 1 {
                c.arrival(t + 30.0, 1);
            }
            c.tick(t, k >= 100, || Outlook::Exact(vec![1.0]));
        }
        let cov = c.coverage();
        assert_eq!(cov.windows, 299);
        assert!((cov.covered - 0.75).abs() < 0.01, "{cov:?}");
        assert_eq!(cov.expected, 1.0);
        assert!(cov.level > 0.9);
    }
}
