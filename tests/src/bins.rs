//! The workspace's binaries, built by the test command before the tests run.

use std::path::PathBuf;

/// Path of a workspace binary in the running executable's target directory (target/<profile>/NAME).
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    // Tests run from target/<profile>/deps/, lab binaries from target/<profile>/.
    let mut dir = exe.parent().expect("executable has a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("target/<profile>");
    }
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`; scripts/test does this)",
        bin.display()
    );
    bin
}
