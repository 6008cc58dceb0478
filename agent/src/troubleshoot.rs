//! `bgplb-agent troubleshoot`: a support bundle. The CLI runs every check (`status`'s and
//! `validate`'s); this module gathers what someone helping needs to see (versions, the site
//! file, status and checks, FRR's configuration and BGP tables, the kernel's routes, neighbours,
//! links and NAT rules, generations, events, logs), passes every file's text through one
//! [`Scrubber`] as it is added, writes the files (0600) into a private temporary directory and
//! packs them with the system's `tar -czf` into one tar.gz (0600) whose entries sit in a
//! directory named like the bundle.
//!
//! Why `tar` and not a tar and gzip writer of our own: GNU tar is on Debian and UniFi OS, no
//! crate joins the static aarch64 build, and the logs get real compression. A gateway without it
//! is told so before any check runs (exit code 74).
//!
//! Never included: the BGP password file, the UniFi API key file, the TLS key files and the state
//! database (its generations hold the password); `--log` refuses them.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bgplb_site::Site;
use ipnet::IpNet;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::error::Error;
use crate::kstate::{protocol_name, KernelState};
use crate::netcheck::Validation;
use crate::redact::Scrubber;
use crate::status::Status;
use crate::store::{Outcome, Store};
use crate::vtysh::Vtysh;

/// Each log is cut to its last this many bytes.
pub const LOG_LIMIT: u64 = 5 * 1024 * 1024;
/// How many generations and events the bundle lists.
pub const GENERATIONS: usize = 50;
pub const EVENTS: usize = 200;
/// The longest one helper program (journalctl, uname, nft) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// What every file in the bundle is, for README.txt (the logs are described there apart).
const DESCRIPTIONS: &[(&str, &str)] = &[
    ("README.txt", "this file"),
    (
        "versions.txt",
        "bgplb, FRR (`show version`), the kernel, the OS and, on a UniFi console, its firmware",
    ),
    ("site.toml", "the site file as found"),
    ("status.json", "what `bgplb-agent status --json` prints"),
    (
        "validate.json",
        "every check (`validate`'s, and the state database's)",
    ),
    ("frr/running-config.txt", "FRR's `show running-config`"),
    ("frr/show-bgp-summary.json", "`show bgp summary json`"),
    ("frr/show-bgp-neighbors.json", "`show bgp neighbors json`"),
    ("frr/show-bgp-ipv4.json", "`show bgp ipv4 unicast json`"),
    ("frr/show-bgp-ipv6.json", "`show bgp ipv6 unicast json`"),
    (
        "kernel/routes.json",
        "routes towards the pools, the segment and the node subnets, and default routes, every table",
    ),
    (
        "kernel/neighbours.json",
        "ARP/NDP entries in the node subnets, the segment and the pools",
    ),
    ("kernel/links.json", "every link with its addresses"),
    (
        "kernel/nat.txt",
        "`iptables-save -t nat` (each back end, both families) and `nft list ruleset`",
    ),
    (
        "generations.json",
        "the last 50 generations: source, outcome, error (the vtysh script of failed ones), no configurations",
    ),
    (
        "generation-current.conf",
        "the current generation's configuration",
    ),
    ("events.json", "the last 200 events"),
];

/// Where the bundle goes: the file and the directory its entries sit in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    /// The top-level directory inside the archive: the bundle's name without `.tar.gz`.
    pub top: String,
}

/// `bgplb-support-<gateway>-<UTC timestamp>.tar.gz`.
pub fn default_name(gateway: &str, at: OffsetDateTime) -> String {
    let stamp = at
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| at.unix_timestamp().to_string());
    format!("bgplb-support-{}-{stamp}.tar.gz", file_safe(gateway))
}

/// `name` with everything but letters, digits, `.`, `_` and `-` replaced by `_`.
fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.trim_start_matches('.') {
        "" => "gateway".to_string(),
        s => s.to_string(),
    }
}

