//! The program itself: variables, rows and objective, built from a [`Problem`].
//!
//! Kept apart from solving so the same program can be solved, warm-started
//! from a greedy plan, or exported for another solver to audit. Every variable
//! and row is named after its entity (`cap[h0,cpu]`, `swap[a>b,mem]`).
//!
//! One file per constraint family, stated by [`build`] in this order: [`pool`] (warm
//! counts), [`instance`] (steps, migrations, the change indicator) with [`demand`] (the
//! mismatch cost), then per host and resource [`capacity`] and [`swap`] (with credits), the
//! disruption [`budget`]s, and the later intervals of a look-ahead ([`ahead`]). Column bounds are
//! settled before any row, by [`steps`] and [`capacity`]. Each family adds its own costs to
//! the objective; what no column can change goes to one fixed column, `fixed_cost`, so that
//! HiGHS' objective and bound equal the assessed objective.

use crate::problem::{Problem, Solution, Swap};
use crate::resource::{PerResource, Resource};
use crate::units::round6;
use capacity::Caps;
use good_lp::{variable, Constraint, Expression, ProblemVariables, Variable, VariableDefinition};
use pool::PoolVars;
use std::collections::HashMap;

mod ahead;
mod budget;
mod capacity;
mod demand;
mod instance;
mod pool;
mod steps;
mod swap;

/// Per resource, a column where the resource has one.
type Steps = PerResource<Option<Variable>>;
/// Per resource, a pair of columns where the resource has them.
type Land = PerResource<Option<(Variable, Variable)>>;

/// The program under construction: variables with their names, and named rows.
#[derive(Default)]
pub(super) struct Program {
    pub(super) vars: ProblemVariables,
    pub(super) names: Vec<String>,
    pub(super) rows: Vec<(String, Constraint)>,
    pub(super) objective: Expression,
    index: HashMap<Variable, usize>,
    /// Integrality dropped: the LP relaxation, for its bound.
    relaxed: bool,
    /// How many integer columns the program has.
    pub(super) integers: std::cell::Cell<usize>,
}

impl Program {
    /// An integer variable in `[lo, hi]`, or a continuous one when the program is relaxed.
    fn int(&self, lo: f64, hi: f64) -> VariableDefinition {
        let def = variable().min(lo).max(hi);
        if self.relaxed {
            def
        } else {
            self.integers.set(self.integers.get() + 1);
            def.integer()
        }
    }

    fn var(&mut self, name: String, def: VariableDefinition) -> Variable {
        self.names.push(name.clone());
        let v = self.vars.add(def.name(name));
        self.index.insert(v, self.index.len());
        v
    }

    fn row(&mut self, name: String, c: Constraint) {
        self.rows.push((name, c));
    }
}

/// Handles to the decision variables, for reading a solution and seeding a start.
pub(super) struct Decisions {
    up: Vec<Steps>,
    down: Vec<Steps>,
    mismatch: Vec<Steps>,
    /// Per instance and resource, the `(down, up)` step bounds.
    span: Vec<PerResource<(f64, f64)>>,
    /// Per host and resource, whether current allocations already exceed capacity.
    over: Vec<PerResource<bool>>,
    /// Per host and resource, whether its residents' predicted shortfall exceeds its free
    /// room: there a one-step shrink is what funds a short neighbour.
    tight: Vec<PerResource<bool>>,
    /// Cost of resources that cannot change, carried by a fixed column so HiGHS'
    /// objective and bound equal the full objective.
    offset: f64,
    fixed: Option<Variable>,
    change: Vec<Option<Variable>>,
    /// Per instance and resource, whether it grows or shrinks (only under hysteresis).
    grows: Vec<Steps>,
    shrinks: Vec<Steps>,
    migrate: Vec<Vec<(usize, Variable)>>,
    /// Per instance, candidate and resource, the steps `(up, down)` it resizes by on landing.
    land: Vec<Vec<Land>>,
    /// Steps each instance gives and takes in swaps.
    give: Vec<Steps>,
    take: Vec<Steps>,
    /// With a fixed cost per swap: per `(donor, receiver, resource)` the steps swapped and
    /// the pair's indicator.
    pairs: HashMap<(usize, usize, Resource), (Variable, Variable)>,
    index: HashMap<Variable, usize>,
    residents: Vec<Vec<usize>>,
    /// For every host, the instances that may migrate onto it, with the candidate's position.
    arrivals: Vec<Vec<(usize, usize)>>,
    /// Per pool with a target: warm instances started and stopped, the change indicator
    /// and the mismatch cost.
    pools: Vec<Option<PoolVars>>,
    /// Per host and resource, what warm pool instances use now.
    pool_use: Vec<PerResource<f64>>,
    /// Per host and resource, the most room an arrival could find: everyone there shrunk
    /// as far as the program lets them, and every warm pool instance with a target stopped.
    room: Vec<PerResource<f64>>,
    /// What the host's rows allow each resident's moves (see [`caps`](capacity::caps)).
    caps: Caps,
    /// The later intervals of a look-ahead.
    later: ahead::Later,
}

