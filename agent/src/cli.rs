//! The command line: one subcommand per operator task. Errors print as one sentence plus detail
//! and map to exit codes in [`crate::Error::exit_code`] (64: invalid site file).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::apply::{Applied, Applier};
use crate::desired;
use crate::error::Error;
use crate::kernel::Kernel;
use crate::redact::redact;
use crate::status;
use crate::store::{Outcome, Source, Store};
use crate::vtysh::Vtysh;
use crate::{checks, netcheck};

#[derive(Debug, Parser)]
#[command(
    name = "bgplb-agent",
    version,
    about = "The gateway side of bgplb: BGP for Kubernetes LoadBalancer IPs, applied to FRR"
)]
pub struct Cli {
    /// Site file.
    #[arg(
        long,
        short,
        global = true,
        env = "BGPLB_CONFIG",
        default_value = "/data/bgplb/site.toml"
    )]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Make a CA and the agent's server certificate (for the listen address, the gateway's
    /// addresses and every --name) in the site's TLS directory.
    Init {
        /// Where to write (default: the directory of agent.tls.cert).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Another name or address the agent is reached by (repeatable).
        #[arg(long = "name")]
        names: Vec<String>,
        /// Replace an existing CA (every certificate it issued stops working).
        #[arg(long)]
        force: bool,
    },
    /// Issue a client certificate from the CA: for a cluster's companion or the operator.
    Issue {
        /// The cluster whose companion reports with it (URI SAN spiffe://bgplb/cluster/NAME).
        #[arg(
            long,
            required_unless_present = "operator",
            conflicts_with = "operator"
        )]
        cluster: Option<String>,
        /// The operator's identity (sees every cluster's status).
        #[arg(long)]
        operator: bool,
        /// The CA's directory (default: the directory of agent.tls.cert).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Write NAME.crt, NAME.key and ca.crt into DIR (default: the CA's directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print a Kubernetes Secret (tls.crt, tls.key, ca.crt) for the companion instead.
        #[arg(long, conflicts_with = "out")]
        secret: bool,
        /// The Secret's namespace.
        #[arg(long, default_value = "bgplb")]
        namespace: String,
        /// The Secret's name (what the companion's Deployment mounts).
        #[arg(long, default_value = "bgplb-companion-tls")]
        secret_name: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the site file and print every problem with its key.
    CheckConfig,
    /// Print the complete desired FRR configuration (also what the UniFi BGP upload takes). Touches nothing.
    Render {
        /// The FRR release to render for, e.g. 7.5 (UniFi OS 4 runs bullseye's 7.5.1); default
        /// 8.4. Lines an older FRR would reject are left out.
        #[arg(long)]
        frr_version: Option<bgplb_frr::FrrVersion>,
    },
    /// Show what `apply` would change in the running FRR. Changes nothing.
    Plan,
    /// Apply the desired configuration to FRR, verify it, record a generation.
    Apply {
        /// Machine-readable output (JSON on standard output).
        #[arg(long)]
        json: bool,
    },
    /// Sessions per node and family, prefixes received and accepted, the current generation.
    Status {
        /// Machine-readable output (JSON on standard output).
        #[arg(long)]
        json: bool,
    },
    /// One self-contained HTML file (and optionally Markdown) with sessions, pool utilisation,
    /// VIPs and their next hops, checks, recent generations and events. Like `status`, adds and
    /// removes a test route: needs root.
    GenerateReport {
        /// Where to write the HTML report.
        #[arg(long, default_value = "bgplb-report.html")]
        out: PathBuf,
        /// Also write the report as Markdown to this file.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// How many recent generations (and twice as many events) to include.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Machine-readable output: the report's data as JSON on standard output.
        #[arg(long)]
        json: bool,
    },
    /// The steps to set a UniFi gateway (UDM Pro) up for this site: firmware and FRR, the LB
    /// segment as a UniFi network or routed, the agent or UniFi's BGP upload, the firewall, how
    /// to verify. Generated from the site file; touches nothing.
    ConfigureUdmPro {
        /// Machine-readable output (the steps as JSON on standard output).
        #[arg(long)]
        json: bool,
    },
    /// Recorded generations, newest first.
    History {
        /// How many generations (or events) to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print the configuration of one generation instead.
        #[arg(long)]
        show: Option<i64>,
        /// List events instead: node liveness changes, drift, refused reports, failed applies.
        #[arg(long, conflicts_with = "show")]
        events: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The LB segment (VLAN 52): plan, apply, status or teardown of what bgplb owns in the kernel.
    Segment {
        #[command(subcommand)]
        action: SegmentCommand,
        /// Machine-readable output (JSON on standard output).
        #[arg(long, global = true)]
        json: bool,
    },
    /// Check the whole path: segment, ECMP, sessions, FIB, L2 conflicts. Exit code 1 when
    /// anything fails.
    Validate {
        /// Machine-readable output (JSON on standard output).
        #[arg(long)]
        json: bool,
    },
    /// Run every check (`status`'s and `validate`'s), print the ones that need attention and
    /// write a support bundle (tar.gz, 0600): versions, the site file, status and checks, FRR's
    /// configuration and BGP tables, the kernel's routes, neighbours, links and NAT rules,
    /// generations, events and logs. The BGP password, the UniFi API key and private keys are
    /// redacted in every file. Exit code 1 when a check fails (the bundle is written anyway).
    /// Like `status`, adds and removes a test route: needs root.
    Troubleshoot {
        /// Where to write the bundle; a directory: the default name in it
        /// (bgplb-support-GATEWAY-UTCTIME.tar.gz in the current directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// A log file to add (its last 5 MB), e.g. /var/log/frr/frr.log (repeatable).
        #[arg(long = "log", value_name = "FILE")]
        logs: Vec<PathBuf>,
        /// Machine-readable output: the bundle's path, its files and every check, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run as a service: the mutual-TLS API for the companion, reconcile on reports and drift.
    Run,
    /// Restore a generation's configuration (default: the one before the current). A running
    /// daemon keeps it (the generation is pinned) until `unpin` or the next `apply`.
    Rollback {
        /// The generation to restore.
        #[arg(long)]
        to: Option<i64>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Let the daemon follow the site file and the reports again after a rollback.
    Unpin,
    /// Install on the gateway: /data/bgplb (this binary, the site file if absent, TLS, state),
    /// the on-boot script and the systemd unit, then start the agent. Checks first; idempotent.
    Install {
        /// Install inside DIR instead of / (nothing is started).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Write everything but start nothing.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop and remove the unit and the on-boot script. FRR keeps running the last good
    /// generation and /data/bgplb stays, unless told otherwise. Idempotent.
    Uninstall {
        /// Remove inside DIR instead of / (nothing is stopped).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Also remove bgplb's part of FRR's configuration (and save it).
        #[arg(long)]
        remove_frr_config: bool,
        /// Also delete /data/bgplb (binary, site file, TLS files, history).
        #[arg(long)]
        purge: bool,
    },
    /// A CA to start with: `pki init` (CA + the agent's certificate), `pki issue` (a companion's
    /// or the operator's client certificate).
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// The state database (DATA_DIR/state.db): `store check`, and `store reset` when it is
    /// damaged (the agent refuses to run on a damaged file).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// SQLite's integrity check and what the file holds; exit code 1 when it is damaged.
    Check {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Keep the file beside it (state.db.damaged-TIME) and start a new history whose first
    /// generation is bgplb's part of FRR's running configuration. FRR is not changed. Stop the
    /// daemon first; a sound file is only reset with --force.
    Reset {
        /// Reset a file that is not damaged (its history is kept beside it, not used).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SegmentCommand {
    /// What `segment apply` would change. Changes nothing.
    Plan,
    /// Create/remove what the segment's mode needs (only objects bgplb owns).
    Apply,
    /// The segment's state and findings.
    Status,
    /// Remove everything bgplb created in the kernel.
    Teardown,
}

pub fn init_tracing(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match cli.verbose {
        0 => "warn",
        1 => "info,bgplb_agent=debug",
        _ => "debug,bgplb_agent=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.compact().init(),
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(&cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", redact(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

const LOCK_WAIT: Duration = Duration::from_secs(60);

/// A private directory for a one-off vtysh script.
fn tempdir_for_script(layout: &crate::install::Layout) -> Result<PathBuf, Error> {
    let dir = layout
        .at("/tmp")
        .join(format!("bgplb-{}", std::process::id()));
    crate::files::private_dir(&dir)?;
    Ok(dir)
}

async fn dispatch(cli: &Cli) -> Result<ExitCode, Error> {
    if let Command::Troubleshoot { out, logs, json } = &cli.command {
        // A site file that does not validate is when help is needed most: the bundle is made
        // with what could be read of it, and says what is wrong.
        let (site, refused) = match bgplb_site::load_keeping(&cli.config) {
            Ok(site) => (site, None),
            Err((e, Some(site))) => (*site, Some(e)),
            Err((e, None)) => return Err(e.into()),
        };
        let vtysh = Vtysh::new(&site.agent.frr);
        let inputs = TroubleshootArgs {
            config: &cli.config,
            refused: refused.as_ref(),
            out: out.as_deref(),
            logs,
            json: *json,
        };
        return troubleshoot(&site, &vtysh, &inputs).await;
    }
    let site = bgplb_site::load(&cli.config)?;
    let settings = &site.agent;
    let vtysh = Vtysh::new(&settings.frr);
    let tls_dir = || {
        settings
            .tls
            .cert
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    match &cli.command {
        Command::Run => {
            crate::daemon::run(site, cli.config.clone()).await?;
        }
        Command::Pki {
            command: PkiCommand::Init { dir, names, force },
        } => {
            let dir = dir.clone().unwrap_or_else(tls_dir);
            let made = crate::pki::init(&site, &dir, names, *force)?;
            for f in &made.files {
                println!("wrote {}", f.display());
            }
            println!(
                "the agent's certificate names {}; issue the companion's with `bgplb-agent pki \
                 issue --cluster NAME --secret | kubectl apply -f -`",
                made.names.join(", ")
            );
        }
        Command::Pki {
            command:
                PkiCommand::Issue {
                    cluster,
                    operator,
                    dir,
                    out,
                    secret,
                    namespace,
                    secret_name,
                },
        } => {
            let holder = match (cluster, operator) {
                (Some(c), _) => {
                    if site.cluster(c).is_none() {
                        return Err(Error::Pki(format!(
                            "the site file has no cluster `{c}`: a certificate for it could never report"
                        )));
                    }
                    crate::pki::Holder::Cluster(c.clone())
                }
                (None, _) => crate::pki::Holder::Operator,
            };
            let dir = dir.clone().unwrap_or_else(tls_dir);
            let issued = crate::pki::issue(&dir, &holder)?;
            if *secret {
                print!(
                    "{}",
                    crate::pki::secret_manifest(&issued, namespace, secret_name)
                );
            } else {
                let out = out.clone().unwrap_or(dir);
                for f in crate::pki::write_issued(&out, &holder, &issued)? {
                    println!("wrote {}", f.display());
                }
                println!("identity: {}", holder.identity());
            }
        }
        Command::Install { root, no_start } => {
            let layout = crate::install::Layout { root: root.clone() };
            let problems = crate::install::preflight(&site, &layout, &vtysh).await;
            if !problems.is_empty() {
                return Err(Error::Install(format!(
                    "not installed; fix these first (nothing was written):\n- {}",
                    problems.join("\n- ")
                )));
            }
            let binary = std::env::current_exe().map_err(Error::io("cannot find", "itself"))?;
            let report = crate::install::install(&layout, &site, &cli.config, &binary, !*no_start)?;
            for p in &report.written {
                println!("wrote     {}", p.display());
            }
            for p in &report.unchanged {
                println!("unchanged {}", p.display());
            }
            if report.started {
                println!("bgplb-agent.service started; see `bgplb-agent status`");
            } else {
                println!("nothing started (--root or --no-start)");
            }
        }
        Command::Uninstall {
            root,
            remove_frr_config,
            purge,
        } => {
            let layout = crate::install::Layout { root: root.clone() };
            let removed = crate::install::uninstall(
                &layout,
                crate::install::UninstallOptions {
                    purge: false,
                    stop: true,
                },
            )?;
            for p in &removed {
                println!("removed {}", p.display());
            }
            if *remove_frr_config {
                let running = vtysh.running().await?;
                let have = bgplb_frr::Owned::from_text(&running.config);
                let nothing = bgplb_frr::Owned {
                    asn: Some(site.gateway.asn),
                    ..Default::default()
                };
                let plan = bgplb_frr::plan::plan(&nothing, &have)?
                    .for_frr(&have, vtysh.frr_version().await?);
                if !plan.is_empty() {
                    // A route-map whose optimization is off stays listed (empty) after its
                    // entries go: turn it back on first, so the map disappears with them.
                    let mut text: String = have
                        .top
                        .iter()
                        .filter_map(|l| {
                            l.strip_prefix("no ")
                                .filter(|rest| rest.ends_with(" optimization"))
                                .map(|rest| format!("{rest}\n"))
                        })
                        .collect();
                    text.push_str(&plan.script());
                    let dir = tempdir_for_script(&layout)?;
                    let script = dir.join("uninstall.vtysh");
                    crate::files::write_atomic(&script, &text)?;
                    let applied =
                        crate::apply::run_script(&vtysh, &settings.data_dir, &script, &text).await;
                    let _ = std::fs::remove_dir_all(&dir);
                    applied?;
                    vtysh.write_memory().await?;
                }
                println!(
                    "removed bgplb's part of FRR's configuration ({} change(s)) and saved it",
                    plan.changes.len()
                );
            } else {
                println!("FRR keeps running the last applied generation");
            }
            if *purge {
                for p in crate::install::uninstall(
                    &layout,
                    crate::install::UninstallOptions {
                        purge: true,
                        stop: false,
                    },
                )? {
                    println!("removed {}", p.display());
                }
            } else {
                println!(
                    "kept {} (site file, TLS files, history); --purge deletes it",
                    layout.at(crate::install::HOME).display()
                );
            }
        }
        Command::CheckConfig => {
            println!(
                "{}: valid ({} cluster(s), {} pool(s), {} static node(s))",
                cli.config.display(),
                site.clusters.len(),
                site.pools.len(),
                site.clusters.iter().map(|c| c.nodes.len()).sum::<usize>()
            );
        }
        Command::Render { frr_version } => {
            let mut inputs = desired::site_inputs(&site)?;
            inputs.frr = frr_version.unwrap_or_default();
            print!("{}", desired::render(&site, &inputs));
        }
        Command::Plan => {
            // The same inputs as `apply`: the segment, ECMP (a test route in a private table,
            // removed at once) and the clusters' stored reports.
            let kernel = Kernel::connect()?;
            let segment = netcheck::reconcile_segment(&kernel, &site, true).await?;
            let ecmp = checks::ecmp_decision(&kernel.probe_ecmp().await);
            let store = Store::open(&settings.data_dir.join("state.db"))?;
            let text = desired::render(
                &site,
                &desired::inputs_from_store(
                    &site,
                    &store,
                    ecmp.supported,
                    vtysh.frr_version().await?,
                )?,
            );
            let overlay = crate::liveness::stored_overlay(&store)?;
            let have = bgplb_frr::Owned::from_text(&vtysh.running().await?.config);
            let plan = bgplb_frr::plan::plan(&overlay.owned(&text), &have)?
                .for_frr(&have, vtysh.frr_version().await?);
            for a in &segment.actions {
                println!("segment: {a}");
            }
            if !ecmp.supported {
                println!("ecmp: {}", ecmp.reason);
            }
            if plan.is_empty() {
                for w in &plan.warnings {
                    println!("! {w}");
                }
                println!("FRR runs the desired configuration: nothing to change");
            } else {
                println!("{} change(s):", plan.changes.len());
                print!("{}", redact(&plan.to_string()));
            }
            if let Some(current) = store.current()? {
                if current.hash != crate::apply::hash(&text) {
                    println!(
                        "(the desired configuration differs from generation {})",
                        current.number
                    );
                }
            }
        }
        Command::Apply { json } => {
            let kernel = Kernel::connect()?;
            let segment = netcheck::reconcile_segment(&kernel, &site, false).await?;
            let ecmp = checks::ecmp_decision(&kernel.probe_ecmp().await);
            let frr = vtysh.frr_version().await?;
            let mut applier =
                Applier::open(&settings.data_dir, vtysh, settings.frr.save, LOCK_WAIT)?
                    .retaining(settings.retention.clone());
            let inputs =
                desired::inputs_from_store(&site, &applier.store.get(), ecmp.supported, frr)?;
            let text = desired::render(&site, &inputs);
            let overlay = crate::liveness::stored_overlay(&applier.store.get())?;
            let result = applier.apply(&text, &overlay, Source::Cli, None).await?;
            // An explicit apply is the operator's new desired state: a rollback's pin ends.
            if let Some(p) = applier.store.get().unpin()? {
                applier.store.get().event(
                    "unpinned",
                    &format!("generation {} unpinned by apply", p.generation),
                )?;
                if !*json {
                    println!("generation {} is no longer pinned", p.generation);
                }
            }
            if !*json {
                for a in &segment.actions {
                    println!("segment: {a}");
                }
                if !ecmp.supported {
                    println!("ecmp: {}", ecmp.reason);
                }
            }
            print_applied(&result, *json);
        }
        Command::Segment { action, json } => {
            let kernel = Kernel::connect()?;
            let plan = match action {
                SegmentCommand::Plan | SegmentCommand::Status => {
                    netcheck::reconcile_segment(&kernel, &site, true).await?
                }
                SegmentCommand::Apply => netcheck::reconcile_segment(&kernel, &site, false).await?,
                SegmentCommand::Teardown => netcheck::teardown_segment(&kernel).await?,
            };
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&plan).expect("serializes")
                );
            } else {
                let verb = match action {
                    SegmentCommand::Plan | SegmentCommand::Status => "needed",
                    _ => "done",
                };
                println!("segment mode: {:?}", site.segment.mode);
                if plan.actions.is_empty() {
                    println!(
                        "nothing {}",
                        if verb == "needed" {
                            "to change"
                        } else {
                            "changed"
                        }
                    );
                }
                for a in &plan.actions {
                    println!("{verb}: {a}");
                }
                for f in &plan.findings {
                    println!("{} {}", if f.ok { "ok  " } else { "FAIL" }, f.what);
                }
            }
        }
        Command::Validate { json } => {
            let v = validation(&site, &vtysh).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
            } else {
                print!("{}", netcheck::render_validation(&v));
            }
            if !v.ok {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Troubleshoot { .. } => unreachable!("handled before the site is loaded"),
        Command::Status { json } => {
            let s = full_status(&site, &vtysh).await?;
            if *json {
                println!(
                    "{}",
                    redact(&serde_json::to_string_pretty(&s).expect("status serializes"))
                );
            } else {
                print!("{}", redact(&status::render_table(&s)));
            }
        }
        Command::GenerateReport {
            out,
            markdown,
            limit,
            json,
        } => {
            let s = full_status(&site, &vtysh).await?;
            let store = Store::open(&settings.data_dir.join("state.db"))?;
            let generations = store.history(*limit)?;
            let events = store.events(*limit * 2)?;
            drop(store);
            let page = crate::page::Page {
                status: &s,
                generations: &generations,
                events: &events,
                at: crate::store::now(),
            };
            let write = |path: &PathBuf, text: String| {
                std::fs::write(path, redact(&text)).map_err(|e| Error::Io {
                    what: "write the report",
                    path: path.clone(),
                    source: e,
                })
            };
            write(out, crate::page::html(&page, None))?;
            if let Some(md) = markdown {
                write(md, crate::page::markdown(&page))?;
            }
            if *json {
                let data = serde_json::json!({
                    "html": out,
                    "markdown": markdown,
                    "status": s,
                    "generations": generations.iter().map(status::GenerationBrief::from).collect::<Vec<_>>(),
                    "events": events,
                });
                println!(
                    "{}",
                    redact(&serde_json::to_string_pretty(&data).expect("serializes"))
                );
            } else {
                println!("wrote {}", out.display());
                if let Some(md) = markdown {
                    println!("wrote {}", md.display());
                }
            }
        }
        Command::ConfigureUdmPro { json } => {
            let steps = crate::udm::steps(&site);
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&steps).expect("serializes")
                );
            } else {
                print!("{}", crate::udm::render(&site, &steps));
            }
        }
        Command::History {
            limit,
            show,
            events,
            json,
        } => {
            let store = Store::open(&settings.data_dir.join("state.db"))?;
            if *events {
                let events = store.events(*limit)?;
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&events).expect("serializes")
                    );
                } else {
                    let mut table = comfy_table::Table::new();
                    table.load_style(comfy_table::presets::NOTHING);
                    table.set_header(["TIME", "EVENT", "MESSAGE"]);
                    for e in events {
                        let message = e.display_message();
                        table.add_row([e.at, e.kind, message]);
                    }
                    println!("{table}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(n) = show {
                let g = store.get(*n)?.ok_or(Error::NoSuchGeneration(*n))?;
                if *json {
                    println!(
                        "{}",
                        redact(&serde_json::to_string_pretty(&g).expect("serializes"))
                    );
                } else {
                    print!("{}", redact(&g.config));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let gens = store.history(*limit)?;
            if *json {
                println!(
                    "{}",
                    redact(&serde_json::to_string_pretty(&gens).expect("serializes"))
                );
            } else {
                let current = store.current()?.map(|c| c.number);
                let mut table = comfy_table::Table::new();
                table.load_style(comfy_table::presets::NOTHING);
                table.set_header([
                    "GEN", "TIME", "SOURCE", "OUTCOME", "CHANGES", "CONFIG", "NOTE",
                ]);
                for g in gens {
                    let mark = if Some(g.number) == current { "*" } else { "" };
                    let note = match (&g.restores, &g.error) {
                        (_, Some(e)) => shorten(&redact(e), 70),
                        (Some(r), None) => format!("restores generation {r}"),
                        _ => String::new(),
                    };
                    table.add_row([
                        format!("{}{mark}", g.number),
                        g.created_at.clone(),
                        g.source.clone(),
                        match g.outcome {
                            Outcome::Applied => "applied".into(),
                            Outcome::Failed => "FAILED".to_string(),
                        },
                        g.changes.to_string(),
                        g.hash[..12].to_string(),
                        note,
                    ]);
                }
                println!("{table}");
            }
        }
        Command::Rollback { to, json } => {
            let mut applier =
                Applier::open(&settings.data_dir, vtysh, settings.frr.save, LOCK_WAIT)?
                    .retaining(settings.retention.clone());
            let overlay = crate::liveness::stored_overlay(&applier.store.get())?;
            let (target, result) = applier.rollback(*to, &overlay).await?;
            let pin = {
                let store = applier.store.get();
                store.pin(target.number, "rollback")?;
                store.event(
                    "pinned",
                    &format!("rollback to generation {}: pinned", target.number),
                )?;
                store.pinned()?
            };
            if !*json {
                println!(
                    "restoring generation {} ({})",
                    target.number, target.created_at
                );
            }
            print_applied(&result, *json);
            if let (Some(pin), false) = (pin, *json) {
                println!("{pin}");
            }
        }
        Command::Store {
            command: StoreCommand::Check { json },
        } => {
            let path = settings.data_dir.join("state.db");
            let found = Store::open(&path).and_then(|s| s.check());
            let damaged = match &found {
                Ok(c) if c.ok() => None,
                Ok(c) => Some(c.integrity.join("; ")),
                Err(e @ Error::StoreDamaged { .. }) => Some(e.to_string()),
                Err(_) => None,
            };
            if *json {
                let value = match &found {
                    Ok(c) => serde_json::json!({"path": path, "ok": c.ok(), "check": c}),
                    Err(e) => {
                        serde_json::json!({"path": path, "ok": false, "error": e.to_string()})
                    }
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            }
            match (found, damaged) {
                (Ok(c), None) => {
                    if !*json {
                        println!(
                            "{}: ok ({} generation(s), {} event(s), {} report(s), {} bytes)",
                            path.display(),
                            c.generations,
                            c.events,
                            c.reports,
                            c.bytes
                        );
                    }
                }
                (Err(e), None) => return Err(e),
                (_, Some(why)) => {
                    if !*json {
                        println!("{}: damaged: {why}", path.display());
                        println!("recover with `bgplb-agent store reset` (FRR is not changed)");
                    }
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Command::Store {
            command: StoreCommand::Reset { force },
        } => {
            let path = settings.data_dir.join("state.db");
            match Store::open(&path).and_then(|s| s.check()) {
                Ok(c) if c.ok() && !*force => {
                    return Err(Error::Refused(format!(
                        "{} is not damaged ({} generation(s)); `store reset --force` starts a new history anyway",
                        path.display(),
                        c.generations
                    )));
                }
                Ok(_) | Err(Error::StoreDamaged { .. }) => {}
                Err(e) => return Err(e),
            }
            // Read FRR first: without its running configuration there is nothing to start from,
            // and the old file stays where it is.
            let running = vtysh.running().await?;
            let owned = bgplb_frr::Owned::from_text(&running.config);
            let aside = crate::store::move_aside(&path)?;
            let store = Store::open(&path)?;
            let text = owned.to_text();
            if owned.is_empty() {
                println!("FRR runs nothing of bgplb's: the new history starts with the next apply");
            } else {
                let generation = store.record(&crate::store::NewGeneration {
                    source: Source::Reset,
                    config: &text,
                    hash: &crate::apply::hash(&text),
                    outcome: Outcome::Applied,
                    error: None,
                    script: "",
                    changes: 0,
                    restores: None,
                    rolled_back_to: None,
                    duration_ms: 0,
                })?;
                println!(
                    "generation {generation}: bgplb's part of FRR's running configuration ({} line(s)); FRR was not changed",
                    text.lines().count()
                );
            }
            store.event(
                "store-reset",
                &format!(
                    "new history from FRR's running configuration; the old file is {}",
                    aside.display()
                ),
            )?;
            println!("the old file is kept as {}", aside.display());
        }
        Command::Unpin => {
            let store = Store::open(&settings.data_dir.join("state.db"))?;
            match store.unpin()? {
                Some(p) => {
                    store.event("unpinned", &format!("generation {} unpinned", p.generation))?;
                    println!(
                        "generation {} is no longer pinned: the daemon follows the site file and the reports again",
                        p.generation
                    );
                }
                None => println!("nothing is pinned"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// FRR status plus the kernel checks.
async fn validation(site: &bgplb_site::Site, vtysh: &Vtysh) -> Result<netcheck::Validation, Error> {
    let store = Store::open(&site.agent.data_dir.join("state.db"))?;
    let generations = status::Generations::read(&store)?;
    let reports = desired::stored_reports(&store)?;
    let facts = crate::liveness::facts_from_store(&store, &site.liveness)?;
    drop(store);
    let s = status::collect(generations, vtysh, &site.gateway.name, site.gateway.asn).await;
    kernel_validation(site, &s, &reports, &facts).await
}

/// What `status`, `generate-report` and `troubleshoot` show: FRR's view, the stored reports'
/// pools and VIPs, node liveness and the gateway's kernel checks (which add and remove a test
/// route, so this needs root).
async fn full_status(site: &bgplb_site::Site, vtysh: &Vtysh) -> Result<status::Status, Error> {
    let (s, kernel) = status_and_kernel(site, vtysh).await?;
    if let Some(e) = kernel {
        eprintln!("warning: kernel checks skipped: {e}");
    }
    Ok(s)
}

/// [`full_status`], and why the kernel checks could not run when they could not.
async fn status_and_kernel(
    site: &bgplb_site::Site,
    vtysh: &Vtysh,
) -> Result<(status::Status, Option<Error>), Error> {
    let store = Store::open(&site.agent.data_dir.join("state.db"))?;
    let mut generations = status::Generations::read(&store)?;
    generations.store_problem = store
        .writable(crate::apply::RECORD_RESERVE)
        .err()
        .map(|e| e.to_string());
    let reports = desired::stored_reports(&store)?;
    let facts = crate::liveness::facts_from_store(&store, &site.liveness)?;
    drop(store);
    let mut s = status::collect(generations, vtysh, &site.gateway.name, site.gateway.asn).await;
    s.liveness = facts.nodes.iter().map(status::NodeView::from).collect();
    for view in &mut s.clusters {
        let report = reports.iter().find(|r| r.cluster == view.name);
        if let (Some(cluster), Some(report)) = (site.cluster(&view.name), report) {
            if let Ok(c) = crate::report::check(site, cluster, report, None) {
                view.warnings = c.warnings;
            }
        }
    }
    let kernel = match kernel_validation(site, &s, &reports, &facts).await {
        Ok(v) => {
            s.kernel = Some(v);
            None
        }
        Err(e) => Some(e),
    };
    Ok((s, kernel))
}

/// Every check for `troubleshoot`: `status`'s and `validate`'s, and the state database's. What
/// cannot be read is a failed check, not an error: the bundle is written anyway.
async fn troubleshoot_checks(
    site: &bgplb_site::Site,
    vtysh: &Vtysh,
) -> (Result<status::Status, String>, netcheck::Validation) {
    use netcheck::{Check, Validation};
    let failed = |checks: Vec<Check>| Validation {
        ok: false,
        checks,
        ecmp: None,
        fib: Vec::new(),
        conflicts: Vec::new(),
    };
    match status_and_kernel(site, vtysh).await {
        Ok((s, kernel)) => {
            let mut v = match (&s.kernel, kernel) {
                (Some(v), _) => v.clone(),
                (None, why) => {
                    let why = why.map_or_else(|| "no result".to_string(), |e| e.to_string());
                    let mut checks = vec![Check::new(
                        "kernel",
                        false,
                        vec![format!("the kernel checks could not run: {why}")],
                    )];
                    if let Some(e) = &s.frr_error {
                        checks.push(Check::new("frr", false, vec![e.clone()]));
                    }
                    failed(checks)
                }
            };
            v.checks.push(match &s.store_problem {
                Some(p) => Check::new("state-store", false, vec![p.clone()]),
                None => Check::new(
                    "state-store",
                    true,
                    vec!["the state database can record applies".into()],
                ),
            });
            v.ok = v.checks.iter().all(|c| c.ok);
            (Ok(s), v)
        }
        Err(e) => (
            Err(e.to_string()),
            failed(vec![Check::new("state-store", false, vec![e.to_string()])]),
        ),
    }
}

/// What `troubleshoot` was asked for.
struct TroubleshootArgs<'a> {
    config: &'a std::path::Path,
    /// Why the site file was refused, when it was: the checks run with what could be read.
    refused: Option<&'a bgplb_site::LoadError>,
    out: Option<&'a std::path::Path>,
    logs: &'a [PathBuf],
    json: bool,
}

/// `troubleshoot`: the checks, the bundle, a summary. Bad `--log` files (64) and an unwritable
/// destination or a missing `tar` (74) fail before anything runs.
async fn troubleshoot(
    site: &bgplb_site::Site,
    vtysh: &Vtysh,
    args: &TroubleshootArgs<'_>,
) -> Result<ExitCode, Error> {
    use crate::troubleshoot as ts;
    let (config, json) = (args.config, args.json);
    let at = time::OffsetDateTime::now_utc();
    let target = ts::Target::new(&site.gateway.name, args.out, at)?;
    let secrets = ts::Secrets::read(site);
    let logs = ts::check_logs(&secrets, args.logs)?;
    for l in &logs {
        if let ts::LogSource::Refused(path, what) = l {
            eprintln!(
                "warning: --log {}: not included: it is {what}",
                path.display()
            );
        }
    }
    if let Some(e) = args.refused {
        eprintln!(
            "warning: {}\nthe checks run with what could be read of it",
            redact(&e.to_string())
        );
    }
    let (status, mut validation) = troubleshoot_checks(site, vtysh).await;
    if let Some(e) = args.refused {
        let details = match e {
            bgplb_site::LoadError::Invalid { problems, .. } => {
                problems.iter().map(|p| p.to_string()).collect()
            }
            other => vec![other.to_string()],
        };
        validation
            .checks
            .insert(0, netcheck::Check::new("site-file", false, details));
        validation.ok = false;
    }
    let contents = ts::gather(&ts::Inputs {
        site,
        config,
        vtysh,
        status: &status,
        validation: &validation,
        logs: &logs,
        secrets: &secrets,
        at,
    })
    .await;
    ts::write(&contents, &target).await?;
    let files: Vec<String> = contents
        .paths()
        .map(|p| format!("{}/{p}", target.top))
        .collect();
    if json {
        let data = serde_json::json!({
            "bundle": target.path,
            "files": files,
            "checks": validation.checks,
        });
        println!(
            "{}",
            contents.scrub(&serde_json::to_string_pretty(&data).expect("serializes"))
        );
    } else {
        let attention: Vec<netcheck::Check> = validation
            .checks
            .iter()
            .filter(|c| !c.ok || c.warning)
            .cloned()
            .collect();
        let total = validation.checks.len();
        if attention.is_empty() {
            println!("all {total} checks ok");
        } else {
            let shown = netcheck::Validation {
                checks: attention,
                ..validation.clone()
            };
            print!("{}", contents.scrub(&netcheck::render_validation(&shown)));
            let failed = shown.checks.iter().filter(|c| !c.ok).count();
            println!(
                "{failed} of {total} checks failed, {} warn (`bgplb-agent validate` shows them all)",
                shown.checks.len() - failed
            );
        }
        println!(
            "wrote {} ({} files; secrets redacted, see README.txt in it)",
            target.path.display(),
            files.len()
        );
    }
    Ok(if validation.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn kernel_validation(
    site: &bgplb_site::Site,
    s: &status::Status,
    reports: &[bgplb_proto::Report],
    facts: &netcheck::LivenessFacts,
) -> Result<netcheck::Validation, Error> {
    let kernel = Kernel::connect()?;
    let ecmp = checks::ecmp_decision(&kernel.probe_ecmp().await);
    netcheck::validate(&kernel, site, Some(ecmp), s, reports, facts).await
}

fn print_applied(result: &Applied, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(result).expect("serializes")
        );
        return;
    }
    match result {
        Applied::Unchanged {
            generation,
            unsaved,
        } => {
            if let Some(u) = unsaved {
                println!("warning: {u}");
            }
            match generation {
                Some(g) => println!("FRR already runs generation {g}: nothing changed"),
                None => println!("nothing to change"),
            }
        }
        Applied::Applied {
            generation,
            changes,
            warnings,
            duration,
        } => {
            for w in warnings {
                println!("warning: {}", redact(w));
            }
            println!(
                "generation {generation} applied: {changes} change(s), verified in {duration} ms"
            );
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max - 1).collect();
    format!("{cut}…")
}