impl Target {
    /// The bundle's file: `out` (an existing directory: the default name in it), else the default
    /// name in the current directory. Fails (exit code 74) when its directory does not exist or
    /// `tar` is missing, before anything runs.
    pub fn new(gateway: &str, out: Option<&Path>, at: OffsetDateTime) -> Result<Target, Error> {
        let name = default_name(gateway, at);
        let path = match out {
            None => PathBuf::from(&name),
            Some(dir) if dir.is_dir() => dir.join(&name),
            Some(file) => file.to_path_buf(),
        };
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(String::from)
            .unwrap_or_default();
        let stem = file_name
            .strip_suffix(".tar.gz")
            .or_else(|| file_name.strip_suffix(".tgz"))
            .unwrap_or(&file_name);
        let top = if stem.is_empty() {
            "bgplb-support".to_string()
        } else {
            file_safe(stem)
        };
        let dir = parent_dir(&path);
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Io {
                    what: "cannot write the support bundle: not a directory:",
                    path: dir,
                    source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
                })
            }
            Err(e) => return Err(Error::io("cannot write the support bundle into", dir)(e)),
        }
        if !in_path("tar") {
            return Err(Error::Io {
                what: "cannot write the support bundle",
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "`tar` is not installed; it packs the bundle (`apt-get install tar`)",
                ),
            });
        }
        Ok(Target { path, top })
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether `program` is an executable file in `$PATH`.
fn in_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The secrets the site names, and what the bundle must never include.
pub struct Secrets {
    pub scrubber: Scrubber,
    /// What was scrubbed by value, for README.txt.
    pub redacted: Vec<String>,
    /// Files that are never included, with what they are.
    pub never: Vec<(PathBuf, &'static str)>,
}

impl Secrets {
    /// Reads the BGP password file, the UniFi API key file and the TLS key files: their contents
    /// are scrubbed wherever they appear (the keys' PEM blocks are anyway).
    pub fn read(site: &Site) -> Secrets {
        let mut values: Vec<String> = Vec::new();
        let mut redacted = Vec::new();
        let mut never = Vec::new();
        let secret_files = [
            (
                site.bgp.password_file.as_deref(),
                "the BGP password",
                "the BGP password file",
            ),
            (
                site.agent.unifi.as_ref().map(|u| u.api_key_file.as_path()),
                "the UniFi API key",
                "the UniFi API key file",
            ),
        ];
        for (path, what, file) in secret_files {
            let Some(path) = path else { continue };
            never.push((path.to_path_buf(), file));
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    values.push(text);
                    redacted.push(format!(
                        "{what} (the contents of {}), wherever it appears",
                        path.display()
                    ));
                }
                Err(e) => redacted.push(format!(
                    "{what}: {} could not be read ({e}), so it is not scrubbed by value (the file is not included)",
                    path.display()
                )),
            }
        }
        let tls_dir = parent_dir(&site.agent.tls.key);
        for (key, what) in [
            (site.agent.tls.key.clone(), "the agent's TLS key"),
            (tls_dir.join(crate::pki::CA_KEY), "the CA's key"),
        ] {
            never.push((key.clone(), what));
            // Every line of the key's body too, in case something printed it without its
            // PEM lines.
            if let Ok(text) = std::fs::read_to_string(&key) {
                values.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                        .map(String::from),
                );
            }
        }
        let db = site.agent.data_dir.join("state.db");
        for suffix in ["", "-wal", "-journal", "-shm"] {
            never.push((
                PathBuf::from(format!("{}{suffix}", db.display())),
                "the state database (its generations hold the BGP password)",
            ));
        }
        Secrets {
            scrubber: Scrubber::new(values),
            redacted,
            never,
        }
    }

    /// Why `path` must not be in the bundle, if it must not.
    fn refuses(&self, path: &Path) -> Option<&'static str> {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.never.iter().find_map(|(p, what)| {
            let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            (p == real).then_some(*what)
        })
    }
}

/// A `--log` file: added, or left out with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    Include(PathBuf),
    Refused(PathBuf, &'static str),
}

/// Checks the `--log` files before anything runs: one that cannot be read is bad input (exit
/// code 64); a secret file is left out with a note.
pub fn check_logs(secrets: &Secrets, logs: &[PathBuf]) -> Result<Vec<LogSource>, Error> {
    logs.iter()
        .map(|path| {
            let meta = std::fs::metadata(path)
                .map_err(|e| Error::Usage(format!("--log {}: {e}", path.display())))?;
            if meta.is_dir() {
                return Err(Error::Usage(format!(
                    "--log {}: is a directory (name the log file)",
                    path.display()
                )));
            }
            std::fs::File::open(path)
                .map_err(|e| Error::Usage(format!("--log {}: {e}", path.display())))?;
            Ok(match secrets.refuses(path) {
                Some(what) => LogSource::Refused(path.clone(), what),
                None => LogSource::Include(path.clone()),
            })
        })
        .collect()
}

