//! `configure-udm-pro`: the steps to set a UniFi gateway up for this site, generated from the
//! site file. Pure: the same site gives the same steps.
//!
//! The steps follow the order an operator lives them: the firmware and FRR, the LB segment
//! (what UniFi should know of VLAN 52, and what each mode costs), who writes FRR's BGP
//! configuration (the agent, or UniFi's BGP upload), the firewall, then how to verify.

use std::net::IpAddr;

use bgplb_site::{SegmentMode, Site};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub title: String,
    /// What to know and what to run, in order.
    pub items: Vec<Item>,
}

/// One point of a step: something to know or do, or a command to run (on the gateway unless
/// its comment says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Item {
    Say(String),
    Run(String),
}

impl Step {
    fn new(title: &str) -> Step {
        Step {
            title: title.to_string(),
            items: Vec::new(),
        }
    }

    fn line(&mut self, text: impl Into<String>) -> &mut Step {
        self.items.push(Item::Say(text.into()));
        self
    }

    fn command(&mut self, text: impl Into<String>) -> &mut Step {
        self.items.push(Item::Run(text.into()));
        self
    }
}

fn family_addresses(addrs: &[IpAddr]) -> (Vec<String>, Vec<String>) {
    let v4 = addrs.iter().filter(|a| a.is_ipv4()).map(|a| a.to_string());
    let v6 = addrs.iter().filter(|a| a.is_ipv6()).map(|a| a.to_string());
    (v4.collect(), v6.collect())
}

