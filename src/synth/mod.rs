//! Deterministic synthetic fleets built around real telemetry.
//!
//! `fleet synth` places the instances of a telemetry file on N hosts in cells
//! and sizes each host so that its instances' summed peak demand is
//! `overcommit` times its capacity: with overcommit above 1 not everyone can
//! hold their peak at once, which is exactly when swaps pay off.

pub mod rng;
pub mod scenario;

use crate::fleet::{Allocation, Fleet, Host, Instance, CREDIT_CAP_HOURS};
use crate::policy::Policy;
use crate::resource::{PerResource, Resource};
use crate::synth::rng::SplitMix;
use crate::telemetry::Telemetry;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Allocation given to a resource that has no telemetry (kept fixed by the planner).
const UNMEASURED: PerResource<f64> = PerResource {
    cpu: 1.0,
    mem: 2048.0,
    net: 100.0,
};

/// Baseline CPU share that earns credits, AWS-style (20% of the allocated cores).
const BASELINE_SHARE: f64 = 0.2;

/// Options for [`synth_fleet`].
#[derive(Debug, Clone, PartialEq)]
pub struct SynthOptions {
    /// Hosts to place the instances on (at most one per instance).
    pub hosts: usize,
    /// Cells, from 1 to `hosts`; consecutive hosts share a cell.
    pub cells: usize,
    /// Summed peak demand over capacity on each host, at least 1 (e.g. 1.3).
    pub overcommit: f64,
    /// Seed of the placement shuffle and the credit balances.
    pub seed: u64,
}

/// Why a fleet cannot be synthesised.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The options do not fit the telemetry; the message says how.
    #[error("{0}")]
    Options(String),
}

/// Places every instance of `telemetry` on `hosts` hosts and sizes hosts and allocations.
pub fn synth_fleet(
    telemetry: &Telemetry,
    opts: &SynthOptions,
    policy: &Policy,
) -> Result<Fleet, SynthError> {
    let ids: Vec<String> = telemetry.instances().map(str::to_owned).collect();
    let peaks = ids.iter().map(|id| peak(telemetry, id)).collect();
    fleet_from_peaks(ids, peaks, opts, policy)
}

/// Builds the fleet from each instance's peak demand (`None`: no telemetry for that resource).
pub fn fleet_from_peaks(
    ids: Vec<String>,
    peaks: Vec<PerResource<Option<f64>>>,
    opts: &SynthOptions,
    policy: &Policy,
) -> Result<Fleet, SynthError> {
    check(opts)?;
    if ids.len() < opts.hosts {
        return Err(SynthError::Options(format!(
            "{} instances cannot fill {} hosts: use at most {} hosts",
            ids.len(),
            opts.hosts,
            ids.len()
        )));
    }
    let mut rng = SplitMix(opts.seed);
    let mut order: Vec<usize> = (0..ids.len()).collect();
    rng.shuffle(&mut order);
    let (ids, peaks): (Vec<String>, Vec<_>) =
        order.iter().map(|&k| (ids[k].clone(), peaks[k])).unzip();
    let placement = place(&peaks, opts.hosts);
    let g = policy.granularity;
    let mut instances: Vec<Instance> = ids
        .iter()
        .zip(&peaks)
        .zip(&placement)
        .map(|((id, peak), &h)| instance(id, h, peak, opts.overcommit, &g, &mut rng))
        .collect();
    let mut demand = vec![PerResource::<f64>::default(); opts.hosts];
    for (peak, &h) in peaks.iter().zip(&placement) {
        for r in Resource::ALL {
            demand[h][r] += peak[r].map_or(UNMEASURED[r], |p| p / opts.overcommit);
        }
    }
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    let mut allocated = vec![PerResource::<f64>::default(); opts.hosts];
    for inst in &instances {
        let h: usize = inst.host[1..].parse().expect("synthetic host ids are h<N>");
        for r in Resource::ALL {
            allocated[h][r] += inst.resource(r).alloc;
        }
    }
    let hosts = (0..opts.hosts)
        .map(|h| host(h, opts, &demand[h], &allocated[h], &g))
        .collect();
    Ok(Fleet {
        last_plan: None,
        hosts,
        instances,
        pools: Vec::new(),
    })
}

fn check(opts: &SynthOptions) -> Result<(), SynthError> {
    if opts.hosts == 0 || opts.cells == 0 || opts.cells > opts.hosts {
        return Err(SynthError::Options(format!(
            "need 1 <= cells ({}) <= hosts ({})",
            opts.cells, opts.hosts
        )));
    }
    if !(opts.overcommit.is_finite() && opts.overcommit >= 1.0) {
        return Err(SynthError::Options(format!(
            "overcommit {} must be a number >= 1",
            opts.overcommit
        )));
    }
    Ok(())
}

fn peak(telemetry: &Telemetry, id: &str) -> PerResource<Option<f64>> {
    PerResource::from_fn(|r| {
        let s = telemetry.get(id, r)?;
        s.values()
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    })
}

