//! Source NAT towards the VIPs: would the gateway masquerade traffic from a LAN to a VIP?
//!
//! UniFi OS masquerades traffic towards routed subnets it does not know as a network. Then every
//! connection reaches the service from the gateway's address: the service loses the client's
//! address and `externalTrafficPolicy: Local` loses its point. The check reads the NAT rules the
//! kernel has, from iptables (`iptables-save`, both back ends) and nftables (`nft -j list
//! ruleset`), and walks the postrouting chains for each flow "a host of LAN X → a VIP of pool Y
//! out of the node network's interface", as the kernel would: the first SNAT or MASQUERADE that
//! matches decides. A match it cannot judge (an ipset, a mark, conntrack state) makes the
//! verdict uncertain: a warning that names the rule, never a pass that hides it.
//!
//! Parsing and walking are pure; [`read_rules`] runs the tools.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

/// One flow to judge: from a LAN (`src`, arriving on `in_if`) to a VIP leaving on `out_if`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub src: IpNet,
    pub in_if: String,
    pub dst: IpAddr,
    pub out_if: String,
}

/// What the rules do to a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No rule rewrites the source.
    Kept,
    /// `rule` (as the tool printed it, with where it is) rewrites the source.
    Translated { rule: String },
    /// `rule` would rewrite it if a match bgplb cannot judge (`why`) holds.
    Unsure { rule: String, why: String },
}

/// The NAT rules as read: iptables-save outputs (each with its tool) and nft's JSON ruleset.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `(tool, output)`, e.g. `("iptables-legacy-save", "*nat\n...")`.
    pub iptables: Vec<(String, String)>,
    pub nft: Option<Value>,
    /// Tools that could not be read, with why.
    pub errors: Vec<String>,
}

/// How long a reading serves: the daemon's kernel passes can come many a second.
const RULES_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The NAT rules, read at most once per [`RULES_TTL`] in this process.
pub async fn read_rules() -> Rules {
    static CACHE: std::sync::Mutex<Option<(std::time::Instant, Rules)>> =
        std::sync::Mutex::new(None);
    if let Some((at, rules)) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        if at.elapsed() < RULES_TTL {
            return rules.clone();
        }
    }
    let rules = read_rules_now().await;
    *CACHE.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((std::time::Instant::now(), rules.clone()));
    rules
}

/// Runs the tools that exist: `iptables-save`/`ip6tables-save` for each back end and
/// `nft -j list ruleset`.
async fn read_rules_now() -> Rules {
    let mut rules = Rules::default();
    let mut seen_backends = Vec::new();
    for tool in [
        "iptables-legacy-save",
        "iptables-nft-save",
        "iptables-save",
        "ip6tables-legacy-save",
        "ip6tables-nft-save",
        "ip6tables-save",
    ] {
        let Some(out) = run(tool, &["-t", "nat"], &mut rules.errors).await else {
            continue;
        };
        // iptables-save is one of the two back ends: read each back end once per family.
        let family = if tool.starts_with("ip6") { "6" } else { "4" };
        let backend = if out.contains("iptables-nft") || tool.contains("-nft-") {
            "nft"
        } else {
            "legacy"
        };
        if seen_backends.contains(&(family, backend)) {
            continue;
        }
        seen_backends.push((family, backend));
        rules.iptables.push((tool.to_string(), out));
    }
    if let Some(out) = run("nft", &["-j", "list", "ruleset"], &mut rules.errors).await {
        match serde_json::from_str(&out) {
            Ok(v) => rules.nft = Some(v),
            Err(e) => rules.errors.push(format!("nft -j list ruleset: {e}")),
        }
    }
    rules
}

async fn run(tool: &str, args: &[&str], errors: &mut Vec<String>) -> Option<String> {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::process::Command::new(tool)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match out {
        Ok(Ok(o)) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(Ok(o)) => {
            errors.push(format!(
                "{tool}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            None
        }
        // Not installed: that back end is not in use.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Ok(Err(e)) => {
            errors.push(format!("{tool}: {e}"));
            None
        }
        Err(_) => {
            errors.push(format!("{tool}: no answer within 5 s"));
            None
        }
    }
}

/// What every source of rules does to `flow`: the first translation or uncertainty found.
pub fn judge(rules: &Rules, flow: &Flow) -> Verdict {
    let v6 = flow.dst.is_ipv6();
    let mut unsure = None;
    // iptables-nft keeps its rules in nftables tables too, so they are judged twice (as
    // iptables and as nftables): the same rule gives the same verdict, and a table iptables-nft
    // cannot show (a native `table ip nat`) is still judged.
    for (tool, text) in &rules.iptables {
        if tool.starts_with("ip6") != v6 {
            continue;
        }
        match iptables(tool, text, flow) {
            Verdict::Kept => {}
            t @ Verdict::Translated { .. } => return t,
            u @ Verdict::Unsure { .. } => {
                unsure.get_or_insert(u);
            }
        }
    }
    if let Some(nft_rules) = &rules.nft {
        match nft(nft_rules, flow) {
            Verdict::Kept => {}
            t @ Verdict::Translated { .. } => return t,
            u @ Verdict::Unsure { .. } => {
                unsure.get_or_insert(u);
            }
        }
    }
    unsure.unwrap_or(Verdict::Kept)
}

/// Whether a rule's condition holds for the flow: yes, no, or unknown (with why).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    Yes,
    No,
    Unknown(String),
}