/// The steps for `site`.
pub fn steps(site: &Site) -> Vec<Step> {
    let node_subnets: Vec<String> = site
        .clusters
        .iter()
        .flat_map(|c| c.node_subnets.iter().map(|n| n.to_string()))
        .collect();
    let nodes = node_subnets.join(", ");
    let gw_addrs: Vec<String> = site
        .gateway
        .addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    let gw = if gw_addrs.is_empty() {
        "the gateway's address on the node network".to_string()
    } else {
        gw_addrs.join(" and ")
    };
    let segment: Vec<String> = [site.segment.ipv4, site.segment.ipv6]
        .into_iter()
        .flatten()
        .map(|n| n.to_string())
        .collect();
    let seg = segment.join(" and ");
    let vlan = site.segment.vlan;
    let mut out = Vec::new();

    let mut s = Step::new("1. Firmware, FRR and bgpd");
    s.line("A UniFi OS with FRR and vtysh (UniFi OS 4 on a UDM Pro). bgplb renders for FRR 7.5 to 10; `status` names the release it finds, `validate` warns when bgplb is not tested with it.")
        .command("vtysh -c 'show version' | head -1")
        .line("bgpd must run: `bgpd=yes` in /etc/frr/daemons (enabling BGP on the UniFi BGP page, or one upload there, sets it).")
        .command("grep '^bgpd=' /etc/frr/daemons")
        .line("Firmware upgrades wipe the root filesystem; /data survives. bgplb keeps everything in /data/bgplb, and its on-boot script in /data/on_boot.d puts the unit back at boot: that needs the community on-boot mechanism (udm-boot, a systemd unit running /data/on_boot.d) installed first.")
        .command("systemctl is-enabled udm-boot");
    out.push(s);

    let mut s = Step::new(&format!("2. The LB segment (VLAN {vlan}: {seg})"));
    match site.segment.mode {
        SegmentMode::Routed => {
            s.line(format!(
                "Mode `routed` (the site file): do not create a UniFi network for {seg}. The agent installs an unreachable route per segment prefix, so an unallocated VIP fails at once instead of following the default route."
            ))
            .line("Cost: UniFi OS does not know the segment as a network, and it masquerades traffic towards subnets it does not know: services behind the VIPs would see the gateway's address, not the client's (externalTrafficPolicy: Local loses its point). `bgplb-agent validate` checks this (the `nat` row) and names the rule.")
            .line(format!(
                "To avoid it: make VLAN {vlan} a UniFi network (below) and switch the site file to `segment.mode = \"adopt\"`."
            ));
        }
        SegmentMode::Adopt | SegmentMode::Vlan => {
            let iface = site
                .segment
                .interface
                .clone()
                .unwrap_or_else(|| format!("br{vlan}"));
            let (gw4, gw6) = family_addresses(&site.segment.gateway_addresses);
            if site.segment.mode == SegmentMode::Vlan {
                s.line(format!(
                    "Mode `vlan` (the site file): the agent creates {iface} itself. UniFi does not know it as a network: it will not masquerade for it only if you also create the network below; otherwise consider `adopt`."
                ));
            } else {
                s.line(format!(
                    "Mode `adopt` (the site file): UniFi owns the interface ({iface}); the agent only checks it."
                ));
            }
            s.line(format!(
                "In UniFi Network: Settings → Networks → New Virtual Network: name \"LB\", VLAN ID {vlan}, router: this gateway."
            ));
            if let Some(v4) = site.segment.ipv4 {
                s.line(format!(
                    "IPv4: gateway IP/subnet {}/{} , DHCP mode None (VIPs are never leased).",
                    gw4.first()
                        .cloned()
                        .unwrap_or_else(|| "(set segment.gateway_addresses)".into()),
                    v4.prefix_len()
                ));
            }
            if let Some(v6) = site.segment.ipv6 {
                s.line(format!(
                    "IPv6: static, gateway {}/{} , no router advertisements or DHCPv6.",
                    gw6.first()
                        .cloned()
                        .unwrap_or_else(|| "(set segment.gateway_addresses)".into()),
                    v6.prefix_len()
                ));
            }
            s.line("No port needs the VLAN: the VIPs are routed to the nodes by BGP, nothing lives on the segment.");
            s.command(format!("ip -br addr show {iface}"));
        }
    }
    out.push(s);

    let mut s = Step::new("3. Who writes FRR's BGP configuration");
    s.line("Recommended: the agent. It follows the cluster (nodes joining and leaving), applies through vtysh with read-back and rollback, shuts a dead node's sessions in about a second, and keeps every generation. Copy the aarch64 binary and this site file to the gateway, then install:")
        .command("scp bgplb-agent site.toml root@GATEWAY:/tmp/   # from your machine")
        .command("/tmp/bgplb-agent --config /tmp/site.toml pki init   # a CA and the agent's certificate, in agent.tls's directory");
    for c in &site.clusters {
        s.command(format!(
            "/tmp/bgplb-agent --config /tmp/site.toml pki issue --cluster {}   # the companion's client certificate (or let cert-manager issue it from this CA)",
            c.name
        ));
    }
    s.command("/tmp/bgplb-agent --config /tmp/site.toml install   # checks, copies itself, the site file and the unit into /data/bgplb, starts the agent")
        .line("The alternative is UniFi's own BGP upload (Settings → Routing → BGP): it takes one FRR file and keeps it across re-provisions, but it is static: every node change means a new upload, and nothing shuts a dead node's sessions early. Render the file for the gateway's FRR:")
        .command("bgplb-agent --config site.toml render --frr-version 7.5 > bgplb-frr.conf   # then upload bgplb-frr.conf");
    if site.agent.unifi.is_some() {
        s.line("This site file has [agent.unifi]: the agent also uploads each new generation to the controller, so a re-provision restores exactly what the agent applied. Do not use the upload for other BGP configuration then.");
    } else {
        s.line("With the agent, a controller re-provision that rewrites FRR's file is noticed and bgplb's part is put back within about a second; [agent.unifi] in the site file keeps the controller's copy in step instead.");
    }
    if site.bgp.password_file.is_some() {
        s.line(format!(
            "The BGP password is read from {}: put the same password in the Cilium side's Secret (`bgplb-companion render` writes its manifest).",
            site.bgp
                .password_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
    }
    out.push(s);

    let mut s = Step::new("4. Firewall (UniFi: Settings → Security → Firewall, or zone rules)");
    s.line(format!(
        "Allow TCP 179 (BGP) from the node network ({nodes}) to the gateway ({gw})."
    ))
    .line(format!(
        "Allow TCP {} (the agent's mutual-TLS API) from the node network to the gateway: the companion's reports leave the cluster from the nodes' addresses.",
        site.agent.listen.port()
    ));
    if site.liveness.enabled {
        match site.liveness.method {
            bgplb_site::LivenessMethod::Icmp => s.line(
                "Allow ICMP echo from the gateway to the nodes (node liveness probes; a node that never answers cannot be protected).",
            ),
            bgplb_site::LivenessMethod::Tcp => s.line(format!(
                "Allow TCP {} from the gateway to the nodes (node liveness probes).",
                site.liveness.tcp_port
            )),
        };
    }
    s.line(format!(
        "Allow the LANs that use the services to reach the segment ({seg}) on the services' ports."
    ));
    if let Some(m) = site.agent.metrics_listen {
        if !m.ip().is_loopback() {
            s.line(format!(
                "Allow TCP {} from Prometheus only to {} (metrics and the status page, plain HTTP without authentication).",
                m.port(),
                m.ip()
            ));
        }
    }
    out.push(s);

    let mut s = Step::new("5. Verify");
    s.line("On the gateway, then from the cluster side:")
        .command("bgplb-agent --config /data/bgplb/site.toml status")
        .command("bgplb-agent --config /data/bgplb/site.toml validate   # segment, ECMP, sessions, FIB, L2, NAT")
        .command("bgplb-companion verify-bgp-peering --site site.toml --config companion.toml   # from where kubectl works")
        .command("bgplb-companion test-connectivity --site site.toml --config companion.toml");
    out.push(s);
    out
}

/// The steps as text.
pub fn render(site: &Site, steps: &[Step]) -> String {
    let mut out = format!(
        "Setting up {} (AS {}) for bgplb, from the site file.\n",
        site.gateway.name, site.gateway.asn
    );
    for s in steps {
        out.push_str(&format!("\n{}\n", s.title));
        for item in &s.items {
            match item {
                Item::Say(l) => out.push_str(&format!("  - {l}\n")),
                Item::Run(c) => out.push_str(&format!("      $ {c}\n")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Site {
        bgplb_site::parse(include_str!("../../config/site.toml")).expect("the reference site")
    }

    #[test]
    fn routed_mode_warns_about_masquerading_up_front() {
        let site = reference();
        let text = render(&site, &steps(&site));
        assert!(text.contains("Mode `routed`"), "{text}");
        assert!(text.contains("masquerades traffic towards subnets it does not know"));
        assert!(text.contains("Allow TCP 179 (BGP) from the node network (172.29.51.0/24, fd47:25e1:2f96:51::/64) to the gateway (172.29.51.1 and fd47:25e1:2f96:51::1)"), "{text}");
        assert!(text.contains("Allow TCP 7443"), "{text}");
        assert!(text.contains("render --frr-version 7.5"));
    }

    /// Every agent command the steps give is one the agent takes.
    #[test]
    fn every_agent_command_parses() {
        use clap::Parser;
        let mut site = reference();
        let mut checked = 0;
        for mode in [SegmentMode::Routed, SegmentMode::Adopt] {
            site.segment.mode = mode;
            for step in steps(&site) {
                for item in step.items {
                    let Item::Run(cmd) = item else { continue };
                    let cmd = cmd
                        .split(" # ")
                        .next()
                        .unwrap()
                        .split(" > ")
                        .next()
                        .unwrap();
                    let words: Vec<&str> = cmd.split_whitespace().collect();
                    if !words[0].ends_with("bgplb-agent") {
                        continue;
                    }
                    crate::cli::Cli::try_parse_from(&words)
                        .unwrap_or_else(|e| panic!("`{cmd}`: {e}"));
                    checked += 1;
                }
            }
        }
        assert!(checked >= 8, "{checked}");
    }

    #[test]
    fn adopt_mode_says_what_network_to_create() {
        let mut site = reference();
        site.segment.mode = SegmentMode::Adopt;
        site.segment.interface = Some("br52".into());
        site.segment.gateway_addresses = vec![
            "172.29.52.1".parse().unwrap(),
            "fd47:25e1:2f96:52::1".parse().unwrap(),
        ];
        let text = render(&site, &steps(&site));
        assert!(text.contains("VLAN ID 52"), "{text}");
        assert!(text.contains("gateway IP/subnet 172.29.52.1/24"), "{text}");
        assert!(text.contains("gateway fd47:25e1:2f96:52::1/64"), "{text}");
        assert!(text.contains("ip -br addr show br52"));
        assert!(!text.contains("Mode `routed`"));
    }
}
