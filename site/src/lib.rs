//! The site file and what follows from it.
//!
//! One TOML file describes a site: the gateway, the cluster(s), the LB segment, the
//! pools and the BGP policy. [`load`] parses and validates it, reporting every problem at once with
//! its key path; [`gateway::gateway_config`] turns it, plus the node set, into the FRR
//! configuration the agent applies. The companion reads the same file to render the Cilium side.

pub mod blocks;
pub mod gateway;
pub mod model;
pub mod nodes;
pub mod validate;

use std::path::{Path, PathBuf};

pub use bgplb_frr::FrrVersion;
pub use blocks::Range;
pub use gateway::{gateway_config, GatewayInputs};
pub use model::*;
pub use nodes::NodeSpec;
pub use validate::Problem;

/// Why a site file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read site file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("site file {path} is not a valid bgplb site: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("site file {path} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses site TOML without validating it.
pub fn parse(text: &str) -> Result<Site, String> {
    parse_all(text).map_err(|e| match e {
        ParseFailure::Syntax(m) => m,
        ParseFailure::Problems(p) => list(&p),
    })
}

/// Why a text is not a site: TOML that does not parse (one error, with its line), or keys that
/// do not fit the site's shape (every unknown key and wrong type, each with its path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseFailure {
    Syntax(String),
    Problems(Vec<Problem>),
}

/// At most this many shape problems are collected from one file.
const MAX_SHAPE_PROBLEMS: usize = 50;

/// Parses site TOML, collecting every key that does not fit instead of stopping at the first.
pub fn parse_all(text: &str) -> Result<Site, ParseFailure> {
    match parse_lenient(text)? {
        (Some(site), problems) if problems.is_empty() => Ok(site),
        (_, problems) => Err(ParseFailure::Problems(problems)),
    }
}

/// An unknown key or a value of the wrong type is noted with its path and taken out, and the
/// rest is parsed again (the key then has its default). The site is `None` when a required key
/// is missing.
fn parse_lenient(text: &str) -> Result<(Option<Site>, Vec<Problem>), ParseFailure> {
    let mut value: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ParseFailure::Syntax(e.to_string().trim_end().to_string()))?;
    let mut problems = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    loop {
        let de = toml::Value::Table(value.clone());
        let e = match serde_path_to_error::deserialize::<_, Site>(de) {
            Ok(site) => return Ok((Some(site), problems)),
            Err(e) => e,
        };
        let path: Vec<String> = e.path().iter().map(|s| s.to_string()).collect();
        let inner = e.inner().to_string();
        // toml adds "\nin `KEY`": the path says it already.
        let message = inner.lines().next().unwrap_or("").trim_end();
        let key = match e.path().to_string().as_str() {
            "." => String::new(),
            k => k.to_string(),
        };
        if let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            let expected = message
                .split_once(", expected ")
                .map(|(_, rest)| format!(" (expected {rest})"))
                .unwrap_or_default();
            problems.push(Problem::new(
                key.clone(),
                format!("unknown key `{field}`{expected}"),
            ));
        } else if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            let full = if key.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
            // Taken out above for its wrong type: already said.
            if !removed.contains(&full) {
                problems.push(Problem::new(full, "required, but missing"));
            }
            return Ok((None, problems));
        } else {
            problems.push(Problem::new(key.clone(), message.to_string()));
        }
        if problems.len() >= MAX_SHAPE_PROBLEMS || !remove(&mut value, &path) {
            return Ok((None, problems));
        }
        removed.push(key);
    }
}

/// Takes the value at `path` (table keys and `[i]` indices, as serde_path_to_error prints them)
/// out of `table`; false when there is nothing there.
fn remove(table: &mut toml::Table, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => table.remove(last.as_str()).is_some(),
        [first, rest @ ..] => table
            .get_mut(first.as_str())
            .is_some_and(|v| remove_in(v, rest)),
    }
}

fn remove_in(value: &mut toml::Value, path: &[String]) -> bool {
    let Some(first) = path.first() else {
        return false;
    };
    let index = first
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|i| i.parse::<usize>().ok());
    match (index, value) {
        (Some(i), toml::Value::Array(a)) => a.get_mut(i).is_some_and(|v| remove_in(v, &path[1..])),
        (None, toml::Value::Table(t)) => remove(t, path),
        _ => false,
    }
}

/// Reads, parses and validates a site file, including the password file it names. Every
/// problem is reported at once: keys that do not fit the shape, then what validation finds in
/// the rest (a file with shape problems is validated without those keys).
pub fn load(path: &Path) -> Result<Site, LoadError> {
    load_keeping(path).map_err(|(e, _)| e)
}

/// [`load`], but a refused file also comes back as far as it could be read (keys that do not
/// fit taken out, so they have their defaults): `troubleshoot` gathers its bundle with it, since
/// a wrong site file is when help is needed. `None` with a file that cannot be read or parsed,
/// or that lacks a required key.
pub fn load_keeping(path: &Path) -> Result<Site, (LoadError, Option<Box<Site>>)> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        let e = LoadError::Read {
            path: path.to_path_buf(),
            source,
        };
        (e, None)
    })?;
    let (site, mut problems) = match parse_lenient(&text) {
        Ok(parsed) => parsed,
        Err(ParseFailure::Syntax(message)) => {
            let e = LoadError::Parse {
                path: path.to_path_buf(),
                message,
            };
            return Err((e, None));
        }
        Err(ParseFailure::Problems(p)) => (None, p),
    };
    if let Some(site) = &site {
        problems.extend(site.validate());
        if let Err(p) = read_password(site) {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        if let Some(site) = site {
            return Ok(site);
        }
    }
    let e = LoadError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    Err((e, site.map(Box::new)))
}

/// The BGP password from `bgp.password_file`, trimmed; `None` when no file is configured.
pub fn read_password(site: &Site) -> Result<Option<String>, Problem> {
    let Some(file) = &site.bgp.password_file else {
        return Ok(None);
    };
    let key = "bgp.password_file";
    let text = std::fs::read_to_string(file)
        .map_err(|e| Problem::new(key, format!("cannot read {}: {e}", file.display())))?;
    let password = text.trim();
    if password.is_empty() {
        return Err(Problem::new(key, format!("{} is empty", file.display())));
    }
    if password.len() > 80
        || password
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Problem::new(
            key,
            format!(
                "the password in {} must be 1-80 characters without spaces (FRR's limit)",
                file.display()
            ),
        ));
    }
    Ok(Some(password.to_string()))
}
