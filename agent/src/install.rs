//! `install` / `uninstall` on a UniFi gateway (or any systemd Linux router with FRR).
//!
//! Firmware upgrades wipe everything outside `/data`, so everything the agent needs lives in
//! `/data/bgplb` (binary, site file, TLS files, state) and `/data/on_boot.d/10-bgplb-agent.sh`
//! (run at every boot by UniFi OS's on-boot mechanism) puts the systemd unit back and starts it.
//! Both commands are idempotent; `--root DIR` does everything inside DIR (tests) and starts
//! nothing, as does `--no-start`.
//!
//! Preflight runs before anything is written and reports every problem at once, each one
//! sentence with its fix.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bgplb_site::Site;

use crate::error::Error;
use crate::files;
use crate::vtysh::Vtysh;

/// The unit, the on-boot script: the same files `config/udm/` documents.
pub const UNIT: &str = include_str!("../../config/udm/bgplb-agent.service");
pub const ON_BOOT: &str = include_str!("../../config/udm/10-bgplb-agent.sh");

pub const UNIT_PATH: &str = "/etc/systemd/system/bgplb-agent.service";
pub const ON_BOOT_PATH: &str = "/data/on_boot.d/10-bgplb-agent.sh";
pub const HOME: &str = "/data/bgplb";
pub const FRR_DAEMONS: &str = "/etc/frr/daemons";

/// Where things go: `/` on the gateway, a temporary tree in tests.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    /// `path` (absolute) inside the root.
    pub fn at(&self, path: impl AsRef<Path>) -> PathBuf {
        let p = path.as_ref();
        self.root.join(p.strip_prefix("/").unwrap_or(p))
    }

    pub fn is_real(&self) -> bool {
        self.root == Path::new("/")
    }
}

/// What preflight checks, each failing with one sentence.
pub async fn preflight(site: &Site, layout: &Layout, vtysh: &Vtysh) -> Vec<String> {
    let mut problems = Vec::new();
    let daemons = layout.at(FRR_DAEMONS);
    match std::fs::read_to_string(&daemons) {
        Err(_) => problems.push(format!(
            "FRR is not installed ({} is missing): install FRR (on a UniFi gateway enable BGP \
             once in the UniFi Network application, which installs and starts it)",
            daemons.display()
        )),
        Ok(text) => {
            let bgpd = text
                .lines()
                .map(str::trim)
                .any(|l| l.replace(' ', "") == "bgpd=yes");
            if !bgpd {
                problems.push(format!(
                    "bgpd is not enabled in {}: set `bgpd=yes` there and restart FRR \
                     (systemctl restart frr)",
                    daemons.display()
                ));
            }
        }
    }
    if let Err(e) = vtysh.frr_version().await {
        problems.push(format!(
            "vtysh does not answer ({e}): start FRR (systemctl start frr) or set agent.frr.vtysh \
             and agent.frr.instance in the site file"
        ));
    }
    problems.extend(tls_problems(site, layout));
    if let Some(p) = listen_problem(site.agent.listen) {
        problems.push(p);
    }
    problems
}

/// The TLS files: present, the key matching the certificate, the certificate issued by the CA
/// for the listen address.
pub fn tls_problems(site: &Site, layout: &Layout) -> Vec<String> {
    let tls = &site.agent.tls;
    let settings = bgplb_site::TlsSettings {
        cert: layout.at(&tls.cert),
        key: layout.at(&tls.key),
        client_ca: layout.at(&tls.client_ca),
    };
    let missing: Vec<String> = [&settings.cert, &settings.key, &settings.client_ca]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        return vec![format!(
            "TLS files missing ({}): run `bgplb-agent pki init` (or put your own certificate, key \
             and client CA there)",
            missing.join(", ")
        )];
    }
    let mut problems = Vec::new();
    if let Err(e) = crate::tls::server_config(&settings) {
        problems.push(format!(
            "the agent's TLS files do not go together ({e}): the key must be the certificate's \
             (re-run `bgplb-agent pki init --force`, or fix agent.tls in the site file)"
        ));
        return problems;
    }
    if let Some(p) = chain_problem(&settings, site.agent.listen.ip()) {
        problems.push(p);
    }
    problems
}

/// Whether the agent's certificate is issued by the client CA and names the listen address
/// (the companion verifies both).
fn chain_problem(settings: &bgplb_site::TlsSettings, listen: IpAddr) -> Option<String> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&settings.client_ca)
        .ok()?
        .flatten()
    {
        roots.add(ca).ok()?;
    }
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(&settings.cert)
        .ok()?
        .flatten()
        .collect();
    let (leaf, rest) = chain.split_first()?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .ok()?;
    let name = if listen.is_unspecified() {
        // A wildcard listener: the companion connects to a gateway address; only the chain is
        // checked here.
        ServerName::try_from("bgplb-agent").ok()?
    } else {
        ServerName::IpAddress(listen.into())
    };
    match verifier.verify_server_cert(leaf, rest, &name, &[], UnixTime::now()) {
        Ok(_) => None,
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
        | Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForNameContext { .. },
        )) if listen.is_unspecified() => None,
        Err(e) => Some(format!(
            "the agent's certificate {} does not verify against the client CA {} for {listen} \
             ({e}): the companion would refuse it; issue it from that CA for the listen address \
             (`bgplb-agent pki init --force`)",
            settings.cert.display(),
            settings.client_ca.display()
        )),
    }
}

