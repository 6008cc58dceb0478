//! Monitoring that plugs in (config/monitoring): the Prometheus alert rules pass Prometheus' own
//! `promtool check rules` and their unit tests (`promtool test rules`: every alert fires for its
//! series and stays quiet for the series beside them); the Grafana dashboard is importable and
//! every query of it parses as PromQL; the PrometheusRule manifest carries exactly the plain
//! file's groups (it is generated from it) and validates against the Prometheus Operator's
//! schema; and every `bgplb_*` metric, and every label matched on, that the dashboard and the
//! rules name is in a real scrape of a running agent (sessions established, a report with pools,
//! liveness probing, a node taken down): a typo fails here, not silently in Grafana.
//!
//! promtool comes from Debian's `prometheus` package (scripts/setup installs it); the schema
//! check uses scripts/k8s-tools, as tests/tests/manifests.rs does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bgplb_tests::client::request;
use bgplb_tests::cmd::wait_for;
use bgplb_tests::{Lab, LabSpec};
use serde_json::Value;

const RULES: &str = "config/monitoring/bgplb-rules.yml";
const RULE_TESTS: &str = "config/monitoring/tests/bgplb-rules.test.yml";
const DASHBOARD: &str = "config/monitoring/grafana-dashboard.json";
const MANIFEST: &str = "config/kubernetes/monitoring/prometheusrule.yaml";

