//! `nashub backup <path>` (issue 23): an online copy of the SQLite database taken while a node
//! keeps posting money is a consistent ledger (check-ledger, audit-verify clean), holds every
//! mutation acknowledged before it started, and a hub restored from it serves those balances.
//! MySQL is refused with a pointer to its own tools.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, HubProcess, Infra, Tree};

async fn backup_is_an_online_consistent_copy(backend: Backend) {
    let infra = Infra::new(backend).await;
    let target = infra.data_dir.path().join("backup.db");
    let target_text = target.display().to_string();
    if backend == Backend::MySql {
        let (code, out) = infra.run_nashub_args(&["backup", &target_text], &[]);
        assert_eq!(code, Some(2), "{out}");
        assert!(out.contains("mysqldump"), "{out}");
        assert!(!target.exists());
        return;
    }
    let hub = HubProcess::start(&infra);
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "100.00")
        .await;

    // Deposits keep arriving while the copy is taken.
    let path = format!("/api/v1/users/{}/wallet/deposit", tree.player_id);
    let writer = {
        let (api, token, path) = (api.clone(), tree.admin_token.clone(), path.clone());
        tokio::spawn(async move {
            for i in 0..60 {
                api.post_key(
                    &token,
                    &path,
                    &format!("during-{i}"),
                    json!({ "amount": "1.00" }),
                )
                .await
                .ok();
            }
        })
    };
    let backup = {
        let args = target_text.clone();
        let env = infra.env();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_nashub"))
                .args(["backup", &args])
                .env_clear()
                .envs(env)
                .output()
                .expect("run nashub backup")
        })
    };
    let out = backup.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("backup written to"), "{stdout}");
    writer.await.unwrap();
    let live_balance = api.balance(&tree.admin_token, &tree.player_id).await;
    assert_eq!(live_balance, "160.00");

    // A backup never overwrites a file.
    let (code, out) = infra.run_nashub_args(&["backup", &target_text], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("exists"), "{out}");

    // Restore: every node stopped, the copy in place of the database.
    hub.kill9();
    let restored_url = format!("sqlite://{target_text}");
    let on_copy = [("NASHUB_DATABASE_URL", restored_url.as_str())];
    let (code, out) = infra.run_nashub_with("check-ledger", &on_copy);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ledger ok"), "{out}");
    let (code, out) = infra.run_nashub_with("audit-verify", &on_copy);
    assert_eq!(code, Some(0), "{out}");
    let restored = HubProcess::start_with_env(&infra, &on_copy);
    let api = restored.api();
    let balance = api.balance(&tree.admin_token, &tree.player_id).await;
    let cents: i64 = balance.replace('.', "").parse().unwrap();
    // Everything acknowledged before the backup began, and whole deposits only.
    assert!(
        (10_000..=16_000).contains(&cents) && cents % 100 == 0,
        "{balance}"
    );
    // The restored hub takes new money and its books still balance.
    api.deposit(&tree.admin_token, &tree.player_id, "1.00")
        .await;
    drop(restored);
    let (code, out) = infra.run_nashub_with("check-ledger", &on_copy);
    assert_eq!(code, Some(0), "{out}");
}

backend_tests!(backup_is_an_online_consistent_copy);