/// The bundle's files (path inside the bundle, text), each scrubbed as it is added.
pub struct Contents {
    scrubber: Scrubber,
    files: Vec<(String, String)>,
    /// What the files without a fixed name (the logs) are, for README.txt.
    described: Vec<(String, String)>,
}

impl Contents {
    pub fn new(scrubber: Scrubber) -> Contents {
        Contents {
            scrubber,
            files: Vec::new(),
            described: Vec::new(),
        }
    }

    /// Adds a file with what it is.
    pub fn add_described(&mut self, path: &str, text: &str, what: String) {
        self.add(path, text);
        self.described.push((path.to_string(), what));
    }

    fn description(&self, path: &str) -> Option<String> {
        DESCRIPTIONS
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, what)| what.to_string())
            .or_else(|| {
                self.described
                    .iter()
                    .find(|(p, _)| p == path)
                    .map(|(_, what)| what.clone())
            })
    }

    /// Adds a file; its text goes through the scrubber. An empty text gets a line saying so.
    pub fn add(&mut self, path: &str, text: &str) {
        let text = if text.trim().is_empty() {
            "(empty)\n".to_string()
        } else {
            self.scrubber.scrub(text)
        };
        self.files.push((path.to_string(), text));
    }

    /// Adds a JSON file.
    pub fn add_json<T: Serialize + ?Sized>(&mut self, path: &str, value: &T) {
        let text = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| json!({ "error": e.to_string() }).to_string());
        self.add(path, &format!("{text}\n"));
    }

    /// Adds a JSON file holding only why it could not be filled.
    pub fn add_error(&mut self, path: &str, error: &str) {
        self.add_json(path, &json!({ "error": error }));
    }

    /// Scrubs text meant for the terminal the same way.
    pub fn scrub(&self, text: &str) -> String {
        self.scrubber.scrub(text)
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(p, _)| p.as_str())
    }

    pub fn files(&self) -> &[(String, String)] {
        &self.files
    }

    fn has(&self, path: &str) -> bool {
        self.files.iter().any(|(p, _)| p == path)
    }
}

/// What the bundle is made from.
pub struct Inputs<'a> {
    pub site: &'a Site,
    /// The site file's path.
    pub config: &'a Path,
    pub vtysh: &'a Vtysh,
    /// What `status` shows, or why it could not be read.
    pub status: &'a Result<Status, String>,
    /// Every check.
    pub validation: &'a Validation,
    pub logs: &'a [LogSource],
    pub secrets: &'a Secrets,
    pub at: OffsetDateTime,
}

/// Gathers every file. Nothing here fails: what cannot be read is said in the file that would
/// have held it.
pub async fn gather(inputs: &Inputs<'_>) -> Contents {
    let mut c = Contents::new(inputs.secrets.scrubber.clone());
    c.add("versions.txt", &versions(inputs.vtysh).await);
    c.add(
        "site.toml",
        &match std::fs::read_to_string(inputs.config) {
            Ok(text) => format!(
                "# {}, as `bgplb-agent troubleshoot` found it (secrets redacted)\n{text}",
                inputs.config.display()
            ),
            Err(e) => format!("# cannot read {}: {e}\n", inputs.config.display()),
        },
    );
    match inputs.status {
        Ok(s) => c.add_json("status.json", s),
        Err(e) => c.add_error("status.json", e),
    }
    c.add_json("validate.json", inputs.validation);
    frr(&mut c, inputs.vtysh).await;
    kernel(&mut c, inputs.site).await;
    history(&mut c, inputs.site);
    logs(&mut c, inputs.logs).await;
    c.add("README.txt", &readme(inputs, &c));
    c
}

async fn versions(vtysh: &Vtysh) -> String {
    let mut out = format!("bgplb-agent {}\n", env!("CARGO_PKG_VERSION"));
    let mut section = |title: &str, body: Result<String, String>| {
        out.push_str(&format!("\n== {title} ==\n"));
        match body {
            Ok(text) if !text.trim().is_empty() => out.push_str(text.trim_end()),
            Ok(_) => out.push_str("(printed nothing)"),
            Err(e) => out.push_str(&format!("not available: {e}")),
        }
        out.push('\n');
    };
    section(
        "FRR (vtysh -c 'show version')",
        vtysh
            .show_text("show version")
            .await
            .map_err(|e| e.to_string()),
    );
    let kernel = match command("uname", &["-a"]).await {
        Ok(text) => ("kernel (uname -a)", Ok(text)),
        Err(_) => (
            "kernel (/proc/version)",
            std::fs::read_to_string("/proc/version").map_err(|e| e.to_string()),
        ),
    };
    section(kernel.0, kernel.1);
    section(
        "OS (/etc/os-release)",
        std::fs::read_to_string("/etc/os-release").map_err(|e| e.to_string()),
    );
    if let Ok(firmware) = std::fs::read_to_string("/usr/lib/version") {
        section("UniFi OS firmware (/usr/lib/version)", Ok(firmware));
    }
    out
}

