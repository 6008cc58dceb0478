//! The companion's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bgplb-companion",
    version,
    about = "The cluster side of bgplb: reports nodes, services and Cilium pools to the bgplb agents"
)]
pub struct Cli {
    /// More log output (-v debug); RUST_LOG overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// JSON logs.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the cluster and report to the agents (the Deployment's command).
    Run {
        #[arg(
            long,
            short,
            env = "BGPLB_COMPANION_CONFIG",
            default_value = "/etc/bgplb/companion.toml"
        )]
        config: PathBuf,
        /// Overrides `cluster` from the file.
        #[arg(long, env = "BGPLB_CLUSTER")]
        cluster: Option<String>,
        /// Overrides `agents` from the file (comma-separated).
        #[arg(long = "agent", env = "BGPLB_AGENTS", value_delimiter = ',')]
        agents: Vec<String>,
        /// kubeconfig file; default: in-cluster credentials, or $KUBECONFIG.
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// This replica's identity for leader election; default: $POD_NAME or the host name.
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
    },
}

pub fn init_tracing(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match cli.verbose {
        0 => "warn,bgplb_companion=info",
        _ => "info,bgplb_companion=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.compact().init();
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run {
            config,
            cluster,
            agents,
            kubeconfig,
            identity,
        } => {
            let config = match crate::config::Config::load(&config, cluster, agents) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(64);
                }
            };
            let identity = identity.unwrap_or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| format!("companion-{}", std::process::id()))
            });
            let client = match crate::run::kube_client(kubeconfig.as_deref()).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(69);
                }
            };
            match crate::run::run(config, client, identity).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
