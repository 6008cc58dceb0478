//! The agent's errors. Each variant holds what was being done; [`Error::exit_code`] is the one
//! place errors map to process exit codes.

use std::path::PathBuf;

use bgplb_frr::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Site(#[from] bgplb_site::LoadError),

    #[error("cannot start vtysh ({program}): {source}; is FRR installed? (set agent.frr.vtysh)")]
    VtyshSpawn {
        program: PathBuf,
        source: std::io::Error,
    },

    #[error("vtysh did not finish `{what}` within {seconds}s")]
    VtyshTimeout { what: String, seconds: u64 },

    #[error("FRR is not answering ({what}): {detail}")]
    FrrUnavailable { what: String, detail: String },

    #[error("FRR refused part of the configuration ({what}): {detail}")]
    FrrRejected { what: String, detail: String },

    #[error("{0}")]
    Plan(#[from] PlanError),

    #[error("{0}")]
    Show(#[from] bgplb_frr::show::ParseError),

    #[error("generation {generation} was not applied: {detail}; {rollback}")]
    ApplyFailed {
        generation: i64,
        detail: String,
        rollback: String,
    },

    #[error("{0}")]
    Pki(String),

    #[error("{0}")]
    Install(String),

    /// A command line that cannot be carried out as given (a file that is not there).
    #[error("{0}")]
    Usage(String),

    /// An operator's command that would lose something without being told to.
    #[error("{0}")]
    Refused(String),

    #[error("there is no generation {0} (see `bgplb-agent history`)")]
    NoSuchGeneration(i64),

    #[error("nothing to roll back to: {0}")]
    NoRollbackTarget(String),

    #[error("state database {path}: {source}")]
    Store {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error(
        "state database {path} is damaged ({detail}); the agent will not run on it and FRR keeps \
         running what it runs. Recover with `bgplb-agent store reset`, which keeps the damaged \
         file beside it and starts a new history from FRR's running configuration (or restore \
         the file from a backup)"
    )]
    StoreDamaged { path: PathBuf, detail: String },

    #[error(
        "cannot record in the state database {path}: {detail}; nothing was applied (FRR keeps \
         the last recorded generation). Free space on that file system or make it writable: the \
         agent retries by itself"
    )]
    StoreUnwritable { path: PathBuf, detail: String },

    #[error("state database {path} has schema version {found}, newer than this agent's {supported}; upgrade the agent")]
    StoreVersion {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),

    #[error("{0}")]
    Kernel(#[from] crate::kernel::KernelError),

    #[error("{0}; nothing was changed")]
    Segment(#[from] crate::segment::SegmentError),

    #[error("liveness probes: {0}")]
    Probe(String),

    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },

    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// Process exit code for this error (sysexits.h where one fits).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Site(_) | Error::Usage(_) => 64,
            Error::Pki(_) => 73,
            Error::Install(_) => 78,
            Error::Tls(_) => 78,
            Error::Segment(_) => 64,
            Error::Kernel(_) => 71,
            Error::Listen { .. } | Error::Probe(_) => 71,
            Error::VtyshSpawn { .. }
            | Error::FrrUnavailable { .. }
            | Error::VtyshTimeout { .. } => 69,
            Error::Store { .. }
            | Error::StoreVersion { .. }
            | Error::StoreDamaged { .. }
            | Error::StoreUnwritable { .. }
            | Error::Io { .. } => 74,
            _ => 1,
        }
    }

    pub fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}
