//! A CA a user can start with: `pki init` makes the CA and the agent's server certificate,
//! `pki issue` a companion's (or the operator's) client certificate, as files or as the
//! Kubernetes Secret the companion's Deployment mounts.
//!
//! Keys are ECDSA P-256, written 0600 in a 0700 directory. The CA signs for 10 years, the agent's
//! certificate for 2, client certificates for 1: re-issuing one is `pki issue` again (the agent and
//! the companion pick up new files without a restart); a new CA is `pki init --force`, after which
//! certificates of the old CA are refused.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use bgplb_site::Site;

use crate::error::Error;
use crate::files;

/// File names in the TLS directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";

const CA_DAYS: i64 = 3650;
const SERVER_DAYS: i64 = 730;
const CLIENT_DAYS: i64 = 365;

/// What `pki init` wrote.
#[derive(Debug, Clone)]
pub struct Initialized {
    pub files: Vec<PathBuf>,
    /// The server certificate's subject alternative names.
    pub names: Vec<String>,
}

/// Whom a client certificate is for.
#[derive(Debug, Clone)]
pub enum Holder {
    /// A companion, reporting for one cluster (`spiffe://bgplb/cluster/NAME`).
    Cluster(String),
    /// An operator's tools, seeing every cluster (`spiffe://bgplb/operator`).
    Operator,
}

impl Holder {
    pub fn identity(&self) -> String {
        match self {
            Holder::Cluster(c) => bgplb_proto::identity(c),
            Holder::Operator => bgplb_proto::OPERATOR_IDENTITY.to_string(),
        }
    }

    /// File stem: `companion-NAME` or `operator`.
    pub fn stem(&self) -> String {
        match self {
            Holder::Cluster(c) => format!("companion-{c}"),
            Holder::Operator => "operator".to_string(),
        }
    }
}

/// An issued client certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

fn pki_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Pki(format!("{what}: {e}"))
}

fn validity(p: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    // An hour back: a clock a little behind on the other side still accepts it.
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(days);
}

/// The names the agent's certificate carries: the listen address (unless it is a wildcard),
/// the gateway's addresses on the node network, and `extra` (host names or addresses).
pub fn server_names(site: &Site, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let listen = site.agent.listen.ip();
    if !listen.is_unspecified() {
        names.push(listen.to_string());
    }
    for a in &site.gateway.addresses {
        names.push(a.to_string());
    }
    names.extend(extra.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

fn san(name: &str) -> Result<SanType, Error> {
    match name.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => Ok(SanType::DnsName(name.try_into().map_err(|e| {
            pki_error(&format!("`{name}` is not a host name or address"), e)
        })?)),
    }
}

fn write_cert(path: &Path, pem: &str) -> Result<(), Error> {
    files::write_atomic(path, pem)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(Error::io("cannot set the mode of", path))
}

/// `pki init`: a new CA and the agent's server certificate in `dir` (the site's TLS directory).
/// Refuses to replace an existing CA unless `force`: its certificates would stop working.
pub fn init(
    site: &Site,
    dir: &Path,
    extra_names: &[String],
    force: bool,
) -> Result<Initialized, Error> {
    let ca_cert = dir.join(CA_CERT);
    if ca_cert.exists() && !force {
        return Err(Error::Pki(format!(
            "{} exists: a new CA would make every certificate it issued useless; pass --force to \
             replace it (then re-issue every companion's certificate with `pki issue`)",
            ca_cert.display()
        )));
    }
    let names = server_names(site, extra_names);
    if names.is_empty() {
        return Err(Error::Pki(
            "the agent's certificate would name nothing: the listen address is a wildcard and the \
             site has no gateway addresses; pass --name HOST"
                .into(),
        ));
    }
    let sans = names
        .iter()
        .map(|n| san(n))
        .collect::<Result<Vec<_>, _>>()?;

    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("bgplb CA {}", site.gateway.name),
    );
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca, CA_DAYS);
    let ca_key = KeyPair::generate().map_err(|e| pki_error("cannot make the CA key", e))?;
    let ca_signed = ca
        .clone()
        .self_signed(&ca_key)
        .map_err(|e| pki_error("cannot sign the CA", e))?;
    let ca_pem = ca_signed.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::default();
    server.distinguished_name = DistinguishedName::new();
    server.distinguished_name.push(
        DnType::CommonName,
        format!("bgplb-agent {}", site.gateway.name),
    );
    server.subject_alt_names = sans;
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut server, SERVER_DAYS);
    let server_key =
        KeyPair::generate().map_err(|e| pki_error("cannot make the agent's key", e))?;
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .map_err(|e| pki_error("cannot sign the agent's certificate", e))?;

    files::private_dir(dir)?;
    let tls = &site.agent.tls;
    let cert_path = dir.join(tls.cert.file_name().unwrap_or("agent.crt".as_ref()));
    let key_path = dir.join(tls.key.file_name().unwrap_or("agent.key".as_ref()));
    let ca_key_path = dir.join(CA_KEY);
    // The key first: a certificate without its key is never left behind.
    files::write_atomic(&ca_key_path, &ca_key_pem)?;
    write_cert(&ca_cert, &ca_pem)?;
    files::write_atomic(&key_path, &server_key.serialize_pem())?;
    write_cert(&cert_path, &server_cert.pem())?;
    let client_ca = dir.join(tls.client_ca.file_name().unwrap_or(CA_CERT.as_ref()));
    let mut written = vec![ca_cert.clone(), ca_key_path, cert_path, key_path];
    if client_ca != ca_cert {
        write_cert(&client_ca, &ca_pem)?;
        written.push(client_ca);
    }
    Ok(Initialized {
        files: written,
        names,
    })
}

