//! Node liveness as a pure state machine: probe results and the companion's signals in, one
//! verdict per node out (up, drained, down). Time is passed in (milliseconds since the Unix
//! epoch), so every rule is a plain unit test.
//!
//! ```text
//!  probes ──▶ misses ≥ N (node answered before) ──▶ probe-down ── answers for hold_down,
//!                                                     │          not suppressed ──▶ probe-up
//!                                                     └─ penalty += 1 (halves every half_life);
//!                                                        ≥ suppress: stays down until < reuse
//!  companion ─▶ deleting | NotReady ──▶ down      cordoned | Ready < settle ──▶ drained
//! ```
//!
//! A node that never answered a probe is never taken down by probes (a firewall that drops the
//! probes must not shut healthy sessions); status says so.

use std::collections::BTreeMap;

use bgplb_site::LivenessSettings;
use serde::{Deserialize, Serialize};

/// What the gateway does with a node's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Sessions up, routes used.
    Up,
    /// Sessions up, routes de-preferred (left out of the ECMP set while another node has them).
    Drained,
    /// Sessions shut down, routes (graceful-restart stale ones included) flushed.
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Drained => "drained",
            State::Down => "down",
        }
    }
}

/// A state with the reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub state: State,
    pub reason: String,
}

impl Verdict {
    fn up() -> Verdict {
        Verdict {
            state: State::Up,
            reason: String::new(),
        }
    }
}

/// What the companion last reported about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signals {
    pub ready: bool,
    pub unschedulable: bool,
    pub deleting: bool,
}

/// A node shut for flooding the gateway with routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flood {
    pub received: u64,
    pub limit: u32,
    pub until: u64,
}

/// Everything known about one node; persisted, so a restarted agent keeps a dead node down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The node answered at least one probe (since it was first seen).
    pub answered_ever: bool,
    /// Probes in a row without an answer.
    pub misses: u32,
    /// Probes decided the node is dead.
    pub probe_down: bool,
    /// While probe-down: since when the node answers without a miss.
    pub answering_since: Option<u64>,
    /// Flap damping: the penalty at `penalty_at` (decays with the half-life).
    pub penalty: f64,
    pub penalty_at: u64,
    /// Held down by damping until the penalty decays below the reuse limit.
    pub suppressed: bool,
    /// Round-trip time of the last answer, microseconds.
    pub rtt_us: Option<u64>,
    pub last_answer: Option<u64>,
    pub signals: Option<Signals>,
    /// When the companion's Ready turned true after being false (drained until `settle` passed).
    pub ready_since: Option<u64>,
    pub verdict: Verdict,
    /// Shut for sending more routes than `bgp.maximum_prefix` (refused ones included): until
    /// when, and how many it sent.
    #[serde(default)]
    pub flood: Option<Flood>,
    /// When the verdict last changed.
    pub since: u64,
    /// How many times the state changed since the node was first seen.
    pub transitions: u64,
}

impl Node {
    pub fn new(now: u64) -> Node {
        Node {
            answered_ever: false,
            misses: 0,
            probe_down: false,
            answering_since: None,
            penalty: 0.0,
            penalty_at: now,
            suppressed: false,
            rtt_us: None,
            last_answer: None,
            signals: None,
            ready_since: None,
            flood: None,
            verdict: Verdict::up(),
            since: now,
            transitions: 0,
        }
    }

    /// The damping penalty at `now`.
    pub fn penalty_at(&self, now: u64, s: &LivenessSettings) -> f64 {
        let half_life = (s.flap_half_life.max(1) * 1000) as f64;
        let elapsed = now.saturating_sub(self.penalty_at) as f64;
        self.penalty * 0.5f64.powf(elapsed / half_life)
    }

