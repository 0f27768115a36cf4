//! Lower bounds on the shortage any strategy can reach in a replay.
//!
//! The myopic `oracle` runs under the same rules as `mip` and can lose to it, so it
//! bounds nothing. These bounds relax every rule: each interval, each resource is
//! split continuously among the instances, within each one's `[min, max]` and a
//! capacity, to minimise the interval's realised shortage (water-filling). `pooled`
//! gives every instance the capacity of all hosts together (each at most the largest
//! host's), so no strategy, however it migrates, can do better; `per_host` keeps each instance on its starting host,
//! so it bounds the strategies that never migrate.

use super::metrics::{in_units, Window};
use crate::fleet::Fleet;
use crate::resource::{PerResource, Resource};
use crate::units::round6;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One instance's realised demand of one resource in one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// The least allocation the instance may have (its `min`, in the resource's units).
    pub min: f64,
    /// The most allocation the instance may have (its `max`, capped by the largest host's
    /// capacity for `pooled`).
    pub max: f64,
    /// Hours each sample stands for.
    pub hours: f64,
    /// Realised values in the interval, in the resource's units (cores, MiB, Mbps).
    pub samples: Vec<f64>,
}

/// The least total `Σ hours · (sample − a)⁺` over allocations `a` within each demand's
/// `[min, max]` whose sum stays within `capacity` (each at its `min` when even those
/// do not fit, as every feasible plan keeps them). Exact: the shortage of one instance
/// is convex and piecewise linear in its allocation, so capacity goes to the steepest
/// pieces first.
pub fn water_fill(demands: &[Demand], capacity: f64) -> f64 {
    // (marginal shortage saved per unit of allocation, units the piece spans)
    let mut pieces: Vec<(f64, f64)> = Vec::new();
    let mut shortage = 0.0;
    let mut room = capacity;
    for d in demands {
        room -= d.min;
        let mut above: Vec<f64> = d.samples.iter().copied().filter(|&v| v > d.min).collect();
        above.sort_by(|a, b| b.total_cmp(a));
        shortage += above.iter().map(|v| (v - d.min) * d.hours).sum::<f64>();
        // Raising the allocation from `level` saves `hours` for each sample above it.
        let mut level = d.min;
        for k in (0..above.len()).rev() {
            let top = above[k].min(d.max);
            if top > level {
                pieces.push(((k + 1) as f64 * d.hours, top - level));
                level = top;
            }
        }
    }
    pieces.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (saving, span) in pieces {
        if room <= 0.0 {
            break;
        }
        let used = span.min(room);
        shortage -= saving * used;
        room -= used;
    }
    shortage.max(0.0)
}

/// The two bounds' running totals, in the units a [`super::metrics::Tally`] keeps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bounds {
    /// All hosts' capacity pooled: valid for every strategy.
    pub pooled: PerResource<f64>,
    /// Each host's own capacity: valid for strategies that do not migrate.
    pub per_host: PerResource<f64>,
}

impl Bounds {
    /// Adds one interval's bounds for the realised `window`, with the instances'
    /// bounds and starting hosts taken from `fleet`.
    pub fn add(&mut self, fleet: &Fleet, window: &Window) {
        let host_of: HashMap<&str, (&str, &crate::fleet::Instance)> = fleet
            .instances
            .iter()
            .map(|i| (i.id.as_str(), (i.host.as_str(), i)))
            .collect();
        for r in Resource::ALL {
            let scale = if r == Resource::Mem { 1024.0 } else { 1.0 };
            let largest = fleet
                .hosts
                .iter()
                .map(|h| h.capacity()[r])
                .fold(0.0, f64::max);
            let mut all = Vec::new();
            let mut by_host: HashMap<&str, Vec<Demand>> = HashMap::new();
            for (id, res, hours, points) in window {
                if *res != r {
                    continue;
                }
                let Some(&(host, inst)) = host_of.get(id) else {
                    continue;
                };
                let a = inst.resource(r);
                let d = Demand {
                    min: a.min,
                    max: a.max,
                    hours: *hours,
                    samples: points.iter().map(|p| p.1).collect(),
                };
                // Wherever it runs, an instance holds at most what its largest host has.
                let pooled = Demand {
                    max: d.max.min(largest),
                    ..d.clone()
                };
                by_host.entry(host).or_default().push(d);
                all.push(pooled);
            }
            let capacity: f64 = fleet.hosts.iter().map(|h| h.capacity()[r]).sum();
            self.pooled[r] += water_fill(&all, capacity) / scale;
            for h in &fleet.hosts {
                if let Some(ds) = by_host.get(h.id.as_str()) {
                    self.per_host[r] += water_fill(ds, h.capacity()[r]) / scale;
                }
            }
        }
    }
}

/// One bound in a report, rounded to six decimals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The bound on cpu shortage (core-hours).
    pub shortage_cpu_core_hours: f64,
    /// The bound on mem shortage (GiB-hours).
    pub shortage_mem_gib_hours: f64,
    /// All resources in cost units times hours, as `details.<strategy>.shortage_units_hours`.
    pub shortage_units_hours: f64,
}

impl Bounds {
    /// The report's `bounds` object.
    pub fn summaries(&self, unit: &PerResource<f64>) -> BTreeMap<String, Summary> {
        let summary = |v: &PerResource<f64>| Summary {
            shortage_cpu_core_hours: round6(v.cpu),
            shortage_mem_gib_hours: round6(v.mem),
            shortage_units_hours: round6(in_units(v, unit)),
        };
        BTreeMap::from([
            ("per_host".to_owned(), summary(&self.per_host)),
            ("pooled".to_owned(), summary(&self.pooled)),
        ])
    }

