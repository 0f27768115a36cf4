//! The discrete-event replay of one pool: jobs take warm instances or wait for cold
//! ones, and a strategy decides what stays warm.
//!
//! Time is in seconds (f64) from the log's origin and jumps from event to event, so
//! there is no stepping error. Events at the same instant are ordered: job ends, then
//! expiries, then pre-warm starts, then reviews, then arrivals (an instance released
//! at `t` can serve a job arriving at `t`; one whose keep-alive ends at `t` cannot),
//! then by the order they were made: the replay is deterministic.
//!
//! An arriving job takes unused warm instances that are up (the most recently idle
//! first), then ones still booting (the earliest ready first), then starts cold ones;
//! it starts when the last of its instances is up. Idle warm time is the time an
//! instance is up or booting ahead of demand and serves no job; a cold start's boot is
//! the job's delay instead.

use super::metrics::Metrics;
use super::strategy::{Release, Strategy};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// One job as the pool sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// Seconds from the origin at which the job asks for its instances.
    pub arrival: f64,
    /// Seconds it holds them once started.
    pub run: f64,
    /// Instances it holds at once.
    pub instances: u32,
    /// The application whose history a learner keys on (an index): the user.
    pub app: usize,
    /// The program the job ran (an index).
    pub program: usize,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    End(usize),
    Expire(u64),
    Prewarm { n: u32, until: f64 },
    Review,
    Arrival(usize),
}

impl Kind {
    fn rank(&self) -> u8 {
        match self {
            Kind::End(_) => 0,
            Kind::Expire(_) => 1,
            Kind::Prewarm { .. } => 2,
            Kind::Review => 3,
            Kind::Arrival(_) => 4,
        }
    }
}

struct Event {
    t: f64,
    seq: u64,
    kind: Kind,
}

impl Ord for Event {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: the heap pops the earliest.
        (o.t.total_cmp(&self.t))
            .then(o.kind.rank().cmp(&self.kind.rank()))
            .then(o.seq.cmp(&self.seq))
    }
}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Event {}

/// An unused warm instance: idle since `since`, up at `ready`, stopped at `until`.
#[derive(Debug, Clone, Copy)]
struct Warm {
    since: f64,
    ready: f64,
    until: f64,
}

struct Pool<'a> {
    cold_start: f64,
    heap: BinaryHeap<Event>,
    seq: u64,
    warm: BTreeMap<u64, Warm>,
    token: u64,
    busy: u32,
    pending_arrivals: usize,
    metrics: Metrics,
    strategy: &'a mut dyn Strategy,
}

/// Replays `demands` (in arrival order) against one pool; metrics count only what
/// happens in `judged` (jobs arriving, starts, idle time).
pub fn simulate(
    demands: &[Demand],
    strategy: &mut dyn Strategy,
    cold_start: f64,
    judged: std::ops::Range<f64>,
) -> Metrics {
    let mut pool = Pool {
        cold_start,
        heap: BinaryHeap::new(),
        seq: 0,
        warm: BTreeMap::new(),
        token: 0,
        busy: 0,
        pending_arrivals: demands.len(),
        metrics: Metrics::new(judged.start, judged.end),
        strategy,
    };
    for (j, d) in demands.iter().enumerate() {
        pool.push(d.arrival, Kind::Arrival(j));
    }
    if let (Some(p), Some(first)) = (pool.strategy.review_every(), demands.first()) {
        pool.push(first.arrival + p, Kind::Review);
    }
    let mut now = demands.first().map_or(0.0, |d| d.arrival);
    while let Some(e) = pool.heap.pop() {
        now = e.t;
        pool.handle(e, demands);
        pool.meet_target(now);
    }
    pool.close(now);
    pool.metrics
}