    /// One probe round: `answer` is the round-trip time when the node answered since the last
    /// round, `None` when it did not.
    pub fn observe(&mut self, now: u64, answer: Option<u64>, s: &LivenessSettings) {
        match answer {
            Some(rtt_us) => {
                self.answered_ever = true;
                self.misses = 0;
                self.rtt_us = Some(rtt_us);
                self.last_answer = Some(now);
                if self.probe_down {
                    let since = *self.answering_since.get_or_insert(now);
                    let penalty = self.penalty_at(now, s);
                    if self.suppressed && penalty < s.flap_reuse {
                        self.suppressed = false;
                    }
                    if !self.suppressed && now.saturating_sub(since) >= s.hold_down * 1000 {
                        self.probe_down = false;
                        self.answering_since = None;
                    }
                }
            }
            None => {
                self.misses = self.misses.saturating_add(1);
                self.answering_since = None;
                if !self.probe_down && self.answered_ever && self.misses >= s.misses {
                    self.probe_down = true;
                    self.penalty = self.penalty_at(now, s) + 1.0;
                    self.penalty_at = now;
                    if self.penalty >= s.flap_suppress {
                        self.suppressed = true;
                    }
                }
            }
        }
    }

    /// The companion's view of the node, from an accepted report.
    pub fn signal(&mut self, now: u64, signals: Signals) {
        let was_ready = self.signals.map(|s| s.ready);
        if signals.ready && was_ready == Some(false) {
            self.ready_since = Some(now);
        }
        if !signals.ready {
            self.ready_since = None;
        }
        self.signals = Some(signals);
    }

    /// The verdict the rules give at `now`.
    pub fn decide(&self, now: u64, s: &LivenessSettings) -> Verdict {
        let down = |reason: String| Verdict {
            state: State::Down,
            reason,
        };
        let drained = |reason: String| Verdict {
            state: State::Drained,
            reason,
        };
        if let Some(sig) = self.signals {
            if sig.deleting {
                return down("being deleted (reported by the companion)".into());
            }
            if !sig.ready {
                return down("NotReady (reported by the companion)".into());
            }
        }
        if let Some(f) = self.flood.filter(|f| now < f.until) {
            return down(format!(
                "sent {} routes, more than bgp.maximum_prefix ({}); shut until {}",
                f.received,
                f.limit,
                crate::liveness::format_unix_ms(f.until)
            ));
        }
        if self.probe_down && s.enabled {
            return down(if self.suppressed {
                "flapping: held down until the damping penalty decays".into()
            } else if self.answering_since.is_some() {
                format!("answering again, hold-down of {} s running", s.hold_down)
            } else {
                format!(
                    "no answer to {} probes in a row ({} ms apart)",
                    s.misses, s.interval_ms
                )
            });
        }
        if let Some(sig) = self.signals {
            if sig.unschedulable {
                return drained("cordoned (spec.unschedulable)".into());
            }
        }
        if let Some(since) = self.ready_since {
            if now.saturating_sub(since) < s.settle * 1000 {
                return drained(format!(
                    "Ready for less than the settle time ({} s)",
                    s.settle
                ));
            }
        }
        Verdict::up()
    }
}

/// The most FRR changes one node flapping for `seconds` can cause. Every down adds 1 to the
/// penalty, which never exceeds `flap_suppress + 1` (no down is counted while suppressed) and
/// decays at `ln 2 / half_life` per second; so downs ≤ (suppress + 1)·(1 + seconds·ln 2 /
/// half_life), and each down is followed by at most one up.
pub fn damping_bound(s: &LivenessSettings, seconds: u64) -> u64 {
    let ceiling = s.flap_suppress + 1.0;
    let decay = seconds as f64 * std::f64::consts::LN_2 / s.flap_half_life.max(1) as f64;
    2 * (ceiling * (1.0 + decay)).ceil() as u64
}

/// Identifies a node: cluster and node name.
pub type Key = (String, String);

/// A change of verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub cluster: String,
    pub node: String,
    pub from: State,
    pub to: State,
    pub reason: String,
}

