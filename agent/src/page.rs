//! The status page (`GET /status` on the metrics listener) and `generate-report`: the same data
//! as `bgplb-agent status`, as one self-contained HTML document (no JavaScript, no external
//! resources; charts are inline SVG) or as Markdown.
//!
//! The live page refreshes itself with `<meta http-equiv="refresh">`; the report does not.

use std::fmt::Write as _;

use crate::status::Status;
use crate::store::{Event, Generation, Outcome};

/// Everything one page shows.
pub struct Page<'a> {
    pub status: &'a Status,
    /// Newest first.
    pub generations: &'a [Generation],
    /// Newest first.
    pub events: &'a [Event],
    /// When the page was made (RFC 3339).
    pub at: String,
}

/// Pool utilisation at or above this is shown amber; at or above [`POOL_FULL`], red (the alert
/// rule's threshold).
const POOL_WARN: f64 = 0.75;
const POOL_FULL: f64 = 0.90;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One pool's line: cluster, pool, used, total, disabled.
struct PoolRow<'a> {
    cluster: &'a str,
    name: &'a str,
    used: u64,
    total: u64,
    disabled: bool,
}

impl PoolRow<'_> {
    fn share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.used as f64 / self.total as f64
        }
    }

    fn class(&self) -> &'static str {
        match self.share() {
            s if s >= POOL_FULL => "fail",
            s if s >= POOL_WARN => "warn",
            _ => "ok",
        }
    }
}

fn pools<'a>(s: &'a Status) -> Vec<PoolRow<'a>> {
    s.clusters
        .iter()
        .flat_map(|c| {
            c.pools.iter().map(move |p| PoolRow {
                cluster: &c.name,
                name: &p.name,
                used: p.used,
                total: p.total,
                disabled: p.disabled,
            })
        })
        .collect()
}

/// Problems that belong at the top of the page.
fn banners(s: &Status) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &s.frr_error {
        out.push(format!("FRR could not be read: {e}"));
    }
    if let Some(f) = &s.last_failure {
        out.push(format!(
            "Last apply FAILED: generation {} at {}: {}",
            f.number,
            f.created_at,
            f.error.as_deref().unwrap_or("unknown error")
        ));
    }
    if let Some(u) = &s.unsaved {
        out.push(format!("Not saved: {u}"));
    }
    if let Some(p) = &s.store_problem {
        out.push(format!("State store: {p}"));
    }
    if let Some(p) = &s.pinned {
        out.push(format!("Pinned: {p}"));
    }
    out
}

fn session_state(p: &crate::status::Peer) -> (&str, &'static str) {
    if p.shutdown {
        ("Shutdown", "fail")
    } else if p.state == "Established" {
        (p.state.as_str(), "ok")
    } else {
        (p.state.as_str(), "fail")
    }
}

fn check_class(c: &crate::netcheck::Check) -> &'static str {
    match c.result() {
        "FAIL" => "fail",
        "WARN" => "warn",
        _ => "ok",
    }
}