/// Set to write the PrometheusRule manifest from the plain rules file instead of comparing.
const UPDATE: &str = "BGPLB_UPDATE_MONITORING";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// Runs `promtool ARGS` in the repository root; panics with its output unless it succeeds, and
/// with the install step when promtool is missing (never a skip: the checks would silently go).
fn promtool(args: &[&str]) -> String {
    let out = match Command::new("promtool")
        .args(args)
        .current_dir(repo())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is missing: run scripts/setup (it installs Debian's `prometheus` package, \
             which has promtool), or `apt-get install -y --no-install-recommends prometheus`"
        ),
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`promtool {}` failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

/// The alerting rules of the plain file, by name.
fn alerts() -> BTreeMap<String, Value> {
    let rules = yaml(RULES);
    let groups = rules["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "one group");
    assert_eq!(groups[0]["name"], "bgplb");
    let mut out = BTreeMap::new();
    for r in groups[0]["rules"].as_array().expect("rules") {
        let name = r["alert"]
            .as_str()
            .expect("only alerting rules")
            .to_string();
        assert!(
            out.insert(name.clone(), r.clone()).is_none(),
            "{name} twice"
        );
    }
    out
}

/// Every `{{ $labels.NAME }}` an annotation of `rule` renders.
fn annotation_labels(rule: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for text in rule["annotations"].as_object().unwrap().values() {
        let mut rest = text.as_str().unwrap();
        while let Some(i) = rest.find("$labels.") {
            rest = &rest[i + "$labels.".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.insert(rest[..end].to_string());
        }
    }
    out
}

#[test]
fn the_rules_pass_promtool_and_every_alert_is_unit_tested() {
    let alerts = alerts();
    let checked = promtool(&["check", "rules", RULES]);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", alerts.len())),
        "{checked}"
    );
    let tested = promtool(&["test", "rules", RULE_TESTS]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    println!("{checked}{tested}");

    for (name, rule) in &alerts {
        assert!(rule["for"].is_string(), "{name} has no `for`");
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for a in ["summary", "description"] {
            assert!(
                rule["annotations"][a]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{name} has no {a}"
            );
        }
    }

    // Every alert has a case where it fires and one where it must not, and the labels its
    // annotations name are labels it really carries (promtool renders a missing one as "").
    let tests = yaml(RULE_TESTS);
    let mut fires: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut quiet: BTreeSet<String> = BTreeSet::new();
    for case in tests["tests"].as_array().expect("tests") {
        for t in case["alert_rule_test"].as_array().into_iter().flatten() {
            let name = t["alertname"].as_str().unwrap().to_string();
            assert!(alerts.contains_key(&name), "the tests name {name}, no rule");
            match t["exp_alerts"].as_array() {
                Some(a) if !a.is_empty() => fires.entry(name).or_default().extend(a.clone()),
                _ => {
                    quiet.insert(name);
                }
            }
        }
    }
    for (name, rule) in &alerts {
        let fired = fires
            .get(name)
            .unwrap_or_else(|| panic!("no test where {name} fires"));
        assert!(quiet.contains(name), "no test where {name} stays quiet");
        for label in annotation_labels(rule) {
            for a in fired {
                assert!(
                    a["exp_labels"][&label].is_string(),
                    "{name}'s annotations name $labels.{label}, which its alert {} lacks",
                    a["exp_labels"]
                );
            }
        }
    }
}

/// Queries: (where, query).
type Queries = Vec<(String, String)>;

/// The dashboard's queries: the panels' (PromQL) and the template variables'
/// (`label_values(...)`, not PromQL).
fn dashboard_queries(d: &Value) -> (Queries, Queries) {
    let mut exprs = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default();
            let at = format!("panel {} ({}) {}", p["id"], p["title"], t["refId"]);
            assert!(!expr.trim().is_empty(), "{at} has no expr");
            exprs.push((at, expr.to_string()));
        }
    }
    let mut variables = Vec::new();
    for v in d["templating"]["list"].as_array().expect("templating") {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .expect("a variable's query");
            variables.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    (exprs, variables)
}

/// Grafana's variables replaced by values PromQL takes.
fn as_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$cluster", ".*")
}

#[test]
fn the_dashboard_is_importable_and_every_query_parses() {
    let d: Value = serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON");
    assert_eq!(d["schemaVersion"], 39);
    assert!(d["uid"].is_string() && d["title"].is_string());
    // Imported through the UI, Grafana asks for DS_PROMETHEUS; every query goes through the
    // `datasource` variable, which the input sets (provisioned as a file: the default Prometheus).
    let inputs = d["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    let vars = d["templating"]["list"].as_array().expect("templating");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("datasource")["current"]["value"], "${DS_PROMETHEUS}");
    assert_eq!(
        var("cluster")["query"]["query"],
        "label_values(bgplb_peer_established, cluster)"
    );
    let ds = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    assert_eq!(var("cluster")["datasource"], ds);

    // Unique ids, each panel inside the 24 columns, none overlapping another.
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or_default().to_string();
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "id {} twice",
            p["id"]
        );
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24 && w > 0 && h > 0, "{title}: {g}");
        for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), title.clone()) {
                    panic!("{title} overlaps {other}");
                }
            }
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"], ds, "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"], ds, "{title}");
        }
    }

    // Every query parses: promtool checks them as recording rules.
    let (exprs, _) = dashboard_queries(&d);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&as_promql(expr)).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yml");
    std::fs::write(&file, rules).unwrap();
    let out = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{out}"
    );
}

/// The PrometheusRule manifest: this head, then the plain file from `groups:` on under `spec:`.
const MANIFEST_HEAD: &str = "\
# Generated from config/monitoring/bgplb-rules.yml, do not edit: after changing that file run
#   BGPLB_UPDATE_MONITORING=1 cargo test -p bgplb-tests --test monitoring prometheusrule
# (tests/tests/monitoring.rs fails while the two differ).
#
# The bgplb agent's alert rules for the Prometheus Operator. The agent runs on the gateway, not in
# the cluster: the rules need a Prometheus that scrapes the gateway's agent.metrics_listen (a
# ScrapeConfig or additionalScrapeConfigs, with a job name containing `bgplb`, e.g. bgplb-agent).
# Add the labels your Prometheus' ruleSelector wants (kube-prometheus-stack: `release: NAME`).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: bgplb-agent
  namespace: bgplb
  labels:
    app.kubernetes.io/name: bgplb-agent
    app.kubernetes.io/part-of: bgplb