    /// The table's closing line.
    pub fn line(&self, unit: &PerResource<f64>) -> String {
        format!(
            "lower bound on shortage (cost units x hours): {:.3} for any strategy (hosts pooled), \
             {:.3} without migration (per host)\n",
            in_units(&self.pooled, unit),
            in_units(&self.per_host, unit)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(min: f64, max: f64, samples: &[f64]) -> Demand {
        Demand {
            min,
            max,
            hours: 0.25,
            samples: samples.to_vec(),
        }
    }

    /// Worked by hand: a needs [3, 1] and b needs [2, 2] over two 15-minute samples,
    /// both from min 0.5. With 3.5 units: a's first unit up to 1 saves 2 samples, then
    /// b's 1.5 up to 2 saves 2 samples, then 1 of a's last 2 saves one sample.
    #[test]
    fn capacity_goes_to_the_steepest_pieces() {
        let ds = [
            demand(0.5, 10.0, &[3.0, 1.0]),
            demand(0.5, 10.0, &[2.0, 2.0]),
        ];
        // At the mins: a short 2.5 + 0.5, b short 1.5 + 1.5 = 6 units × 0.25 h.
        assert_eq!(water_fill(&ds, 1.0), 6.0 * 0.25);
        // 2.5 spare: 0.5 to a (saves 2 × 0.5), 1.5 to b (saves 2 × 1.5), 0.5 to a (0.5).
        let left = 6.0 - 2.0 * 0.5 - 2.0 * 1.5 - 0.5;
        assert!((water_fill(&ds, 3.5) - left * 0.25).abs() < 1e-12);
        // Enough for everyone: no shortage; a max below demand keeps the excess short.
        assert_eq!(water_fill(&ds, 100.0), 0.0);
        let capped = [demand(0.5, 2.5, &[3.0, 1.0])];
        assert!((water_fill(&capped, 100.0) - 0.5 * 0.25).abs() < 1e-12);
    }

    /// One instance may grow to 6 cores but its hosts have 2.5 each: pooling their 5 cores
    /// cannot give it more than 2.5, so 1.5 of its 4 cores is short in both bounds.
    #[test]
    fn no_instance_holds_more_than_the_largest_host() {
        let text = r#"
[[host]]
id = "h0"
cell = "c0"
cpu = 2.5
mem = 4096.0
net = 100.0

[[host]]
id = "h1"
cell = "c0"
cpu = 2.5
mem = 4096.0
net = 100.0

[[instance]]
id = "big"
host = "h0"
credits = 0.0
earn_rate = 0.0
cpu = { alloc = 2.0, min = 0.5, max = 6.0 }
mem = { alloc = 1024.0, min = 1024.0, max = 1024.0 }
net = { alloc = 10.0, min = 10.0, max = 10.0 }
"#;
        let fleet = Fleet::parse(std::path::Path::new("fleet.toml"), text).unwrap();
        let window: Window = vec![("big", Resource::Cpu, 0.25, vec![(0, 4.0)])];
        let mut b = Bounds::default();
        b.add(&fleet, &window);
        assert!((b.pooled.cpu - 1.5 * 0.25).abs() < 1e-12, "{b:?}");
        assert!((b.per_host.cpu - 1.5 * 0.25).abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn minimums_are_kept_when_they_do_not_fit() {
        let ds = [demand(2.0, 4.0, &[1.0, 3.0]), demand(2.0, 4.0, &[2.5])];
        assert!((water_fill(&ds, 3.0) - 1.5 * 0.25).abs() < 1e-12);
    }

    /// The least shortage over every allocation on a 0.25 grid: with all inputs on that
    /// grid, the continuous optimum lies on it too, so the two must agree.
    fn brute_force(ds: &[Demand], capacity: f64) -> f64 {
        let shortage = |d: &Demand, a: f64| -> f64 {
            d.samples.iter().map(|v| (v - a).max(0.0) * d.hours).sum()
        };
        let mut best = f64::INFINITY;
        let mut alloc: Vec<f64> = ds.iter().map(|d| d.min).collect();
        loop {
            let used: f64 = alloc.iter().sum();
            let total: f64 = ds.iter().zip(&alloc).map(|(d, &a)| shortage(d, a)).sum();
            if used <= capacity + 1e-9 || alloc.iter().zip(ds).all(|(a, d)| *a == d.min) {
                best = best.min(total);
            }
            let Some(k) = (0..ds.len()).find(|&k| alloc[k] + 0.25 <= ds[k].max + 1e-9) else {
                return best;
            };
            alloc[k] += 0.25;
            for j in 0..k {
                alloc[j] = ds[j].min;
            }
        }
    }

    fn quarters(n: u32) -> f64 {
        f64::from(n) * 0.25
    }

    proptest::proptest! {
        #[test]
        fn water_filling_matches_brute_force(
            raw in proptest::collection::vec(
                (0u32..8, 0u32..8, proptest::collection::vec(0u32..16, 1..4)),
                1..4,
            ),
            capacity in 0u32..24,
        ) {
            let ds: Vec<Demand> = raw
                .iter()
                .map(|(lo, span, samples)| Demand {
                    min: quarters(*lo),
                    max: quarters(lo + span),
                    hours: 0.25,
                    samples: samples.iter().map(|&v| quarters(v)).collect(),
                })
                .collect();
            let fast = water_fill(&ds, quarters(capacity));
            let slow = brute_force(&ds, quarters(capacity));
            proptest::prop_assert!((fast - slow).abs() < 1e-9, "{fast} vs {slow} for {ds:?}");
        }
    }
}
