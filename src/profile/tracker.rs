//! One pool's predicted job mix, kept current online as time passes and users act.
//!
//! A user's share of the mix ([`demand::user_part`]) changes when they act (an arrival
//! or a release) and otherwise only through the time since their last event, read off
//! log-binned histograms, so it barely moves until that time has grown by a few
//! percent. The tracker recomputes a user when they act or when that time is due;
//! everyone when the pooled histograms (which users with few observations read) have
//! grown by as much; never by time while they are quiet (no gap behind their chance
//! is that long); and forgets them once they have nothing left to bring (no job
//! running and the session over). A review then costs the users that are due, not
//! every user of the last hours: the Azure VM log keeps thousands of tenant batches
//! with a VM running for days. The idle count decided on is kept until the mix moves
//! by more than 1%.

use super::demand::{self, Outlook};
use super::{Profiles, UserProfile, SESSION_GAP};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A user is due again when the time since their last event has grown by this share.
const DRIFT: f64 = 0.05;
/// The users' sum is rebuilt from their parts this often (seconds), against rounding.
const REBUILD: f64 = 3600.0;

/// The mix of jobs expected in `(now, now + horizon]`, kept for one pool.
#[derive(Debug, Clone)]
pub struct Tracker {
    horizon: f64,
    review: f64,
    /// Users between sessions, recomputed at each review (its rate follows the hour).
    sessions: (Option<f64>, BTreeMap<u32, f64>),
    /// User names by the tracker's own index, and back.
    names: Vec<String>,
    ids: HashMap<String, usize>,
    /// Each tracked user's part and when it is due.
    users: Vec<Option<Tracked>>,
    due: BTreeSet<(i64, usize)>,
    /// Users who acted since they were last computed.
    touched: BTreeSet<usize>,
    /// Whether the users active in the profiles were taken on.
    started: bool,
    /// The pooled histograms' count when every user was last recomputed: users with
    /// few observations of their own read those.
    pooled: u64,
    parts: BTreeMap<u32, f64>,
    rebuilt: f64,
    total: BTreeMap<u32, f64>,
    /// `compound(total)`, once asked for.
    outlook: Option<Outlook>,
    /// The last mix decided on and its idle count.
    decided: Option<(BTreeMap<u32, f64>, u32)>,
    /// How the mix's jobs come: its session starts' share, in batches.
    count: demand::Count,
}

/// A tracked user's expected jobs by instances taken, and when they are due again
/// (milliseconds, the key in `due`; `i64::MAX`: not by time).
#[derive(Debug, Clone)]
struct Tracked {
    mix: Vec<(u32, f64)>,
    due: i64,
}

impl Tracker {
    /// Predicts the `horizon` seconds after each moment, refreshing the session rate
    /// every `review` seconds.
    pub fn new(horizon: f64, review: f64) -> Tracker {
        Tracker {
            horizon,
            review,
            sessions: (None, BTreeMap::new()),
            names: Vec::new(),
            ids: HashMap::new(),
            users: Vec::new(),
            due: BTreeSet::new(),
            touched: BTreeSet::new(),
            started: false,
            pooled: 0,
            parts: BTreeMap::new(),
            rebuilt: f64::NEG_INFINITY,
            total: BTreeMap::new(),
            outlook: None,
            decided: None,
            count: demand::Count::default(),
        }
    }

    /// `user` arrived or released: their part is recomputed at the next look.
    pub fn touch(&mut self, user: &str) {
        let id = match self.ids.get(user) {
            Some(&id) => id,
            None => {
                let id = self.names.len();
                self.names.push(user.to_owned());
                self.ids.insert(user.to_owned(), id);
                self.users.push(None);
                id
            }
        };
        self.touched.insert(id);
    }