fn outcome(g: &Generation) -> String {
    match (g.outcome, g.restores, g.rolled_back_to) {
        (Outcome::Failed, _, Some(to)) => format!("failed, FRR returned to {to}"),
        (Outcome::Failed, _, None) => "failed".into(),
        (Outcome::Applied, Some(r), _) => format!("rollback to {r}"),
        (Outcome::Applied, None, _) => "applied".into(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d2330;background:#fafbfc}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #d5d9e0}\
table{border-collapse:collapse;font-size:.92em}th,td{text-align:left;padding:.25em .7em;border-bottom:1px solid #e6e9ee;vertical-align:top}\
th{background:#eef1f5}.ok{color:#17753a;font-weight:600}.warn{color:#9a6700;font-weight:600}.fail{color:#b42318;font-weight:600}\
.banner{background:#fde8e6;border:1px solid #b42318;padding:.5em .8em;margin:.4em 0}.muted{color:#667085}\
code{font-family:ui-monospace,monospace;font-size:.95em}svg text{font-family:system-ui,sans-serif;font-size:12px}";

/// The page as one HTML document. `refresh`: seconds between reloads (the live page), or `None`
/// (a report file).
pub fn html(p: &Page, refresh: Option<u32>) -> String {
    let s = p.status;
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    if let Some(secs) = refresh {
        let _ = write!(o, "<meta http-equiv=\"refresh\" content=\"{secs}\">");
    }
    let _ = writeln!(
        o,
        "<meta name=\"viewport\" content=\"width=device-width\"><title>bgplb: {}</title><style>{STYLE}</style></head><body>",
        esc(&s.gateway)
    );
    let _ = write!(
        o,
        "<h1 id=\"gateway\">bgplb on {} (AS {})</h1><p class=\"muted\">",
        esc(&s.gateway),
        s.asn
    );
    if let Some(v) = &s.frr_version {
        let _ = write!(o, "FRR {} · ", esc(v));
    }
    match &s.generation {
        Some(g) => {
            let _ = write!(
                o,
                "generation <b id=\"generation\">{}</b> applied {} from {} (config <code>{}</code>)",
                g.number,
                esc(&g.created_at),
                esc(&g.source),
                esc(&g.hash[..12.min(g.hash.len())])
            );
        }
        None => o.push_str("no generation applied yet"),
    }
    let _ = write!(o, " · page made {}", esc(&p.at));
    if let Some(secs) = refresh {
        let _ = write!(o, ", reloads every {secs} s");
    }
    o.push_str("</p>\n");
    for b in banners(s) {
        let _ = writeln!(o, "<div class=\"banner\">{}</div>", esc(&b));
    }

    // Sessions.
    o.push_str("<h2>Sessions</h2>\n");
    if s.peers.is_empty() {
        o.push_str("<p class=\"fail\">No bgplb sessions in FRR.</p>\n");
    } else {
        let up = s.peers.iter().filter(|p| p.state == "Established").count();
        o.push_str(&stacked_bar(
            &[
                (up as f64, "#17753a"),
                ((s.peers.len() - up) as f64, "#b42318"),
            ],
            &format!("{up} of {} sessions established", s.peers.len()),
        ));
        o.push_str("<table id=\"sessions\"><tr><th>Cluster</th><th>Node</th><th>Family</th><th>Neighbor</th><th>State</th><th>Up</th><th>Received</th><th>Accepted</th><th>Resets</th></tr>\n");
        for peer in &s.peers {
            let (state, class) = session_state(peer);
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&peer.cluster),
                esc(&peer.node),
                peer.family,
                esc(&peer.address),
                esc(state),
                if peer.state == "Established" {
                    crate::status::uptime(peer.uptime_secs)
                } else {
                    "-".into()
                },
                peer.received,
                peer.accepted,
                peer.dropped
            );
        }
        o.push_str("</table>\n");
        for peer in s.peers.iter().filter(|p| !p.refused.is_empty()) {
            let _ = writeln!(
                o,
                "<p class=\"warn\">Refused from {} ({}): {}</p>",
                esc(&peer.node),
                esc(&peer.address),
                esc(&peer.refused.join(", "))
            );
        }
    }

    // Pools.
    let pool_rows = pools(s);
    o.push_str("<h2>Pools</h2>\n");
    if pool_rows.is_empty() {
        o.push_str("<p class=\"muted\">No cluster has reported pools yet.</p>\n");
    } else {
        o.push_str("<table id=\"pools\"><tr><th>Cluster</th><th>Pool</th><th>Used</th><th>Utilisation</th></tr>\n");
        for r in &pool_rows {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}{}</td><td class=\"{}\">{} / {}</td><td>{}</td></tr>",
                esc(r.cluster),
                esc(r.name),
                if r.disabled {
                    " <span class=\"muted\">(disabled)</span>"
                } else {
                    ""
                },
                r.class(),
                r.used,
                r.total,
                utilisation_bar(r)
            );
        }
        o.push_str("</table>\n");
    }

    // VIPs.
    o.push_str("<h2>VIPs and their next hops</h2>\n");
    let vips: Vec<_> = s
        .clusters
        .iter()
        .flat_map(|c| {
            c.services
                .iter()
                .flat_map(move |svc| svc.vips.iter().map(move |v| (c, svc, v)))
        })
        .collect();
    if vips.is_empty() {
        o.push_str("<p class=\"muted\">No VIPs reported.</p>\n");
    } else {
        o.push_str("<table id=\"vips\"><tr><th>Cluster</th><th>Service</th><th>VIP</th><th>Next hops</th></tr>\n");
        for (c, svc, v) in vips {
            let via = if v.routed_via.is_empty() {
                "<span class=\"fail\">not routed</span>".to_string()
            } else {
                v.routed_via
                    .iter()
                    .map(|n| format!("<code>{}</code>", esc(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{via}</td></tr>",
                esc(&c.name),
                esc(&svc.name),
                esc(&v.ip)
            );
        }
        o.push_str("</table>\n");
    }
    for c in &s.clusters {
        let _ = writeln!(
            o,
            "<p class=\"muted\">Cluster {}: report generation {} received {} s ago, {} node(s).</p>",
            esc(&c.name),
            c.report_generation,
            c.report_age_secs,
            c.nodes
        );
        for w in &c.warnings {
            let _ = writeln!(o, "<p class=\"warn\">{}: {}</p>", esc(&c.name), esc(w));
        }
    }

    // Checks.
    o.push_str("<h2>Checks</h2>\n");
    match &s.kernel {
        Some(k) => {
            o.push_str(
                "<table id=\"checks\"><tr><th>Check</th><th>Result</th><th>Details</th></tr>\n",
            );
            for c in &k.checks {
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                    esc(c.name),
                    check_class(c),
                    c.result(),
                    c.details
                        .iter()
                        .map(|d| esc(d))
                        .collect::<Vec<_>>()
                        .join("<br>")
                );
            }
            o.push_str("</table>\n");
        }
        None => o.push_str("<p class=\"muted\">The gateway's checks have not run yet.</p>\n"),
    }

    // Liveness.
    if !s.liveness.is_empty() {
        o.push_str("<h2>Node liveness</h2>\n<table id=\"liveness\"><tr><th>Cluster</th><th>Node</th><th>State</th><th>Since</th><th>Probe RTT</th><th>Changes</th><th>Reason</th></tr>\n");
        for n in &s.liveness {
            let class = match n.state.as_str() {
                "up" => "ok",
                "drained" => "warn",
                _ => "fail",
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&n.cluster),
                esc(&n.node),
                esc(&n.state),
                esc(&n.since),
                match (n.probe_rtt_ms, n.answered) {
                    (Some(ms), true) => format!("{ms:.2} ms"),
                    _ => "never answered".into(),
                },
                n.transitions,
                esc(&n.reason)
            );
        }
        o.push_str("</table>\n");
    }

    // Generations.
    o.push_str("<h2>Generations</h2>\n");
    if p.generations.is_empty() {
        o.push_str("<p class=\"muted\">None recorded.</p>\n");
    } else {
        o.push_str("<table id=\"generations\"><tr><th>#</th><th>Time</th><th>Source</th><th>Changes</th><th>Outcome</th><th>Config</th></tr>\n");
        for g in p.generations {
            let class = if g.outcome == Outcome::Failed {
                "fail"
            } else {
                "ok"
            };
            let mut what = esc(&outcome(g));
            if let Some(e) = &g.error {
                let _ = write!(what, ": {}", esc(e));
            }
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{what}</td><td><code>{}</code></td></tr>",
                g.number,
                esc(&g.created_at),
                esc(&g.source),
                g.changes,
                esc(&g.hash[..12.min(g.hash.len())])
            );
        }
        o.push_str("</table>\n");
    }

    // Events.
    o.push_str("<h2>Recent events</h2>\n");
    if p.events.is_empty() {
        o.push_str("<p class=\"muted\">None.</p>\n");
    } else {
        o.push_str("<table id=\"events\"><tr><th>Time</th><th>Event</th><th>Message</th></tr>\n");
        for e in p.events {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.at),
                esc(&e.kind),
                esc(&e.display_message())
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</body></html>\n");
    o
}

/// A horizontal bar of `parts` (value, colour) with `label` beside it, as inline SVG.
fn stacked_bar(parts: &[(f64, &str)], label: &str) -> String {
    const WIDTH: f64 = 240.0;
    let total: f64 = parts.iter().map(|(v, _)| v).sum();
    let mut x = 0.0;
    let mut rects = String::new();
    for (v, colour) in parts {
        let w = if total > 0.0 { WIDTH * v / total } else { 0.0 };
        let _ = write!(
            rects,
            "<rect x=\"{x:.1}\" y=\"2\" width=\"{w:.1}\" height=\"14\" fill=\"{colour}\"/>"
        );
        x += w;
    }
    format!(
        "<p><svg role=\"img\" width=\"{}\" height=\"18\" aria-label=\"{}\"><rect x=\"0\" y=\"2\" width=\"{WIDTH}\" height=\"14\" fill=\"#e6e9ee\"/>{rects}<text x=\"{}\" y=\"14\">{}</text></svg></p>\n",
        WIDTH + 260.0,
        esc(label),
        WIDTH + 8.0,
        esc(label)
    )
}

fn utilisation_bar(r: &PoolRow) -> String {
    const WIDTH: f64 = 200.0;
    let colour = match r.class() {
        "fail" => "#b42318",
        "warn" => "#d49b00",
        _ => "#17753a",
    };
    let share = r.share().min(1.0);
    format!(
        "<svg class=\"bar\" role=\"img\" width=\"{}\" height=\"16\" aria-label=\"{:.0}% used\"><rect x=\"0\" y=\"1\" width=\"{WIDTH}\" height=\"14\" fill=\"#e6e9ee\"/><rect x=\"0\" y=\"1\" width=\"{:.1}\" height=\"14\" fill=\"{colour}\"/><text x=\"{}\" y=\"13\">{:.0}%</text></svg>",
        WIDTH + 48.0,
        share * 100.0,
        WIDTH * share,
        WIDTH + 6.0,
        share * 100.0
    )
}

/// The page as Markdown (for a ticket or a wiki).
pub fn markdown(p: &Page) -> String {
    let s = p.status;
    let mut o = format!("# bgplb on {} (AS {})\n\n", s.gateway, s.asn);
    if let Some(v) = &s.frr_version {
        let _ = write!(o, "FRR {v}. ");
    }
    match &s.generation {
        Some(g) => {
            let _ = writeln!(
                o,
                "Generation {} applied {} from {} (config `{}`). Report made {}.\n",
                g.number,
                g.created_at,
                g.source,
                &g.hash[..12.min(g.hash.len())],
                p.at
            );
        }
        None => {
            let _ = writeln!(o, "No generation applied yet. Report made {}.\n", p.at);
        }
    }
    for b in banners(s) {
        let _ = writeln!(o, "> **{}**\n", md(&b));
    }
    o.push_str("## Sessions\n\n");
    if s.peers.is_empty() {
        o.push_str("No bgplb sessions in FRR.\n\n");
    } else {
        o.push_str("| Cluster | Node | Family | Neighbor | State | Accepted | Resets |\n|---|---|---|---|---|---|---|\n");
        for peer in &s.peers {
            let _ = writeln!(
                o,
                "| {} | {} | {} | `{}` | {} | {} | {} |",
                md(&peer.cluster),
                md(&peer.node),
                peer.family,
                peer.address,
                session_state(peer).0,
                peer.accepted,
                peer.dropped
            );
        }
        o.push('\n');
    }
    let pool_rows = pools(s);
    if !pool_rows.is_empty() {
        o.push_str("## Pools\n\n| Cluster | Pool | Used | Utilisation |\n|---|---|---|---|\n");
        for r in &pool_rows {
            let _ = writeln!(
                o,
                "| {} | {}{} | {} / {} | {:.0}% |",
                md(r.cluster),
                md(r.name),
                if r.disabled { " (disabled)" } else { "" },
                r.used,
                r.total,
                r.share() * 100.0
            );
        }
        o.push('\n');
    }
    o.push_str("## VIPs\n\n");
    let mut any = false;
    for c in &s.clusters {
        for svc in &c.services {
            for v in &svc.vips {
                if !any {
                    o.push_str("| Cluster | Service | VIP | Next hops |\n|---|---|---|---|\n");
                    any = true;
                }
                let via = if v.routed_via.is_empty() {
                    "**not routed**".to_string()
                } else {
                    v.routed_via.join(", ")
                };
                let _ = writeln!(
                    o,
                    "| {} | {} | `{}` | {} |",
                    md(&c.name),
                    md(&svc.name),
                    v.ip,
                    via
                );
            }
        }
    }
    o.push_str(if any { "\n" } else { "No VIPs reported.\n\n" });
    if let Some(k) = &s.kernel {
        o.push_str("## Checks\n\n| Check | Result | Details |\n|---|---|---|\n");
        for c in &k.checks {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                c.name,
                c.result(),
                md(&c.details.join("; "))
            );
        }
        o.push('\n');
    }
    if !s.liveness.is_empty() {
        o.push_str("## Node liveness\n\n| Cluster | Node | State | Since | Reason |\n|---|---|---|---|---|\n");
        for n in &s.liveness {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                md(&n.cluster),
                md(&n.node),
                n.state,
                n.since,
                md(&n.reason)
            );
        }
        o.push('\n');
    }
    if !p.generations.is_empty() {
        o.push_str("## Recent changes\n\n| # | Time | Source | Changes | Outcome |\n|---|---|---|---|---|\n");
        for g in p.generations {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                g.number,
                g.created_at,
                md(&g.source),
                g.changes,
                md(&outcome(g))
            );
        }
        o.push('\n');
    }
    if !p.events.is_empty() {
        o.push_str("## Recent events\n\n| Time | Event | Message |\n|---|---|---|\n");
        for e in p.events {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                e.at,
                md(&e.kind),
                md(&e.display_message())
            );
        }
        o.push('\n');
    }
    o
}

/// Text safe inside a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn pool_classes_follow_the_alert_threshold() {
        let row = |used| PoolRow {
            cluster: "home",
            name: "default",
            used,
            total: 100,
            disabled: false,
        };
        assert_eq!(row(50).class(), "ok");
        assert_eq!(row(75).class(), "warn");
        assert_eq!(row(90).class(), "fail");
        let empty = PoolRow { total: 0, ..row(0) };
        assert_eq!(empty.share(), 0.0);
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        assert_eq!(md("a|b\nc"), "a\\|b c");
    }
}