/// The whole program for `p` (its LP relaxation if `relaxed`), and handles to its columns.
pub(super) fn build(p: &Problem, relaxed: bool) -> (Program, Decisions) {
    let mut m = Program {
        relaxed,
        ..Program::default()
    };
    let n = p.instances.len();
    let mut d = Decisions {
        up: Vec::with_capacity(n),
        down: Vec::with_capacity(n),
        mismatch: Vec::with_capacity(n),
        span: Vec::with_capacity(n),
        over: capacity::over_capacity(p),
        tight: p.tight_hosts(),
        offset: 0.0,
        fixed: None,
        change: Vec::with_capacity(n),
        grows: vec![Steps::default(); n],
        shrinks: vec![Steps::default(); n],
        migrate: Vec::with_capacity(n),
        land: Vec::with_capacity(n),
        give: vec![Steps::default(); n],
        take: vec![Steps::default(); n],
        pairs: HashMap::new(),
        index: HashMap::new(),
        residents: p.residents(),
        arrivals: vec![Vec::new(); p.hosts.len()],
        pools: Vec::with_capacity(p.pools.len()),
        pool_use: p.pool_use(),
        room: Vec::new(),
        caps: Caps::default(),
        later: ahead::Later::new(p.instances.first().map_or(0, |i| i.ahead.len()), n),
    };
    d.room = capacity::most_room(p, &d);
    d.caps = capacity::caps(p, &d);
    for k in 0..p.pools.len() {
        pool::add_pool(p, &mut m, &mut d, k);
    }
    for i in 0..n {
        instance::add_instance(p, &mut m, &mut d, i);
        for (k, &h) in p.instances[i].candidates.iter().enumerate() {
            d.arrivals[h].push((i, k));
        }
    }
    for h in 0..p.hosts.len() {
        for r in Resource::ALL {
            capacity::add_capacity(p, &mut m, &d, h, r);
            swap::add_swaps(p, &mut m, &mut d, h, r);
        }
    }
    swap::add_credits(p, &mut m, &d);
    budget::add_budgets(p, &mut m, &d);
    ahead::add(p, &mut m, &mut d);
    let fixed = m.var("fixed_cost".into(), variable().min(d.offset).max(d.offset));
    m.objective += fixed;
    d.fixed = Some(fixed);
    d.index = std::mem::take(&mut m.index);
    (m, d)
}

