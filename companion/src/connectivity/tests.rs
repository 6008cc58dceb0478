//! Targets from the companion's Service fixtures, and the diagnosis of each failure from the
//! fixtures' nodes, EndpointSlices and an agent status (`validate/agent-status.json`: k8s-1 and
//! k8s-2 Established in both families).

use bgplb_proto::Check;
use serde_json::{json, Value};

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/", $name))
    };
}

fn items<T: serde::de::DeserializeOwned>(json: &str) -> Vec<T> {
    let v: Value = serde_json::from_str(json).unwrap();
    serde_json::from_value(v["items"].clone()).unwrap()
}

fn ctx() -> Context {
    Context {
        site: bgplb_site::parse(include_str!("../../../config/site.toml")).unwrap(),
        cluster: "home".into(),
        nodes: items(fixture!("nodes.json")),
        services: items(fixture!("services.json")),
        endpoint_slices: items(fixture!("endpointslices.json")),
        cilium_version: Some("1.18.2".into()),
        agent: Some(serde_json::from_str(fixture!("validate/agent-status.json")).unwrap()),
    }
}

fn ok(millis: u64) -> Outcome {
    Outcome::Reached { millis, http: None }
}

fn failed(error: &str) -> Outcome {
    Outcome::Failed {
        error: error.into(),
        millis: 3,
    }
}

/// Every target of the fixtures reached, with `except` overriding some.
fn outcomes(except: &[(&str, u16, Outcome)]) -> Outcomes {
    let (targets, _) = targets(&ctx().services);
    let mut out: Outcomes = targets.iter().map(|t| (t.key(), ok(1))).collect();
    for (ip, port, o) in except {
        out.insert((ip.parse().unwrap(), *port), o.clone());
    }
    out
}

fn result<'a>(r: &'a Report, vip: &str, port: u16) -> &'a TargetResult {
    r.results
        .iter()
        .find(|t| t.vip == vip && t.port == port)
        .unwrap_or_else(|| panic!("no result for {vip}:{port}:\n{}", render_table(r)))
}

fn port(name: Option<&str>, number: i32, app: Option<&str>) -> ServicePort {
    ServicePort {
        name: name.map(String::from),
        port: number,
        app_protocol: app.map(String::from),
        ..Default::default()
    }
}

#[test]
fn http_is_decided_by_app_protocol_then_name_then_number() {
    assert_eq!(http_scheme(&port(None, 80, None)), Some(Scheme::Http));
    assert_eq!(http_scheme(&port(None, 8080, None)), Some(Scheme::Http));
    assert_eq!(http_scheme(&port(None, 443, None)), Some(Scheme::Https));
    assert_eq!(http_scheme(&port(None, 8443, None)), Some(Scheme::Https));
    assert_eq!(http_scheme(&port(None, 9000, None)), None);
    assert_eq!(
        http_scheme(&port(Some("http"), 9000, None)),
        Some(Scheme::Http)
    );
    assert_eq!(
        http_scheme(&port(Some("https-admin"), 9443, None)),
        Some(Scheme::Https)
    );
    assert_eq!(
        http_scheme(&port(Some("http-metrics"), 9100, None)),
        Some(Scheme::Http)
    );
    // appProtocol wins, both ways.
    assert_eq!(
        http_scheme(&port(Some("web"), 9000, Some("HTTPS"))),
        Some(Scheme::Https)
    );
    assert_eq!(http_scheme(&port(Some("http"), 80, Some("grpc"))), None);
    assert_eq!(
        http_scheme(&port(None, 5432, Some("kubernetes.io/h2c"))),
        None
    );
}