impl Cond {
    fn and(self, other: Cond) -> Cond {
        match (self, other) {
            (Cond::No, _) | (_, Cond::No) => Cond::No,
            (Cond::Unknown(a), _) => Cond::Unknown(a),
            (_, Cond::Unknown(b)) => Cond::Unknown(b),
            _ => Cond::Yes,
        }
    }

    fn negate(self, negated: bool) -> Cond {
        match (self, negated) {
            (Cond::Yes, true) => Cond::No,
            (Cond::No, true) => Cond::Yes,
            (c, _) => c,
        }
    }
}

/// A source network against a rule's network: all of it inside is a match, none of it is not;
/// part of it counts as a match (some hosts of the LAN are translated).
fn net_cond(rule: &IpNet, flow: &IpNet) -> Cond {
    if rule.contains(flow) {
        Cond::Yes
    } else if flow.contains(rule) {
        Cond::Unknown(format!("{rule}, part of {flow}"))
    } else {
        Cond::No
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// An interface name against a pattern (iptables `+` and nft `*` are wildcards at the end).
fn iface_cond(pattern: &str, name: &str) -> Cond {
    let hit = match pattern
        .strip_suffix('+')
        .or_else(|| pattern.strip_suffix('*'))
    {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    };
    if hit {
        Cond::Yes
    } else {
        Cond::No
    }
}

/// Splits an iptables-save line into words (double quotes group, as iptables-save writes them).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One iptables rule: its condition for the flow, and where it goes.
struct IptRule {
    line: String,
    cond: Cond,
    jump: Option<String>,
    goto: bool,
}

fn ipt_rule(line: &str, flow: &Flow) -> IptRule {
    let w = words(line);
    let mut cond = Cond::Yes;
    let mut jump = None;
    let mut goto = false;
    let mut negated = false;
    let mut i = 2; // after "-A CHAIN"
    while i < w.len() {
        let arg = w[i].as_str();
        let value = w.get(i + 1).map(String::as_str).unwrap_or("");
        let mut take = 2;
        let c = match arg {
            "!" => {
                negated = true;
                i += 1;
                continue;
            }
            "-s" | "--source" => parse_net(value).map_or_else(
                || Cond::Unknown(format!("source `{value}`")),
                |n| net_cond(&n, &flow.src),
            ),
            "-d" | "--destination" => parse_net(value).map_or_else(
                || Cond::Unknown(format!("destination `{value}`")),
                |n| {
                    if n.contains(&flow.dst) {
                        Cond::Yes
                    } else {
                        Cond::No
                    }
                },
            ),
            "-o" | "--out-interface" => iface_cond(value, &flow.out_if),
            "-i" | "--in-interface" => iface_cond(value, &flow.in_if),
            "-p" | "--protocol" => match value {
                "tcp" | "all" | "6" => Cond::Yes,
                _ => Cond::No,
            },
            "-j" => {
                jump = Some(value.to_string());
                Cond::Yes
            }
            "-g" => {
                jump = Some(value.to_string());
                goto = true;
                Cond::Yes
            }
            "-m" => {
                // A match module: comment and tcp/multiport are harmless; anything else's
                // options follow and are judged unknown below.
                Cond::Yes
            }
            "--comment" => Cond::Yes,
            // Options of the tcp/udp match (ports): connections to any service port.
            "--dport" | "--sport" | "--dports" | "--sports" | "--destination-port"
            | "--source-port" => Cond::Unknown(format!("{arg} {value}")),
            "--to-source" | "--to-ports" | "--random" | "--random-fully" | "--persistent" => {
                if matches!(arg, "--random" | "--random-fully" | "--persistent") {
                    take = 1;
                }
                Cond::Yes
            }
            other if other.starts_with("--") => {
                // An option of a match module bgplb does not judge (set, mark, conntrack,
                // addrtype, policy, ...): the words up to the next option are its value.
                let mut j = i + 1;
                let mut v = Vec::new();
                while j < w.len() && !w[j].starts_with('-') && w[j] != "!" {
                    v.push(w[j].clone());
                    j += 1;
                }
                take = j - i;
                Cond::Unknown(format!("{other} {}", v.join(" ")).trim().to_string())
            }
            _ => Cond::Yes,
        };
        cond = cond.and(c.negate(negated));
        negated = false;
        i += take;
    }
    IptRule {
        line: line.to_string(),
        cond,
        jump,
        goto,
    }
}

/// The `nat` table of an iptables-save output: chain → rules in order.
fn ipt_nat(text: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut chains = std::collections::BTreeMap::new();
    let mut in_nat = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(t) = line.strip_prefix('*') {
            in_nat = t == "nat";
        } else if !in_nat {
        } else if let Some(c) = line.strip_prefix(':') {
            let name = c.split_whitespace().next().unwrap_or("").to_string();
            chains.entry(name).or_insert_with(Vec::new);
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let chain = rest.split_whitespace().next().unwrap_or("").to_string();
            chains
                .entry(chain)
                .or_insert_with(Vec::new)
                .push(line.to_string());
        }
    }
    chains
}

fn iptables(tool: &str, text: &str, flow: &Flow) -> Verdict {
    let chains = ipt_nat(text);
    if !chains.contains_key("POSTROUTING") {
        return Verdict::Kept;
    }
    let mut ctx = Ctx::default();
    match ipt_walk(tool, &chains, "POSTROUTING", flow, 0, &mut ctx) {
        Walk::Translated(rule) => Verdict::Translated { rule },
        Walk::Return | Walk::Stop => ctx.unsure.unwrap_or(Verdict::Kept),
    }
}

/// What a walk learnt besides its result: the first translation it could not be sure of, and
/// why the rest of the walk is uncertain (a RETURN, ACCEPT or jump whose match bgplb cannot
/// judge: the traffic may have left, or a subchain may have run).
#[derive(Default)]
struct Ctx {
    unsure: Option<Verdict>,
    tainted: Option<String>,
}

impl Ctx {
    fn unsure(&mut self, rule: String, why: String) {
        if self.unsure.is_none() {
            self.unsure = Some(Verdict::Unsure { rule, why });
        }
    }

    fn taint(&mut self, why: String) {
        self.tainted.get_or_insert(why);
    }

    /// A translation that matches: certain, unless an earlier uncertain rule came first.
    fn translated(&mut self, rule: String) -> Option<Walk> {
        match self.tainted.clone() {
            Some(why) => {
                self.unsure(
                    rule,
                    format!("{why}, in an earlier rule that may take the traffic elsewhere"),
                );
                None
            }
            None => Some(Walk::Translated(rule)),
        }
    }
}

enum Walk {
    /// Left the chain at its end or by RETURN.
    Return,
    /// ACCEPT or another final verdict without translation.
    Stop,
    Translated(String),
}

const MAX_DEPTH: usize = 16;

fn ipt_walk(
    tool: &str,
    chains: &std::collections::BTreeMap<String, Vec<String>>,
    chain: &str,
    flow: &Flow,
    depth: usize,
    ctx: &mut Ctx,
) -> Walk {
    if depth > MAX_DEPTH {
        return Walk::Return;
    }
    for line in chains.get(chain).into_iter().flatten() {
        let rule = ipt_rule(line, flow);
        let Some(target) = rule.jump.as_deref() else {
            continue;
        };
        let translating = matches!(target, "MASQUERADE" | "SNAT");
        let describe = || format!("{tool}: {}", rule.line);
        match rule.cond {
            Cond::No => continue,
            Cond::Unknown(why) => {
                // Judged as not matching: the walk goes on, the uncertainty is kept.
                match target {
                    _ if translating => ctx.unsure(describe(), why),
                    t if chains.contains_key(t) => {
                        ctx.taint(why);
                        let _ = ipt_walk(tool, chains, t, flow, depth + 1, ctx);
                    }
                    "RETURN" | "ACCEPT" | "DROP" | "REJECT" => ctx.taint(why),
                    _ => {}
                }
                continue;
            }
            Cond::Yes => {}
        }
        match target {
            "MASQUERADE" | "SNAT" => match ctx.translated(describe()) {
                Some(w) => return w,
                None => continue,
            },
            "RETURN" => return Walk::Return,
            "ACCEPT" | "DROP" | "REJECT" => return Walk::Stop,
            t if chains.contains_key(t) => match ipt_walk(tool, chains, t, flow, depth + 1, ctx) {
                Walk::Return if !rule.goto => continue,
                Walk::Return => return Walk::Return,
                w => return w,
            },
            // LOG, MARK, ...: non-terminating.
            _ => continue,
        }
    }
    Walk::Return
}

/// nftables: every base chain of type nat on the postrouting hook of the flow's family, by
/// priority.
fn nft(ruleset: &Value, flow: &Flow) -> Verdict {
    let items: Vec<&Value> = ruleset["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let family_ok = |f: &str| match f {
        "inet" => true,
        "ip" => flow.dst.is_ipv4(),
        "ip6" => flow.dst.is_ipv6(),
        _ => false,
    };
    let mut bases: Vec<(i64, String, String, String)> = items
        .iter()
        .filter_map(|i| i.get("chain"))
        .filter(|c| c["type"] == "nat" && c["hook"] == "postrouting")
        .filter_map(|c| {
            let family = c["family"].as_str()?;
            let table = c["table"].as_str()?;
            family_ok(family).then(|| {
                (
                    c["prio"].as_i64().unwrap_or(0),
                    family.to_string(),
                    table.to_string(),
                    c["name"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect();
    bases.sort();
    let mut ctx = Ctx::default();
    for (_, family, table, chain) in &bases {
        if let Walk::Translated(rule) = nft_walk(&items, family, table, chain, flow, 0, &mut ctx) {
            return Verdict::Translated { rule };
        }
    }
    ctx.unsure.unwrap_or(Verdict::Kept)
}

fn nft_walk(
    items: &[&Value],
    family: &str,
    table: &str,
    chain: &str,
    flow: &Flow,
    depth: usize,
    ctx: &mut Ctx,
) -> Walk {
    if depth > MAX_DEPTH {
        return Walk::Return;
    }
    let rules = items
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter(|r| r["family"] == family && r["table"] == table && r["chain"] == chain);
    for rule in rules {
        let exprs: Vec<&Value> = rule["expr"].as_array().into_iter().flatten().collect();
        let mut cond = Cond::Yes;
        let mut action: Option<(&str, Option<&str>)> = None;
        for e in &exprs {
            if let Some(m) = e.get("match") {
                cond = cond.and(nft_match(m, flow));
            } else if e.get("masquerade").is_some() || e.get("snat").is_some() {
                action = Some(("translate", None));
            } else if e.get("return").is_some() {
                action = Some(("return", None));
            } else if e.get("accept").is_some() || e.get("drop").is_some() {
                action = Some(("stop", None));
            } else if let Some(j) = e.get("jump") {
                action = Some(("jump", j["target"].as_str()));
            } else if let Some(g) = e.get("goto") {
                action = Some(("goto", g["target"].as_str()));
            } else if e.get("counter").is_some() || e.get("log").is_some() {
            } else if e.get("vmap").is_some() {
                // A verdict map: it may jump, return or accept by a key bgplb does not judge.
                ctx.taint("an nft verdict map (vmap)".into());
            } else if let Some((key, _)) = e.as_object().and_then(|o| o.iter().next()) {
                if action.is_none() {
                    cond = cond.and(Cond::Unknown(format!("nft expression `{key}`")));
                }
            }
        }
        let Some((what, target)) = action else {
            continue;
        };
        let describe = || {
            format!(
                "nft: table {family} {table} chain {chain} handle {}: {}",
                rule["handle"],
                nft_text(&exprs)
            )
        };
        match cond {
            Cond::No => continue,
            Cond::Unknown(why) => {
                match (what, target) {
                    ("translate", _) => ctx.unsure(describe(), why),
                    ("jump" | "goto", Some(t)) => {
                        ctx.taint(why);
                        let _ = nft_walk(items, family, table, t, flow, depth + 1, ctx);
                    }
                    _ => ctx.taint(why),
                }
                continue;
            }
            Cond::Yes => {}
        }
        match (what, target) {
            ("translate", _) => match ctx.translated(describe()) {
                Some(w) => return w,
                None => continue,
            },
            ("return", _) => return Walk::Return,
            ("stop", _) => return Walk::Stop,
            (kind, Some(t)) => match nft_walk(items, family, table, t, flow, depth + 1, ctx) {
                Walk::Return if kind == "jump" => continue,
                w => return w,
            },
            _ => continue,
        }
    }
    Walk::Return
}

/// An nft `match` expression against the flow.
fn nft_match(m: &Value, flow: &Flow) -> Cond {
    let op = m["op"].as_str().unwrap_or("==");
    let negated = op == "!=";
    let left = &m["left"];
    let right = &m["right"];
    let c = if let Some(p) = left.get("payload") {
        let field = p["field"].as_str().unwrap_or("");
        let proto = p["protocol"].as_str().unwrap_or("");
        // In an inet table, a match on the other family's header never holds, negated or not.
        if (proto == "ip" && flow.dst.is_ipv6()) || (proto == "ip6" && flow.dst.is_ipv4()) {
            return Cond::No;
        }
        match (proto, field) {
            ("ip" | "ip6", "saddr") => nets(right).map_or_else(
                || Cond::Unknown(format!("{proto} saddr {right}")),
                |ns| any(ns.iter().map(|n| net_cond(n, &flow.src))),
            ),
            ("ip" | "ip6", "daddr") => nets(right).map_or_else(
                || Cond::Unknown(format!("{proto} daddr {right}")),
                |ns| {
                    any(ns.iter().map(|n| {
                        if n.contains(&flow.dst) {
                            Cond::Yes
                        } else {
                            Cond::No
                        }
                    }))
                },
            ),
            _ => Cond::Unknown(format!("{proto} {field}")),
        }
    } else if let Some(meta) = left.get("meta") {
        match meta["key"].as_str().unwrap_or("") {
            "oifname" => names(right).map_or_else(
                || Cond::Unknown(format!("oifname {right}")),
                |ns| any(ns.iter().map(|n| iface_cond(n, &flow.out_if))),
            ),
            "iifname" => names(right).map_or_else(
                || Cond::Unknown(format!("iifname {right}")),
                |ns| any(ns.iter().map(|n| iface_cond(n, &flow.in_if))),
            ),
            "l4proto" | "protocol" => names(right).map_or_else(
                || Cond::Unknown(format!("l4proto {right}")),
                |ns| {
                    if ns
                        .iter()
                        .any(|n| matches!(n.as_str(), "tcp" | "6" | "ip" | "ip6" | "ipv4" | "ipv6"))
                    {
                        Cond::Yes
                    } else {
                        Cond::No
                    }
                },
            ),
            key => Cond::Unknown(format!("meta {key}")),
        }
    } else {
        Cond::Unknown(format!("match {left}"))
    };
    c.negate(negated)
}

fn any(conds: impl Iterator<Item = Cond>) -> Cond {
    let mut out = Cond::No;
    for c in conds {
        match c {
            Cond::Yes => return Cond::Yes,
            Cond::Unknown(w) => out = Cond::Unknown(w),
            Cond::No => {}
        }
    }
    out
}

/// Networks of an nft right-hand side: an address, a prefix, a set of them.
fn nets(v: &Value) -> Option<Vec<IpNet>> {
    if let Some(s) = v.as_str() {
        return parse_net(s).map(|n| vec![n]);
    }
    if let Some(p) = v.get("prefix") {
        let addr: IpAddr = p["addr"].as_str()?.parse().ok()?;
        let len = u8::try_from(p["len"].as_u64()?).ok()?;
        return IpNet::new(addr, len).ok().map(|n| vec![n.trunc()]);
    }
    if let Some(set) = v.get("set").and_then(Value::as_array) {
        let mut out = Vec::new();
        for e in set {
            out.extend(nets(e)?);
        }
        return Some(out);
    }
    None
}

/// Names of an nft right-hand side; `None` (not judged) for a named set (`@lan_ifs`) or a set
/// of something else than names.
fn names(v: &Value) -> Option<Vec<String>> {
    if let Some(s) = v.as_str() {
        return (!s.starts_with('@')).then(|| vec![s.to_string()]);
    }
    let set = v.get("set").and_then(Value::as_array)?;
    set.iter()
        .map(|e| e.as_str().filter(|s| !s.starts_with('@')).map(String::from))
        .collect()
}

/// A short text of a rule's expressions, for the message.
fn nft_text(exprs: &[&Value]) -> String {
    exprs
        .iter()
        .filter(|e| e.get("counter").is_none())
        .map(|e| {
            if let Some(m) = e.get("match") {
                let left = &m["left"];
                let l = if let Some(p) = left.get("payload") {
                    format!(
                        "{} {}",
                        p["protocol"].as_str().unwrap_or(""),
                        p["field"].as_str().unwrap_or("")
                    )
                } else if let Some(meta) = left.get("meta") {
                    meta["key"].as_str().unwrap_or("meta").to_string()
                } else {
                    left.to_string()
                };
                let r = match nets(&m["right"]) {
                    Some(ns) => ns
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    None => m["right"].to_string().trim_matches('"').to_string(),
                };
                let op = m["op"].as_str().unwrap_or("==");
                if op == "==" || op == "in" {
                    format!("{l} {r}")
                } else {
                    format!("{l} {op} {r}")
                }
            } else if let Some((k, _)) = e.as_object().and_then(|o| o.iter().next()) {
                k.clone()
            } else {
                e.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The flows to judge: from every LAN of the gateway (an interface address that is not the
/// node network, the segment, loopback, link-local or the way out to the internet) to the first
/// address of every pool block, leaving on the interface that reaches the nodes that may
/// announce it: the pool's own cluster's (`nodes` holds each node address with its cluster), or
/// any cluster's for a pool every cluster may use.
pub fn flows(
    site: &bgplb_site::Site,
    state: &crate::kstate::KernelState,
    nodes: &[(&str, IpAddr)],
) -> Vec<(String, Flow)> {
    let on_link = |ip: IpAddr| {
        state
            .addresses
            .iter()
            .find(|a| a.net.contains(&ip) && a.net.prefix_len() < a.net.max_prefix_len())
    };
    // The interface of a default route's gateway, in any table (UniFi OS keeps them in tables of
    // their own, e.g. 201.eth8): the WAN. A link-local next hop (IPv6) names no interface by its
    // address, so it is left out rather than guessed.
    let wan: Vec<u32> = state
        .routes
        .iter()
        .filter(|r| r.dst.prefix_len() == 0)
        .flat_map(|r| r.nexthops.iter())
        .filter(|g| !matches!(g, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
        .filter_map(|g| on_link(*g).map(|a| a.index))
        .collect();
    let segment: Vec<IpNet> = [site.segment.ipv4, site.segment.ipv6]
        .into_iter()
        .flatten()
        .collect();
    let mut out = Vec::new();
    for pool in &site.pools {
        for block in &pool.blocks {
            let Ok(range) = bgplb_site::Range::parse(block) else {
                continue;
            };
            let dst = range.start;
            let Some(node_if) = nodes
                .iter()
                .filter(|(c, _)| pool.cluster.as_deref().is_none_or(|p| p == *c))
                .filter(|(_, n)| n.is_ipv4() == dst.is_ipv4())
                .find_map(|(_, n)| on_link(*n))
            else {
                continue;
            };
            let out_if = state.link_name(node_if.index);
            for a in &state.addresses {
                let lan = a.net.trunc();
                let usable = a.net.addr().is_ipv4() == dst.is_ipv4()
                    && !a.net.addr().is_loopback()
                    && a.index != node_if.index
                    && !wan.contains(&a.index)
                    && !segment.iter().any(|s| s.contains(&a.net.addr()))
                    && !matches!(a.net.addr(), IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
                    && a.net.prefix_len() < a.net.max_prefix_len();
                if usable {
                    out.push((
                        pool.name.clone(),
                        Flow {
                            src: lan,
                            in_if: state.link_name(a.index),
                            dst,
                            out_if: out_if.clone(),
                        },
                    ));
                }
            }
        }
    }
    out
}

/// The `nat` row of `validate`.
pub fn check(flows: &[(String, Flow)], rules: &Rules, segment: &[IpNet]) -> crate::netcheck::Check {
    use crate::netcheck::Check;
    // What was read, briefly: iptables-legacy, iptables-nft, nft.
    let mut read: Vec<String> = rules
        .iptables
        .iter()
        .map(|(t, text)| {
            let nft = t.contains("-nft-") || text.contains("iptables-nft");
            if nft {
                "iptables-nft"
            } else {
                "iptables-legacy"
            }
            .to_string()
        })
        .chain(rules.nft.as_ref().map(|_| "nft".to_string()))
        .collect();
    read.sort();
    read.dedup();
    if read.is_empty() {
        let mut details = vec!["could not read the NAT rules (no iptables-save or nft answered): source NAT towards the VIPs is not checked".to_string()];
        details.extend(rules.errors.iter().cloned());
        return Check::warn("nat", details);
    }
    if flows.is_empty() {
        return Check::new(
            "nat",
            true,
            vec!["no LAN besides the node network and the segment, or no node on a link of the gateway yet: nothing judged".into()],
        );
    }
    let mut translated = Vec::new();
    let mut unsure = Vec::new();
    for (pool, flow) in flows {
        let what = format!(
            "{} ({}) → pool {pool} ({}, out of {})",
            flow.src, flow.in_if, flow.dst, flow.out_if
        );
        match judge(rules, flow) {
            Verdict::Kept => {}
            Verdict::Translated { rule } => {
                translated.push(format!("{what}: masqueraded by `{rule}`"))
            }
            Verdict::Unsure { rule, why } => unsure.push(format!(
                "{what}: `{rule}` masquerades it if `{why}` matches (bgplb cannot judge that match)"
            )),
        }
    }
    if !translated.is_empty() {
        // The exemption in the language of the rule that masquerades.
        let native = translated
            .iter()
            .any(|t| t.contains("masqueraded by `nft: "));
        let legacy = translated
            .iter()
            .any(|t| t.contains("tables-legacy-save: "));
        let exempt = segment
            .iter()
            .map(|n| {
                let v4 = n.addr().is_ipv4();
                if native {
                    let field = if v4 { "ip daddr" } else { "ip6 daddr" };
                    format!("`nft insert rule FAMILY TABLE CHAIN {field} {n} return` (the table and chain named above)")
                } else {
                    let tool = match (v4, legacy) {
                        (true, false) => "iptables",
                        (false, false) => "ip6tables",
                        (true, true) => "iptables-legacy",
                        (false, true) => "ip6tables-legacy",
                    };
                    format!("`{tool} -t nat -I POSTROUTING -d {n} -j RETURN`")
                }
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let mut details = translated;
        details.push("services see the gateway's address instead of the client's (externalTrafficPolicy: Local loses its point)".into());
        details.push(format!("fix: make the LB segment a UniFi network (VLAN 52) and set segment.mode = \"adopt\", so UniFi OS knows it and stops masquerading; or exempt the segment before that rule: {exempt} (UniFi OS drops it at its next re-provision)"));
        details.extend(unsure);
        return Check::new("nat", false, details);
    }
    // What could not be read may hold a masquerade: say so.
    let unread: Vec<String> = rules
        .errors
        .iter()
        .map(|e| format!("not read: {e}"))
        .collect();
    if !unsure.is_empty() || !unread.is_empty() {
        let mut details = unsure;
        details.extend(unread);
        return Check::warn("nat", details);
    }
    let mut lans: Vec<String> = flows.iter().map(|(_, f)| f.src.to_string()).collect();
    lans.sort();
    lans.dedup();
    Check::new(
        "nat",
        true,
        vec![format!(
            "traffic from {} to the pools keeps its source address (read: {})",
            lans.join(", "),
            read.join(", ")
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow {
            src: "192.168.1.0/24".parse().unwrap(),
            in_if: "br0".into(),
            dst: "172.29.52.100".parse().unwrap(),
            out_if: "br51".into(),
        }
    }

    fn ipt(text: &str) -> Verdict {
        judge(
            &Rules {
                iptables: vec![("iptables-save".into(), text.into())],
                ..Rules::default()
            },
            &flow(),
        )
    }

    /// A pool of one cluster is judged on the way to that cluster's nodes, not another's.
    #[test]
    fn a_pool_flows_towards_its_own_clusters_nodes() {
        use crate::kstate::{Address, KernelState, Link};
        let mut site = bgplb_site::parse(include_str!("../../config/site.toml")).unwrap();
        let mut lab = site.clusters[0].clone();
        lab.name = "lab".into();
        site.clusters.push(lab);
        site.pools.truncate(1);
        site.pools[0].cluster = Some("lab".into());
        let link = |index: u32, name: &str| Link {
            index,
            name: name.into(),
            alias: None,
            up: true,
            vlan: None,
            kind: None,
        };
        let state = KernelState {
            links: vec![link(2, "br0"), link(3, "br51"), link(4, "br60")],
            addresses: [
                (2, "192.168.1.1/24"),
                (3, "172.29.51.1/24"),
                (4, "10.60.0.1/24"),
            ]
            .into_iter()
            .map(|(index, net)| Address {
                index,
                net: net.parse().unwrap(),
            })
            .collect(),
            routes: Vec::new(),
            neighbours: Vec::new(),
        };
        let nodes = [
            ("home", "172.29.51.11".parse().unwrap()),
            ("lab", "10.60.0.11".parse().unwrap()),
        ];
        let got = flows(&site, &state, &nodes);
        assert!(!got.is_empty());
        assert!(got.iter().all(|(_, f)| f.out_if == "br60"), "{got:?}");
        // A pool every cluster may use: the first node on a link.
        site.pools[0].cluster = None;
        let got = flows(&site, &state, &nodes);
        assert!(!got.is_empty());
        assert!(got.iter().all(|(_, f)| f.out_if == "br51"), "{got:?}");
    }

    #[test]
    fn a_masquerade_towards_the_node_network_translates() {
        let v = ipt("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -s 192.168.1.0/24 -o br51 -j MASQUERADE\nCOMMIT\n");
        assert!(matches!(v, Verdict::Translated { rule } if rule.contains("-o br51")));
    }

    #[test]
    fn a_return_for_the_segment_first_keeps_the_source() {
        let v = ipt("*nat\n:POSTROUTING ACCEPT [0:0]\n:UBIOS_POSTROUTING_USER_HOOK - [0:0]\n-A POSTROUTING -j UBIOS_POSTROUTING_USER_HOOK\n-A UBIOS_POSTROUTING_USER_HOOK -d 172.29.52.0/24 -j RETURN\n-A POSTROUTING ! -d 172.29.52.0/24 -o br+ -j MASQUERADE\nCOMMIT\n");
        assert_eq!(v, Verdict::Kept);
        // A RETURN in a user chain only leaves that chain: the next rule still applies.
        let v = ipt("*nat\n:POSTROUTING ACCEPT [0:0]\n:HOOK - [0:0]\n-A POSTROUTING -j HOOK\n-A HOOK -d 172.29.52.0/24 -j RETURN\n-A POSTROUTING -o br+ -j MASQUERADE\nCOMMIT\n");
        assert!(matches!(v, Verdict::Translated { .. }), "{v:?}");
    }

    #[test]
    fn other_interfaces_sources_and_negations_do_not_match() {
        for rule in [
            "-A POSTROUTING -o eth8 -j MASQUERADE",
            "-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE",
            "-A POSTROUTING ! -o br+ -j MASQUERADE",
            "-A POSTROUTING -p udp -j MASQUERADE",
            "-A POSTROUTING -d 172.29.52.0/24 -j ACCEPT\n-A POSTROUTING -j MASQUERADE",
        ] {
            let v = ipt(&format!(
                "*nat\n:POSTROUTING ACCEPT [0:0]\n{rule}\nCOMMIT\n"
            ));
            assert_eq!(v, Verdict::Kept, "{rule}");
        }
    }

    #[test]
    fn a_match_bgplb_cannot_judge_is_a_warning_not_a_pass() {
        let v = ipt("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -m set ! --match-set UBIOS_ALL_NETv4 dst -m comment --comment \"lan masq\" -j MASQUERADE\nCOMMIT\n");
        assert!(
            matches!(&v, Verdict::Unsure { why, .. } if why.contains("--match-set")),
            "{v:?}"
        );
    }

    #[test]
    fn an_uncertain_return_or_jump_makes_what_follows_uncertain() {
        // kube-proxy's shape: unmarked traffic returns, marked traffic is masqueraded.
        let v = ipt("*nat\n:POSTROUTING ACCEPT [0:0]\n:KUBE-POSTROUTING - [0:0]\n-A POSTROUTING -j KUBE-POSTROUTING\n-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n-A KUBE-POSTROUTING -j MASQUERADE --random-fully\nCOMMIT\n");
        assert!(
            matches!(&v, Verdict::Unsure { why, .. } if why.contains("--mark")),
            "{v:?}"
        );
        // A masquerade in a chain only some traffic jumps to is not a pass.
        let v = ipt("*nat\n:POSTROUTING ACCEPT [0:0]\n:LAN_MASQ - [0:0]\n-A POSTROUTING -m mark --mark 0x1/0x1 -j LAN_MASQ\n-A LAN_MASQ -j MASQUERADE\nCOMMIT\n");
        assert!(matches!(&v, Verdict::Unsure { .. }), "{v:?}");
        // Part of the LAN is not all of it.
        let v = ipt("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING ! -s 192.168.1.128/25 -o br51 -j MASQUERADE\nCOMMIT\n");
        assert!(matches!(&v, Verdict::Unsure { .. }), "{v:?}");
    }

    #[test]
    fn nft_named_sets_and_the_other_family_are_judged_right() {
        let rule = |exprs: serde_json::Value| {
            serde_json::json!({"nftables": [
                {"chain": {"family": "inet", "table": "t", "name": "post", "type": "nat", "hook": "postrouting", "prio": 100}},
                {"rule": {"family": "inet", "table": "t", "chain": "post", "handle": 1, "expr": exprs}}
            ]})
        };
        let judge_nft = |ruleset| {
            judge(
                &Rules {
                    nft: Some(ruleset),
                    ..Rules::default()
                },
                &flow(),
            )
        };
        // oifname @lan_ifs: a named set bgplb cannot see.
        let v = judge_nft(rule(serde_json::json!([
            {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "@lan_ifs"}},
            {"masquerade": null}
        ])));
        assert!(matches!(v, Verdict::Unsure { .. }), "{v:?}");
        // ip6 daddr != X on an IPv4 flow never matches.
        let v = judge_nft(rule(serde_json::json!([
            {"match": {"op": "!=", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "fd00::1"}},
            {"masquerade": null}
        ])));
        assert_eq!(v, Verdict::Kept);
    }

    #[test]
    fn nft_rules_are_walked_by_priority() {
        let ruleset = serde_json::json!({"nftables": [
            {"table": {"family": "inet", "name": "lab"}},
            {"chain": {"family": "inet", "table": "lab", "name": "post", "type": "nat", "hook": "postrouting", "prio": 100}},
            {"rule": {"family": "inet", "table": "lab", "chain": "post", "handle": 4, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "192.168.0.0", "len": 16}}}},
                {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "br51"}},
                {"counter": {"packets": 0, "bytes": 0}},
                {"masquerade": null}
            ]}}
        ]});
        let v = judge(
            &Rules {
                nft: Some(ruleset.clone()),
                ..Rules::default()
            },
            &flow(),
        );
        assert!(
            matches!(&v, Verdict::Translated { rule } if rule.contains("inet lab chain post") && rule.contains("ip saddr 192.168.0.0/16 oifname br51 masquerade")),
            "{v:?}"
        );
        // Another interface: not this rule.
        let mut other = flow();
        other.out_if = "eth8".into();
        assert_eq!(
            judge(
                &Rules {
                    nft: Some(ruleset),
                    ..Rules::default()
                },
                &other
            ),
            Verdict::Kept
        );
    }
}