pub(super) fn read_solution(p: &Problem, d: &Decisions, v: &[f64]) -> Solution {
    let val = |x: Variable| v[d.index[&x]].round();
    let alloc: Vec<PerResource<f64>> = (0..p.instances.len())
        .map(|i| {
            let landed = d.migrate[i].iter().position(|&(_, x)| val(x) > 0.5);
            PerResource::from_fn(|r| {
                let steps = match (landed, d.up[i][r], d.down[i][r]) {
                    (Some(k), ..) => d.land[i][k][r].map_or(0.0, |(lu, ld)| val(lu) - val(ld)),
                    (None, Some(u), Some(w)) => val(u) - val(w),
                    _ => 0.0,
                };
                round6(p.instances[i].current[r] + p.policy.granularity[r] * steps)
            })
        })
        .collect();
    let host = (0..p.instances.len())
        .map(|i| {
            d.migrate[i]
                .iter()
                .find(|&&(_, x)| val(x) > 0.5)
                .map_or(p.instances[i].host, |&(h, _)| h)
        })
        .collect();
    let steps_of = |x: Option<Variable>| x.map_or(0.0, val);
    let mut swaps = Vec::new();
    if d.pairs.is_empty() {
        for residents in &d.residents {
            for r in Resource::ALL {
                let given: Vec<(usize, f64)> = residents
                    .iter()
                    .map(|&i| (i, steps_of(d.give[i][r])))
                    .collect();
                let taken: Vec<(usize, f64)> = residents
                    .iter()
                    .map(|&i| (i, steps_of(d.take[i][r])))
                    .collect();
                swaps.extend(swap::pair_swaps(p, r, given, taken));
            }
        }
    } else {
        let mut flows: Vec<(usize, Resource, usize, usize, f64)> = d
            .pairs
            .iter()
            .map(|(&(i, j, r), &(f, _))| (p.instances[i].host, r, j, i, val(f)))
            .filter(|&(.., steps)| steps > 0.5)
            .collect();
        // In the same order as `pair_swaps`: by host, resource and receiver.
        flows.sort_by_key(|&(h, r, receiver, donor, _)| (h, r, receiver, donor));
        for (_, r, receiver, donor, steps) in flows {
            let amount = round6(steps * p.policy.granularity[r]);
            swaps.push(Swap {
                donor,
                receiver,
                resource: r,
                amount,
                credits: p.swap_price(r, amount),
            });
        }
    }
    let warm = p
        .pools
        .iter()
        .zip(&d.pools)
        .map(|(pool, vars)| match vars {
            Some(v) => (f64::from(pool.warm) + val(v.start) - val(v.stop)) as u32,
            None => pool.warm,
        })
        .collect();
    Solution {
        ahead: ahead::read(p, d, val, &alloc),
        alloc,
        host,
        swaps,
        warm,
    }
}

/// Column values that reproduce `s` (a greedy plan) in this program, for a warm start.
pub(super) fn start_values(p: &Problem, d: &Decisions, s: &Solution, n: usize) -> Vec<f64> {
    let mut v = vec![0.0; n];
    let mut set = |x: Variable, value: f64| v[d.index[&x]] = value;
    if let Some(fixed) = d.fixed {
        set(fixed, d.offset);
    }
    for (i, inst) in p.instances.iter().enumerate() {
        let moved = s.host[i] != inst.host;
        for r in Resource::ALL {
            let new = s.alloc[i][r];
            if let (Some(u), Some(w), false) = (d.up[i][r], d.down[i][r], moved) {
                let delta = ((new - inst.current[r]) / p.policy.granularity[r]).round();
                set(u, delta.max(0.0));
                set(w, (-delta).max(0.0));
                if let (Some(gu), Some(gd)) = (d.grows[i][r], d.shrinks[i][r]) {
                    set(gu, f64::from(u8::from(delta > 0.0)));
                    set(gd, f64::from(u8::from(delta < 0.0)));
                }
            }
            if let Some(x) = d.mismatch[i][r] {
                set(x, p.mismatch_cost(i, r, new));
            }
        }
        if let Some(z) = d.change[i] {
            set(z, f64::from(u8::from(p.changes(s, i))));
        }
        for (k, &(h, x)) in d.migrate[i].iter().enumerate() {
            if s.host[i] != h {
                continue;
            }
            set(x, 1.0);
            for r in Resource::ALL {
                if let Some((lu, ld)) = d.land[i][k][r] {
                    let delta =
                        ((s.alloc[i][r] - inst.current[r]) / p.policy.granularity[r]).round();
                    set(lu, delta.max(0.0));
                    set(ld, (-delta).max(0.0));
                }
            }
        }
    }
    for (k, vars) in d.pools.iter().enumerate() {
        let Some(pv) = vars else { continue };
        let (now, new) = (p.pools[k].warm, s.warm[k]);
        v[d.index[&pv.start]] = f64::from(new.saturating_sub(now));
        v[d.index[&pv.stop]] = f64::from(now.saturating_sub(new));
        v[d.index[&pv.change]] = f64::from(u8::from(new != now));
        v[d.index[&pv.mismatch]] = p.pool_cost(k, new);
    }
    for sw in &s.swaps {
        let steps = (sw.amount / p.policy.granularity[sw.resource]).round();
        let sides = [
            d.give[sw.donor][sw.resource],
            d.take[sw.receiver][sw.resource],
        ];
        for x in sides.into_iter().flatten() {
            v[d.index[&x]] += steps;
        }
        if let Some(&(f, y)) = d.pairs.get(&(sw.donor, sw.receiver, sw.resource)) {
            v[d.index[&f]] += steps;
            v[d.index[&y]] = 1.0;
        }
    }
    ahead::start(p, d, s, &mut v);
    v
}

