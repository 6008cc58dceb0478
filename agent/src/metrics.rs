//! Prometheus metrics (text format on /metrics).
//!
//! Counters count events as they happen; the gauges about FRR and reports are refreshed when a
//! scrape arrives, from a fresh read, so they never describe a session that no longer exists.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    pub cluster: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabel {
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub cluster: String,
    pub node: String,
    pub family: String,
    pub neighbor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub cluster: String,
    pub pool: String,
}

pub struct Metrics {
    registry: Registry,
    pub generation: Gauge,
    pub generation_pinned: Gauge,
    pub applies: Family<ResultLabel, Counter>,
    pub reports: Family<ReportLabels, Counter>,
    pub report_age_seconds: Family<ClusterLabel, Gauge>,
    pub report_stale: Family<ClusterLabel, Gauge>,
    pub frr_up: Gauge,
    pub peers: Family<StateLabel, Gauge>,
    pub peer_established: Family<PeerLabels, Gauge>,
    pub prefixes_accepted: Family<PeerLabels, Gauge>,
    pub pool_used: Family<PoolLabels, Gauge>,
    pub pool_total: Family<PoolLabels, Gauge>,
    pub tls_reloads: Family<ResultLabel, Counter>,
    pub ecmp_supported: Gauge,
    pub check_ok: Family<CheckLabel, Gauge>,
    pub l2_conflicts: Gauge,
    pub fib_problems: Gauge,
    pub node_state: Family<NodeStateLabels, Gauge>,
    pub node_probe_rtt_seconds: Family<NodeLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub node_transitions: Family<NodeStateLabels, Counter>,
    pub fast_path: Family<ResultLabel, Counter>,
    pub fast_path_seconds: Histogram,
    pub frr_config_saved: Gauge,
    pub events_suppressed: Counter,
    pub kernel_passes: Counter,
    pub report_warnings: Family<ClusterLabel, Gauge>,
    pub frr_changed: Family<CauseLabel, Counter>,
    pub frr_fight: Gauge,
    pub store_writable: Gauge,
    pub unifi_uploads: Family<ResultLabel, Counter>,
    pub unifi_in_sync: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub cluster: String,
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeStateLabels {
    pub cluster: String,
    pub node: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    pub cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    pub check: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("bgplb");
        let m = Metrics {
            generation: Gauge::default(),
            generation_pinned: Gauge::default(),
            applies: Family::default(),
            reports: Family::default(),
            report_age_seconds: Family::default(),
            report_stale: Family::default(),
            frr_up: Gauge::default(),
            peers: Family::default(),
            peer_established: Family::default(),
            prefixes_accepted: Family::default(),
            pool_used: Family::default(),
            pool_total: Family::default(),
            tls_reloads: Family::default(),
            ecmp_supported: Gauge::default(),
            check_ok: Family::default(),
            l2_conflicts: Gauge::default(),
            fib_problems: Gauge::default(),
            node_state: Family::default(),
            node_probe_rtt_seconds: Family::default(),
            node_transitions: Family::default(),
            fast_path: Family::default(),
            fast_path_seconds: Histogram::new([
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
            frr_config_saved: Gauge::default(),
            events_suppressed: Counter::default(),
            kernel_passes: Counter::default(),
            report_warnings: Family::default(),
            frr_changed: Family::default(),
            frr_fight: Gauge::default(),
            store_writable: Gauge::default(),
            unifi_uploads: Family::default(),
            unifi_in_sync: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "generation",
            "Current (last applied) FRR configuration generation",
            m.generation.clone(),
        );
        registry.register(
            "generation_pinned",
            "1 while `bgplb-agent rollback` has pinned a generation: the daemon keeps it instead of following the site file and the reports (until `unpin` or `apply`)",
            m.generation_pinned.clone(),
        );
        // Counters: the `_total` suffix is added by the library.
        registry.register(
            "applies",
            "Reconciles by result (applied, unchanged, failed)",
            m.applies.clone(),
        );
        // Every result from the start, at 0: a rate or increase sees the first failure (a series
        // born at 1 has no increase).
        for result in ["applied", "unchanged", "failed"] {
            let _ = m.applies.get_or_create(&ResultLabel {
                result: result.into(),
            });
        }
        registry.register(
            "reports",
            "Reports received by cluster and result (accepted, duplicate, refused, throttled)",
            m.reports.clone(),
        );
        registry.register(
            "report_age_seconds",
            "Seconds since the cluster's last accepted report",
            m.report_age_seconds.clone(),
        );
        registry.register(
            "report_stale",
            "1 when the last report is older than report_stale_after (its state stays in force)",
            m.report_stale.clone(),
        );
        registry.register(
            "frr_up",
            "1 when FRR answered the last read",
            m.frr_up.clone(),
        );
        registry.register("peers", "bgplb sessions by BGP state", m.peers.clone());
        registry.register(
            "peer_established",
            "1 when the session is Established",
            m.peer_established.clone(),
        );
        registry.register(
            "prefixes_accepted",
            "Prefixes accepted from the peer",
            m.prefixes_accepted.clone(),
        );
        registry.register(
            "pool_addresses_used",
            "Addresses allocated from the pool (from the report)",
            m.pool_used.clone(),
        );
        registry.register(
            "pool_addresses_total",
            "Addresses in the pool (from the report)",
            m.pool_total.clone(),
        );
        registry.register(
            "tls_reloads",
            "TLS file reloads by result",
            m.tls_reloads.clone(),
        );
        registry.register(
            "ecmp_supported",
            "1 when the kernel accepts multipath routes",
            m.ecmp_supported.clone(),
        );
        registry.register(
            "check_ok",
            "1 when the check passes (segment, sessions, fib, l2)",
            m.check_ok.clone(),
        );
        registry.register(
            "l2_conflicts",
            "Pool addresses something answers ARP/NDP for",
            m.l2_conflicts.clone(),
        );
        registry.register(
            "fib_problems",
            "VIPs whose kernel route is missing, shadowed or has the wrong next hops",
            m.fib_problems.clone(),
        );
        registry.register(
            "node_state",
            "1 for each node's liveness state (up, drained, down)",
            m.node_state.clone(),
        );
        registry.register(
            "node_probe_rtt_seconds",
            "Round-trip time of the node's last answered liveness probe",
            m.node_probe_rtt_seconds.clone(),
        );
        registry.register(
            "node_transitions",
            "Liveness state changes by node and the state entered",
            m.node_transitions.clone(),
        );
        registry.register(
            "liveness_fast_path",
            "Overlay writes to bgpd's vty socket by result (ok, failed)",
            m.fast_path.clone(),
        );
        registry.register(
            "liveness_fast_path_seconds",
            "Time from a liveness decision to bgpd having the change",
            m.fast_path_seconds.clone(),
        );
        registry.register(
            "frr_config_saved",
            "0 when FRR's configuration file lacks what FRR runs (write memory failed)",
            m.frr_config_saved.clone(),
        );
        registry.register(
            "events_suppressed",
            "Refused requests not written as events (over 20 per cluster and minute)",
            m.events_suppressed.clone(),
        );
        registry.register(
            "kernel_passes",
            "Kernel passes (segment re-asserted, checks run) after a relevant kernel event",
            m.kernel_passes.clone(),
        );
        registry.register(
            "report_warnings",
            "What the cluster's last report carried that the gateway ignores (pools or VIPs outside the site's pools, ...)",
            m.report_warnings.clone(),
        );
        registry.register(
            "frr_changed",
            "Times the FRR watch found bgplb's configuration changed by someone else (cause: bgpd-restarted, edited)",
            m.frr_changed.clone(),
        );
        registry.register(
            "frr_fight",
            "1 while the agent has stopped re-applying because something keeps undoing its FRR configuration",
            m.frr_fight.clone(),
        );
        registry.register(
            "store_writable",
            "1 while the state database can record an apply; 0 when its file system is full or read-only (nothing is applied then)",
            m.store_writable.clone(),
        );
        registry.register(
            "unifi_uploads",
            "Uploads of the rendered configuration to the UniFi controller's BGP configuration by result (ok, failed)",
            m.unifi_uploads.clone(),
        );
        registry.register(
            "unifi_in_sync",
            "1 while the UniFi controller's BGP configuration is the current generation's ([agent.unifi] only)",
            m.unifi_in_sync.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn count_transition(&self, cluster: &str, node: &str, state: &str) {
        self.node_transitions
            .get_or_create(&NodeStateLabels {
                cluster: cluster.into(),
                node: node.into(),
                state: state.into(),
            })
            .inc();
    }

    pub fn observe_fast_path(&self, result: &str, elapsed: std::time::Duration) {
        self.fast_path
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
        if result == "ok" {
            self.fast_path_seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// Replaces the per-node liveness gauges.
    pub fn set_liveness(&self, nodes: &[crate::liveness::View]) {
        self.node_state.clear();
        self.node_probe_rtt_seconds.clear();
        for n in nodes {
            for state in [
                crate::liveness::State::Up,
                crate::liveness::State::Drained,
                crate::liveness::State::Down,
            ] {
                self.node_state
                    .get_or_create(&NodeStateLabels {
                        cluster: n.cluster.clone(),
                        node: n.node.clone(),
                        state: state.as_str().into(),
                    })
                    .set(i64::from(n.state == state));
            }
            if let Some(rtt) = n.rtt {
                self.node_probe_rtt_seconds
                    .get_or_create(&NodeLabels {
                        cluster: n.cluster.clone(),
                        node: n.node.clone(),
                    })
                    .set(rtt.as_secs_f64());
            }
        }
    }

    pub fn count_apply(&self, result: &str) {
        self.applies
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    pub fn count_report(&self, cluster: &str, result: &str) {
        self.reports
            .get_or_create(&ReportLabels {
                cluster: cluster.into(),
                result: result.into(),
            })
            .inc();
    }

    /// Replaces the per-peer gauges with the sessions in `peers`.
    pub fn set_peers(&self, peers: &[crate::status::Peer]) {
        self.peers.clear();
        self.peer_established.clear();
        self.prefixes_accepted.clear();
        for p in peers {
            self.peers
                .get_or_create(&StateLabel {
                    state: p.state.clone(),
                })
                .inc();
            let labels = PeerLabels {
                cluster: p.cluster.clone(),
                node: p.node.clone(),
                family: p.family.to_string(),
                neighbor: p.address.clone(),
            };
            self.peer_established
                .get_or_create(&labels)
                .set(i64::from(p.state == "Established"));
            self.prefixes_accepted
                .get_or_create(&labels)
                .set(i64::try_from(p.accepted).unwrap_or(i64::MAX));
        }
    }

    pub fn set_validation(&self, v: &crate::netcheck::Validation) {
        for c in &v.checks {
            self.check_ok
                .get_or_create(&CheckLabel {
                    check: c.name.to_string(),
                })
                .set(i64::from(c.ok));
        }
        self.l2_conflicts.set(v.conflicts.len() as i64);
        self.fib_problems.set(v.fib.len() as i64);
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
