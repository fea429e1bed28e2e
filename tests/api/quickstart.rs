//! The README's quickstart, run as written against a fresh hub (issue 24): the block between
//! `<!-- quickstart -->` markers is executed by bash with the hub's address and admin password,
//! so the README cannot drift from the product.

use crate::backend_tests;
use crate::helpers::{ADMIN_PASSWORD, Backend, TestHub};

fn quickstart_block() -> String {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("<!-- quickstart -->")
        .expect("quickstart marker");
    let block = &readme[start..];
    let code = &block[block.find("```bash\n").expect("bash block") + "```bash\n".len()..];
    code[..code.find("```").expect("end of block")].to_owned()
}

async fn readme_quickstart_works_as_written(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let script = quickstart_block();
    let base = hub.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("HUB", base)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .output()
            .expect("bash")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("\"balance\":\"100.00\""), "{stdout}");
    assert!(stdout.contains("\"state\":\"succeeded\""), "{stdout}");
    assert!(stdout.trim_end().ends_with("balance: 100.00"), "{stdout}");
    hub.infra.assert_ledger_ok();
}

backend_tests!(readme_quickstart_works_as_written);