    /// The expected jobs by instances taken in `(now, now + horizon]` (Unix seconds).
    pub fn mix(&mut self, p: &Profiles, now: f64) -> &BTreeMap<u32, f64> {
        if !self.started {
            self.started = true;
            for name in &p.active {
                self.touch(name);
            }
        }
        let mut redo = std::mem::take(&mut self.touched);
        let pooled = p.while_running.total() + p.ran_out.total() + p.think.total();
        if pooled as f64 > (1.0 + DRIFT) * self.pooled as f64 {
            self.pooled = pooled;
            redo.extend((0..self.users.len()).filter(|&id| self.users[id].is_some()));
        }
        let ms = millis(now);
        while self.due.first().is_some_and(|&(at, _)| at <= ms) {
            let (_, id) = self.due.pop_first().expect("a first entry");
            redo.insert(id);
        }
        for id in redo {
            if let Some(old) = self.users[id].take() {
                demand::add(&mut self.parts, &old.mix, -1.0);
                self.due.remove(&(old.due, id));
            }
            let Some(u) = p.users.get(&self.names[id]) else {
                continue;
            };
            let Some(part) = demand::user_part(p, u, now, self.horizon) else {
                continue;
            };
            demand::add(&mut self.parts, &part.mix, 1.0);
            let due = self.due_at(u, now, part.quiet);
            if due < i64::MAX {
                self.due.insert((due, id));
            }
            self.users[id] = Some(Tracked { mix: part.mix, due });
        }
        if now >= self.rebuilt + REBUILD {
            self.rebuilt = now;
            self.parts.clear();
            for user in self.users.iter().flatten() {
                demand::add(&mut self.parts, &user.mix, 1.0);
            }
        }
        if self.sessions.0.is_none_or(|at| now >= at + self.review) {
            self.sessions = (Some(now), demand::session_mix(p, now, self.horizon));
        }
        self.total = merge(&self.sessions.1, &self.parts);
        self.count = demand::Count {
            sessions: self.sessions.1.values().sum(),
            batch: demand::session_batch(p),
        };
        self.outlook = None;
        &self.total
    }

    /// The distribution of the instances the mix last looked at asks for.
    pub fn outlook(&mut self) -> &Outlook {
        self.outlook
            .get_or_insert_with(|| demand::compound(&self.total))
    }

    /// When `u`'s part is due again (milliseconds; `i64::MAX`: not by time). A quiet
    /// user is due when a running job of theirs ends or their session does.
    fn due_at(&self, u: &UserProfile, now: f64, quiet: bool) -> i64 {
        let (age, until) = if u.running_at(now) {
            let next_release = u.running.iter().copied().filter(|&r| r > now);
            let since = demand::answering(u, now).unwrap_or(u.last);
            (now - since, next_release.fold(f64::INFINITY, f64::min))
        } else {
            let end = u.last_activity(now);
            (now - end, end + SESSION_GAP + 1e-3)
        };
        let next = if quiet {
            until
        } else {
            (now + (DRIFT * age).max(self.review)).min(until)
        };
        if next.is_finite() {
            millis(next.max(now))
        } else {
            i64::MAX
        }
    }

    /// The idle count that minimises expected waiting jobs plus `price` per idle
    /// instance for the mix last looked at ([`demand::cheapest_idle`]); decided again
    /// only when the mix moved by more than 1% of its jobs (or 0.001).
    pub fn cheapest_idle(&mut self, price: f64) -> u32 {
        if let Some((seen, idle)) = &self.decided {
            if !moved(&self.total, seen) {
                return *idle;
            }
        }
        let total = &self.total;
        let outlook = self.outlook.get_or_insert_with(|| demand::compound(total));
        let idle = demand::cheapest_idle(total, outlook, price, self.count);
        self.decided = Some((total.clone(), idle));
        idle
    }
}

/// Whether `mix` moved from `seen` by more than 1% of its jobs (or 0.001).
fn moved(mix: &BTreeMap<u32, f64>, seen: &BTreeMap<u32, f64>) -> bool {
    let lambda: f64 = mix.values().sum();
    let changed = mix
        .iter()
        .map(|(n, w)| (w - seen.get(n).unwrap_or(&0.0)).abs());
    let gone = seen
        .iter()
        .filter(|(n, _)| !mix.contains_key(n))
        .map(|(_, w)| w.abs());
    changed.chain(gone).sum::<f64>() > 0.01 * lambda + 1e-3
}

