//! Secrets out of everything people read. The BGP password appears in FRR's syntax as
//! `neighbor NAME password SECRET`; events, logs, errors, status and history output show
//! `password <redacted>` instead. The generations in the state database (0600, in a 0700
//! directory) keep it: a rollback needs it.
//!
//! What leaves the gateway (`troubleshoot`'s support bundle) goes through [`Scrubber::scrub`]:
//! that, PEM private key blocks, and the exact secret strings (the BGP password, the UniFi API
//! key) wherever they appear.

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// `text` with the word after every `neighbor ... password` replaced.
pub fn redact(text: &str) -> String {
    const KEY: &str = "password ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(KEY) {
        let (head, tail) = rest.split_at(i + KEY.len());
        out.push_str(head);
        let line_start = head.rfind('\n').map_or(0, |n| n + 1);
        let secret_len = tail.find(char::is_whitespace).unwrap_or(tail.len());
        if head[line_start..].contains("neighbor ") && secret_len > 0 {
            out.push_str(REDACTED);
            rest = &tail[secret_len..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// FRR lines that carry a secret after their keyword (other daemons' and the operator's own
/// configuration, e.g. from UniFi's upload): everything after the keyword is replaced.
const FRR_SECRET_LINES: [&str; 9] = [
    "password ",
    "enable password ",
    "isis password ",
    "area-password ",
    "domain-password ",
    "ip ospf authentication-key ",
    "ip ospf message-digest-key ",
    "ipv6 ospf6 authentication ",
    "key-string ",
];

/// `text` with the secret of every FRR line in [`FRR_SECRET_LINES`] replaced (`no ` forms too).
pub fn redact_frr_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let bare = body.strip_prefix("no ").unwrap_or(body);
        match FRR_SECRET_LINES.iter().find(|k| bare.starts_with(*k)) {
            Some(k) if bare.len() > k.len() => {
                out.push_str(indent);
                out.push_str(&body[..body.len() - bare.len() + k.len()]);
                out.push_str(REDACTED);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// What replaces a PEM private key block.
pub const REDACTED_KEY: &str = "<redacted private key>";

/// The end of every PEM private key marker: `-----BEGIN RSA PRIVATE KEY-----`, `-----END
/// PRIVATE KEY-----`, `-----BEGIN EC PRIVATE KEY-----`, `-----BEGIN ENCRYPTED PRIVATE KEY-----`,
/// `-----BEGIN OPENSSH PRIVATE KEY-----`, ...
const KEY_MARKER: &str = "PRIVATE KEY-----";

/// `text` with every PEM private key block, from its `-----BEGIN ... PRIVATE KEY-----` to the
/// next `-----END ... PRIVATE KEY-----`, replaced by [`REDACTED_KEY`]; whatever is on the lines
/// (a log's prefixes, a comment's `#`) and however the line breaks are written (JSON's `\n`).
/// Cut blocks err on the safe side: a beginning without an end is redacted to the end of the
/// text, an end without a beginning (a log's tail cut inside a key) from the start of the text
/// (or the previous block's end).
pub fn redact_private_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY_MARKER) {
        let (start, is_end) = marker_start(rest, at);
        let after = &rest[at + KEY_MARKER.len()..];
        if is_end {
            // What precedes an end without a beginning may be the rest of a key.
            out.push_str(REDACTED_KEY);
            rest = after;
            continue;
        }
        out.push_str(&rest[..start]);
        out.push_str(REDACTED_KEY);
        match after.find(KEY_MARKER) {
            // The next marker closes the block, whatever it says.
            Some(end) => rest = &after[end + KEY_MARKER.len()..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// Where the marker whose `PRIVATE KEY-----` is at `at` starts (its leading dashes, looked for
/// on the same line within 64 bytes), and whether it is an `END` marker.
fn marker_start(text: &str, at: usize) -> (usize, bool) {
    let mut from = at.saturating_sub(64);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let before = &text[from..at];
    let before = match before.rfind('\n') {
        Some(nl) => &before[nl + 1..],
        None => before,
    };
    let line_from = at - before.len();
    match before.rfind("-----") {
        Some(dashes) => {
            let label = before[dashes + 5..].trim_start();
            (line_from + dashes, label.starts_with("END"))
        }
        None => (at, false),
    }
}

/// Everything that must not leave the gateway, through one function: [`redact`] (FRR's
/// `neighbor ... password SECRET`), PEM private key blocks ([`redact_private_keys`]) and the
/// exact secret strings it was made with, wherever they appear (a log line, an error message,
/// a comment), also as JSON escapes them.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Longest first, so a secret containing another is replaced whole.
    secrets: Vec<String>,
}

impl Scrubber {
    /// A scrubber for `secrets` (file contents: each is taken whole, trimmed, and line by line).
    pub fn new<I, S>(secrets: I) -> Scrubber
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut all: Vec<String> = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            let whole = secret.trim();
            let lines = whole.lines().map(str::trim);
            for s in std::iter::once(whole).chain(lines) {
                if s.is_empty() {
                    continue;
                }
                all.push(s.to_string());
                // As it appears inside a JSON string.
                if let Ok(json) = serde_json::to_string(s) {
                    all.push(json[1..json.len() - 1].to_string());
                }
            }
        }
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
        Scrubber { secrets: all }
    }

    /// Whether it knows no secret (only the general rules apply).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with private keys, FRR passwords and every secret replaced. Keys go first: a
    /// secret that happens to be part of a marker must not hide the block from the key rule.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = redact_frr_secrets(&redact(&redact_private_keys(text)));
        for s in &self.secrets {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), REDACTED);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_frr_secrets_are_redacted() {
        let conf = "password zebra\nenable password s3cr3t\ninterface br0\n ip ospf message-digest-key 1 md5 OSPFKEY\n ip ospf authentication-key AUTHKEY\nkey chain k\n key 1\n  key-string CHAINKEY\nrouter isis x\n area-password md5 ISISKEY\n";
        let out = redact_frr_secrets(conf);
        for secret in [
            "zebra", "s3cr3t", "OSPFKEY", "AUTHKEY", "CHAINKEY", "ISISKEY",
        ] {
            assert!(!out.contains(secret), "{secret} left in:\n{out}");
        }
        assert!(
            out.contains(" ip ospf message-digest-key <redacted>"),
            "{out}"
        );
        assert!(out.contains("  key-string <redacted>"), "{out}");
        assert!(out.contains("interface br0\n"), "{out}");
    }

    const RSA: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----\n";
    const EC: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\nAwEHoUQDQgAEPR3tU2Fta9ktY+6P9G0cWO+0kETA6SFs38GecTyudlHz6xvCdz8q\n-----END EC PRIVATE KEY-----\n";
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2\nOF/2NxApJCzGCEDdfSp6VQO30hyhRANCAAQRWz+jn65BtOMvdyHKcvjBeBSDZH2r\n-----END PRIVATE KEY-----\n";
    const BODIES: [&str; 3] = [
        "MIIEpAIBAAKCAQEAu1SU1",
        "MHcCAQEEIIrYSSNQFaA2",
        "MIGHAgEAMBMGByqGSM49",
    ];

    fn no_key_left(text: &str) {
        assert!(!text.contains(KEY_MARKER), "{text}");
        assert!(
            !text.contains("-----BEGIN") && !text.contains("-----END"),
            "{text}"
        );
        for body in BODIES {
            assert!(!text.contains(body), "{text}");
        }
    }

    #[test]
    fn passwords_in_frr_syntax_are_redacted_and_nothing_else() {
        let text = "router bgp 64512\n neighbor BGPLB-home-V4 password s3cr3t!\n neighbor BGPLB-home-V6 password other\n% [BGP] Unknown command: neighbor X password zz\nthe password file /data/pw is missing";
        let r = redact(text);
        assert!(
            !r.contains("s3cr3t") && !r.contains("other") && !r.contains("zz"),
            "{r}"
        );
        assert!(
            r.contains(" neighbor BGPLB-home-V4 password <redacted>\n"),
            "{r}"
        );
        assert!(r.ends_with("the password file /data/pw is missing"), "{r}");
        assert_eq!(
            redact("+ [router bgp 64512] neighbor G password p"),
            "+ [router bgp 64512] neighbor G password <redacted>"
        );
    }

    #[test]
    fn rsa_ec_and_pkcs8_blocks_are_redacted_with_what_surrounds_them_kept() {
        for (key, label) in [(RSA, "RSA"), (EC, "EC"), (PKCS8, "PKCS8")] {
            let text = format!("before {label}\n{key}after\n");
            let r = redact_private_keys(&text);
            no_key_left(&r);
            assert_eq!(r, format!("before {label}\n{REDACTED_KEY}\nafter\n"));
        }
        // A certificate is public: kept.
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(redact_private_keys(cert), cert);
    }

    #[test]
    fn several_blocks_in_logs_comments_and_json_are_all_redacted() {
        let text = format!("a\n{RSA}b\n{EC}c\n{PKCS8}d");
        let r = redact_private_keys(&text);
        no_key_left(&r);
        assert_eq!(r.matches(REDACTED_KEY).count(), 3, "{r}");
        assert!(
            r.starts_with("a\n") && r.contains("\nb\n") && r.ends_with("\nd"),
            "{r}"
        );
        // As a TOML comment and as log lines with a prefix on every line.
        let commented: String = PKCS8.lines().map(|l| format!("# {l}\n")).collect();
        let r = redact_private_keys(&format!("[gateway]\n{commented}name = \"gw\"\n"));
        no_key_left(&r);
        assert_eq!(r, format!("[gateway]\n# {REDACTED_KEY}\nname = \"gw\"\n"));
        let logged: String = EC
            .lines()
            .map(|l| format!("Jan 01 gw bgplb-agent[7]: {l}\n"))
            .collect();
        let r = redact_private_keys(&logged);
        no_key_left(&r);
        // Inside a JSON string, with escaped line breaks: still valid JSON after.
        let json = serde_json::to_string(&serde_json::json!({ "message": RSA, "n": 1 })).unwrap();
        let r = redact_private_keys(&json);
        no_key_left(&r);
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["message"], format!("{REDACTED_KEY}\n"));
    }

    #[test]
    fn cut_blocks_are_redacted_on_the_safe_side() {
        // A log's tail that starts inside a key: the end without a beginning.
        let tail = &PKCS8[PKCS8.find('\n').unwrap() + 1..];
        let r = redact_private_keys(&format!("{tail}later line\n"));
        no_key_left(&r);
        assert_eq!(r, format!("{REDACTED_KEY}\nlater line\n"));
        // A beginning without an end: everything after it.
        let head = &RSA[..RSA.find("-----END").unwrap()];
        let r = redact_private_keys(&format!("first\n{head}"));
        no_key_left(&r);
        assert_eq!(r, format!("first\n{REDACTED_KEY}"));
    }

    #[test]
    fn the_exact_secrets_are_scrubbed_everywhere_with_the_other_rules() {
        let s = Scrubber::new(["  Pa55-w\"rd \n", "api-key-0123456789\nsecond-line\n"]);
        let text = format!(
            "neighbor G password Pa55-w\"rd\nX-API-KEY: api-key-0123456789 (second-line)\n{}\n{EC}",
            serde_json::to_string(&serde_json::json!({"e": "bad key Pa55-w\"rd"})).unwrap()
        );
        let r = s.scrub(&text);
        for secret in ["Pa55-w", "api-key-0123456789", "second-line"] {
            assert!(!r.contains(secret), "{secret} in {r}");
        }
        no_key_left(&r);
        assert!(r.starts_with("neighbor G password <redacted>\n"), "{r}");
        assert!(r.contains("X-API-KEY: <redacted> (<redacted>)"), "{r}");
        assert!(r.contains(r#"{"e":"bad key <redacted>"}"#), "{r}");
        // Nothing to scrub: only the general rules apply.
        assert_eq!(Scrubber::new(Vec::<String>::new()).scrub("plain"), "plain");
        assert!(Scrubber::new(["", "  \n"]).is_empty());
    }
}
