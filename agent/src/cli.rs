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
        #[arg(long)]
        json: bool,
    },
    /// Sessions per node and family, prefixes received and accepted, the current generation.
    Status {
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
        #[arg(long, global = true)]
        json: bool,
    },
    /// Check the whole path: segment, ECMP, sessions, FIB, L2 conflicts. Exit code 1 when
    /// anything fails.
    Validate {
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

async fn dispatch(cli: &Cli) -> Result<ExitCode, Error> {
    let site = bgplb_site::load(&cli.config)?;
    let settings = &site.agent;
    let vtysh = Vtysh::new(&settings.frr);
    match &cli.command {
        Command::Run => {
            crate::daemon::run(site, cli.config.clone()).await?;
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
                Applier::open(&settings.data_dir, vtysh, settings.frr.save, LOCK_WAIT)?;
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
        Command::Status { json } => {
            let store = Store::open(&settings.data_dir.join("state.db"))?;
            let generations = status::Generations::read(&store)?;
            let reports = desired::stored_reports(&store)?;
            let facts = crate::liveness::facts_from_store(&store, &site.liveness)?;
            drop(store);
            let mut s =
                status::collect(generations, &vtysh, &site.gateway.name, site.gateway.asn).await;
            s.liveness = facts.nodes.iter().map(status::NodeView::from).collect();
            for view in &mut s.clusters {
                let report = reports.iter().find(|r| r.cluster == view.name);
                if let (Some(cluster), Some(report)) = (site.cluster(&view.name), report) {
                    if let Ok(c) = crate::report::check(&site, cluster, report, None) {
                        view.warnings = c.warnings;
                    }
                }
            }
            match kernel_validation(&site, &s, &reports, &facts).await {
                Ok(v) => s.kernel = Some(v),
                Err(e) => eprintln!("warning: kernel checks skipped: {e}"),
            }
            if *json {
                println!(
                    "{}",
                    redact(&serde_json::to_string_pretty(&s).expect("status serializes"))
                );
            } else {
                print!("{}", redact(&status::render_table(&s)));
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
                        let message = match (e.repeats, &e.last_at) {
                            (n, Some(last)) if n > 1 => {
                                format!("{} (×{n}, last {last})", e.message)
                            }
                            _ => e.message,
                        };
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
                Applier::open(&settings.data_dir, vtysh, settings.frr.save, LOCK_WAIT)?;
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
