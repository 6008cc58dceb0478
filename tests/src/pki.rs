//! The test PKI: a CA, the agent's server certificate, companion client certificates (one per
//! cluster identity) and the bad ones the mTLS tests need. `bgplb-testpki DIR` writes them;
//! `tests/pki/` holds the committed set (regenerate with `tests/pki/regenerate.sh`).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use time::macros::datetime;

type Issuer = CertifiedIssuer<'static, KeyPair>;

fn ca(name: &str) -> Issuer {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = datetime!(2026-01-01 0:00 UTC);
    p.not_after = datetime!(2046-01-01 0:00 UTC);
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("CA")
}

struct Leaf {
    name: &'static str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
}

fn leaf(issuer: &Issuer, leaf: &Leaf) -> (String, String) {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, leaf.name);
    p.subject_alt_names = leaf.sans.clone();
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![leaf.usage.clone()];
    if leaf.expired {
        p.not_before = datetime!(2020-01-01 0:00 UTC);
        p.not_after = datetime!(2021-01-01 0:00 UTC);
    } else {
        p.not_before = datetime!(2026-01-01 0:00 UTC);
        p.not_after = datetime!(2046-01-01 0:00 UTC);
    }
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().expect("ia5"))
}

fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().expect("ia5"))
}

/// Writes the whole test PKI into `dir` (PEM files: NAME.crt and NAME.key).
pub fn generate(dir: &Path) {
    std::fs::create_dir_all(dir).expect("pki dir");
    let write = |name: &str, (cert, key): (String, String)| {
        std::fs::write(dir.join(format!("{name}.crt")), cert).expect("write cert");
        std::fs::write(dir.join(format!("{name}.key")), key).expect("write key");
    };
    let main = ca("bgplb test CA");
    write("ca", (main.pem(), main.key().serialize_pem()));
    let other = ca("some other CA");
    write("other-ca", (other.pem(), other.key().serialize_pem()));

    let server_sans = vec![
        SanType::IpAddress("172.29.51.1".parse().expect("ip")),
        SanType::IpAddress("127.0.0.1".parse().expect("ip")),
        SanType::IpAddress("::1".parse().expect("ip")),
        dns("localhost"),
        dns("bgplb-agent"),
    ];
    let client = |cluster: &str| vec![uri(&bgplb_proto_identity(cluster))];
    let leaves: Vec<(&str, &Issuer, Leaf)> = vec![
        (
            "agent",
            &main,
            Leaf {
                name: "bgplb-agent",
                sans: server_sans.clone(),
                usage: ExtendedKeyUsagePurpose::ServerAuth,
                expired: false,
            },
        ),
        (
            "agent-rotated",
            &main,
            Leaf {
                name: "bgplb-agent (rotated)",
                sans: server_sans,
                usage: ExtendedKeyUsagePurpose::ServerAuth,
                expired: false,
            },
        ),
        (
            "companion-home",
            &main,
            Leaf {
                name: "bgplb-companion home",
                sans: client("home"),
                usage: ExtendedKeyUsagePurpose::ClientAuth,
                expired: false,
            },
        ),
        (
            "companion-lab",
            &main,
            Leaf {
                name: "bgplb-companion lab",
                sans: client("lab"),
                usage: ExtendedKeyUsagePurpose::ClientAuth,
                expired: false,
            },
        ),
        (
            "operator",
            &main,
            Leaf {
                name: "bgplb operator",
                sans: vec![uri("spiffe://bgplb/operator")],
                usage: ExtendedKeyUsagePurpose::ClientAuth,
                expired: false,
            },
        ),
        (
            "other-ca-home",
            &other,
            Leaf {
                name: "bgplb-companion home (other CA)",
                sans: client("home"),
                usage: ExtendedKeyUsagePurpose::ClientAuth,
                expired: false,
            },
        ),
        (
            "expired-home",
            &main,
            Leaf {
                name: "bgplb-companion home (expired)",
                sans: client("home"),
                usage: ExtendedKeyUsagePurpose::ClientAuth,
                expired: true,
            },
        ),
        (
            "server-as-client",
            &main,
            Leaf {
                name: "a server certificate",
                sans: client("home"),
                usage: ExtendedKeyUsagePurpose::ServerAuth,
                expired: false,
            },
        ),
    ];
    for (name, issuer, l) in leaves {
        write(name, leaf(issuer, &l));
    }
}

/// Same as `bgplb_proto::identity` (kept here so the PKI generator has no other dependency).
fn bgplb_proto_identity(cluster: &str) -> String {
    format!("spiffe://bgplb/cluster/{cluster}")
}

/// Issues a certificate as cert-manager's CA issuer would from a `Certificate` object's spec
/// (`commonName`, `uris`, `usages`, `privateKey` ECDSA 256 or 384), signed by the CA in
/// `ca_cert`/`ca_key` (PEM), valid until `not_after`. Returns (certificate, key) PEM.
pub fn issue_like_cert_manager(
    spec: &serde_json::Value,
    ca_cert: &str,
    ca_key: &str,
    not_after: time::OffsetDateTime,
) -> (String, String) {
    let ca_key = KeyPair::from_pem(ca_key).expect("CA key");
    let issuer = rcgen::Issuer::from_ca_cert_pem(ca_cert, ca_key).expect("CA certificate");
    let alg = match (
        spec["privateKey"]["algorithm"].as_str(),
        spec["privateKey"]["size"].as_u64(),
    ) {
        (Some("ECDSA"), Some(256) | None) => &rcgen::PKCS_ECDSA_P256_SHA256,
        (Some("ECDSA"), Some(384)) => &rcgen::PKCS_ECDSA_P384_SHA384,
        other => panic!("the test issuer does not make {other:?} keys"),
    };
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    if let Some(cn) = spec["commonName"].as_str() {
        p.distinguished_name.push(DnType::CommonName, cn);
    }
    p.subject_alt_names = spec["uris"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| uri(u.as_str().expect("uri")))
        .collect();
    for usage in spec["usages"].as_array().into_iter().flatten() {
        match usage.as_str().expect("usage") {
            "client auth" => p
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth),
            "server auth" => p
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth),
            "digital signature" => p.key_usages.push(KeyUsagePurpose::DigitalSignature),
            "key encipherment" => p.key_usages.push(KeyUsagePurpose::KeyEncipherment),
            other => panic!("the test issuer does not know the usage {other}"),
        }
    }
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    p.not_after = not_after;
    let key = KeyPair::generate_for(alg).expect("key");
    let cert = p.signed_by(&key, &issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// Writes `files` into `dir` the way the kubelet updates a Secret volume: a new hidden
/// directory, then `..data` swapped to it in one rename, the visible names being symlinks
/// through `..data` (so a reader never sees half an update).
pub fn kubelet_secret_update(dir: &Path, files: &[(&str, &str)]) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::fs::create_dir_all(dir).expect("secret dir");
    let version = format!(
        "..2026_12_02_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    std::fs::create_dir(dir.join(&version)).expect("version dir");
    for (name, text) in files {
        std::fs::write(dir.join(&version).join(name), text).expect("write");
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&version, &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).expect("link");
        }
    }
}
