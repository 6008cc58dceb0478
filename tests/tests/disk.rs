//! A full and a read-only `/data`: the agent's data directory is a small tmpfs mounted for the
//! test. While the state database cannot record an apply the agent changes nothing in FRR, says
//! why (`/v1/status` `store_problem`, `bgplb_store_writable 0`, the failing `state-store` check),
//! keeps serving, and applies by itself once space is back. The file system is a small ext4 on a
//! loop device; read-only is what ext4 does under its writers after an I/O error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bgplb_tests::cmd::{quiet, run, wait_for};
use bgplb_tests::{Lab, LabSpec};

/// A small ext4 file system on a loop device, mounted on a directory of the lab with
/// `errors=remount-ro` (as flash storage is); unmounted (lazily) and detached on drop, even when
/// the test fails.
struct SmallFs {
    dir: PathBuf,
    device: String,
}

impl SmallFs {
    fn mount(image: &Path, dir: &Path, megabytes: u32) -> SmallFs {
        run(&[
            "truncate",
            "-s",
            &format!("{megabytes}M"),
            &image.display().to_string(),
        ]);
        run(&["mkfs.ext4", "-q", "-F", &image.display().to_string()]);
        std::fs::create_dir_all(dir).expect("mount point");
        run(&[
            "mount",
            "-o",
            "loop,errors=remount-ro",
            &image.display().to_string(),
            &dir.display().to_string(),
        ]);
        let device = String::from_utf8_lossy(&run_output(&[
            "findmnt",
            "-n",
            "-o",
            "SOURCE",
            &dir.display().to_string(),
        ]))
        .trim()
        .to_string();
        run(&["chmod", "0700", &dir.display().to_string()]);
        SmallFs {
            dir: dir.to_path_buf(),
            device,
        }
    }

    /// What ext4 does on an I/O error with `errors=remount-ro`: the file system turns read-only
    /// under its writers (the kernel's own error path, through ext4's `trigger_fs_error`).
    fn fail(&self) {
        let name = Path::new(&self.device)
            .file_name()
            .expect("a device name")
            .to_string_lossy()
            .to_string();
        std::fs::write(
            format!("/sys/fs/ext4/{name}/trigger_fs_error"),
            "bgplb test: simulated I/O error",
        )
        .expect("trigger an ext4 error");
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        quiet(&["umount", "-l", &self.dir.display().to_string()]);
        quiet(&["losetup", "-d", &self.device]);
    }
}

fn run_output(argv: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run");
    assert!(out.status.success(), "{argv:?} failed");
    out.stdout
}

fn generations(lab: &Lab) -> usize {
    let v: serde_json::Value =
        serde_json::from_str(&lab.agent_ok(&["history", "--json", "--limit", "1000"]))
            .expect("history --json");
    v.as_array().expect("an array").len()
}

/// Waits until the daemon reports a store problem containing `said`, then checks the metric and
/// the check say the same.
fn wait_store_problem(lab: &Lab, said: &str) -> String {
    let problem = wait_for(
        &format!("the daemon to report a store problem with `{said}` in status and its checks"),
        Duration::from_secs(60),
        || {
            let status = lab.agent_status(0);
            let check_fails = status["kernel_checks"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["name"] == "state-store" && c["ok"] == false)
            });
            status["store_problem"]
                .as_str()
                .filter(|p| p.contains(said) && check_fails)
                .map(str::to_string)
        },
    );
    assert_eq!(lab.agent_metric("bgplb_store_writable"), 0.0);
    problem
}

fn wait_store_fine(lab: &Lab) {
    wait_for(
        "the store problem to clear",
        Duration::from_secs(60),
        // The metric is set after a reconcile's check, so the first one is waited for too.
        || {
            (lab.agent_status(0)["store_problem"].is_null()
                && lab.agent_metric("bgplb_store_writable") == 1.0
                && lab.agent_readyz())
            .then_some(())
        },
    );
}

#[test]
fn a_full_or_read_only_data_directory_applies_nothing_says_why_and_recovers_by_itself() {
    let mut lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    let mut site = lab.daemon_site();
    let data = SmallFs::mount(&lab.dir.path().join("data.img"), &site.agent.data_dir, 8);
    lab.write_site(&site);
    lab.start_daemon();
    lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
    wait_store_fine(&lab);
    let before = generations(&lab);
    assert!(before >= 1, "no generation recorded");

    // Full: a filler file takes every free block.
    let filler = site.agent.data_dir.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .output()
        .expect("dd");
    let running = lab.running_config();
    site.clusters[0].nodes.truncate(1);
    lab.write_site(&site);
    let problem = wait_store_problem(&lab, "KiB free");
    assert!(
        problem.contains("nothing was applied"),
        "the problem does not say FRR was left alone: {problem}"
    );
    // A few reconciles later FRR is still untouched and nothing was recorded.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        lab.running_config(),
        running,
        "FRR changed while the store was full"
    );
    assert!(lab.has_neighbor("172.29.51.12"));
    let cli = lab.agent(&["status"]);
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains("STATE STORE: "),
        "`status` does not show the store problem:\n{}{}",
        String::from_utf8_lossy(&cli.stdout),
        String::from_utf8_lossy(&cli.stderr)
    );
    std::fs::remove_file(&filler).expect("remove the filler");
    wait_for(
        "the node's removal to be applied once space is back",
        Duration::from_secs(60),
        || (!lab.has_neighbor("172.29.51.12")).then_some(()),
    );
    wait_store_fine(&lab);
    assert_eq!(generations(&lab), before + 1, "exactly one new generation");
    let generations_now = lab.agent_status(0)["generation"]
        .as_i64()
        .expect("a generation");

    // Read-only: an I/O error turns the file system read-only under the agent. Nothing is
    // applied, the agent says why and keeps serving (coming back needs the operator: fsck and a
    // remount, or a reboot).
    data.fail();
    let running = lab.running_config();
    site.clusters[0].nodes = lab.site().clusters[0].nodes.clone();
    lab.write_site(&site);
    let problem = wait_store_problem(&lab, "");
    assert!(problem.contains("read-only file system"), "{problem}");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        lab.running_config(),
        running,
        "FRR changed while the store was read-only"
    );
    // Still serving: /metrics (wait_store_problem read it) and the mTLS API.
    assert_eq!(
        lab.agent_status(0)["generation"],
        serde_json::json!(generations_now)
    );
    lab.stop_daemon();
}
