//! Golden renders: `tests/golden/<case>/` holds every file of `Rendered::files()` plus
//! `stream.yaml` (`Rendered::to_yaml()`, warnings included). `UPDATE_GOLDEN=1 cargo test -p
//! bgplb-cilium --test golden` rewrites them; review the diff.
//!
//! A case renders the reference site (config/site.toml) unless its directory has a `site.toml`,
//! with the render options in its `options.json` if there is one.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bgplb_cilium::{render, RenderOptions};
use common::{crd_problems, load_site, manifest_dir, reference_site_path, v};

/// (case directory, Cilium version).
const CASES: &[(&str, &str)] = &[
    ("1.14", "1.14"),
    ("1.15", "1.15"),
    ("1.16", "1.16"),
    ("1.17", "1.17"),
    ("1.18", "1.18"),
    ("1.19", "1.19"),
    ("1.15-password-multihop", "1.15"),
    ("1.18-password-multihop", "1.18"),
];

fn expected_files(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".yaml") {
            files.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    files
}

/// The first differing line, for a readable failure.
fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1);
        }
    }
    format!(
        "lengths differ: expected {} lines, got {}",
        expected.lines().count(),
        actual.lines().count()
    )
}

#[test]
fn golden_renders() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for (case, version) in CASES {
        let dir = manifest_dir().join("tests/golden").join(case);
        let site_path = if dir.join("site.toml").exists() {
            dir.join("site.toml")
        } else {
            reference_site_path()
        };
        let site = load_site(&site_path);
        let options: RenderOptions = match std::fs::read_to_string(dir.join("options.json")) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| panic!("{case}: {e}")),
            Err(_) => RenderOptions::default(),
        };
        let rendered =
            render(&site, "home", v(version), &options).unwrap_or_else(|e| panic!("{case}: {e}"));
        for o in &rendered.objects {
            let problems = crd_problems(&o.to_json().unwrap(), rendered.version);
            assert!(
                problems.is_empty(),
                "{case}: {} {}: {problems:?}",
                o.kind(),
                o.name()
            );
        }
        let mut actual = rendered.files().unwrap();
        actual.insert("stream.yaml".to_string(), rendered.to_yaml().unwrap());
        // Rendering twice gives identical bytes.
        let again = render(&site, "home", v(version), &options).unwrap();
        assert_eq!(
            again.to_yaml().unwrap(),
            actual["stream.yaml"],
            "{case}: not deterministic"
        );

        if update {
            std::fs::create_dir_all(&dir).unwrap();
            for stale in expected_files(&dir)
                .keys()
                .filter(|f| !actual.contains_key(*f))
            {
                std::fs::remove_file(dir.join(stale)).unwrap();
            }
            for (name, content) in &actual {
                std::fs::write(dir.join(name), content).unwrap();
            }
            continue;
        }
        if !dir.is_dir() {
            failures.push(format!(
                "{case}: no golden directory (run with UPDATE_GOLDEN=1)"
            ));
            continue;
        }
        let expected = expected_files(&dir);
        for name in expected.keys().filter(|f| !actual.contains_key(*f)) {
            failures.push(format!("{case}/{name}: expected but not rendered"));
        }
        for (name, content) in &actual {
            match expected.get(name) {
                None => failures.push(format!("{case}/{name}: rendered but has no golden file")),
                Some(e) if e != content => failures.push(format!(
                    "{case}/{name} differs, {}",
                    first_difference(e, content)
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden renders differ (UPDATE_GOLDEN=1 rewrites them; review the diff):\n{}",
        failures.join("\n")
    );
}
