//! Which FRR the lab runs: the system's (Debian bookworm's 8.4, the default) or another release
//! unpacked by `scripts/frr-fetch` under `.cache/frr/<release>/` in the repository, chosen with
//! `BGPLB_FRR=7.5` or `BGPLB_FRR=10.3`.
//!
//! An unpacked release runs through wrapper scripts (`.cache/frr/<release>/bin/{vtysh,zebra,bgpd}`)
//! that point the dynamic loader at its own libraries (and 7.5's libyang at its plugins); the
//! agent is given the vtysh wrapper like any vtysh.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bgplb_frr::FrrVersion;

/// The FRR build the lab starts.
#[derive(Debug, Clone)]
pub struct Build {
    pub version: FrrVersion,
    /// Where `vtysh`, `zebra` and `bgpd` are.
    vtysh: PathBuf,
    daemons: PathBuf,
}

impl Build {
    pub fn vtysh(&self) -> &Path {
        &self.vtysh
    }

    /// `zebra` or `bgpd`.
    pub fn daemon(&self, name: &str) -> PathBuf {
        self.daemons.join(name)
    }

    /// FRR 10 configures through mgmtd: its daemons take no `-f`; `vtysh -b` loads the
    /// integrated configuration once they run.
    pub fn uses_mgmtd(&self) -> bool {
        self.version >= FrrVersion::new(10, 0)
    }

    /// The daemons to start, in order.
    pub fn daemons(&self) -> &'static [&'static str] {
        if self.uses_mgmtd() {
            &["mgmtd", "zebra", "bgpd"]
        } else {
            &["zebra", "bgpd"]
        }
    }

    /// Whether this is the system's FRR.
    pub fn is_system(&self) -> bool {
        self.vtysh == Path::new("/usr/bin/vtysh")
    }
}

/// The repository's cache of unpacked FRR releases.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/frr")
}

/// The build `BGPLB_FRR` names (default: the system's).
pub fn build() -> &'static Build {
    static BUILD: OnceLock<Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        let wanted = std::env::var("BGPLB_FRR").unwrap_or_default();
        if wanted.is_empty() || wanted == "system" {
            return system();
        }
        let version: FrrVersion = wanted
            .parse()
            .unwrap_or_else(|e| panic!("BGPLB_FRR={wanted}: {e}"));
        if version == FrrVersion::REFERENCE {
            return system();
        }
        unpacked(version)
    })
}

fn system() -> Build {
    Build {
        version: FrrVersion::REFERENCE,
        vtysh: PathBuf::from("/usr/bin/vtysh"),
        daemons: PathBuf::from("/usr/lib/frr"),
    }
}

fn unpacked(version: FrrVersion) -> Build {
    let dir = cache_dir().join(version.to_string());
    let bin = dir.join("bin");
    for tool in ["vtysh", "zebra", "bgpd"] {
        assert!(
            bin.join(tool).exists(),
            "FRR {version} is not unpacked in {} (no bin/{tool}): run `scripts/frr-fetch {version}`",
            dir.display()
        );
    }
    Build {
        version,
        vtysh: bin.join("vtysh"),
        daemons: bin,
    }
}