#[cfg(test)]
pub(super) mod tests {
    //! Fixtures the families' tests share (and `host`, the rescue's tests too): a small problem, and its program read by name.

    use super::{build, read_solution, start_values, Decisions, Program};
    use crate::policy::Policy;
    use crate::problem::{HostSpec, InstanceSpec, PoolSpec, Problem};
    use crate::resource::PerResource;
    use good_lp::{IntoAffineExpression, Variable};
    use std::collections::{BTreeMap, HashMap};

    /// One host of `cap` cores; per instance its cores now, credits, and the CPU forecast of
    /// each interval (the first is this one). Memory and network are not forecast.
    pub(super) fn problem(cap: f64, instances: &[(f64, f64, [f64; 4])]) -> Problem {
        let mut policy = Policy::default();
        policy.disruption.max_changes_percent = 100.0;
        policy.solver.relative_gap = 0.0;
        let cpu = |cpu: f64| PerResource {
            cpu,
            mem: 1024.0,
            net: 100.0,
        };
        let instances = instances
            .iter()
            .enumerate()
            .map(|(k, &(now, credits, slices))| InstanceSpec {
                id: format!("vm-{k}"),
                host: 0,
                current: cpu(now),
                min: cpu(0.25),
                max: cpu(4.0),
                demand: PerResource {
                    cpu: Some(slices[0]),
                    mem: None,
                    net: None,
                },
                floor: PerResource::default(),
                ceiling: Default::default(),
                credits,
                credit_cap: 1000.0,
                // Baseline one core: no burn at or below it.
                earn_rate: 60.0,
                frozen: false,
                held: Default::default(),
                cooling: 0,
                ahead: slices[1..]
                    .iter()
                    .map(|&c| PerResource {
                        cpu: Some(c),
                        mem: None,
                        net: None,
                    })
                    .collect(),
                candidates: Vec::new(),
            })
            .collect();
        Problem {
            hosts: vec![host("h0", cap)],
            instances,
            pools: Vec::new(),
            policy,
        }
    }

    /// The same problem planned one interval at a time: the first interval's forecast only.
    pub(super) fn myopic(mut p: Problem) -> Problem {
        for inst in &mut p.instances {
            inst.ahead.clear();
        }
        p
    }

    /// [`problem`] for this interval alone, each instance's forecast one number.
    pub(super) fn this_interval(cap: f64, instances: &[(f64, f64, f64)]) -> Problem {
        let each: Vec<(f64, f64, [f64; 4])> = instances
            .iter()
            .map(|&(now, credits, demand)| (now, credits, [demand; 4]))
            .collect();
        myopic(problem(cap, &each))
    }

    /// A host `id` in the same cell as [`problem`]'s, with `cpu` cores and the same memory
    /// and network.
    pub(crate) fn host(id: &str, cpu: f64) -> HostSpec {
        HostSpec {
            id: id.into(),
            cell: "c0".into(),
            capacity: PerResource {
                cpu,
                mem: 8192.0,
                net: 1000.0,
            },
        }
    }