/// The sum of two mixes, built in one pass over both (they are sorted).
fn merge(a: &BTreeMap<u32, f64>, b: &BTreeMap<u32, f64>) -> BTreeMap<u32, f64> {
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    let mut out = Vec::new();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(&(&n, &x)), Some(&(&m, &y))) => match n.cmp(&m) {
                std::cmp::Ordering::Less => a.next().map(|_| (n, x)),
                std::cmp::Ordering::Greater => b.next().map(|_| (m, y)),
                std::cmp::Ordering::Equal => a.next().and(b.next()).map(|_| (n, x + y)),
            },
            (Some(&(&n, &x)), None) => a.next().map(|_| (n, x)),
            (None, Some(&(&m, &y))) => b.next().map(|_| (m, y)),
            (None, None) => None,
        };
        match next {
            Some(entry) => out.push(entry),
            None => break,
        }
    }
    out.into_iter().collect()
}

/// Unix seconds as whole milliseconds (the due times' order).
fn millis(t: f64) -> i64 {
    (t * 1000.0).ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Looked at once a review, the tracked mix stays within 5% (and 0.01 jobs) of the one
    /// computed from scratch for every user, through arrivals, releases, sessions
    /// ending, quiet hours and a job running for days (whose owner alone takes four
    /// instances), after the first hundred events, while the pooled histograms jump.
    #[test]
    fn the_tracked_mix_follows_the_mix_from_scratch() {
        let mut p = Profiles::default();
        let mut tracker = Tracker::new(120.0, 60.0);
        let users = ["ann", "bob", "cy", "dee", "eve"];
        let mut t = 1_700_000_000.0;
        let (mut worst, mut looks): (f64, u32) = (0.0, 0);
        for k in 0..6000u32 {
            let user = users[(k * 7 % 13 % 5) as usize];
            if k % 1500 == 150 {
                // A long job: its owner's chances move with hours since it started.
                p.arrive("zed", "long", t, 4);
                tracker.touch("zed");
            } else if k % 5 == 0 {
                p.arrive(user, "prog", t, 1 + k % 3);
                tracker.touch(user);
            } else if k % 5 == 2 {
                p.finish(user, "prog", t, 30.0, 1 + k % 3, None);
                tracker.touch(user);
            }
            if k % 3 == 0 {
                let tracked = tracker.mix(&p, t).get(&4).copied().unwrap_or(0.0);
                let scratch = demand::job_mix(&p, t, 120.0)
                    .get(&4)
                    .copied()
                    .unwrap_or(0.0);
                if k >= 100 {
                    let e = (tracked - scratch).abs() / (0.05 * scratch + 0.01);
                    worst = worst.max(e);
                    looks += 1;
                }
            }
            t += if k % 600 < 400 { 20.0 } else { 90.0 };
        }
        assert!(
            worst <= 1.0,
            "error {worst} × (5% + 0.01 jobs) over {looks} looks"
        );
        assert!(tracker.users.iter().any(Option::is_some));
    }

    /// A user whose session ended leaves the tracker and their part the mix; their
    /// next arrival brings them back.
    #[test]
    fn a_user_between_sessions_is_forgotten_until_they_act() {
        let mut p = Profiles::default();
        let mut tracker = Tracker::new(120.0, 60.0);
        let t = 1_700_000_000.0;
        for k in 0..6 {
            let at = t + f64::from(k) * 100.0;
            p.arrive("ann", "prog", at, 2);
            p.finish("ann", "prog", at + 10.0, 10.0, 2, None);
        }
        tracker.touch("ann");
        assert!(tracker.mix(&p, t + 520.0).get(&2).is_some_and(|&w| w > 0.0));
        tracker.mix(&p, t + 520.0 + SESSION_GAP + 60.0);
        assert!(tracker.users.iter().all(Option::is_none) && tracker.due.is_empty());
        p.arrive("ann", "prog", t + 9000.0, 2);
        tracker.touch("ann");
        tracker.mix(&p, t + 9000.0);
        assert!(tracker.users[tracker.ids["ann"]].is_some());
    }
}