/// The listen address must be one of this host's (or a wildcard).
fn listen_problem(listen: SocketAddr) -> Option<String> {
    if listen.ip().is_unspecified() {
        return None;
    }
    match TcpListener::bind(SocketAddr::new(listen.ip(), 0)) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Some(format!(
            "the listen address {} is not an address of this host: set agent.listen in the site \
             file to the gateway's address on the node network",
            listen.ip()
        )),
        Err(_) => None,
    }
}

/// What install did, for the output.
#[derive(Debug, Default)]
pub struct Report {
    pub written: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
    pub started: bool,
}

fn put(report: &mut Report, path: PathBuf, contents: &[u8], mode: u32) -> Result<(), Error> {
    if std::fs::read(&path).ok().as_deref() == Some(contents) {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(Error::io("cannot set the mode of", &path))?;
        report.unchanged.push(path);
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
    }
    let tmp = path.with_extension("bgplb-tmp");
    std::fs::write(&tmp, contents).map_err(Error::io("cannot write", &tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(Error::io("cannot set the mode of", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(Error::io("cannot write", &path))?;
    report.written.push(path);
    Ok(())
}

/// Lays out `/data/bgplb`, the on-boot script and the unit; starts the agent unless `start` is
/// false. `site_file` is the file `--config` named (copied when `/data/bgplb/site.toml` is
/// absent); `binary` the running executable.
pub fn install(
    layout: &Layout,
    site: &Site,
    site_file: &Path,
    binary: &Path,
    start: bool,
) -> Result<Report, Error> {
    let mut report = Report::default();
    let home = layout.at(HOME);
    files::private_dir(&home)?;
    files::private_dir(&layout.at(&site.agent.data_dir))?;
    if let Some(tls) = site.agent.tls.cert.parent() {
        files::private_dir(&layout.at(tls))?;
    }
    let target = home.join("bin/bgplb-agent");
    let same = std::fs::canonicalize(binary).ok() == std::fs::canonicalize(&target).ok();
    if same {
        report.unchanged.push(target);
    } else {
        let bytes = std::fs::read(binary).map_err(Error::io("cannot read", binary))?;
        put(&mut report, target, &bytes, 0o755)?;
    }
    let site_target = home.join("site.toml");
    if site_target.exists() {
        report.unchanged.push(site_target);
    } else {
        let bytes = std::fs::read(site_file).map_err(Error::io("cannot read", site_file))?;
        put(&mut report, site_target, &bytes, 0o600)?;
    }
    put(
        &mut report,
        home.join("bgplb-agent.service"),
        UNIT.as_bytes(),
        0o644,
    )?;
    put(
        &mut report,
        layout.at(ON_BOOT_PATH),
        ON_BOOT.as_bytes(),
        0o755,
    )?;
    put(&mut report, layout.at(UNIT_PATH), UNIT.as_bytes(), 0o644)?;
    if start && layout.is_real() {
        // Exactly what happens at boot.
        run(&[ON_BOOT_PATH])?;
        report.started = true;
    }
    Ok(report)
}

/// What uninstall removes or keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct UninstallOptions {
    pub purge: bool,
    pub stop: bool,
}

/// Stops and removes the unit and the on-boot script; keeps `/data/bgplb` unless `purge`.
pub fn uninstall(layout: &Layout, opts: UninstallOptions) -> Result<Vec<PathBuf>, Error> {
    if opts.stop && layout.is_real() && Path::new("/run/systemd/system").exists() {
        // Absent or already stopped is fine.
        let _ = std::process::Command::new("systemctl")
            .args(["disable", "--now", "bgplb-agent.service"])
            .status();
    }
    let mut removed = Vec::new();
    for p in [layout.at(UNIT_PATH), layout.at(ON_BOOT_PATH)] {
        match std::fs::remove_file(&p) {
            Ok(()) => removed.push(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("cannot remove", &p)(e)),
        }
    }
    if opts.stop && layout.is_real() && Path::new("/run/systemd/system").exists() {
        let _ = std::process::Command::new("systemctl")
            .arg("daemon-reload")
            .status();
    }
    if opts.purge {
        let home = layout.at(HOME);
        if home.exists() {
            std::fs::remove_dir_all(&home).map_err(Error::io("cannot remove", &home))?;
            removed.push(home);
        }
    }
    Ok(removed)
}

fn run(argv: &[&str]) -> Result<(), Error> {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(Error::io("cannot run", argv[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Install(format!(
            "{} failed ({}): {}{}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