    /// A pool `id` on host 0 of one-core instances, `warm` of `total` warm.
    pub(super) fn pool(id: &str, warm: u32, total: u32, target: Option<u32>) -> PoolSpec {
        PoolSpec {
            id: id.into(),
            host: 0,
            size: PerResource {
                cpu: 1.0,
                mem: 512.0,
                net: 10.0,
            },
            warm,
            total,
            target,
        }
    }

    /// Coefficients by column name, as [`Built::row`] gives them.
    pub(super) fn terms(terms: &[(&str, f64)]) -> BTreeMap<String, f64> {
        terms.iter().map(|&(n, c)| (n.to_owned(), c)).collect()
    }

    /// The program built for a problem, its columns and rows looked up by name.
    pub(super) struct Built {
        pub(super) program: Program,
        pub(super) decisions: Decisions,
        columns: HashMap<String, Variable>,
    }

    impl Built {
        /// The integer program for `p`.
        pub(super) fn new(p: &Problem) -> Built {
            let (program, decisions) = build(p, false);
            let columns = decisions
                .index
                .iter()
                .map(|(&v, &k)| (program.names[k].clone(), v))
                .collect();
            Built {
                program,
                decisions,
                columns,
            }
        }

        /// Column `name`'s bounds `(min, max)`, or `None` if the program has no such column.
        pub(super) fn bounds(&self, name: &str) -> Option<(f64, f64)> {
            let v = self.columns.get(name)?;
            let (_, def) = self
                .program
                .vars
                .iter_variables_with_def()
                .find(|(x, _)| x == v)?;
            Some((def.get_min(), def.get_max()))
        }

        /// Row `name` as `expression <= 0` (`== 0` for an equality): its coefficients by
        /// column name, and its constant.
        pub(super) fn row(&self, name: &str) -> (BTreeMap<String, f64>, f64) {
            let e = self.expression(name);
            let names: HashMap<Variable, &String> =
                self.columns.iter().map(|(n, &v)| (v, n)).collect();
            let coefficients = e
                .linear_coefficients()
                .map(|(v, c)| (names[&v].clone(), c))
                .collect();
            (coefficients, e.constant())
        }

        /// Row `name`'s expression with the named columns `at` these values, all others 0.
        pub(super) fn value(&self, name: &str, at: &[(&str, f64)]) -> f64 {
            let e = self.expression(name);
            let mut values: HashMap<Variable, f64> =
                e.linear_coefficients().map(|(v, _)| (v, 0.0)).collect();
            values.extend(at.iter().map(|&(n, x)| (self.columns[n], x)));
            e.eval_with(&values)
        }

        /// Names of the rows whose name starts with `prefix`.
        pub(super) fn rows(&self, prefix: &str) -> Vec<&str> {
            let rows = self.program.rows.iter().map(|(n, _)| n.as_str());
            rows.filter(|n| n.starts_with(prefix)).collect()
        }

        fn expression(&self, name: &str) -> &good_lp::Expression {
            let row = self.program.rows.iter().find(|(n, _)| n == name);
            row.unwrap_or_else(|| panic!("no row {name}"))
                .1
                .expression()
        }
    }

    #[test]
    fn a_start_reads_back_as_the_plan_it_came_from() {
        // A swap, a pool started and one stopped: every kind of column the start sets.
        // vm-0 grows by 3.5 cores, more than the stopped pool frees.
        let mut p = this_interval(8.5, &[(0.5, 60.0, 4.0), (5.0, 0.0, 1.0)]);
        p.instances[1].max.cpu = 8.0;
        p.pools = vec![pool("up", 0, 2, Some(2)), pool("down", 3, 3, Some(0))];
        let (s, _) = crate::solve::mip::solve(&p, None).unwrap();
        assert!(!s.swaps.is_empty() && s.warm == [2, 0], "{s:?}");
        let Built {
            program,
            decisions: d,
            ..
        } = Built::new(&p);
        let v = start_values(&p, &d, &s, program.names.len());
        assert_eq!(read_solution(&p, &d, &v), s);
    }
}
