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
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
}

/// Reads, parses and validates a site file, including the password file it names.
pub fn load(path: &Path) -> Result<Site, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let site = parse(&text).map_err(|message| LoadError::Parse {
        path: path.to_path_buf(),
        message,
    })?;
    let mut problems = site.validate();
    if let Err(p) = read_password(&site) {
        problems.push(p);
    }
    if problems.is_empty() {
        Ok(site)
    } else {
        Err(LoadError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }
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