/// Every node's liveness.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracker {
    pub nodes: BTreeMap<Key, Node>,
}

impl Tracker {
    /// Keeps exactly the nodes in `keys` (new ones start up, unknown to the probes).
    pub fn retain(&mut self, now: u64, keys: &[Key]) {
        self.nodes.retain(|k, _| keys.contains(k));
        for k in keys {
            self.nodes
                .entry(k.clone())
                .or_insert_with(|| Node::new(now));
        }
    }

    /// Re-evaluates every node; returns the verdicts that changed.
    pub fn step(&mut self, now: u64, s: &LivenessSettings) -> Vec<Transition> {
        let mut changed = Vec::new();
        for ((cluster, node), n) in self.nodes.iter_mut() {
            let verdict = n.decide(now, s);
            if verdict == n.verdict {
                continue;
            }
            if verdict.state != n.verdict.state {
                n.transitions += 1;
                changed.push(Transition {
                    cluster: cluster.clone(),
                    node: node.clone(),
                    from: n.verdict.state,
                    to: verdict.state,
                    reason: verdict.reason.clone(),
                });
                n.since = now;
            }
            n.verdict = verdict;
        }
        changed
    }

    /// The node's state (Up for unknown nodes).
    pub fn state(&self, cluster: &str, node: &str) -> State {
        self.nodes
            .get(&(cluster.to_string(), node.to_string()))
            .map_or(State::Up, |n| n.verdict.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LivenessSettings {
        LivenessSettings::default()
    }

    /// Drives one node with a probe pattern: `true` answered, one round per interval.
    fn drive(n: &mut Node, start: u64, pattern: &[bool], s: &LivenessSettings) -> u64 {
        let mut now = start;
        for answered in pattern {
            now += s.interval_ms;
            n.observe(now, answered.then_some(300), s);
        }
        now
    }

    #[test]
    fn a_node_that_stops_answering_goes_down_after_the_misses() {
        let s = settings();
        let mut n = Node::new(0);
        let now = drive(&mut n, 0, &[true; 5], &s);
        let now = drive(&mut n, now, &vec![false; s.misses as usize - 1], &s);
        assert_eq!(n.decide(now, &s).state, State::Up, "one miss short");
        let now = drive(&mut n, now, &[false], &s);
        let v = n.decide(now, &s);
        assert_eq!(v.state, State::Down);
        assert!(v.reason.contains("no answer"), "{}", v.reason);
    }

    #[test]
    fn a_node_that_never_answered_is_not_taken_down_by_probes() {
        let s = settings();
        let mut n = Node::new(0);
        let now = drive(&mut n, 0, &[false; 100], &s);
        assert_eq!(n.decide(now, &s).state, State::Up);
        assert!(!n.answered_ever);
    }

    #[test]
    fn coming_back_needs_the_hold_down_without_a_miss() {
        let s = settings();
        let mut n = Node::new(0);
        let now = drive(&mut n, 0, &[true], &s);
        let now = drive(&mut n, now, &vec![false; s.misses as usize], &s);
        assert_eq!(n.decide(now, &s).state, State::Down);
        let rounds = (s.hold_down * 1000 / s.interval_ms) as usize;
        // Answers for almost the hold-down, then one miss: the hold-down starts again.
        let now = drive(&mut n, now, &vec![true; rounds - 1], &s);
        let now = drive(&mut n, now, &[false], &s);
        let now = drive(&mut n, now, &vec![true; rounds], &s);
        assert_eq!(n.decide(now, &s).state, State::Down, "{:?}", n);
        let now = drive(&mut n, now, &[true], &s);
        assert_eq!(n.decide(now, &s).state, State::Up);
    }

    #[test]
    fn random_loss_below_the_miss_count_never_takes_a_node_down() {
        // 30% loss, deterministic pseudo-random sequence: runs of misses shorter than `misses`.
        let s = settings();
        let mut n = Node::new(0);
        let mut now = 0;
        let mut x: u32 = 12345;
        let mut downs = 0;
        for _ in 0..20 * 60 * 10 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let lost = (x >> 16) % 10 < 3;
            now += s.interval_ms;
            n.observe(now, (!lost).then_some(200), &s);
            if n.decide(now, &s).state == State::Down {
                downs += 1;
            }
        }
        assert_eq!(downs, 0);
    }

    #[test]
    fn flapping_is_damped_to_a_bounded_number_of_changes() {
        // Down for 1 s, up for 6 s (longer than the hold-down), for ten minutes.
        let s = settings();
        let mut t = Tracker::default();
        let key = ("home".to_string(), "k8s-1".to_string());
        t.retain(0, std::slice::from_ref(&key));
        let mut now = 0;
        let mut changes = 0;
        let rounds_down = (1000 / s.interval_ms) as usize;
        let rounds_up = (6000 / s.interval_ms) as usize;
        for _ in 0..(600 / 7) {
            for answered in
                std::iter::repeat_n(false, rounds_down).chain(std::iter::repeat_n(true, rounds_up))
            {
                now += s.interval_ms;
                t.nodes
                    .get_mut(&key)
                    .unwrap()
                    .observe(now, answered.then_some(100), &s);
                changes += t.step(now, &s).len();
            }
        }
        // Without damping this would be two changes per cycle (170).
        let bound = damping_bound(&s, 600);
        assert!(bound < 170, "the bound itself is below the undamped count");
        assert!(changes as u64 <= bound, "{changes} changes > bound {bound}");
        assert!(
            changes >= 2,
            "the node did go down and come back at least once"
        );
    }

    #[test]
    fn companion_signals_win_over_probes() {
        let s = settings();
        let mut n = Node::new(0);
        let now = drive(&mut n, 0, &[true; 3], &s);
        n.signal(
            now,
            Signals {
                ready: false,
                unschedulable: false,
                deleting: false,
            },
        );
        assert_eq!(n.decide(now, &s).state, State::Down);
        // Ready again: drained while it settles, then up.
        n.signal(
            now + 1000,
            Signals {
                ready: true,
                unschedulable: false,
                deleting: false,
            },
        );
        assert_eq!(n.decide(now + 1000, &s).state, State::Drained);
        assert_eq!(n.decide(now + 1000 + s.settle * 1000, &s).state, State::Up);
        // Cordoned: drained, whatever the probes say.
        n.signal(
            now + 2000,
            Signals {
                ready: true,
                unschedulable: true,
                deleting: false,
            },
        );
        let v = n.decide(now + 2000 + s.settle * 1000, &s);
        assert_eq!(
            (v.state, v.reason.as_str()),
            (State::Drained, "cordoned (spec.unschedulable)")
        );
        n.signal(
            now + 3000,
            Signals {
                ready: true,
                unschedulable: false,
                deleting: true,
            },
        );
        assert_eq!(n.decide(now + 3000, &s).state, State::Down);
    }

    #[test]
    fn a_first_report_of_ready_is_not_a_recovery() {
        let s = settings();
        let mut n = Node::new(0);
        n.signal(
            10,
            Signals {
                ready: true,
                unschedulable: false,
                deleting: false,
            },
        );
        assert_eq!(n.decide(10, &s).state, State::Up);
    }

    #[test]
    fn transitions_are_reported_once() {
        let s = settings();
        let mut t = Tracker::default();
        let key = ("home".to_string(), "k8s-2".to_string());
        t.retain(0, std::slice::from_ref(&key));
        let n = t.nodes.get_mut(&key).unwrap();
        let now = drive(n, 0, &[true], &s);
        let now = drive(n, now, &vec![false; s.misses as usize], &s);
        let first = t.step(now, &s);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].from, first[0].to), (State::Up, State::Down));
        assert!(t.step(now + 10, &s).is_empty());
        assert_eq!(t.state("home", "k8s-2"), State::Down);
    }
}