async fn frr(c: &mut Contents, vtysh: &Vtysh) {
    match vtysh.running().await {
        Ok(r) => c.add("frr/running-config.txt", &r.config),
        Err(e) => c.add(
            "frr/running-config.txt",
            &format!("error: `show running-config` failed: {e}\n"),
        ),
    }
    let shows = [
        ("frr/show-bgp-summary.json", "show bgp summary json"),
        ("frr/show-bgp-neighbors.json", "show bgp neighbors json"),
        ("frr/show-bgp-ipv4.json", "show bgp ipv4 unicast json"),
        ("frr/show-bgp-ipv6.json", "show bgp ipv6 unicast json"),
    ];
    let commands: Vec<String> = shows.iter().map(|(_, cmd)| cmd.to_string()).collect();
    match vtysh.show_json::<serde_json::Value>(&commands).await {
        Ok(values) => {
            for ((file, _), value) in shows.iter().zip(values) {
                c.add_json(file, &value);
            }
        }
        Err(e) => {
            for (file, cmd) in shows {
                c.add_error(file, &format!("`{cmd}` failed: {e}"));
            }
        }
    }
}

/// The networks the kernel files are about: the segment, the pools, the node subnets.
fn interesting(site: &Site) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = [site.segment.ipv4, site.segment.ipv6]
        .into_iter()
        .flatten()
        .collect();
    nets.extend(
        crate::netcheck::pool_ranges(site)
            .iter()
            .flat_map(|r| r.cidrs()),
    );
    nets.extend(
        site.clusters
            .iter()
            .flat_map(|c| c.node_subnets.iter().copied()),
    );
    // Pools inside the segment add nothing to it.
    let all = nets.clone();
    nets.retain(|n| !all.iter().any(|o| o != n && o.contains(n)));
    nets.sort();
    nets.dedup();
    nets
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// routes.json, neighbours.json and links.json from the kernel's state.
pub fn kernel_files(state: &KernelState, nets: &[IpNet]) -> [serde_json::Value; 3] {
    let routes: Vec<serde_json::Value> = state
        .routes
        .iter()
        .filter(|r| r.dst.prefix_len() == 0 || nets.iter().any(|n| overlaps(n, &r.dst)))
        .map(|r| {
            json!({
                "table": r.table,
                "dst": r.dst,
                "kind": r.kind,
                "protocol": protocol_name(r.protocol),
                "metric": r.metric,
                "nexthops": r.nexthops,
            })
        })
        .collect();
    let neighbours: Vec<serde_json::Value> = state
        .neighbours
        .iter()
        .filter(|n| nets.iter().any(|net| net.contains(&n.ip)))
        .map(|n| {
            json!({
                "ip": n.ip,
                "link": state.link_name(n.index),
                "mac": n.mac,
                "state": n.state,
            })
        })
        .collect();
    let links: Vec<serde_json::Value> = state
        .links
        .iter()
        .map(|l| {
            json!({
                "index": l.index,
                "name": l.name,
                "alias": l.alias,
                "up": l.up,
                "kind": l.kind,
                "vlan": l.vlan.map(|(id, parent)| json!({"id": id, "parent": state.link_name(parent)})),
                "addresses": state
                    .addresses
                    .iter()
                    .filter(|a| a.index == l.index)
                    .map(|a| a.net)
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let selection: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
    [
        json!({ "towards": selection, "default_routes": true, "routes": routes }),
        json!({ "in": selection, "neighbours": neighbours }),
        json!({ "links": links }),
    ]
}

async fn kernel(c: &mut Contents, site: &Site) {
    let files = [
        "kernel/routes.json",
        "kernel/neighbours.json",
        "kernel/links.json",
    ];
    let state = match crate::kernel::Kernel::connect() {
        Ok(k) => k.read().await,
        Err(e) => Err(e),
    };
    match state {
        Ok(state) => {
            for (file, value) in files.iter().zip(kernel_files(&state, &interesting(site))) {
                c.add_json(file, &value);
            }
        }
        Err(e) => {
            for file in files {
                c.add_error(file, &format!("cannot read the kernel's state: {e}"));
            }
        }
    }
    c.add("kernel/nat.txt", &nat().await);
}

async fn nat() -> String {
    let rules = crate::nat::read_rules().await;
    let mut out = String::new();
    for (tool, text) in &rules.iptables {
        out.push_str(&format!("== {tool} -t nat ==\n{}\n\n", text.trim_end()));
    }
    if rules.iptables.is_empty() {
        out.push_str("== iptables-save -t nat ==\nno iptables-save found\n\n");
    }
    out.push_str("== nft list ruleset ==\n");
    match command("nft", &["list", "ruleset"]).await {
        Ok(text) if text.trim().is_empty() => out.push_str("(no rules)\n"),
        Ok(text) => out.push_str(text.trim_end()),
        Err(e) => out.push_str(&format!("not available: {e}\n")),
    }
    if !rules.errors.is_empty() {
        out.push_str("\n\n== could not be read ==\n");
        for e in &rules.errors {
            out.push_str(&format!("{e}\n"));
        }
    }
    out
}

fn history(c: &mut Contents, site: &Site) {
    let read = || -> Result<_, Error> {
        let store = Store::open(&site.agent.data_dir.join("state.db"))?;
        Ok((
            store.history(GENERATIONS)?,
            store.current()?,
            store.events(EVENTS)?,
        ))
    };
    match read() {
        Ok((generations, current, events)) => {
            let current_number = current.as_ref().map(|g| g.number);
            let list: Vec<serde_json::Value> = generations
                .iter()
                .map(|g| {
                    json!({
                        "number": g.number,
                        "current": Some(g.number) == current_number,
                        "created_at": g.created_at,
                        "source": g.source,
                        "outcome": g.outcome,
                        "error": g.error,
                        "changes": g.changes,
                        "hash": g.hash,
                        "restores": g.restores,
                        "rolled_back_to": g.rolled_back_to,
                        "duration_ms": g.duration_ms,
                        // What FRR was asked to do when it went wrong.
                        "script": (g.outcome == Outcome::Failed).then_some(&g.script),
                    })
                })
                .collect();
            c.add_json("generations.json", &list);
            match current {
                Some(g) => c.add(
                    "generation-current.conf",
                    &format!(
                        "! generation {} ({}, from {}, config {})\n{}",
                        g.number, g.created_at, g.source, g.hash, g.config
                    ),
                ),
                None => c.add(
                    "generation-current.conf",
                    "! no generation applied yet (`bgplb-agent apply`)\n",
                ),
            }
            c.add_json("events.json", &events);
        }
        Err(e) => {
            let e = format!("cannot read the state database: {e}");
            c.add_error("generations.json", &e);
            c.add("generation-current.conf", &format!("! {e}\n"));
            c.add_error("events.json", &e);
        }
    }
}

/// `bytes` (the end of something `skipped` bytes longer) cut to its last [`LOG_LIMIT`] bytes
/// from a line start, with a line saying what was left out.
fn bounded(bytes: &[u8], skipped: u64, what: &str) -> String {
    let mut skipped = skipped;
    let mut bytes = bytes;
    if bytes.len() as u64 > LOG_LIMIT {
        let cut = bytes.len() - LOG_LIMIT as usize;
        skipped += cut as u64;
        bytes = &bytes[cut..];
    }
    if skipped > 0 {
        // Start at a whole line.
        if let Some(nl) = bytes.iter().position(|b| *b == b'\n') {
            skipped += nl as u64 + 1;
            bytes = &bytes[nl + 1..];
        }
        format!(
            "[bgplb troubleshoot: the first {skipped} bytes of {what} are left out: the bundle keeps the last {} MB of each log]\n{}",
            LOG_LIMIT / 1024 / 1024,
            String::from_utf8_lossy(bytes)
        )
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// The last [`LOG_LIMIT`] bytes of a file.
fn read_tail(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let skip = len.saturating_sub(LOG_LIMIT);
    f.seek(SeekFrom::Start(skip))?;
    let mut buf = Vec::new();
    f.take(LOG_LIMIT).read_to_end(&mut buf)?;
    Ok(bounded(&buf, skip, &path.display().to_string()))
}

async fn logs(c: &mut Contents, sources: &[LogSource]) {
    let journal = "logs/journal-bgplb-agent.txt";
    let note = "add the agent's log with --log FILE if it is kept elsewhere";
    let journal_what = "the agent's journal (`journalctl -u bgplb-agent -n 2000`)";
    match command_bytes(
        "journalctl",
        &["-u", "bgplb-agent", "--no-pager", "-n", "2000"],
    )
    .await
    {
        Ok(out) => c.add_described(
            journal,
            &format!(
                "# journalctl -u bgplb-agent --no-pager -n 2000\n{}",
                bounded(&out, 0, "the journal")
            ),
            journal_what.into(),
        ),
        Err(e) => c.add_described(
            journal,
            &format!("# the agent's journal is not available: {e}; {note}\n"),
            format!("{journal_what}: not available, says why"),
        ),
    }
    for source in sources {
        let path = match source {
            LogSource::Include(p) | LogSource::Refused(p, _) => p,
        };
        let base = path
            .file_name()
            .map(|n| file_safe(&n.to_string_lossy()))
            .unwrap_or_else(|| "log".into());
        let mut name = format!("logs/{base}");
        let mut n = 2;
        while c.has(&name) {
            name = format!("logs/{base}-{n}");
            n += 1;
        }
        match source {
            LogSource::Include(p) => {
                let what = format!("--log {} (its last 5 MB)", p.display());
                match read_tail(p) {
                    Ok(text) => c.add_described(&name, &text, what),
                    Err(e) => c.add_described(
                        &name,
                        &format!("# cannot read {}: {e}\n", p.display()),
                        what,
                    ),
                }
            }
            LogSource::Refused(p, what) => c.add_described(
                &name,
                &format!(
                    "# {} is not included: it is {what}, which never leaves the gateway\n",
                    p.display()
                ),
                format!("--log {}: not included ({what})", p.display()),
            ),
        }
    }
}

fn readme(inputs: &Inputs<'_>, c: &Contents) -> String {
    let when = inputs
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let v = inputs.validation;
    let fail = v.checks.iter().filter(|c| !c.ok).count();
    let warn = v.checks.iter().filter(|c| c.ok && c.warning).count();
    let mut out = format!(
        "bgplb support bundle\n\
         ====================\n\n\
         Made by `bgplb-agent troubleshoot` (bgplb {}) on gateway {} (host {host}) at {when},\n\
         from the site file {}.\n\n\
         Checks: {} ok, {warn} warning(s), {fail} failed (validate.json; status.json for sessions,\n\
         pools and VIPs).\n\nFiles:\n",
        env!("CARGO_PKG_VERSION"),
        inputs.site.gateway.name,
        inputs.config.display(),
        v.checks.len() - fail - warn,
    );
    let mut paths: Vec<&str> = c.paths().collect();
    paths.push("README.txt");
    for p in paths {
        let what = c.description(p).unwrap_or_default();
        out.push_str(&format!("  {p:<32} {what}\n"));
    }
    // Not "password" followed by a word: the rule would redact its own description.
    out.push_str(
        "\nRedacted in every file (the logs and FRR's output included) before it was written:\n  \
         - the word after `password` in FRR's `neighbor` lines: shows as <redacted>\n",
    );
    for r in &inputs.secrets.redacted {
        out.push_str(&format!("  - {r}: shows as <redacted>\n"));
    }
    out.push_str(
        "  - every PEM private key block (from its BEGIN ... PRIVATE KEY line to its END line), and\n    \
         the body of the agent's and the CA's TLS keys: shows as <redacted private key> or <redacted>\n\n\
         Never included: the BGP password file, the UniFi API key file, the TLS key files and the\n\
         state database (its generations hold the password).\n\n\
         A command that failed (FRR not answering, a tool missing, a file unreadable) is noted in\n\
         the file that would have held its output; the bundle is written either way.\n",
    );
    out
}

/// A helper program's standard output, or why there is none.
async fn command_bytes(program: &str, args: &[&str]) -> Result<Vec<u8>, String> {
    let run = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(COMMAND_TIMEOUT, run).await {
        Ok(Ok(o)) if o.status.success() => Ok(o.stdout),
        Ok(Ok(o)) => Err(format!(
            "`{program}` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("`{program}` is not installed"))
        }
        Ok(Err(e)) => Err(format!("cannot run `{program}`: {e}")),
        Err(_) => Err(format!(
            "`{program}` gave no answer within {} s",
            COMMAND_TIMEOUT.as_secs()
        )),
    }
}

async fn command(program: &str, args: &[&str]) -> Result<String, String> {
    command_bytes(program, args)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A private temporary directory (0700), removed when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new() -> Result<Staging, Error> {
        let base = std::env::temp_dir();
        let mut attempt = 0;
        loop {
            let dir = base.join(format!(
                "bgplb-troubleshoot-{}-{:08x}",
                std::process::id(),
                fastrand::u32(..)
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Staging(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 10 => {
                    attempt += 1;
                }
                Err(e) => return Err(Error::io("cannot create a private directory", dir)(e)),
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `path` readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(text.as_bytes())
    })()
    .map_err(Error::io("cannot write", path))
}

/// Writes the files into a private temporary directory and packs them into `target` with
/// `tar -czf` (0600, written beside it and renamed over it when complete).
pub async fn write(contents: &Contents, target: &Target) -> Result<(), Error> {
    let staging = Staging::new()?;
    let root = staging.0.join(&target.top);
    for (rel, text) in contents.files() {
        let path = root.join(rel);
        let dir = path.parent().unwrap_or(&root);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io("cannot create", dir))?;
        write_private(&path, text)?;
    }
    let what = "cannot write the support bundle";
    let name = target
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let tmp = parent_dir(&target.path).join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::io(what, &target.path))?;
    let packed = async {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let out = tokio::process::Command::new("tar")
            .arg("-czf")
            .arg("-")
            .arg("-C")
            .arg(&staging.0)
            // The bundle's name may start with `-`.
            .arg("--")
            .arg(&target.top)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Not `output()`: it would pipe standard output instead of writing the file.
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    std::io::Error::new(
                        e.kind(),
                        "`tar` is not installed; it packs the bundle (`apt-get install tar`)",
                    )
                } else {
                    std::io::Error::new(e.kind(), format!("cannot run `tar`: {e}"))
                }
            })?
            .wait_with_output()
            .await?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "`tar -czf` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        file.sync_all()?;
        std::fs::rename(&tmp, &target.path)?;
        std::fs::File::open(parent_dir(&target.path))?.sync_all()
    }
    .await;
    if let Err(e) = packed {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(what, &target.path)(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kstate::{Address, Link, Neighbour, Route, RouteKind};

    #[test]
    fn the_default_name_says_gateway_and_utc_time() {
        let at = time::macros::datetime!(2026-03-14 10:15:09 +01:00);
        assert_eq!(
            default_name("udm-pro", at),
            "bgplb-support-udm-pro-20260314T091509Z.tar.gz"
        );
        assert_eq!(
            default_name("../my gw", at),
            "bgplb-support-_my_gw-20260314T091509Z.tar.gz"
        );
    }

    #[test]
    fn the_target_is_the_default_name_in_a_directory_or_the_file_given() {
        let dir = tempfile::tempdir().unwrap();
        let at = time::macros::datetime!(2026-03-14 10:15:09 UTC);
        let t = Target::new("gw", Some(dir.path()), at).unwrap();
        assert_eq!(
            t.path,
            dir.path().join("bgplb-support-gw-20260314T101509Z.tar.gz")
        );
        assert_eq!(t.top, "bgplb-support-gw-20260314T101509Z");
        let t = Target::new("gw", Some(&dir.path().join("case-42.tgz")), at).unwrap();
        assert_eq!(t.top, "case-42");
        let err = Target::new("gw", Some(&dir.path().join("no/such/x.tar.gz")), at).unwrap_err();
        assert_eq!(err.exit_code(), 74, "{err}");
    }

    #[test]
    fn logs_keep_their_last_bytes_from_a_line_start() {
        let small = bounded(b"one\ntwo\n", 0, "x");
        assert_eq!(small, "one\ntwo\n");
        let cut = bounded(b"partial line\nwhole line\n", 100, "/var/log/frr.log");
        assert!(
            cut.starts_with("[bgplb troubleshoot: the first 113 bytes of /var/log/frr.log"),
            "{cut}"
        );
        assert!(cut.ends_with("]\nwhole line\n"), "{cut}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let line = "0123456789abcdef0123456789abcdef0123456789abcdef012345678\n";
        let lines = (LOG_LIMIT as usize / line.len()) + 100;
        std::fs::write(&path, line.repeat(lines)).unwrap();
        let tail = read_tail(&path).unwrap();
        let body = &tail[tail.find("]\n").unwrap() + 2..];
        assert!(body.len() as u64 <= LOG_LIMIT && body.len() as u64 > LOG_LIMIT - 100);
        assert!(
            body.lines().all(|l| l.len() == line.len() - 1),
            "whole lines only"
        );
    }

    #[test]
    fn the_kernel_files_hold_what_concerns_the_pools_segment_and_nodes() {
        let state = KernelState {
            links: vec![Link {
                index: 2,
                name: "br51".into(),
                alias: None,
                up: true,
                vlan: None,
                kind: Some("bridge".into()),
            }],
            addresses: vec![Address {
                index: 2,
                net: "172.29.51.1/24".parse().unwrap(),
            }],
            routes: [
                "0.0.0.0/0",
                "172.29.52.100/32",
                "10.9.0.0/16",
                "172.29.51.0/24",
            ]
            .iter()
            .map(|d| Route {
                table: 254,
                dst: d.parse().unwrap(),
                protocol: 186,
                kind: RouteKind::Unicast,
                metric: 20,
                nexthops: vec![],
            })
            .collect(),
            neighbours: ["172.29.51.11", "192.168.1.20"]
                .iter()
                .map(|ip| Neighbour {
                    index: 2,
                    ip: ip.parse().unwrap(),
                    mac: Some("02:00:00:00:00:01".into()),
                    state: "REACHABLE".into(),
                })
                .collect(),
        };
        let site = bgplb_site::parse(include_str!("../../config/site.toml")).unwrap();
        let nets: Vec<String> = interesting(&site).iter().map(|n| n.to_string()).collect();
        assert_eq!(
            nets,
            [
                "172.29.51.0/24",
                "172.29.52.0/24",
                "fd47:25e1:2f96:51::/64",
                "fd47:25e1:2f96:52::/64"
            ],
            "the pools are inside the segment"
        );
        let [routes, neighbours, links] = kernel_files(&state, &interesting(&site));
        let dsts: Vec<&str> = routes["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dst"].as_str().unwrap())
            .collect();
        assert_eq!(dsts, ["0.0.0.0/0", "172.29.52.100/32", "172.29.51.0/24"]);
        assert_eq!(routes["routes"][0]["protocol"], "bgp");
        let n = neighbours["neighbours"].as_array().unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0]["link"], "br51");
        assert_eq!(links["links"][0]["addresses"][0], "172.29.51.1/24");
    }

    #[test]
    fn secret_files_are_never_logs_and_a_missing_log_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("bgp-password");
        std::fs::write(&password, "s3cret\n").unwrap();
        let log = dir.path().join("frr.log");
        std::fs::write(&log, "bgpd started\n").unwrap();
        let mut site = bgplb_site::parse(include_str!("../../config/site.toml")).unwrap();
        site.bgp.password_file = Some(password.clone());
        site.agent.data_dir = dir.path().join("data");
        let secrets = Secrets::read(&site);
        assert_eq!(secrets.scrubber.scrub("pw s3cret."), "pw <redacted>.");
        let checked = check_logs(&secrets, &[log.clone(), password.clone()]).unwrap();
        assert_eq!(
            checked,
            [
                LogSource::Include(log),
                LogSource::Refused(password, "the BGP password file")
            ]
        );
        let err = check_logs(&secrets, &[dir.path().join("nope.log")]).unwrap_err();
        assert_eq!(err.exit_code(), 64, "{err}");
    }

    #[tokio::test]
    async fn the_bundle_is_a_private_tar_gz_with_one_top_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target {
            path: dir.path().join("b.tar.gz"),
            top: "b".into(),
        };
        let mut c = Contents::new(Scrubber::new(["hunter22"]));
        c.add("versions.txt", "bgplb\n");
        c.add("logs/x.log", "the key is hunter22\n");
        c.add("empty.txt", "");
        write(&c, &target).await.unwrap();
        let mode = std::fs::metadata(&target.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let out = std::process::Command::new("tar")
            .args(["-tvzf"])
            .arg(&target.path)
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        for entry in ["b/versions.txt", "b/logs/x.log", "b/empty.txt"] {
            let line = listing
                .lines()
                .find(|l| l.ends_with(entry))
                .unwrap_or_else(|| panic!("{entry} not in {listing}"));
            assert!(line.starts_with("-rw-------"), "{line}");
        }
        let unpacked = dir.path().join("u");
        std::fs::create_dir(&unpacked).unwrap();
        let ok = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&target.path)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(ok.success());
        assert_eq!(
            std::fs::read_to_string(unpacked.join("b/logs/x.log")).unwrap(),
            "the key is <redacted>\n"
        );
        assert_eq!(
            std::fs::read_to_string(unpacked.join("b/empty.txt")).unwrap(),
            "(empty)\n"
        );
        // Nothing left beside the bundle.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