/// Longest-processing-time placement on CPU peak: biggest first, onto the least loaded host.
fn place(peaks: &[PerResource<Option<f64>>], hosts: usize) -> Vec<usize> {
    let cpu = |k: usize| peaks[k].cpu.unwrap_or(UNMEASURED.cpu);
    let mut order: Vec<usize> = (0..peaks.len()).collect();
    order.sort_by(|&a, &b| cpu(b).total_cmp(&cpu(a)).then(a.cmp(&b)));
    let mut heap: BinaryHeap<Reverse<(Load, usize)>> =
        (0..hosts).map(|h| Reverse((Load(0.0), h))).collect();
    let mut placement = vec![0; peaks.len()];
    for k in order {
        let Reverse((Load(load), h)) = heap.pop().expect("hosts > 0");
        placement[k] = h;
        heap.push(Reverse((Load(load + cpu(k)), h)));
    }
    placement
}

/// A host's load, totally ordered for the placement heap.
#[derive(PartialEq)]
struct Load(f64);

impl Eq for Load {}

impl PartialOrd for Load {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Load {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

fn steps_down(v: f64, g: f64) -> f64 {
    ((v / g + 1e-9).floor().max(1.0)) * g
}

fn steps_up(v: f64, g: f64) -> f64 {
    ((v / g - 1e-9).ceil().max(1.0)) * g
}

fn instance(
    id: &str,
    h: usize,
    peak: &PerResource<Option<f64>>,
    f: f64,
    g: &PerResource<f64>,
    rng: &mut SplitMix,
) -> Instance {
    let alloc = |r: Resource| match peak[r] {
        Some(p) => {
            // Rounded down, so the allocations fit the capacity sized at peak / F.
            let a = steps_down(p / f, g[r]);
            Allocation {
                alloc: a,
                min: g[r],
                max: steps_up(p * 1.5, g[r]).max(a),
            }
        }
        None => Allocation {
            alloc: UNMEASURED[r],
            min: UNMEASURED[r],
            max: UNMEASURED[r],
        },
    };
    let cpu = alloc(Resource::Cpu);
    let earn_rate = round2(BASELINE_SHARE * cpu.alloc * 60.0);
    let credits = round2(earn_rate * CREDIT_CAP_HOURS * (0.05 + 0.9 * rng.unit()));
    Instance {
        id: id.to_owned(),
        host: format!("h{h}"),
        pool: None,
        credits,
        earn_rate,
        changed_at: None,
        cpu,
        mem: alloc(Resource::Mem),
        net: alloc(Resource::Net),
    }
}

fn host(
    h: usize,
    opts: &SynthOptions,
    demand: &PerResource<f64>,
    allocated: &PerResource<f64>,
    g: &PerResource<f64>,
) -> Host {
    let capacity = PerResource::from_fn(|r| steps_up(demand[r], g[r]).max(allocated[r]));
    let per_cell = opts.hosts.div_ceil(opts.cells);
    Host {
        id: format!("h{h}"),
        cell: format!("c{}", h / per_cell),
        cpu: capacity.cpu,
        mem: capacity.mem,
        net: capacity.net,
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn telemetry() -> Telemetry {
        let mut csv = String::from("timestamp,instance,resource,value\n");
        for (k, id) in ["a", "b", "c", "d"].iter().enumerate() {
            for t in 0..4 {
                csv += &format!(
                    "2024-01-01T00:{:02}:00Z,{id},cpu,{}\n",
                    t * 5,
                    (k + 1) as f64 * (1.0 + t as f64 / 4.0)
                );
            }
        }
        Telemetry::from_reader(Path::new("t.csv"), csv.as_bytes()).unwrap()
    }

    #[test]
    fn is_deterministic_and_overcommitted() {
        let opts = SynthOptions {
            hosts: 2,
            cells: 1,
            overcommit: 1.5,
            seed: 3,
        };
        let a = synth_fleet(&telemetry(), &opts, &Policy::default()).unwrap();
        let b = synth_fleet(&telemetry(), &opts, &Policy::default()).unwrap();
        assert_eq!(a, b);
        let peak_sum: f64 = [1.0, 2.0, 3.0, 4.0].iter().map(|k| k * 1.75).sum();
        let cap: f64 = a.hosts.iter().map(|h| h.cpu).sum();
        assert!(
            (peak_sum / cap - 1.5).abs() < 0.15,
            "ratio {}",
            peak_sum / cap
        );
        for h in &a.hosts {
            assert!(a.used(&h.id).cpu <= h.cpu + 1e-9);
        }
        Fleet::parse(Path::new("f.toml"), &a.to_toml()).unwrap();
    }

    #[test]
    fn rejects_bad_options() {
        let opts = SynthOptions {
            hosts: 2,
            cells: 3,
            overcommit: 1.5,
            seed: 3,
        };
        assert!(synth_fleet(&telemetry(), &opts, &Policy::default()).is_err());
        let opts = SynthOptions {
            hosts: 2,
            cells: 1,
            overcommit: 0.5,
            seed: 3,
        };
        assert!(synth_fleet(&telemetry(), &opts, &Policy::default()).is_err());
        let opts = SynthOptions {
            hosts: 5,
            cells: 1,
            overcommit: 1.5,
            seed: 3,
        };
        let e = synth_fleet(&telemetry(), &opts, &Policy::default()).unwrap_err();
        assert!(
            e.to_string().contains("4 instances cannot fill 5 hosts"),
            "{e}"
        );
    }
}
