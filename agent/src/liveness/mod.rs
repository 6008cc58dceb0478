//! Node liveness: the gateway probes every node it peers with and moves traffic off a node that
//! dies, is reported NotReady or is being drained, without waiting for BGP's hold timer and
//! graceful restart.
//!
//! ```text
//!  probe task ── round every interval_ms ──▶ Liveness::observe ─┐
//!  accepted report ── Ready / cordoned / deleting ─▶ ::signals ─┤
//!                                                               ▼
//!                               tracker (pure) ──▶ verdicts ──▶ overlay (shutdown / drained)
//!                                                               │ changed?
//!                                                               ▼
//!           fast path: bgpd's vty socket, only the overlay's lines ──▶ events, SQLite, metrics
//!           then the reconciler verifies FRR runs base + overlay (and applies it when not)
//! ```
//!
//! [`tracker`] holds the rules, [`probe`] sends the probes; this module keeps the state the
//! daemon shares and turns verdicts into an [`Overlay`]. The overlay is never a generation.

pub mod probe;
pub mod tracker;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use bgplb_frr::overlay::Overlay;
use bgplb_site::LivenessSettings;

use crate::error::Error;
use crate::store::Store;

use tracker::{Key, Node, Signals, Tracker};
pub use tracker::{State, Transition};

/// Everything the daemon knows about node liveness.
pub struct Liveness {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    settings: LivenessSettings,
    tracker: Tracker,
    /// Every node's addresses (the sessions the gateway has with it).
    addresses: BTreeMap<Key, Vec<IpAddr>>,
    /// The overlay FRR was last given.
    overlay: Overlay,
}

/// What one evaluation changed.
#[derive(Debug, Clone)]
pub struct Step {
    pub transitions: Vec<Transition>,
    pub before: Overlay,
    pub after: Overlay,
    /// The nodes to persist.
    pub snapshot: Vec<(Key, Node)>,
}

/// One node, for status.
#[derive(Debug, Clone)]
pub struct View {
    pub cluster: String,
    pub node: String,
    pub addresses: Vec<IpAddr>,
    pub state: State,
    pub reason: String,
    pub since_unix_ms: u64,
    pub transitions: u64,
    pub rtt: Option<Duration>,
    pub answered: bool,
    pub suppressed: bool,
}