spec:
";

fn manifest_from(rules: &str) -> String {
    let start = if rules.starts_with("groups:") {
        0
    } else {
        rules.find("\ngroups:").expect("a top-level `groups:`") + 1
    };
    let mut out = MANIFEST_HEAD.to_string();
    for line in rules[start..].lines() {
        if !line.is_empty() {
            out.push_str("  ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_prometheusrule_manifest_carries_exactly_the_plain_rules() {
    let want = manifest_from(&read(RULES));
    if std::env::var_os(UPDATE).is_some_and(|v| v == "1") {
        std::fs::create_dir_all(repo().join(MANIFEST).parent().unwrap()).unwrap();
        std::fs::write(repo().join(MANIFEST), &want).unwrap();
    }
    let manifest: Value = yaml(MANIFEST);
    assert_eq!(manifest["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(manifest["kind"], "PrometheusRule");
    assert_eq!(
        manifest["spec"]["groups"],
        yaml(RULES)["groups"],
        "{MANIFEST}'s groups differ from {RULES}'s: run {UPDATE}=1 cargo test -p bgplb-tests --test monitoring prometheusrule"
    );
    assert!(
        read(MANIFEST) == want,
        "{MANIFEST} is not the one generated from {RULES}: run {UPDATE}=1 cargo test -p bgplb-tests --test monitoring prometheusrule"
    );

    // The Prometheus Operator's schema takes it (the project's CRD schema, as in manifests.rs).
    let tools = std::env::var_os("BGPLB_K8S_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/k8s-tools"));
    assert!(
        tools
            .join("node_modules/@kubernetes-models/prometheus-operator")
            .is_dir(),
        "the CRD schemas are missing in {}: run scripts/k8s-tools (scripts/test does)",
        tools.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.json");
    let check = |objects: &Value| {
        std::fs::write(&file, objects.to_string()).unwrap();
        let out = Command::new("node")
            .arg(repo().join("tests/k8s/validate-crds.mjs"))
            .arg(&file)
            .env("NODE_PATH", tools.join("node_modules"))
            .output()
            .expect("node runs (apt-get install nodejs)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = check(&Value::Array(vec![manifest.clone()]));
    assert!(ok && out.contains("ok PrometheusRule"), "{out}");
    // The schema does refuse: a number where a duration string belongs.
    let mut bad = manifest;
    bad["spec"]["groups"][0]["rules"][0]["for"] = 5.into();
    let (ok, out) = check(&Value::Array(vec![bad]));
    assert!(!ok, "the schema took `for: 5`: {out}");
}

/// One metric selector in a PromQL expression: the metric and the label names it matches on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Selector {
    metric: String,
    labels: Vec<String>,
}

/// The `bgplb_*` selectors of a PromQL expression (string literals skipped), or of a Grafana
/// `label_values(METRIC, LABEL)` query. Names are taken as written: a histogram's series are
/// `_bucket`, `_sum` and `_count`, a counter's `_total`, as in the exposition.
fn selectors(expr: &str) -> Vec<Selector> {
    if let Some(args) = expr
        .trim()
        .strip_prefix("label_values(")
        .and_then(|a| a.strip_suffix(')'))
    {
        let (metric, label) = args.split_once(',').expect("label_values(METRIC, LABEL)");
        return selectors(metric)
            .into_iter()
            .map(|mut s| {
                s.labels.push(label.trim().to_string());
                s
            })
            .collect();
    }
    let chars: Vec<char> = expr.chars().collect();
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let skip_string = |mut i: usize| {
        let quote = chars[i];
        i += 1;
        while i < chars.len() && chars[i] != quote {
            if chars[i] == '\\' && quote != '`' {
                i += 1;
            }
            i += 1;
        }
        i + 1
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = skip_string(i);
        } else if ident_start(c) && (i == 0 || !(ident(chars[i - 1]) || chars[i - 1] == '$')) {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if !word.starts_with("bgplb_") {
                continue;
            }
            let mut labels = Vec::new();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j < chars.len() && chars[j] == '{' {
                // label op "value", ... }
                j += 1;
                loop {
                    while j < chars.len() && (chars[j].is_whitespace() || chars[j] == ',') {
                        j += 1;
                    }
                    if j >= chars.len() || chars[j] == '}' {
                        break;
                    }
                    let l = j;
                    while j < chars.len() && ident(chars[j]) {
                        j += 1;
                    }
                    assert!(j > l, "cannot read the matchers of {word} in {expr}");
                    labels.push(chars[l..j].iter().collect());
                    while j < chars.len() && !matches!(chars[j], '"' | '\'' | '`') {
                        j += 1;
                    }
                    j = skip_string(j);
                }
                i = j + 1;
            }
            out.push(Selector {
                metric: word,
                labels,
            });
        } else {
            i += 1;
        }
    }
    out
}

/// Every selector the dashboard and the rules use, with where.
fn used() -> Vec<(String, Selector)> {
    let d: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let (exprs, variables) = dashboard_queries(&d);
    let mut out = Vec::new();
    for (at, expr) in exprs.into_iter().chain(variables) {
        for s in selectors(&expr) {
            out.push((format!("{DASHBOARD} {at}"), s));
        }
    }
    for (name, rule) in alerts() {
        for s in selectors(rule["expr"].as_str().unwrap()) {
            out.push((format!("{RULES} {name}"), s));
        }
    }
    out
}

/// The sample names of a Prometheus text exposition, each with the label names it carries.
fn exposed(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_string()).or_default();
        let Some(mut rest) = line[end..].strip_prefix('{') else {
            continue;
        };
        // name="value" pairs; values may hold escaped quotes, commas and braces.
        while let Some((name, after)) = rest.split_once("=\"") {
            labels.insert(name.trim_start_matches(',').trim().to_string());
            let mut chars = after.char_indices();
            let mut close = after.len();
            while let Some((k, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        close = k;
                        break;
                    }
                    _ => {}
                }
            }
            rest = &after[close + 1..];
            if rest.starts_with('}') {
                break;
            }
        }
    }
    out
}

/// What `used` names that `scrape` lacks: a metric with no sample, or a label none of its
/// samples carries.
fn missing(
    used: &[(String, Selector)],
    scrape: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (at, s) in used {
        match scrape.get(&s.metric) {
            None => out.push(format!("{at}: {} (no such sample)", s.metric)),
            Some(labels) => {
                for l in s.labels.iter().filter(|l| !labels.contains(*l)) {
                    out.push(format!("{at}: {}{{{l}}} (it has {labels:?})", s.metric));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn the_selector_reader_finds_names_and_labels_and_skips_strings() {
    let got = selectors(
        r#"sum by (cluster) (rate(bgplb_applies_total{result="failed", cluster=~"$cluster"}[$__rate_interval])) / bgplb_x and up{job=~".*bgplb_y.*"} or histogram_quantile(0.5, sum by (le) (rate(bgplb_h_seconds_bucket[5m])))"#,
    );
    let want = |m: &str, l: &[&str]| Selector {
        metric: m.into(),
        labels: l.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        got,
        vec![
            want("bgplb_applies_total", &["result", "cluster"]),
            want("bgplb_x", &[]),
            want("bgplb_h_seconds_bucket", &[]),
        ]
    );
    assert_eq!(
        selectors("label_values(bgplb_peer_established, cluster)"),
        vec![want("bgplb_peer_established", &["cluster"])]
    );
    let scrape = exposed(
        "# TYPE bgplb_a counter\nbgplb_a_total{result=\"x,\\\"y\\\"\",cluster=\"home\"} 1\nbgplb_b 0\n",
    );
    assert_eq!(
        scrape["bgplb_a_total"],
        BTreeSet::from(["result".to_string(), "cluster".to_string()])
    );
    assert!(scrape["bgplb_b"].is_empty());
}

const URL: &str = "https://172.29.51.1:7443/v1/clusters/home/report";

#[test]
fn every_metric_the_dashboard_and_the_rules_name_is_exposed_by_a_running_agent() {
    let used = used();
    assert!(used.len() > 30, "{used:?}");

    // The agent daemon with the reference site (liveness on), two nodes with IPv4 and IPv6
    // sessions, and a report with pools (the fixture: k8s-2 cordoned, so drained).
    let (lab, _) = Lab::start_with_daemon(
        LabSpec {
            nodes: 2,
            ..LabSpec::default()
        },
        |_| {},
    );
    lab.wait_established(&[
        "172.29.51.11",
        "172.29.51.12",
        "fd47:25e1:2f96:51::11",
        "fd47:25e1:2f96:51::12",
    ]);
    let mut report: Value =
        serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap();
    report["nodes"].as_array_mut().unwrap().truncate(2);
    let a = request(
        &lab.nodes[0].ns,
        Some("companion-home"),
        "PUT",
        URL,
        Some(serde_json::to_vec(&report).unwrap()),
    );
    assert_eq!(a.status(), Some(202), "{a:?}\n{}", lab.daemon_log());
    // Both nodes answer the probes; then k8s-1 loses power: the probes take it down through the
    // fast path (node transitions, fast path writes and their latency get samples).
    wait_for(
        "every node to answer a probe",
        Duration::from_secs(30),
        || {
            let status = lab.agent_status(1);
            let nodes = status["nodes"].as_array()?.clone();
            (nodes.len() == 2 && nodes.iter().all(|n| n["answered"] == true)).then_some(())
        },
    );
    lab.cut_link(0);
    wait_for("k8s-1 to be down", Duration::from_secs(30), || {
        let sample = "bgplb_node_state{cluster=\"home\",node=\"k8s-1\",state=\"down\"} 1";
        lab.agent_metric_text()
            .lines()
            .any(|l| l == sample)
            .then_some(())
    });

    // The check refuses a typo in a metric's name and in a label's.
    let typos = [
        (
            "typo".to_string(),
            selectors("bgplb_peer_establishd == 0")[0].clone(),
        ),
        (
            "typo".to_string(),
            selectors(r#"bgplb_report_stale{clustr="home"}"#)[0].clone(),
        ),
    ];

    // Counters and gauges of a family appear with their first event; wait for them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (text, gaps) = loop {
        let text = lab.agent_metric_text();
        let gaps = missing(&used, &exposed(&text));
        if gaps.is_empty() || Instant::now() > deadline {
            break (text, gaps);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(
        gaps.is_empty(),
        "the dashboard or the rules name what the agent does not expose:\n{}\n\nthe scrape:\n{text}",
        gaps.join("\n")
    );
    let scrape = exposed(&text);
    assert_eq!(missing(&typos, &scrape).len(), 2, "the typos went unseen");
    let names: BTreeSet<&str> = used.iter().map(|(_, s)| s.metric.as_str()).collect();
    println!("{} metrics checked: {names:?}", names.len());

    // BgplbApplyFailed sees the first failure: the counter is there at 0 from the start.
    assert!(
        text.lines()
            .any(|l| l == "bgplb_applies_total{result=\"failed\"} 0"),
        "{text}"
    );

    // BgplbRolledBack: a rollback (the CLI, another process) pins its generation; the gauge
    // says so while it is pinned.
    assert_eq!(lab.agent_metric("bgplb_generation_pinned"), 0.0);
    let generation = lab.agent_metric("bgplb_generation") as i64;
    assert!(generation > 0);
    let out = lab.agent_ok(&["rollback", "--to", &generation.to_string()]);
    assert!(out.contains("pinned to generation"), "{out}");
    assert_eq!(lab.agent_metric("bgplb_generation_pinned"), 1.0);
    lab.agent_ok(&["unpin"]);
    assert_eq!(lab.agent_metric("bgplb_generation_pinned"), 0.0);
}
