//! `nashub admin` (issue 24): the way back in when a password is lost or an account locked,
//! run against the hub's own database while the hub serves; every action audited.

use crate::backend_tests;
use crate::helpers::{Backend, PASSWORD, TestHub, Tree};

async fn admin_cli_resets_creates_and_unlocks(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    let infra = &hub.infra;

    // Locked out: five failures in the window, then 429 even with the right password.
    for _ in 0..5 {
        api.try_login(Some(&t.code), "player1", "wrong-password-1")
            .await
            .error(401, "invalid_credentials");
    }
    assert_eq!(
        api.try_login(Some(&t.code), "player1", PASSWORD)
            .await
            .status,
        429
    );
    let (code, out) =
        infra.run_nashub_args(&["admin", "unlock", "player1", "--client", &t.code], &[]);
    assert_eq!(code, Some(0), "{out}");
    api.login(Some(&t.code), "player1", PASSWORD).await;

    // A forgotten password: a generated one, printed once; old sessions end.
    let (code, out) = infra.run_nashub_args(
        &["admin", "reset-password", "player1", "--client", &t.code],
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    let secret = out
        .lines()
        .find_map(|l| l.split("reset to: ").nth(1))
        .expect("the new password is printed")
        .trim()
        .to_owned();
    let balance = format!("/api/v1/users/{}/wallet", t.player_id);
    assert_eq!(api.get(&t.player_token, &balance).await.status, 401);
    api.try_login(Some(&t.code), "player1", PASSWORD)
        .await
        .error(401, "invalid_credentials");
    let fresh = api.login(Some(&t.code), "player1", &secret).await;
    api.get(fresh["access_token"].as_str().unwrap(), &balance)
        .await
        .ok();

    // A chosen password for a platform user, and a second super admin.
    let (code, out) = infra.run_nashub_args(
        &["admin", "create-super-admin", "ops2"],
        &[("NASHUB_NEW_PASSWORD", "ops2-password-123")],
    );
    assert_eq!(code, Some(0), "{out}");
    // A super admin must enrol a second factor before anything opens (issue 19).
    let ops = api.login(None, "ops2", "ops2-password-123").await;
    assert_eq!(ops["second_factor"], "enrolment_required", "{ops}");
    assert!(ops["access_token"].is_null(), "{ops}");

    // Refusals name the problem and exit 1.
    let (code, out) = infra.run_nashub_args(&["admin", "create-super-admin", "ops2"], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("taken"), "{out}");
    let (code, out) = infra.run_nashub_args(&["admin", "unlock", "nobody"], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no user"), "{out}");
    let (code, out) = infra.run_nashub_args(
        &["admin", "reset-password", "admin", "--password", "short"],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");

    // Each action is in the audit chain, by `cli`.
    let audit = api
        .get(&t.super_token, "/api/v1/audit?limit=100")
        .await
        .ok();
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor_id"] == "cli")
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for action in ["user.unlock", "user.password_reset", "user.create"] {
        assert!(
            actions.iter().any(|(a, _)| *a == action),
            "{action} not audited: {actions:?}"
        );
    }
    hub.infra.assert_audit_ok();
}

backend_tests!(
    admin_cli_resets_creates_and_unlocks,
    a_database_from_a_newer_nashub_is_refused,
);

/// Start-up errors name the cause and the fix, and exit non-zero (issue 24).
#[test]
fn startup_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let run = |extra: &[(&str, &str)], args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nashub"))
            .args(args)
            .env_clear()
            .env("NASHUB_DATA_DIR", dir.path())
            .env("NASHUB_PASSWORD_HASH_MEMORY_KIB", "1024")
            .envs(extra.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let bind = format!("127.0.0.1:{port}");
    let (code, err) = run(&[("NASHUB_BIND", &bind)], &["serve"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&bind) && err.contains("NASHUB_BIND"), "{err}");
    let (code, err) = run(&[("NASHUB_BNID", "x")], &["serve"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("NASHUB_BNID"), "{err}");
    let (code, err) = run(
        &[
            ("NASHUB_REDIS_URL", "redis://127.0.0.1:1"),
            ("NASHUB_BIND", "127.0.0.1:0"),
        ],
        &["serve"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("Redis") && err.contains("NASHUB_REDIS_URL"),
        "{err}"
    );
    let started = std::time::Instant::now();
    let (code, err) = run(
        &[
            ("NASHUB_DATABASE_URL", "mysql://nobody:pw@127.0.0.1:1/none"),
            // Retried for 30 s by default.
            ("NASHUB_DATABASE_ACQUIRE_TIMEOUT_SECS", "1"),
        ],
        &["migrate"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("NASHUB_DATABASE_URL") && !err.contains(":pw@"),
        "{err}"
    );
    // The setting is honoured (the default would retry for 30 s).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{err}"
    );
    drop(taken);
}

/// A database a newer nashub migrated is refused with what to do (issue 24).
async fn a_database_from_a_newer_nashub_is_refused(backend: Backend) {
    let infra = crate::helpers::Infra::new(backend).await;
    let (code, out) = infra.run_nashub_args(&["migrate"], &[]);
    assert_eq!(code, Some(0), "{out}");
    infra
        .execute(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
             VALUES (9999, 'from the future', CURRENT_TIMESTAMP, 1, X'00', 0)",
        )
        .await;
    let (code, out) = infra.run_nashub_args(&["migrate"], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("newer nashub"), "{out}");
}