/// A time in milliseconds since the epoch, RFC 3339 UTC.
pub fn format_unix_ms(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.replace_nanosecond(0)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The stored liveness as the checks use it (the CLI, outside the daemon).
pub fn facts_from_store(
    store: &Store,
    settings: &LivenessSettings,
) -> Result<crate::netcheck::LivenessFacts, Error> {
    let (nodes, overlay) = load(store)?;
    let l = Liveness::restore(settings.clone(), nodes, overlay.clone());
    Ok(crate::netcheck::LivenessFacts {
        nodes: l.view(),
        overlay,
        probing: settings.enabled,
    })
}

/// The persisted liveness: every node and the overlay FRR was last given. Rows that no longer
/// parse (an older agent's) are skipped: those nodes start up, unknown to the probes.
pub fn load(store: &Store) -> Result<(Vec<(Key, Node)>, Overlay), Error> {
    let (rows, overlay) = store.liveness()?;
    let nodes = rows
        .into_iter()
        .filter_map(|(c, n, body)| serde_json::from_str(&body).ok().map(|node| ((c, n), node)))
        .collect();
    let overlay = overlay
        .and_then(|o| serde_json::from_str(&o).ok())
        .unwrap_or_default();
    Ok((nodes, overlay))
}

/// The overlay FRR was last given (what `apply` and `rollback` keep on top of a generation).
pub fn stored_overlay(store: &Store) -> Result<Overlay, Error> {
    Ok(load(store)?.1)
}

/// Persists every node and the overlay.
pub fn save(store: &mut Store, snapshot: &[(Key, Node)], overlay: &Overlay) -> Result<(), Error> {
    let rows: Vec<(String, String, String)> = snapshot
        .iter()
        .map(|((c, n), node)| {
            (
                c.clone(),
                n.clone(),
                serde_json::to_string(node).expect("liveness serializes"),
            )
        })
        .collect();
    store.save_liveness(
        &rows,
        &serde_json::to_string(overlay).expect("overlay serializes"),
    )
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Liveness {
    /// Starts from what was persisted (a restarted agent keeps dead nodes down).
    pub fn restore(
        settings: LivenessSettings,
        saved: Vec<(Key, Node)>,
        overlay: Overlay,
    ) -> Liveness {
        let tracker = Tracker {
            nodes: saved.into_iter().collect(),
        };
        Liveness {
            inner: Mutex::new(Inner {
                settings,
                tracker,
                addresses: BTreeMap::new(),
                overlay,
            }),
        }
    }

    pub fn settings(&self) -> LivenessSettings {
        lock(&self.inner).settings.clone()
    }

    /// New settings (the site file changed); the probe task picks them up with its next round.
    pub fn set_settings(&self, settings: LivenessSettings) {
        lock(&self.inner).settings = settings;
    }

    /// The node set the gateway peers with (from the reports or the site's static nodes).
    pub fn set_nodes(&self, now: u64, nodes: BTreeMap<Key, Vec<IpAddr>>) {
        let mut inner = lock(&self.inner);
        let keys: Vec<Key> = nodes.keys().cloned().collect();
        inner.tracker.retain(now, &keys);
        inner.addresses = nodes;
    }

    /// The companion's view of a cluster's nodes.
    pub fn signals(&self, now: u64, cluster: &str, nodes: &[bgplb_proto::Node]) {
        let mut inner = lock(&self.inner);
        for n in nodes {
            let key = (cluster.to_string(), n.name.clone());
            if let Some(node) = inner.tracker.nodes.get_mut(&key) {
                node.signal(
                    now,
                    Signals {
                        ready: n.ready,
                        unschedulable: n.unschedulable,
                        deleting: n.deleting,
                    },
                );
            }
        }
    }

    /// A node sent `received` routes (refused ones included), more than `limit`: shut it for
    /// `minutes`. FRR's own maximum-prefix counts only accepted routes (see the render), so this
    /// is what keeps a node from filling the gateway's memory with routes the policy refuses.
    pub fn flooded(
        &self,
        now: u64,
        cluster: &str,
        node: &str,
        received: u64,
        limit: u32,
        minutes: u64,
    ) {
        let mut inner = lock(&self.inner);
        if let Some(n) = inner
            .tracker
            .nodes
            .get_mut(&(cluster.to_string(), node.to_string()))
        {
            n.flood = Some(tracker::Flood {
                received,
                limit,
                until: now + minutes.max(1) * 60_000,
            });
        }
    }

    /// Every address to probe.
    pub fn targets(&self) -> Vec<IpAddr> {
        let inner = lock(&self.inner);
        let set: BTreeSet<IpAddr> = inner.addresses.values().flatten().copied().collect();
        set.into_iter().collect()
    }

    /// One probe round's answers. A node answered when any of its addresses did. Returns whether
    /// some node answered for the first time (worth persisting: from then on probes may take it
    /// down, also after a restart).
    pub fn observe(&self, now: u64, answers: &BTreeMap<IpAddr, Duration>) -> bool {
        let mut inner = lock(&self.inner);
        let Inner {
            tracker,
            addresses,
            settings,
            ..
        } = &mut *inner;
        let mut first = false;
        for (key, node) in tracker.nodes.iter_mut() {
            let rtt = addresses
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|a| answers.get(a))
                .min()
                .map(|d| d.as_micros() as u64);
            first |= rtt.is_some() && !node.answered_ever;
            node.observe(now, rtt, settings);
        }
        first
    }

    /// Re-evaluates every verdict. `None` when nothing changed.
    pub fn step(&self, now: u64) -> Option<Step> {
        let mut inner = lock(&self.inner);
        let Inner {
            tracker, settings, ..
        } = &mut *inner;
        let transitions = tracker.step(now, settings);
        let after = overlay(&inner.tracker, &inner.addresses);
        if transitions.is_empty() && after == inner.overlay {
            return None;
        }
        let before = std::mem::replace(&mut inner.overlay, after.clone());
        Some(Step {
            transitions,
            before,
            after,
            snapshot: self.snapshot_locked(&inner),
        })
    }

    fn snapshot_locked(&self, inner: &Inner) -> Vec<(Key, Node)> {
        inner
            .tracker
            .nodes
            .iter()
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect()
    }

    /// Every node, for persisting.
    pub fn snapshot(&self) -> Vec<(Key, Node)> {
        let inner = lock(&self.inner);
        self.snapshot_locked(&inner)
    }

    /// The overlay FRR should run on top of the current generation.
    pub fn overlay(&self) -> Overlay {
        lock(&self.inner).overlay.clone()
    }

    pub fn state(&self, cluster: &str, node: &str) -> State {
        lock(&self.inner).tracker.state(cluster, node)
    }

    /// Every node, for status and metrics.
    pub fn view(&self) -> Vec<View> {
        let inner = lock(&self.inner);
        inner
            .tracker
            .nodes
            .iter()
            .map(|((cluster, node), n)| View {
                cluster: cluster.clone(),
                node: node.clone(),
                addresses: inner
                    .addresses
                    .get(&(cluster.clone(), node.clone()))
                    .cloned()
                    .unwrap_or_default(),
                state: n.verdict.state,
                reason: n.verdict.reason.clone(),
                since_unix_ms: n.since,
                transitions: n.transitions,
                rtt: n.rtt_us.map(Duration::from_micros),
                answered: n.answered_ever,
                suppressed: n.suppressed,
            })
            .collect()
    }
}

/// The overlay the verdicts call for: down nodes' addresses shut, drained nodes' de-preferred.
fn overlay(tracker: &Tracker, addresses: &BTreeMap<Key, Vec<IpAddr>>) -> Overlay {
    let mut o = Overlay::default();
    for (key, node) in &tracker.nodes {
        let addrs = addresses.get(key).into_iter().flatten().copied();
        match node.verdict.state {
            State::Up => {}
            State::Drained => o.drained.extend(addrs),
            State::Down => o.shutdown.extend(addrs),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> Key {
        ("home".into(), n.into())
    }

    #[test]
    fn a_dead_node_is_shut_on_every_address() {
        let s = LivenessSettings::default();
        let l = Liveness::restore(s.clone(), Vec::new(), Overlay::default());
        let a4: IpAddr = "172.29.51.11".parse().unwrap();
        let a6: IpAddr = "fd47:25e1:2f96:51::11".parse().unwrap();
        let b4: IpAddr = "172.29.51.12".parse().unwrap();
        l.set_nodes(
            0,
            [(key("k8s-1"), vec![a4, a6]), (key("k8s-2"), vec![b4])].into(),
        );
        assert_eq!(l.targets(), vec![a4, b4, a6]);
        let both: BTreeMap<IpAddr, Duration> = [
            (a6, Duration::from_micros(300)),
            (b4, Duration::from_micros(200)),
        ]
        .into();
        assert!(l.observe(50, &both), "first answers");
        assert!(l.step(50).is_none());
        let only_b: BTreeMap<IpAddr, Duration> = [(b4, Duration::from_micros(200))].into();
        let mut now = 50;
        let mut step = None;
        for _ in 0..s.misses {
            now += s.interval_ms;
            assert!(!l.observe(now, &only_b));
            step = step.or(l.step(now));
        }
        let step = step.expect("k8s-1 went down");
        assert_eq!(step.transitions.len(), 1);
        assert_eq!(step.after.shutdown, [a4, a6].into());
        assert!(step.before.is_empty());
        assert_eq!(l.state("home", "k8s-1"), State::Down);
        let view = l.view();
        assert_eq!(view[1].rtt, Some(Duration::from_micros(200)));
    }
}
