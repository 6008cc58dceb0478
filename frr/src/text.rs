//! Parses FRR configuration text — ours, or what `show running-config` prints — into stanzas.
//!
//! FRR indents the body of a context (`router bgp`, `address-family`, `route-map`) by one space
//! per level and closes it with `exit` / `exit-address-family`; `!` lines are separators. The
//! parser follows the indentation and ignores separators, so both FRR's output and our rendered
//! files parse to the same tree.

/// One configuration line and, for a context, the lines inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub line: String,
    pub children: Vec<Stanza>,
}

/// Lines that carry no configuration.
fn is_noise(trimmed: &str) -> bool {
    trimmed.is_empty()
        || trimmed.starts_with('!')
        || trimmed == "exit"
        || trimmed == "exit-address-family"
        || trimmed == "exit-vrf"
        || trimmed == "end"
        || trimmed == "Building configuration..."
        || trimmed == "Current configuration:"
}

/// Parses configuration text into top-level stanzas, each line with whitespace normalised.
pub fn parse(text: &str) -> Vec<Stanza> {
    // Stack of (indent, stanza) for the open contexts.
    let mut roots: Vec<Stanza> = Vec::new();
    let mut stack: Vec<(usize, Stanza)> = Vec::new();

    fn close_to(stack: &mut Vec<(usize, Stanza)>, roots: &mut Vec<Stanza>, indent: usize) {
        while let Some((level, _)) = stack.last() {
            if *level < indent {
                break;
            }
            let (_, done) = stack.pop().expect("stack is not empty");
            match stack.last_mut() {
                Some((_, parent)) => parent.children.push(done),
                None => roots.push(done),
            }
        }
    }

    for raw in text.lines() {
        let trimmed = raw.trim();
        if is_noise(trimmed) {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        close_to(&mut stack, &mut roots, indent);
        let line = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
        stack.push((
            indent,
            Stanza {
                line,
                children: Vec::new(),
            },
        ));
    }
    close_to(&mut stack, &mut roots, 0);
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_running_config_shape() {
        let text = "Building configuration...\n\nCurrent configuration:\n!\nfrr version 8.4.4\n\
            router bgp 64512\n bgp router-id 172.29.51.1\n !\n address-family ipv4 unicast\n  \
            maximum-paths 3\n exit-address-family\nexit\n!\nroute-map X permit 10\n match  community C\n\
            exit\n!\nip prefix-list P seq 5 permit any\nend\n";
        let stanzas = parse(text);
        let lines: Vec<_> = stanzas.iter().map(|s| s.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "frr version 8.4.4",
                "router bgp 64512",
                "route-map X permit 10",
                "ip prefix-list P seq 5 permit any"
            ]
        );
        let bgp = &stanzas[1];
        assert_eq!(bgp.children.len(), 2);
        assert_eq!(bgp.children[1].line, "address-family ipv4 unicast");
        assert_eq!(bgp.children[1].children[0].line, "maximum-paths 3");
        assert_eq!(stanzas[2].children[0].line, "match community C");
    }
}