#[test]
fn targets_are_every_vip_and_tcp_port_and_the_rest_is_noted() {
    let mut services: Vec<Service> = items(fixture!("services.json"));
    // A UDP port beside a TCP one.
    services.push(
        serde_json::from_value(json!({
            "metadata": {"name": "dns", "namespace": "net"},
            "spec": {"type": "LoadBalancer", "ports": [
                {"name": "dns-udp", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.29.52.101"}]}}
        }))
        .unwrap(),
    );
    let (targets, notes) = targets(&services);
    let list: Vec<String> = targets
        .iter()
        .map(|t| {
            format!(
                "{} {} {}",
                t.service(),
                t.address(),
                t.http.map_or("tcp".to_string(), |s| s.to_string())
            )
        })
        .collect();
    assert_eq!(
        list,
        [
            "ingress/traefik 172.29.52.200:80 http",
            "ingress/traefik [fd47:25e1:2f96:52:100::1]:80 http",
            "ingress/traefik 172.29.52.200:443 https",
            "ingress/traefik [fd47:25e1:2f96:52:100::1]:443 https",
            "media/jellyfin 172.29.52.100:8096 tcp",
            "net/dns 172.29.52.101:53 tcp",
        ]
    );
    let notes: Vec<(Status, &str)> = notes
        .iter()
        .map(|n| (n.status, n.message.as_str()))
        .collect();
    assert_eq!(
        notes,
        [
            (
                Status::Warn,
                "media/pending: no LoadBalancer address assigned yet (pending): not tested"
            ),
            (
                Status::Ok,
                "net/dns: UDP port 53 skipped: only TCP is tested"
            ),
        ]
    );
}

#[test]
fn everything_reached_is_ok() {
    let o = outcomes(&[]);
    let r = judge(&ctx(), Some(&o), Some(&o));
    assert!(r.ok, "{}", render_table(&r));
    assert_eq!(r.results.len(), 5);
    assert_eq!(
        r.summary,
        "5 of 5 target(s) reachable from here and from the gateway"
    );
    let table = render_table(&r);
    for col in ["SERVICE", "ADDRESS", "CHECK", "HERE", "GATEWAY", "RESULT"] {
        assert!(table.contains(col), "{table}");
    }
    assert!(
        table.contains("media/pending: no LoadBalancer address"),
        "{table}"
    );
}

#[test]
fn a_vip_the_gateway_does_not_route_says_not_routed() {
    let mut c = ctx();
    c.agent.as_mut().unwrap().kernel_checks.push(Check {
        name: "fib".into(),
        ok: false,
        warning: false,
        details: vec![
            "172.29.52.100 (home: service media/jellyfin): no route in the kernel".into(),
        ],
    });
    let e = "No route to host (os error 113)";
    let o = outcomes(&[("172.29.52.100", 8096, failed(e))]);
    let r = judge(&c, Some(&o), Some(&o));
    assert!(!r.ok);
    let t = result(&r, "172.29.52.100", 8096);
    assert_eq!(t.result, Status::Fail);
    assert_eq!(
        t.causes[0],
        "not routed: the agent's fib check says 172.29.52.100 (home: service media/jellyfin): no route in the kernel"
    );
    let table = render_table(&r);
    assert!(
        table.contains(
            "FAIL  172.29.52.100:8096 (media/jellyfin, port 8096): from here: No route to host (os error 113); from the gateway: No route to host (os error 113)"
        ),
        "{table}"
    );
    assert!(table.contains("      likely cause: not routed"), "{table}");
    // Without the fib check's word: the gateway's own error says it.
    let r = judge(&ctx(), Some(&o), Some(&o));
    assert_eq!(
        result(&r, "172.29.52.100", 8096).causes[0],
        "not routed: the gateway itself has no route to 172.29.52.100 (No route to host (os error 113))"
    );
}

#[test]
fn no_established_session_for_the_nodes_with_endpoints_is_named() {
    // jellyfin is Local with its ready endpoint on k8s-2.
    let mut c = ctx();
    for p in &mut c.agent.as_mut().unwrap().peers {
        if p.node == "k8s-2" {
            p.state = "Active".into();
        }
    }
    let o = outcomes(&[("172.29.52.100", 8096, failed("timed out after 3 s"))]);
    let r = judge(&c, Some(&o), Some(&o));
    assert_eq!(
        result(&r, "172.29.52.100", 8096).causes[0],
        "no Established ipv4 session on the gateway for the nodes that announce it (k8s-2: the nodes with endpoints)"
    );
    // traefik (Cluster) still has k8s-1: not this cause.
    let o = outcomes(&[("172.29.52.200", 80, failed("timed out after 3 s"))]);
    let r = judge(&c, Some(&o), Some(&o));
    assert!(
        !result(&r, "172.29.52.200", 80)
            .causes
            .iter()
            .any(|c| c.contains("no Established")),
        "{}",
        render_table(&r)
    );
}

#[test]
fn a_service_without_ready_endpoints_is_named() {
    let mut c = ctx();
    c.endpoint_slices
        .retain(|s| s.metadata.namespace.as_deref() != Some("media"));
    let o = outcomes(&[("172.29.52.100", 8096, failed("timed out after 3 s"))]);
    let r = judge(&c, Some(&o), Some(&o));
    let t = result(&r, "172.29.52.100", 8096);
    assert!(
        t.causes[0].starts_with("the service has no ready endpoints"),
        "{:#?}",
        t.causes
    );
}

#[test]
fn reached_by_the_gateway_only_points_between_here_and_the_gateway() {
    let here = outcomes(&[("172.29.52.200", 443, failed("timed out after 3 s"))]);
    let gw = outcomes(&[]);
    let r = judge(&ctx(), Some(&here), Some(&gw));
    let t = result(&r, "172.29.52.200", 443);
    assert_eq!(t.result, Status::Fail);
    assert_eq!(
        t.causes,
        ["the gateway reaches it but this machine doesn't: a firewall or a route between here and the gateway (this machine must route 172.29.52.0/24 via the gateway)"]
    );
    assert!(
        render_table(&r).contains(
            "FAIL  172.29.52.200:443 (ingress/traefik, port 443 (websecure)): from here: timed out after 3 s; from the gateway: reached"
        ),
        "{}",
        render_table(&r)
    );
}

#[test]
fn reached_from_here_only_and_kernel_checks_are_named() {
    let mut c = ctx();
    let checks = &mut c.agent.as_mut().unwrap().kernel_checks;
    checks.push(Check {
        name: "l2".into(),
        ok: false,
        warning: false,
        details: vec![
            "172.29.52.9 answers at L2 on br0 from aa:bb (REACHABLE): an L2 announcement is still alive".into(),
            "172.29.52.200 answers at L2 on br0 from aa:bb:cc:dd:ee:ff (REACHABLE): an L2 announcement is still alive".into(),
        ],
    });
    checks.push(Check {
        name: "nat".into(),
        ok: false,
        warning: false,
        details: vec!["192.168.1.0/24 (br0) → pool 172.29.52.0/24: masqueraded".into()],
    });
    let here = outcomes(&[]);
    let gw = outcomes(&[("172.29.52.200", 80, failed("timed out after 3 s"))]);
    let r = judge(&c, Some(&here), Some(&gw));
    let causes = &result(&r, "172.29.52.200", 80).causes;
    assert!(
        causes[0].starts_with("this machine reaches it but the gateway doesn't"),
        "{causes:#?}"
    );
    assert!(
        causes.contains(&"the agent's l2 check fails: 172.29.52.200 answers at L2 on br0 from aa:bb:cc:dd:ee:ff (REACHABLE): an L2 announcement is still alive".to_string()),
        "{causes:#?}"
    );
    assert!(
        causes
            .iter()
            .any(|c| c.starts_with("the agent's nat check fails: 192.168.1.0/24")),
        "{causes:#?}"
    );
}

#[test]
fn a_refusal_means_nothing_listens() {
    let e = "Connection refused (os error 111)";
    let o = outcomes(&[("172.29.52.100", 8096, failed(e))]);
    let r = judge(&ctx(), Some(&o), Some(&o));
    assert!(result(&r, "172.29.52.100", 8096).causes[0]
        .starts_with("the VIP answers with a refusal (TCP reset): the route works"));
}

#[test]
fn vips_outside_the_pools_and_unadvertised_services_are_named() {
    let mut c = ctx();
    let s = c
        .services
        .iter_mut()
        .find(|s| s.metadata.name.as_deref() == Some("jellyfin"))
        .unwrap();
    s.spec.as_mut().unwrap().load_balancer_class = Some("metallb".into());
    s.status
        .as_mut()
        .unwrap()
        .load_balancer
        .as_mut()
        .unwrap()
        .ingress = Some(vec![
        serde_json::from_value(json!({"ip": "172.29.52.60"})).unwrap()
    ]);
    let o = outcomes(&[("172.29.52.60", 8096, failed("timed out after 3 s"))]);
    let r = judge(&c, Some(&o), None);
    let causes = &result(&r, "172.29.52.60", 8096).causes;
    assert_eq!(
        causes[..2],
        [
            "Cilium's BGP does not advertise this service (loadBalancerClass metallb): the gateway gets no route for its VIP".to_string(),
            "the VIP is in the site's disabled pool bgp-reserved: the gateway accepts no route for it".to_string(),
        ],
        "{causes:#?}"
    );
    assert!(!r.from_gateway);
    assert!(result(&r, "172.29.52.60", 8096).gateway.is_none());
    assert!(!probeable(&c.site, "home", "10.0.0.1".parse().unwrap()));
    assert!(probeable(&c.site, "home", "172.29.52.60".parse().unwrap()));
}

#[test]
fn not_tested_and_no_http_answer_are_warnings() {
    let mut gw = outcomes(&[]);
    gw.insert(
        ("172.29.52.100".parse().unwrap(), 8096),
        Outcome::NotTested {
            reason: "the total time limit ran out".into(),
        },
    );
    let mut here = outcomes(&[]);
    here.insert(
        ("172.29.52.200".parse().unwrap(), 80),
        Outcome::Reached {
            millis: 2,
            http: Some(HttpAnswer {
                scheme: Scheme::Http,
                status: None,
                error: Some("invalid HTTP version parsed".into()),
            }),
        },
    );
    let r = judge(&ctx(), Some(&here), Some(&gw));
    assert!(r.ok, "{}", render_table(&r));
    let t = result(&r, "172.29.52.100", 8096);
    assert_eq!(t.result, Status::Warn);
    assert_eq!(
        t.causes,
        ["from the gateway: not tested: the total time limit ran out"]
    );
    let t = result(&r, "172.29.52.200", 80);
    assert_eq!(t.result, Status::Warn);
    assert!(t.causes[0].contains("GET / over http got no HTTP answer"));
}

#[test]
fn a_timeout_with_routes_and_sessions_in_place_points_at_the_nodes() {
    let o = outcomes(&[("172.29.52.200", 80, failed("timed out after 3 s"))]);
    let r = judge(&ctx(), Some(&o), Some(&o));
    assert_eq!(
        result(&r, "172.29.52.200", 80).causes,
        ["timed out with the route and the sessions in place: a firewall on the nodes (a Cilium host policy), or the pods do not answer"]
    );
}

#[test]
fn without_the_agent_the_causes_say_so() {
    let mut c = ctx();
    c.agent = None;
    let o = outcomes(&[("172.29.52.200", 80, failed("timed out after 3 s"))]);
    let r = judge(&c, Some(&o), None);
    assert_eq!(
        result(&r, "172.29.52.200", 80).causes,
        ["unknown: the agent's status is unavailable, so routes and sessions were not checked"]
    );
    assert!(r
        .notes
        .iter()
        .any(|n| n.message.contains("agent's status is unavailable")));
}

#[test]
fn unique_keeps_one_probe_per_address_and_port() {
    let (mut t, _) = targets(&ctx().services);
    let mut dup = t[4].clone();
    dup.name = "jellyfin-alias".into();
    dup.http = Some(Scheme::Http);
    t.push(dup);
    let u = unique(&t);
    assert_eq!(u.len(), 5);
    assert!(u.contains(&("172.29.52.100".parse().unwrap(), 8096, Some(Scheme::Http))));
    // The batches the agent accepts.
    let many: Vec<Target> = (0..150u16)
        .map(|i| Target {
            port: 1000 + i,
            ..t[0].clone()
        })
        .collect();
    assert_eq!(unique(&many).chunks(GATEWAY_BATCH).count(), 3);
}

#[test]
fn the_report_serializes_for_json() {
    let o = outcomes(&[(
        "172.29.52.100",
        8096,
        failed("No route to host (os error 113)"),
    )]);
    let v = serde_json::to_value(judge(&ctx(), Some(&o), Some(&o))).unwrap();
    assert_eq!(v["ok"], false);
    let t = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["port"] == 8096)
        .unwrap();
    assert_eq!(t["here"]["outcome"], "failed");
    assert_eq!(t["gateway"]["error"], "No route to host (os error 113)");
    assert_eq!(t["result"], "fail");
    assert_eq!(t["service"], "media/jellyfin");
}
