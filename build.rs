//! Build-time facts:
//! - test-only cfgs from the environment, so a backend test that cannot run here is reported as
//!   ignored (with its reason) instead of passing without running (`.ci/run` sets them all);
//! - each `Settings` field's doc comment (`src/config.rs`), for `nashub config --example`;
//! - the git commit and the schema version, for `nashub --version`.

use std::path::Path;

fn main() {
    for (var, cfg) in [
        ("HUB_TEST_MYSQL_URL", "hub_mysql"),
        ("HUB_TEST_REDIS_URL", "hub_redis"),
        ("HUB_TEST_BROWSER", "hub_browser"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    println!("cargo::rerun-if-changed=src/config.rs");
    let config = std::fs::read_to_string("src/config.rs").expect("src/config.rs");
    std::fs::write(
        Path::new(&out).join("settings_docs.rs"),
        settings_docs(&config),
    )
    .expect("write settings_docs.rs");

    println!("cargo::rerun-if-changed=.git/HEAD");
    println!("cargo::rerun-if-changed=.git/refs/heads");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo::rustc-env=BUILD_GIT_COMMIT={commit}");
    println!("cargo::rerun-if-changed=migrations/sqlite");
    let schema = std::fs::read_dir("migrations/sqlite")
        .expect("migrations/sqlite")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.split('_').next()?.parse::<u32>().ok()
        })
        .max()
        .unwrap_or(0);
    println!("cargo::rustc-env=BUILD_SCHEMA_VERSION={schema}");
}

/// `pub const SETTINGS_DOCS: &[(&str, &str)]`: every field of `pub struct Settings` with the
/// `///` lines above it (empty when it has none).
fn settings_docs(source: &str) -> String {
    let start = source
        .find("pub struct Settings {")
        .expect("Settings in src/config.rs");
    let body = &source[start..];
    let body = &body[..body.find("\n}\n").expect("end of Settings")];
    let mut docs = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for line in body.lines().skip(1) {
        let line = line.trim();
        if let Some(doc) = line.strip_prefix("///") {
            pending.push(doc.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("pub ") {
            let name = rest.split(':').next().unwrap_or_default().trim().to_owned();
            docs.push((name, pending.join(" ")));
            pending.clear();
        } else if !line.starts_with("#[") {
            pending.clear();
        }
    }
    let mut out = String::from("pub const SETTINGS_DOCS: &[(&str, &str)] = &[\n");
    for (name, doc) in docs {
        out.push_str(&format!("    ({name:?}, {doc:?}),\n"));
    }
    out.push_str("];\n");
    out
}
