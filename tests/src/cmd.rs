//! Running commands with clear failures.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs `argv`, panicking with its output when it fails.
pub fn run(argv: &[&str]) -> String {
    let out = output(argv);
    assert!(
        out.status.success(),
        "`{}` failed ({}): {}{}",
        argv.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `argv` and returns its output whatever the exit status.
pub fn output(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", argv.join(" ")))
}

/// Runs `argv` ignoring failure (cleanup).
pub fn quiet(argv: &[&str]) {
    let _ = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Reads `read` until two readings `quiet` apart agree, for at most `timeout`, and returns the
/// last: for a baseline taken while an asynchronous writer (the daemon recording a generation
/// after FRR already runs it, a drain written after the first apply) may still be at work.
pub fn wait_stable<T: PartialEq>(
    what: &str,
    timeout: Duration,
    quiet: Duration,
    mut read: impl FnMut() -> T,
) -> T {
    let mut last = read();
    wait_for(what, timeout, || {
        std::thread::sleep(quiet);
        let now = read();
        if now == last {
            Some(())
        } else {
            last = now;
            None
        }
    });
    last
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fails with the install step when a program the lab needs is missing.
pub fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
        || std::path::Path::new(program).is_file();
    assert!(
        found,
        "{program} is missing: install it with `apt-get install -y {package}` (scripts/test does this)"
    );
}
