//! What a pool replay measures: jobs delayed by a cold start, their delays, idle warm
//! instance-hours and instance starts, counted in a judged period `[from, until)`.

use serde::Serialize;

/// Running tallies of one replay; only what happens in `[from, until)` counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    from: f64,
    until: f64,
    delays: Vec<f64>,
    idle_seconds: f64,
    starts: u64,
    longest_idle: f64,
}

/// The figures of one strategy over the judged period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Jobs that arrived in the judged period.
    pub jobs: u64,
    /// Jobs that waited for at least one instance to start.
    pub delayed: u64,
    /// `delayed / jobs` (0 when there are no jobs).
    pub delayed_share: f64,
    /// Summed waits, in hours.
    pub total_delay_hours: f64,
    /// The 95th percentile (nearest rank) of the wait over all judged jobs, in seconds.
    pub p95_delay_seconds: f64,
    /// Instance-hours warm (up, or booting ahead of demand) and serving no job.
    pub idle_instance_hours: f64,
    /// Instances started (cold starts and pre-warms).
    pub instance_starts: u64,
    /// The longest stretch, in seconds, that one instance was warm and unused (over
    /// the whole replay, judged period or not).
    pub longest_idle_seconds: f64,
}

impl Metrics {
    /// Empty tallies judging `[from, until)` (seconds from the log's origin).
    pub fn new(from: f64, until: f64) -> Metrics {
        Metrics {
            from,
            until,
            delays: Vec::new(),
            idle_seconds: 0.0,
            starts: 0,
            longest_idle: 0.0,
        }
    }

    /// A job arriving at `arrival` waited `delay` seconds.
    pub fn job(&mut self, arrival: f64, delay: f64) {
        if self.judges(arrival) {
            self.delays.push(delay);
        }
    }

    /// One instance was warm and unused from `since` to `until`.
    pub fn idle(&mut self, since: f64, until: f64) {
        self.longest_idle = self.longest_idle.max(until - since);
        self.idle_seconds += (until.min(self.until) - since.max(self.from)).max(0.0);
    }

    /// `n` instances started booting at `t`.
    pub fn starts(&mut self, t: f64, n: u32) {
        if self.judges(t) {
            self.starts += u64::from(n);
        }
    }

    fn judges(&self, t: f64) -> bool {
        t >= self.from && t < self.until
    }

    /// Adds another pool's tallies (same cut-off).
    pub fn merge(&mut self, other: Metrics) {
        self.delays.extend(other.delays);
        self.idle_seconds += other.idle_seconds;
        self.starts += other.starts;
        self.longest_idle = self.longest_idle.max(other.longest_idle);
    }

    /// The figures of the judged period so far.
    pub fn summary(&self) -> Summary {
        let jobs = self.delays.len() as u64;
        let delayed = self.delays.iter().filter(|&&d| d > 0.0).count() as u64;
        let mut sorted = self.delays.clone();
        sorted.sort_by(f64::total_cmp);
        let p95 = if sorted.is_empty() {
            0.0
        } else {
            let rank = (0.95 * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        };
        Summary {
            jobs,
            delayed,
            delayed_share: if jobs == 0 {
                0.0
            } else {
                delayed as f64 / jobs as f64
            },
            total_delay_hours: self.delays.iter().sum::<f64>() / 3600.0,
            p95_delay_seconds: p95,
            idle_instance_hours: self.idle_seconds / 3600.0,
            instance_starts: self.starts,
            longest_idle_seconds: self.longest_idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_from_the_cut_off_and_clips_idle_stretches() {
        let mut m = Metrics::new(100.0, f64::INFINITY);
        m.job(50.0, 60.0);
        m.job(100.0, 0.0);
        m.job(150.0, 30.0);
        m.idle(40.0, 160.0);
        m.starts(99.0, 5);
        m.starts(100.0, 2);
        let s = m.summary();
        assert_eq!((s.jobs, s.delayed, s.instance_starts), (2, 1, 2));
        assert_eq!(s.idle_instance_hours, 60.0 / 3600.0);
        assert_eq!(s.longest_idle_seconds, 120.0);
        assert_eq!(s.p95_delay_seconds, 30.0);
    }

    #[test]
    fn an_end_to_the_period_clips_too() {
        let mut m = Metrics::new(100.0, 200.0);
        m.job(150.0, 5.0);
        m.job(200.0, 5.0);
        m.idle(150.0, 400.0);
        m.starts(199.0, 1);
        m.starts(200.0, 4);
        let s = m.summary();
        assert_eq!((s.jobs, s.delayed, s.instance_starts), (1, 1, 1));
        assert_eq!(s.idle_instance_hours, 50.0 / 3600.0);
    }
}
