//! The aarch64 QEMU machine (`cross/vm`) with the cross-built static agent in it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The static aarch64 agent `cross/build-agent` made.
pub fn agent_aarch64() -> PathBuf {
    let bin = repo().join("target/cross/aarch64-unknown-linux-gnu/release/bgplb-agent");
    assert!(
        bin.is_file(),
        "{} is missing: run `cross/setup && cross/build-agent` (scripts/test does this)",
        bin.display()
    );
    bin
}

/// Boots a machine with the agent as /bin/bgplb-agent, `files` as /files, runs `script` (shell)
/// there, and returns its console. Panics with the console unless the script succeeded and the
/// console contains every line of `wants`.
pub fn run(files: &Path, script: &str, timeout_secs: u32, wants: &[&str]) -> String {
    let work = tempfile::tempdir().expect("tempdir");
    let script_path = work.path().join("script.sh");
    std::fs::write(&script_path, script).expect("write the script");
    let log = work.path().join("console.log");
    let out = Command::new(repo().join("cross/vm"))
        .args([
            "run",
            "--quiet",
            "--timeout",
            &timeout_secs.to_string(),
            "--binary",
        ])
        .arg(agent_aarch64())
        .arg("--files")
        .arg(files)
        .arg("--script")
        .arg(&script_path)
        .arg("--log")
        .arg(&log)
        .output()
        .expect("run cross/vm");
    let console = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "the VM script failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        console
    );
    for want in wants {
        assert!(
            console.contains(want),
            "`{want}` missing from the VM's console:\n{console}"
        );
    }
    console
}