impl Pool<'_> {
    fn push(&mut self, t: f64, kind: Kind) {
        self.seq += 1;
        self.heap.push(Event {
            t,
            seq: self.seq,
            kind,
        });
    }

    fn handle(&mut self, e: Event, demands: &[Demand]) {
        let t = e.t;
        match e.kind {
            Kind::Arrival(j) => {
                self.pending_arrivals -= 1;
                self.arrive(t, &demands[j], j);
            }
            Kind::End(j) => {
                self.busy -= demands[j].instances;
                match self.strategy.on_release(t, &demands[j]) {
                    Release::Keep { until } => self.add_warm(demands[j].instances, t, t, until),
                    Release::Stop => {}
                    Release::Prewarm { ready, until } => {
                        let boot = (ready - self.cold_start).max(t);
                        let n = demands[j].instances;
                        self.push(boot, Kind::Prewarm { n, until });
                    }
                }
            }
            Kind::Prewarm { n, until } => {
                self.metrics.starts(t, n);
                let ready = t + self.cold_start;
                self.add_warm(n, t, ready, until.max(ready));
            }
            Kind::Expire(token) => {
                if let Some(w) = self.warm.remove(&token) {
                    self.retire(w, t);
                }
            }
            Kind::Review => {
                if self.pending_arrivals > 0 || self.busy > 0 {
                    let p = self.strategy.review_every().unwrap_or(f64::INFINITY);
                    self.push(t + p, Kind::Review);
                }
            }
        }
    }

    fn arrive(&mut self, a: f64, d: &Demand, j: usize) {
        self.strategy.on_arrival(a, d);
        let mut up: Vec<u64> = self
            .warm
            .iter()
            .filter(|(_, w)| w.ready <= a)
            .map(|(&k, _)| k)
            .collect();
        up.reverse();
        let mut booting: Vec<(f64, u64)> = self
            .warm
            .iter()
            .filter(|(_, w)| w.ready > a)
            .map(|(&k, w)| (w.ready, k))
            .collect();
        booting.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let order = up.into_iter().chain(booting.into_iter().map(|b| b.1));
        let mut start = a;
        let mut taken = 0;
        for token in order.take(d.instances as usize) {
            let w = self.warm.remove(&token).expect("a warm instance");
            self.metrics.idle(w.since, a);
            start = start.max(w.ready);
            taken += 1;
        }
        let missing = d.instances - taken;
        if missing > 0 {
            match self.strategy.foresight() {
                Some(f) if f.prewarm_misses => {
                    let boot = a - self.cold_start;
                    self.metrics.starts(boot, missing);
                    for _ in 0..missing {
                        self.metrics.idle(boot, a);
                    }
                }
                _ => {
                    self.metrics.starts(a, missing);
                    start = start.max(a + self.cold_start);
                }
            }
        }
        self.metrics.job(a, start - a);
        self.busy += d.instances;
        self.push(start + d.run, Kind::End(j));
    }

    fn add_warm(&mut self, n: u32, since: f64, ready: f64, until: f64) {
        for _ in 0..n {
            self.token += 1;
            self.warm.insert(
                self.token,
                Warm {
                    since,
                    ready,
                    until,
                },
            );
            if until.is_finite() {
                self.push(until, Kind::Expire(self.token));
            }
        }
    }

    /// An instance stopped unused at `t`; with foresight it was never kept.
    fn retire(&mut self, w: Warm, t: f64) {
        if self.strategy.foresight().is_none() {
            self.metrics.idle(w.since, t);
        }
    }

    /// Starts or stops unused instances to meet the strategy's target, if it has one.
    fn meet_target(&mut self, t: f64) {
        let Some(target) = self.strategy.idle_target(t, self.busy) else {
            return;
        };
        let unused = self.warm.len() as u32;
        if unused < target {
            self.metrics.starts(t, target - unused);
            self.add_warm(target - unused, t, t + self.cold_start, f64::INFINITY);
        }
        while self.warm.len() as u32 > target {
            let (_, w) = self.warm.pop_first().expect("an unused instance");
            self.retire(w, t);
        }
    }

    /// The log is over at `end`: instances still unused stop then (or at their expiry).
    fn close(&mut self, end: f64) {
        for (_, w) in std::mem::take(&mut self.warm) {
            self.retire(w, w.until.min(end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pools::strategy::{KeepAlive, Oracle};

    fn jobs() -> Vec<Demand> {
        let d = |arrival, run, instances| Demand {
            arrival,
            run,
            instances,
            app: 0,
            program: 0,
        };
        vec![d(0.0, 100.0, 2), d(200.0, 50.0, 1), d(700.0, 10.0, 3)]
    }

    /// Cold start 60 s, keep-alive 600 s:
    /// - J0 (t=0, 2 instances, 100 s): both cold (2 starts), runs 60..160, delay 60;
    ///   instances A, B warm 160..760.
    /// - J1 (t=200, 1, 50 s): takes B (the most recently idle; ties go to the later
    ///   made), idle 40; runs 200..250; B warm 250..850.
    /// - J2 (t=700, 3, 10 s): takes B (idle 450) and A (idle 540), one cold (1 start),
    ///   runs 760..770, delay 60; three warm 770..1370, then stop unused (3 x 600).
    ///
    /// Delayed 2 of 3, delays 60+0+60 = 120 s, p95 (rank 3 of 3) 60 s,
    /// idle 40+450+540+1800 = 2830 s, 3 starts.
    #[test]
    fn a_hand_computed_keep_alive_replay() {
        let m = simulate(
            &jobs(),
            &mut KeepAlive { seconds: 600.0 },
            60.0,
            f64::NEG_INFINITY..f64::INFINITY,
        );
        let s = m.summary();
        assert_eq!((s.jobs, s.delayed, s.instance_starts), (3, 2, 3));
        assert_eq!(s.total_delay_hours * 3600.0, 120.0);
        assert_eq!(s.p95_delay_seconds, 60.0);
        assert_eq!(s.idle_instance_hours * 3600.0, 2830.0);
        assert_eq!(s.longest_idle_seconds, 600.0);
    }

    /// The same replay judged from t=300: only J2 counts (1 delayed, 1 start); idle is
    /// clipped at 300: A 300..700 and B 300..700 (400 each) and 3 x 600 after J2.
    #[test]
    fn a_cut_off_counts_only_what_follows_it() {
        let s = simulate(
            &jobs(),
            &mut KeepAlive { seconds: 600.0 },
            60.0,
            300.0..f64::INFINITY,
        )
        .summary();
        assert_eq!((s.jobs, s.delayed, s.instance_starts), (1, 1, 1));
        assert_eq!(s.idle_instance_hours * 3600.0, 2600.0);
    }

    /// Oracle at a 10-minute budget (>= the 60 s start-up): every miss is pre-warmed in
    /// time (idle boot 60 s each: 2 + 1 + 3 instances), kept instances that nobody takes
    /// (J0's after 100, J1's after 250, J2's after 710) cost nothing: 360 s, 6 starts,
    /// no delay. At 30 s (< 60 s) nothing can be pre-warmed and no gap is that short:
    /// all three jobs wait, at no idle cost.
    #[test]
    fn a_hand_computed_oracle_replay() {
        let mut oracle = Oracle {
            budget: 600.0,
            cold_start: 60.0,
        };
        let s = simulate(&jobs(), &mut oracle, 60.0, f64::NEG_INFINITY..f64::INFINITY).summary();
        assert_eq!((s.delayed, s.instance_starts), (0, 6));
        assert_eq!(s.idle_instance_hours * 3600.0, 360.0);
        oracle.budget = 30.0;
        let s = simulate(&jobs(), &mut oracle, 60.0, f64::NEG_INFINITY..f64::INFINITY).summary();
        assert_eq!(
            (s.delayed, s.instance_starts, s.idle_instance_hours),
            (3, 6, 0.0)
        );
        assert_eq!(s.total_delay_hours * 3600.0, 180.0);
    }
}
