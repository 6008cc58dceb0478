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

#[derive(Debug, clap::Args)]
pub struct SiteArgs {
    /// The site file (the same file the gateway agent uses).
    #[arg(long, env = "BGPLB_SITE", default_value = "/etc/bgplb/site.toml")]
    pub site: PathBuf,
    /// The cluster in the site file (default: the first).
    #[arg(long)]
    pub cluster: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The companion's configuration (agent URLs and TLS files).
    #[arg(
        long,
        short,
        env = "BGPLB_COMPANION_CONFIG",
        default_value = "/etc/bgplb/companion.toml"
    )]
    pub config: PathBuf,
    /// kubeconfig file; default: in-cluster credentials, or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the kubeconfig's current context).
    #[arg(long, env = "KUBE_CONTEXT")]
    pub context: Option<String>,
    /// The installed Cilium version (default: read from the cilium DaemonSet's image).
    #[arg(long)]
    pub cilium_version: Option<String>,
    /// The namespace Cilium runs in (default: `[cilium] namespace` in the configuration when
    /// it can be read, else kube-system).
    #[arg(long)]
    pub cilium_namespace: Option<String>,
}

impl ClusterArgs {
    /// Where Cilium runs: the flag, else the configuration file's `[cilium]`, else the default.
    fn cilium_location(&self) -> crate::config::CiliumLocation {
        let mut location = crate::config::Config::load(&self.config, None, Vec::new())
            .map(|c| c.cilium)
            .unwrap_or_default();
        if let Some(ns) = &self.cilium_namespace {
            location.namespace = ns.clone();
        }
        location
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the Cilium objects (pools, BGP) and Helm values for a Cilium version, or with
    /// --gateway the gateway's FRR config (for the UniFi BGP upload).
    Render {
        #[command(flatten)]
        site: SiteArgs,
        /// The Cilium version to render for, e.g. 1.18 (not needed with --gateway).
        #[arg(long, required_unless_present = "gateway")]
        cilium_version: Option<String>,
        /// Write one file per object and the Helm values overlays (cilium-values-1-bgp.yaml
        /// before the migration, cilium-values-2-final.yaml after it) into DIR instead of
        /// printing the objects.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Render the old CiliumBGPPeeringPolicy instead of the v2 BGP resources.
        #[arg(long)]
        legacy_peering_policy: bool,
        /// The cluster's pod CIDRs, for the native-routing Helm values.
        #[arg(long = "pod-cidr")]
        pod_cidrs: Vec<ipnet::IpNet>,
        /// The API server address the kube-proxy replacement uses (k8sServiceHost; default
        /// Talos' KubePrism, localhost).
        #[arg(long)]
        k8s_service_host: Option<String>,
        /// k8sServicePort (default KubePrism's 7445).
        #[arg(long)]
        k8s_service_port: Option<u16>,
        /// The namespace Cilium runs in, for the `helm upgrade` line (default kube-system).
        #[arg(long)]
        cilium_namespace: Option<String>,
        /// Print the gateway's FRR configuration instead (what bgplb-agent applies).
        #[arg(long)]
        gateway: bool,
        /// With --gateway: the FRR release to render for, e.g. 7.5 (default 8.4).
        #[arg(long, requires = "gateway")]
        frr_version: Option<bgplb_site::FrrVersion>,
        /// When the site sets a BGP password: render an ExternalSecret that fetches it from
        /// [SecretStore/]STORE:KEY[#PROPERTY] (a ClusterSecretStore unless prefixed) instead of
        /// a Secret holding it.
        #[arg(long, value_name = "STORE:KEY")]
        external_secret: Option<bgplb_cilium::secret::ExternalRef>,
    },
    /// The L2 -> BGP migration, in phases, resumable; --dry-run prints the plan.
    Migrate {
        #[command(flatten)]
        site: SiteArgs,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Print the whole plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Local copy of the backup.
        #[arg(long, default_value = "bgplb-migration-backup.json")]
        backup_file: PathBuf,
        /// Seconds to wait for the sessions and for Cilium to assign the new addresses.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
    },
    /// Cluster-side checks: no L2 policy left, services on BGP pools, pools, BGP objects vs the
    /// gateway, nodes vs the agent's sessions, Cilium version vs the API in use, and with
    /// --dns-server the services' external-dns names. Exit 1 on failure.
    Validate {
        #[command(flatten)]
        site: SiteArgs,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Machine-readable output (JSON on standard output).
        #[arg(long)]
        json: bool,
        /// Also write a Markdown report to FILE.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Skip asking the agent (no nodes-vs-agent comparison).
        #[arg(long)]
        no_agent: bool,
        /// Resolve the external-dns.alpha.kubernetes.io/hostname names of the LoadBalancer
        /// services at this DNS server (ADDR[:PORT], port 53 by default) and check they point
        /// at the services' addresses (the `dns` check; skipped without it).
        #[arg(long, value_name = "ADDR[:PORT]", value_parser = crate::dns::parse_server)]
        dns_server: Option<std::net::SocketAddr>,
    },
    /// Both ends of every BGP session at once: the gateway's (the agent's status) against
    /// Cilium's (the CiliumBGPNodeConfig objects' status), for every Ready node and address
    /// family; every mismatch named on one line. Exit 1 on a mismatch, 69 when the Kubernetes
    /// API or the agent cannot be reached.
    VerifyBgpPeering {
        #[command(flatten)]
        site: SiteArgs,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Machine-readable output (JSON on standard output).
        #[arg(long)]
        json: bool,
    },
    /// TCP to every LoadBalancer Service's VIPs and TCP ports (and `GET /` on HTTP ports), from
    /// this machine and from the gateway (the agent's probe), each failure with its likely cause.
    /// Exit 1 on a failure, 69 when the Kubernetes API or the agent cannot be reached.
    ///
    /// HTTP ports: `appProtocol` http/https, else a port named http/https (or `http-…`,
    /// `https-…`), else 80 and 8080 (http), 443 and 8443 (https; the certificate is not
    /// checked); any HTTP status counts, no HTTP answer on a port that connects is a warning.
    /// UDP and SCTP ports are skipped with a note.
    TestConnectivity {
        #[command(flatten)]
        site: SiteArgs,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Machine-readable output (JSON on standard output).
        #[arg(long)]
        json: bool,
        /// Only from this machine (the agent's status still explains failures when reachable).
        #[arg(long)]
        from_here_only: bool,
        /// Only from the gateway.
        #[arg(long)]
        gateway_only: bool,
        /// Seconds per TCP connect from here (an HTTP `GET /` gets twice this).
        #[arg(long, default_value_t = 3, value_name = "SECS")]
        connect_timeout: u64,
        /// Seconds for the whole run: what is not probed by then is reported as not tested.
        #[arg(long, default_value_t = 60, value_name = "SECS")]
        timeout: u64,
        /// Connections from here at once.
        #[arg(long, default_value_t = 16, value_name = "N")]
        parallel: usize,
    },
    /// Undo a migration: restore every backed-up object exactly, delete what it created.
    Rollback {
        #[command(flatten)]
        cluster: ClusterArgs,
    },
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
        /// Serve /healthz, /readyz and /metrics on ADDR:PORT (overrides `listen` from the file;
        /// "off" turns it off).
        #[arg(long, env = "BGPLB_COMPANION_LISTEN")]
        listen: Option<String>,
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
    match dispatch(cli).await {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn load_site(args: &SiteArgs) -> Result<(bgplb_site::Site, String), Failure> {
    let site = bgplb_site::load(&args.site).map_err(|e| (64, e.to_string()))?;
    let cluster = match &args.cluster {
        Some(c) if site.cluster(c).is_none() => {
            return Err((64, format!("the site file has no cluster `{c}`")))
        }
        Some(c) => c.clone(),
        None => site
            .clusters
            .first()
            .map(|c| c.name.clone())
            .ok_or((64, "the site file has no cluster".to_string()))?,
    };
    Ok((site, cluster))
}

async fn kube(
    args: &ClusterArgs,
    dry_run: bool,
) -> Result<(crate::dynkube::DynKube, kube::Client), Failure> {
    let client = crate::run::kube_client_in(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .map_err(|e| (69, e.to_string()))?;
    Ok((
        crate::dynkube::DynKube::new(client.clone(), dry_run),
        client,
    ))
}

async fn cilium_version(args: &ClusterArgs, client: &kube::Client) -> Result<String, Failure> {
    if let Some(v) = &args.cilium_version {
        return Ok(v.clone());
    }
    let at = args.cilium_location();
    let api: kube::Api<k8s_openapi::api::apps::v1::DaemonSet> =
        kube::Api::namespaced(client.clone(), &at.namespace);
    let ds = api.get_opt(&at.daemonset).await.map_err(|e| {
        (
            69,
            format!("cannot read {}/{}: {e}", at.namespace, at.daemonset),
        )
    })?;
    ds.and_then(|d| d.spec)
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .and_then(|c| c.image)
        .and_then(|i| crate::watch::version_from_image(&i))
        .ok_or((
            64,
            format!(
                "cannot tell the Cilium version from {}/{}: pass --cilium-version (or \
                 --cilium-namespace when Cilium runs elsewhere)",
                at.namespace, at.daemonset
            ),
        ))
}

/// The Secret (or ExternalSecret) behind the peer configs' `authSecretRef`, when the site sets
/// a BGP password.
fn password_object(
    site: &bgplb_site::Site,
    cluster: &str,
    external: Option<bgplb_cilium::secret::ExternalRef>,
) -> Result<Option<serde_json::Value>, Failure> {
    use bgplb_cilium::secret::PasswordSource;
    let source = match (bgplb_site::read_password(site), external) {
        (Ok(None), Some(_)) => {
            return Err((
                64,
                "--external-secret: the site sets no BGP password (bgp.password_file), so \
                 there is no Secret to provide"
                    .to_string(),
            ))
        }
        (Ok(None), None) => return Ok(None),
        (Ok(Some(_)), Some(r)) => PasswordSource::External(r),
        (Ok(Some(p)), None) => PasswordSource::Plain(p),
        (Err(p), _) => return Err((64, p.to_string())),
    };
    Ok(Some(bgplb_cilium::secret::password_object(
        cluster,
        bgplb_cilium::naming::DEFAULT_PASSWORD_SECRET,
        &source,
    )))
}

fn object_yaml(obj: &serde_json::Value) -> Result<String, Failure> {
    serde_saphyr::to_string(obj).map_err(|e| (70, format!("cannot write YAML: {e}")))
}

/// Writes a file only its owner can read (it may hold the BGP password).
fn write_private(path: &std::path::Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| (73, format!("cannot write {}: {e}", path.display()));
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)
}

/// The agent named first in the companion's configuration, over mutual TLS.
fn agent_client(args: &ClusterArgs, cluster: &str) -> Result<crate::agent::HttpAgent, Failure> {
    let config = crate::config::Config::load(&args.config, Some(cluster.to_string()), Vec::new())
        .map_err(|e| (64, e.to_string()))?;
    let http = crate::push::client(&config.tls).map_err(|e| (64, e.to_string()))?;
    Ok(crate::agent::HttpAgent {
        client: http,
        base: config.agents[0].clone(),
    })
}

/// Every object of kind `K` (cluster-scoped, or in every namespace).
async fn list_typed<K>(client: &kube::Client) -> Result<Vec<K>, Failure>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    kube::Api::<K>::all(client.clone())
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .map_err(|e| {
            (
                69,
                format!("cannot list {}: {e}", K::plural(&Default::default())),
            )
        })
}

/// Objects of a Cilium kind at the newest version the server serves with any.
async fn list_cilium(
    kube: &crate::dynkube::DynKube,
    kind: &str,
) -> Result<Vec<serde_json::Value>, Failure> {
    for v in ["cilium.io/v2", "cilium.io/v2alpha1"] {
        let items = kube.list(v, kind).await.map_err(|e| (69, e.to_string()))?;
        if !items.is_empty() {
            return Ok(items);
        }
    }
    Ok(Vec::new())
}

async fn verify_bgp_peering(
    site: SiteArgs,
    cluster: ClusterArgs,
    json: bool,
) -> Result<ExitCode, Failure> {
    let (s, cluster_name) = load_site(&site)?;
    let agent = agent_client(&cluster, &cluster_name)?;
    let (kube, client) = kube(&cluster, true).await?;
    let nodes = list_typed::<k8s_openapi::api::core::v1::Node>(&client).await?;
    let node_configs = list_cilium(&kube, "CiliumBGPNodeConfig").await?;
    let peering_policies = kube
        .list("cilium.io/v2alpha1", "CiliumBGPPeeringPolicy")
        .await
        .map_err(|e| (69, e.to_string()))?
        .len();
    use crate::agent::AgentApi;
    let status = agent
        .status()
        .await
        .map_err(|e| (69, format!("the agent is not reachable: {e}")))?;
    let report = crate::bgp_peering::verify(&crate::bgp_peering::Input {
        site: s,
        cluster: cluster_name,
        nodes,
        agent: status,
        node_configs,
        peering_policies,
    });
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializes")
        );
    } else {
        print!("{}", crate::bgp_peering::render_table(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

struct ConnectivityArgs {
    json: bool,
    from_here_only: bool,
    gateway_only: bool,
    connect_timeout: u64,
    timeout: u64,
    parallel: usize,
}

async fn test_connectivity(
    site: SiteArgs,
    cluster: ClusterArgs,
    a: ConnectivityArgs,
) -> Result<ExitCode, Failure> {
    use crate::connectivity::{self, probe, Outcome};
    if a.from_here_only && a.gateway_only {
        return Err((
            64,
            "--from-here-only and --gateway-only exclude each other".into(),
        ));
    }
    if a.connect_timeout == 0 || a.timeout == 0 || a.parallel == 0 {
        return Err((
            64,
            "--connect-timeout, --timeout and --parallel must be at least 1".into(),
        ));
    }
    let started = tokio::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs(a.timeout);
    let (s, cluster_name) = load_site(&site)?;
    // The agent: required for the gateway's side, only helpful for the causes otherwise.
    let agent = match agent_client(&cluster, &cluster_name) {
        Ok(agent) => Some(agent),
        Err(e) if a.from_here_only => {
            eprintln!(
                "warning: {}: failures are not traced to the gateway's state",
                e.1
            );
            None
        }
        Err(e) => return Err(e),
    };
    let (_, client) = kube(&cluster, true).await?;
    let services = list_typed::<k8s_openapi::api::core::v1::Service>(&client).await?;
    let endpoint_slices =
        list_typed::<k8s_openapi::api::discovery::v1::EndpointSlice>(&client).await?;
    let nodes = list_typed::<k8s_openapi::api::core::v1::Node>(&client).await?;
    let cilium_version = cilium_version(&cluster, &client).await.ok();
    let mut unreachable: Option<String> = None;
    let status = match &agent {
        None => None,
        Some(agent) => {
            use crate::agent::AgentApi;
            match agent.status().await {
                Ok(st) => Some(st),
                Err(e) => {
                    eprintln!("warning: the agent is not reachable ({e})");
                    unreachable = Some(e);
                    None
                }
            }
        }
    };
    let (targets, _) = connectivity::targets(&services);
    let limits = probe::Limits {
        connect_timeout: std::time::Duration::from_secs(a.connect_timeout),
        deadline,
        parallel: a.parallel,
    };
    let here = async {
        if a.gateway_only {
            None
        } else {
            Some(probe::from_here(&targets, limits).await)
        }
    };
    let gateway = async {
        if a.from_here_only {
            return None;
        }
        let agent = match (&agent, &unreachable) {
            (Some(agent), None) => agent,
            _ => return None,
        };
        // Addresses outside the pools the cluster may use: the agent would refuse the request.
        let (inside, outside): (Vec<_>, Vec<_>) = targets
            .iter()
            .cloned()
            .partition(|t| connectivity::probeable(&s, &cluster_name, t.vip));
        let mut out = match probe::from_gateway(agent, &inside, limits).await {
            Ok(o) => o,
            Err(probe::AgentUnreachable(e)) => return Some(Err(e)),
        };
        for t in outside {
            out.insert(
                t.key(),
                Outcome::NotTested {
                    reason: "outside the site's pools for the cluster: the agent probes only pool addresses".into(),
                },
            );
        }
        Some(Ok(out))
    };
    let (here, gateway) = futures::join!(here, gateway);
    let gateway = match gateway {
        Some(Err(e)) => {
            eprintln!("warning: the agent did not answer the probes ({e})");
            unreachable = Some(e);
            None
        }
        Some(Ok(o)) => Some(o),
        None => None,
    };
    let report = connectivity::judge(
        &connectivity::Context {
            site: s,
            cluster: cluster_name,
            nodes,
            services,
            endpoint_slices,
            cilium_version,
            agent: status,
        },
        here.as_ref(),
        gateway.as_ref(),
    );
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializes")
        );
    } else {
        print!("{}", connectivity::render_table(&report));
    }
    if let (Some(e), false) = (&unreachable, a.from_here_only) {
        return Err((
            69,
            format!("the agent is not reachable, so the gateway's side was not tested: {e}"),
        ));
    }
    // Targets, but not one verdict (time ran out, the agent refused every probe): not a pass.
    let tested = report.results.iter().any(|r| {
        [&r.here, &r.gateway].into_iter().any(|o| {
            o.as_ref()
                .is_some_and(|o| !matches!(o, connectivity::Outcome::NotTested { .. }))
        })
    });
    if !report.results.is_empty() && !tested {
        eprintln!("nothing was tested: no target got an answer or an error from either side");
        return Ok(ExitCode::from(1));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::VerifyBgpPeering {
            site,
            cluster,
            json,
        } => return verify_bgp_peering(site, cluster, json).await,
        Command::TestConnectivity {
            site,
            cluster,
            json,
            from_here_only,
            gateway_only,
            connect_timeout,
            timeout,
            parallel,
        } => {
            return test_connectivity(
                site,
                cluster,
                ConnectivityArgs {
                    json,
                    from_here_only,
                    gateway_only,
                    connect_timeout,
                    timeout,
                    parallel,
                },
            )
            .await
        }
        Command::Run {
            config,
            cluster,
            agents,
            kubeconfig,
            identity,
            listen,
        } => {
            let mut config = crate::config::Config::load(&config, cluster, agents)
                .map_err(|e| (64, e.to_string()))?;
            if listen.is_some() {
                config.listen = listen;
                config.validate().map_err(|e| (64, e.to_string()))?;
            }
            let identity = identity.unwrap_or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| format!("companion-{}", std::process::id()))
            });
            let client = crate::run::kube_client(kubeconfig.as_deref())
                .await
                .map_err(|e| (69, e.to_string()))?;
            crate::run::run(config, client, identity)
                .await
                .map_err(|e| (1, e.to_string()))?;
        }
        Command::Render {
            site,
            cilium_version,
            out,
            legacy_peering_policy,
            pod_cidrs,
            k8s_service_host,
            k8s_service_port,
            cilium_namespace,
            gateway,
            frr_version,
            external_secret,
        } => {
            let (s, cluster) = load_site(&site)?;
            if gateway {
                let password = bgplb_site::read_password(&s).map_err(|p| (64, p.to_string()))?;
                let mut inputs = bgplb_site::GatewayInputs::from_site(&s, password);
                inputs.frr = frr_version.unwrap_or_default();
                print!("{}", bgplb_site::gateway::render_text(&s, &inputs));
                return Ok(ExitCode::SUCCESS);
            }
            let version =
                bgplb_cilium::CiliumVersion::parse(cilium_version.as_deref().unwrap_or_default())
                    .map_err(|e| (64, e.to_string()))?;
            let options = bgplb_cilium::RenderOptions {
                legacy_peering_policy,
                pod_cidrs,
                k8s_service_host,
                k8s_service_port,
                cilium_namespace,
                ..Default::default()
            };
            let rendered = bgplb_cilium::render(&s, &cluster, version, &options)
                .map_err(|e| (64, e.to_string()))?;
            let password = password_object(&s, &cluster, external_secret)?;
            for w in &rendered.warnings {
                eprintln!("warning: {w}");
            }
            match out {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| (73, format!("cannot create {}: {e}", dir.display())))?;
                    let files = rendered.files().map_err(|e| (70, e.to_string()))?;
                    for (name, text) in &files {
                        std::fs::write(dir.join(name), text).map_err(|e| {
                            (
                                73,
                                format!("cannot write {}: {e}", dir.join(name).display()),
                            )
                        })?;
                    }
                    let mut count = files.len();
                    if let Some(obj) = &password {
                        let name = bgplb_cilium::naming::file_name(
                            obj["kind"].as_str().unwrap_or_default(),
                            obj["metadata"]["name"].as_str().unwrap_or_default(),
                        );
                        write_private(&dir.join(&name), &object_yaml(obj)?)?;
                        count += 1;
                    }
                    println!("{count} file(s) written to {}", dir.display());
                }
                None => {
                    print!("{}", rendered.to_yaml().map_err(|e| (70, e.to_string()))?);
                    if let Some(obj) = &password {
                        print!("---\n{}", object_yaml(obj)?);
                    }
                    eprintln!(
                        "note: the Helm values overlays ({} before the migration, {} after it) \
                         are written by --out DIR",
                        bgplb_cilium::Stage::Bgp.file_name(),
                        bgplb_cilium::Stage::Final.file_name()
                    );
                }
            }
        }
        Command::Migrate {
            site,
            cluster,
            dry_run,
            backup_file,
            timeout,
        } => {
            let (s, cluster_name) = load_site(&site)?;
            // A dry run asks the agent nothing: it needs no companion configuration.
            let agent = if dry_run && !cluster.config.exists() {
                None
            } else {
                Some(agent_client(&cluster, &cluster_name)?)
            };
            let (kube, client) = kube(&cluster, dry_run).await?;
            let version = cilium_version(&cluster, &client).await?;
            let opts = crate::migrate::Options {
                site: s,
                cluster: cluster_name,
                cilium_version: version,
                cilium_namespace: cluster.cilium_location().namespace,
                dry_run,
                backup_file,
                peering_timeout: std::time::Duration::from_secs(timeout),
                service_timeout: std::time::Duration::from_secs(timeout),
            };
            let result = match &agent {
                Some(agent) => crate::migrate::migrate(&kube, agent, &opts).await,
                None => crate::migrate::migrate(&kube, &crate::agent::NoAgent, &opts).await,
            };
            result.map_err(|e| {
                (1, format!("{e}\nThe progress is saved: run `bgplb-companion migrate` again to resume, or `bgplb-companion rollback` to undo."))
            })?;
        }
        Command::Validate {
            site,
            cluster,
            json,
            report,
            no_agent,
            dns_server,
        } => {
            let (s, cluster_name) = load_site(&site)?;
            let (kube, client) = kube(&cluster, true).await?;
            let version = cilium_version(&cluster, &client).await.ok();
            let services = list_typed::<k8s_openapi::api::core::v1::Service>(&client).await?;
            let nodes = list_typed::<k8s_openapi::api::core::v1::Node>(&client).await?;
            let mut cilium = Vec::new();
            for kind in [
                "CiliumLoadBalancerIPPool",
                "CiliumBGPClusterConfig",
                "CiliumBGPPeerConfig",
                "CiliumBGPAdvertisement",
                "CiliumBGPPeeringPolicy",
                "CiliumL2AnnouncementPolicy",
            ] {
                // The newest version the server serves for the kind.
                for v in ["cilium.io/v2", "cilium.io/v2alpha1"] {
                    let items = kube.list(v, kind).await.map_err(|e| (69, e.to_string()))?;
                    if !items.is_empty() {
                        cilium.extend(items);
                        break;
                    }
                }
            }
            let agent = if no_agent {
                None
            } else {
                let config = crate::config::Config::load(
                    &cluster.config,
                    Some(cluster_name.clone()),
                    Vec::new(),
                )
                .map_err(|e| (64, e.to_string()))?;
                let http = crate::push::client(&config.tls).map_err(|e| (64, e.to_string()))?;
                let a = crate::agent::HttpAgent {
                    client: http,
                    base: config.agents[0].clone(),
                };
                use crate::agent::AgentApi;
                match a.status().await {
                    Ok(st) => Some(st),
                    Err(e) => {
                        eprintln!("warning: the agent is not reachable ({e}); nodes are not compared with its sessions");
                        None
                    }
                }
            };
            let at = cluster.cilium_location();
            let cilium_config = kube
                .get(&crate::dynkube::ObjectRef::namespaced(
                    "v1",
                    "ConfigMap",
                    &at.namespace,
                    "cilium-config",
                ))
                .await
                .unwrap_or_else(|e| {
                    eprintln!(
                        "warning: cannot read {}/cilium-config ({e}); Cilium's BGP and L2 settings are not checked",
                        at.namespace
                    );
                    None
                });
            let (dns, backup) = match dns_server {
                None => (None, None),
                Some(server) => {
                    let resolver = crate::dns::Resolver::new(server);
                    let names = crate::validate::dns_names(&services);
                    let answers = {
                        use futures::StreamExt;
                        // At most 16 names at once: a home resolver's forwarding limit
                        // (dnsmasq's dns-forward-max is 150) must not turn into timeouts.
                        futures::stream::iter(names.iter().map(|n| resolver.lookup(n)))
                            .buffered(16)
                            .collect::<Vec<_>>()
                            .await
                    };
                    let backup = match crate::migrate::read_backup(&kube).await {
                        Ok(b) => b,
                        Err(e) => {
                            eprintln!("warning: cannot read the migration's backup ({e}); stale DNS records are not traced to the addresses from before the migration");
                            None
                        }
                    };
                    let dns = crate::validate::DnsResults {
                        server: server.to_string(),
                        lookups: names.into_iter().zip(answers).collect(),
                    };
                    (Some(dns), backup)
                }
            };
            let input = crate::validate::Input {
                site: s,
                cluster: cluster_name.clone(),
                services,
                nodes,
                cilium: crate::validate::CiliumObjects::from_values(cilium),
                cilium_version: version,
                agent,
                cilium_config,
                dns,
                backup,
            };
            let result = crate::validate::validate(&input);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&result).expect("serializes")
                );
            } else {
                print!("{}", crate::validate::render_table(&result));
            }
            if let Some(path) = report {
                let md = crate::validate::render_markdown(
                    &result,
                    &format!("bgplb validation: cluster {cluster_name}"),
                );
                std::fs::write(&path, md)
                    .map_err(|e| (73, format!("cannot write {}: {e}", path.display())))?;
            }
            if !result.ok {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Rollback { cluster } => {
            let (kube, client) = kube(&cluster, false).await?;
            // Only for the `helm upgrade` line it may print: a rollback does not need it.
            let version = cilium_version(&cluster, &client).await.ok();
            let n = crate::migrate::rollback(
                &kube,
                &cluster.cilium_location().namespace,
                version.as_deref(),
            )
            .await
            .map_err(|e| (1, e.to_string()))?;
            println!("rollback done: {n} object(s) restored or removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
