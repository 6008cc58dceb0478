//! Secrets out of everything people read. The BGP password appears in FRR's syntax as
//! `neighbor NAME password SECRET`; events, logs, errors, status and history output show
//! `password <redacted>` instead. The generations in the state database (0600, in a 0700
//! directory) keep it: a rollback needs it.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
