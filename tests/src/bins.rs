//! The workspace's binaries, built by the test command before the tests run.

use std::path::PathBuf;

/// Path of a workspace binary next to the running test executable (target/<profile>/NAME).
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`; scripts/test does this)",
        bin.display()
    );
    bin
}
