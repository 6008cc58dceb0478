//! The companion image as a cluster pulls it: the OCI layout `cross/build-image` wrote (scripts/test
//! builds it first; BGPLB_IMAGE names another layout). The index lists amd64 and arm64; each
//! image runs as 65532 with the companion as entrypoint and carries its OCI labels; each
//! architecture's root filesystem, taken from the index as `skopeo` would pull it and unpacked
//! by `umoci`, holds only the binary, CA certificates, passwd/group and /tmp; and the binary runs
//! from it read-only, as the nonroot user (arm64 under qemu-user), rendering the reference site
//! exactly as the host build does.

use std::path::{Path, PathBuf};

use bgplb_tests::cmd::{output, require, run};
use serde_json::Value;

fn layout() -> (PathBuf, String) {
    let reference = std::env::var("BGPLB_IMAGE").unwrap_or_else(|_| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/image/bgplb-companion");
        format!("{}:{}", dir.display(), env!("CARGO_PKG_VERSION"))
    });
    let (dir, tag) = reference
        .trim_start_matches("oci:")
        .rsplit_once(':')
        .expect("BGPLB_IMAGE is DIR:TAG");
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("index.json").is_file(),
        "no OCI layout at {}: build it with `cross/build-image` (scripts/test does this)",
        dir.display()
    );
    (dir, tag.to_string())
}

fn json(argv: &[&str]) -> Value {
    serde_json::from_str(&run(argv)).unwrap_or_else(|e| panic!("`{}`: {e}", argv.join(" ")))
}

#[test]
fn the_index_lists_both_architectures_and_each_config_runs_the_companion_as_nonroot() {
    require("skopeo", "skopeo");
    let (dir, tag) = layout();
    let reference = format!("oci:{}:{tag}", dir.display());
    let index = json(&["skopeo", "inspect", "--raw", &reference]);
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    for arch in ["amd64", "arm64"] {
        let config = json(&[
            "skopeo",
            "inspect",
            "--config",
            "--override-os",
            "linux",
            "--override-arch",
            arch,
            &reference,
        ]);
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
        let c = &config["config"];
        assert_eq!(c["User"], "65532:65532", "{arch}: {c}");
        assert_eq!(c["Entrypoint"], serde_json::json!(["/bgplb-companion"]));
        assert_eq!(c["Cmd"], serde_json::json!(["run"]));
        let labels = &c["Labels"];
        assert_eq!(
            labels["org.opencontainers.image.version"],
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
        for key in [
            "org.opencontainers.image.title",
            "org.opencontainers.image.revision",
            "org.opencontainers.image.created",
            "org.opencontainers.image.source",
        ] {
            assert!(
                labels[key].as_str().is_some_and(|v| !v.is_empty()),
                "{arch}: no {key}"
            );
        }
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().unwrap().len(),
            1,
            "one layer"
        );
    }
}

/// Pulls `arch` from the index into its own layout (as a node would) and unpacks it.
fn unpack(arch: &str, into: &Path) -> PathBuf {
    require("umoci", "umoci");
    let (dir, tag) = layout();
    let pulled = into.join("pulled");
    run(&[
        "skopeo",
        "copy",
        "--quiet",
        "--override-os",
        "linux",
        "--override-arch",
        arch,
        &format!("oci:{}:{tag}", dir.display()),
        &format!("oci:{}:{arch}", pulled.display()),
    ]);
    let bundle = into.join("bundle");
    run(&[
        "umoci",
        "unpack",
        "--image",
        &format!("{}:{arch}", pulled.display()),
        bundle.to_str().unwrap(),
    ]);
    bundle.join("rootfs")
}

fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &e.path(), out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Runs the image's binary from `rootfs` mounted read-only (a tmpfs on /tmp, as a pod's
/// emptyDir would be), as 65532:65532, with the site file copied into /tmp.
fn run_from_rootfs(rootfs: &Path, arch: &str, args: &[&str]) -> std::process::Output {
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/site.toml");
    let emulator = if arch == "arm64" {
        require("qemu-aarch64-static", "qemu-user-static");
        "cp /usr/bin/qemu-aarch64-static \"$ROOT/tmp/qemu\"; EMU=/tmp/qemu"
    } else {
        "EMU="
    };
    let script = format!(
        r#"set -e
ROOT={root}
mount --bind "$ROOT" "$ROOT"
mount -o remount,bind,ro "$ROOT"
if touch "$ROOT/written" 2>/dev/null; then echo "the root filesystem is writable" >&2; exit 90; fi
mount -t tmpfs -o mode=1777,size=64m tmpfs "$ROOT/tmp"
cp {site} "$ROOT/tmp/site.toml"
{emulator}
exec chroot --userspec=65532:65532 "$ROOT" $EMU /bgplb-companion "$@""#,
        root = rootfs.display(),
        site = site.display(),
    );
    let mut argv = vec![
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        "sh",
    ];
    argv.extend_from_slice(args);
    output(&argv)
}

#[test]
fn each_architecture_runs_from_its_read_only_root_filesystem_as_nonroot() {
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/site.toml");
    let host = run(&[
        bgplb_tests::bins::path("bgplb-companion").to_str().unwrap(),
        "render",
        "--site",
        site.to_str().unwrap(),
        "--cilium-version",
        "1.18",
    ]);
    for (arch, machine) in [("amd64", "x86-64"), ("arm64", "ARM aarch64")] {
        let scratch = tempfile::tempdir().unwrap();
        let rootfs = unpack(arch, scratch.path());
        assert_eq!(
            tree(&rootfs),
            [
                "bgplb-companion",
                "etc/",
                "etc/group",
                "etc/passwd",
                "etc/ssl/",
                "etc/ssl/certs/",
                "etc/ssl/certs/ca-certificates.crt",
                "tmp/",
            ],
            "{arch}: the image holds exactly these (no shell, no package manager)"
        );
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
        assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
        let file = run(&[
            "file",
            "-b",
            rootfs.join("bgplb-companion").to_str().unwrap(),
        ]);
        assert!(
            file.contains(machine)
                && (file.contains("statically linked") || file.contains("static-pie")),
            "{arch}: {file}"
        );

        let version = run_from_rootfs(&rootfs, arch, &["--version"]);
        assert!(
            version.status.success(),
            "{arch}: --version: {}",
            String::from_utf8_lossy(&version.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            format!("bgplb-companion {}", env!("CARGO_PKG_VERSION"))
        );
        let render = run_from_rootfs(
            &rootfs,
            arch,
            &[
                "render",
                "--site",
                "/tmp/site.toml",
                "--cilium-version",
                "1.18",
            ],
        );
        assert!(
            render.status.success(),
            "{arch}: render: {}",
            String::from_utf8_lossy(&render.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&render.stdout),
            host,
            "{arch}: the image renders the reference site as the host build does"
        );
    }
}
