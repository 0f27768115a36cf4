//! The design seed's demand formula, faithfully: `predict_resource_demand` is a weighted
//! sum of four factors, normalised to 1–10 and mapped to instances by
//! `map_demand_to_instances`'s steps. It is a baseline for the pool predictor, as the
//! greedy heuristic is for the optimiser.
//!
//! The seed leaves two things open, decided here and said in the docs: its factors
//! have incomparable units (jobs per day, instances, instance-hours, minutes), so each
//! is first scaled to 0–1 by its minimum and maximum over the profiled users; and
//! "normalise to 1–10" maps the smallest weighted sum among those users to 1 and the
//! largest to 10. The factors are the user's jobs per day (`frequency`), mean
//! instances per job (`intensity`), and for the program of their latest job its mean
//! instance-hours per job (`complexity`, the seed's code complexity: the work one run
//! of it takes) and its mean run time in minutes (`duration`).

use super::{Profiles, UserProfile};
use serde::{Deserialize, Serialize};

/// The seed's weights, one per factor (the model file's `[pools.seed]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedWeights {
    /// Weight of jobs per day.
    pub frequency: f64,
    /// Weight of mean instances per job.
    pub intensity: f64,
    /// Weight of the latest program's mean instance-hours per job.
    pub complexity: f64,
    /// Weight of the latest program's mean run time (minutes).
    pub duration: f64,
}

impl Default for SeedWeights {
    fn default() -> Self {
        SeedWeights {
            frequency: 0.25,
            intensity: 0.25,
            complexity: 0.25,
            duration: 0.25,
        }
    }
}

/// The seed's `map_demand_to_instances`.
pub fn map_demand_to_instances(demand: f64) -> u32 {
    if demand < 3.0 {
        1
    } else if demand < 6.0 {
        2
    } else if demand < 8.0 {
        3
    } else {
        4 + ((demand - 8.0) / 2.0).floor() as u32
    }
}

/// The four raw factors of a user at `now`.
pub fn factors(u: &UserProfile, now: f64) -> [f64; 4] {
    let program = u.programs.get(&u.last_program);
    let per_job = |x: f64| {
        program
            .filter(|p| p.finished > 0)
            .map_or(0.0, |p| x / p.finished as f64)
    };
    [
        u.jobs_per_day(now),
        u.mean_instances(),
        per_job(program.map_or(0.0, |p| p.instance_seconds)) / 3600.0,
        per_job(program.map_or(0.0, |p| p.run_seconds)) / 60.0,
    ]
}

/// The seed's prediction for every profiled user at `now`: instances each would get.
pub struct SeedModel {
    lo: [f64; 4],
    hi: [f64; 4],
    sum_lo: f64,
    sum_hi: f64,
    weights: [f64; 4],
}

impl SeedModel {
    /// Scales fitted over the users profiled at `now`.
    pub fn fit(p: &Profiles, weights: &SeedWeights, now: f64) -> SeedModel {
        let mut lo = [f64::INFINITY; 4];
        let mut hi = [f64::NEG_INFINITY; 4];
        let all: Vec<[f64; 4]> = p.users.values().map(|u| factors(u, now)).collect();
        for f in &all {
            for k in 0..4 {
                lo[k] = lo[k].min(f[k]);
                hi[k] = hi[k].max(f[k]);
            }
        }
        let w = weights;
        let mut model = SeedModel {
            lo,
            hi,
            sum_lo: 0.0,
            sum_hi: 0.0,
            weights: [w.frequency, w.intensity, w.complexity, w.duration],
        };
        let sums: Vec<f64> = all.iter().map(|f| model.weighted(f)).collect();
        model.sum_lo = sums.iter().copied().fold(f64::INFINITY, f64::min);
        model.sum_hi = sums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        model
    }

    fn weighted(&self, f: &[f64; 4]) -> f64 {
        (0..4)
            .map(|k| {
                let span = self.hi[k] - self.lo[k];
                let scaled = if span > 0.0 {
                    (f[k] - self.lo[k]) / span
                } else {
                    0.0
                };
                self.weights[k] * scaled
            })
            .sum()
    }

    /// The seed's `predict_resource_demand` for `u`: its normalised demand (1–10) and
    /// the instances it maps to.
    pub fn predict(&self, u: &UserProfile, now: f64) -> (f64, u32) {
        let sum = self.weighted(&factors(u, now));
        let span = self.sum_hi - self.sum_lo;
        let demand = if span > 0.0 {
            1.0 + 9.0 * ((sum - self.sum_lo) / span).clamp(0.0, 1.0)
        } else {
            1.0
        };
        (demand, map_demand_to_instances(demand))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::job;

    #[test]
    fn the_step_mapping_is_the_seeds() {
        let got: Vec<u32> = [1.0, 2.99, 3.0, 5.99, 6.0, 7.99, 8.0, 9.99, 10.0]
            .into_iter()
            .map(map_demand_to_instances)
            .collect();
        assert_eq!(got, [1, 1, 2, 2, 3, 3, 4, 4, 5]);
    }

    #[test]
    fn the_busiest_heaviest_user_gets_ten_and_the_lightest_one() {
        let mut jobs = vec![job("light", 0, 10.0, 1)];
        jobs.extend((0..20).map(|k| job("heavy", 100 * k, 3600.0, 64)));
        jobs.push(job("mid", 50, 600.0, 8));
        let mut p = Profiles::default();
        p.update(&jobs, None);
        let m = SeedModel::fit(&p, &SeedWeights::default(), 86_400.0);
        assert_eq!(m.predict(&p.users["heavy"], 86_400.0), (10.0, 5));
        assert_eq!(m.predict(&p.users["light"], 86_400.0), (1.0, 1));
        let (d, n) = m.predict(&p.users["mid"], 86_400.0);
        assert!(d > 1.0 && d < 10.0 && n >= 1, "{d} {n}");
    }
}