/// `pki issue`: a client certificate signed by the CA in `dir`.
pub fn issue(dir: &Path, holder: &Holder) -> Result<Issued, Error> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| {
            Error::Pki(format!(
                "cannot read {}: {e}; run `bgplb-agent pki init` first",
                path.display()
            ))
        })
    };
    let ca_pem = read(CA_CERT)?;
    let ca_key = KeyPair::from_pem(&read(CA_KEY)?).map_err(|e| {
        pki_error(
            &format!("{} is not a private key", dir.join(CA_KEY).display()),
            e,
        )
    })?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| {
        pki_error(
            &format!("{} is not a CA certificate", dir.join(CA_CERT).display()),
            e,
        )
    })?;
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    let cn = match holder {
        Holder::Cluster(c) => format!("bgplb-companion {c}"),
        Holder::Operator => "bgplb operator".to_string(),
    };
    p.distinguished_name.push(DnType::CommonName, cn);
    p.subject_alt_names = vec![SanType::URI(
        holder
            .identity()
            .try_into()
            .map_err(|e| pki_error("the identity is not ASCII", e))?,
    )];
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut p, CLIENT_DAYS);
    let key = KeyPair::generate().map_err(|e| pki_error("cannot make the key", e))?;
    let cert = p
        .signed_by(&key, &issuer)
        .map_err(|e| pki_error("cannot sign the certificate", e))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem,
    })
}

/// Writes `NAME.crt`, `NAME.key` (0600) and `ca.crt` into `out`; returns the paths.
pub fn write_issued(out: &Path, holder: &Holder, issued: &Issued) -> Result<Vec<PathBuf>, Error> {
    files::private_dir(out)?;
    let stem = holder.stem();
    let cert = out.join(format!("{stem}.crt"));
    let key = out.join(format!("{stem}.key"));
    let ca = out.join(CA_CERT);
    files::write_atomic(&key, &issued.key_pem)?;
    write_cert(&cert, &issued.cert_pem)?;
    if !ca.exists() || std::fs::read_to_string(&ca).ok().as_deref() != Some(&issued.ca_pem) {
        write_cert(&ca, &issued.ca_pem)?;
    }
    Ok(vec![cert, key, ca])
}

/// The Secret the companion's Deployment mounts (`tls.crt`, `tls.key`, `ca.crt`), as YAML for
/// `kubectl apply -f -`.
pub fn secret_manifest(issued: &Issued, namespace: &str, name: &str) -> String {
    let block = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    app.kubernetes.io/managed-by: bgplb\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}  ca.crt: |\n{}",
        block(&issued.cert_pem),
        block(&issued.key_pem),
        block(&issued.ca_pem)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        bgplb_site::parse(include_str!("../../config/site.toml")).unwrap()
    }

    #[test]
    fn init_then_issue_chains_to_the_ca_with_the_right_names() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let made = init(&site(), &tls, &["udm.home.arpa".into()], false).unwrap();
        assert_eq!(
            made.names,
            ["172.29.51.1", "fd47:25e1:2f96:51::1", "udm.home.arpa"]
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tls), 0o700);
        assert_eq!(mode(&tls.join("agent.key")), 0o600);
        assert_eq!(mode(&tls.join(CA_KEY)), 0o600);
        // The agent's own TLS setup takes the files (key and certificate match).
        let settings = bgplb_site::TlsSettings {
            cert: tls.join("agent.crt"),
            key: tls.join("agent.key"),
            client_ca: tls.join(CA_CERT),
        };
        crate::tls::server_config(&settings).unwrap();
        // A second init would orphan every certificate: refused, nothing changed.
        let before = std::fs::read_to_string(tls.join(CA_CERT)).unwrap();
        let err = init(&site(), &tls, &[], false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        assert_eq!(std::fs::read_to_string(tls.join(CA_CERT)).unwrap(), before);

        let issued = issue(&tls, &Holder::Cluster("home".into())).unwrap();
        let der = rustls_pki_types::CertificateDer::from_pem_slice(issued.cert_pem.as_bytes());
        use rustls_pki_types::pem::PemObject;
        let der = der.unwrap();
        assert_eq!(
            crate::tls::identities(&der),
            ["spiffe://bgplb/cluster/home"]
        );
        assert!(crate::tls::may_report_for(&der, "home"));
        assert!(!crate::tls::may_report_for(&der, "lab"));
        let secret = secret_manifest(&issued, "bgplb", "bgplb-companion-tls");
        assert!(
            secret.contains("name: bgplb-companion-tls")
                && secret.contains("  ca.crt: |\n    -----BEGIN CERTIFICATE-----")
        );
        let written = write_issued(
            &dir.path().join("out"),
            &Holder::Operator,
            &issue(&tls, &Holder::Operator).unwrap(),
        )
        .unwrap();
        assert_eq!(mode(&written[1]), 0o600);
    }

    #[test]
    fn issue_without_a_ca_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let err = issue(dir.path(), &Holder::Operator)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pki init"), "{err}");
    }
}
