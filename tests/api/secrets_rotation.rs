//! Rotating the secrets key (issue 21): with the new key current and the old one listed in
//! `NASHUB_SECRETS_PREVIOUS_KEYS`, `nashub rotate-secrets` re-seals every stored credential
//! (current and kept versions); afterwards the new key alone opens them, the hub keeps using
//! the client's own provider account, and the audit chain stays verifiable while the original
//! key stays listed.

use base64::Engine;
use nashub::providers::sim::{self, SimConfig, SimKind};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, HubProcess, Infra, Tree};
use crate::providers::{move_money, scalar};

fn b64(key: [u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

async fn secrets_key_rotates_without_losing_a_credential(backend: Backend) {
    let (old, new, stranger) = (b64([1; 32]), b64([2; 32]), b64([3; 32]));
    let new_id = nashub::secrets::key_id(&[2; 32]);
    let own_ls = sim::spawn(
        SimKind::LuckySports,
        SimConfig {
            operators: vec![("op_own".into(), "own-secret".into())],
            ..sim::default_config(SimKind::LuckySports)
        },
    )
    .unwrap();
    let doc = |secret: &str| json!({ "credentials": { "base_url": own_ls.base_url(), "operator": "op_own", "secret": secret } });
    let infra = Infra::new(backend).await;
    let hub = HubProcess::start_with_env(&infra, &[("NASHUB_SECRETS_KEY", &old)]);
    let api = hub.api();
    let t = Tree::create(&api).await;
    let path = format!("/api/v1/clients/{}/credentials/luckysports", t.client_id);
    // Two versions: the first is kept (a transfer sent with it could still need it).
    api.put(&t.super_token, &path, doc("wrong-secret"))
        .await
        .ok();
    api.put(&t.super_token, &path, doc("own-secret")).await.ok();
    hub.terminate();

    let rotate = |extra: &[(&str, &str)]| infra.run_nashub_with("rotate-secrets", extra);
    let (code, out) = rotate(&[
        ("NASHUB_SECRETS_KEY", &new),
        ("NASHUB_SECRETS_PREVIOUS_KEYS", &old),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(": 2 "), "{out}");
    let under_new = |table: &'static str| {
        let infra = &infra;
        let new_id = new_id.clone();
        async move {
            scalar(
                infra,
                &format!("SELECT COUNT(*) FROM {table} WHERE key_id = '{new_id}'"),
            )
            .await
        }
    };
    assert_eq!(under_new("client_secrets").await, 1);
    assert_eq!(under_new("client_secret_versions").await, 1);
    // Nothing left to do the second time.
    let (code, out) = rotate(&[
        ("NASHUB_SECRETS_KEY", &new),
        ("NASHUB_SECRETS_PREVIOUS_KEYS", &old),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(": 0 "), "{out}");

    // A key that opens nothing here: every value is reported, nothing is changed.
    let (code, out) = infra.run_nashub_with("rotate-secrets", &[("NASHUB_SECRETS_KEY", &stranger)]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unopenable: 2"), "{out}");
    assert_eq!(under_new("client_secrets").await, 1);

    // A hub whose keys open none of them refuses to start, and says why.
    let (code, out) = infra.run_nashub_args(
        &["serve"],
        &[
            ("NASHUB_SECRETS_KEY", &stranger),
            ("NASHUB_BIND", "127.0.0.1:0"),
        ],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("NASHUB_SECRETS_KEY") && out.contains("no configured key opens"),
        "{out}"
    );

    // The new key alone serves the client's own account.
    let hub = HubProcess::start_with_env(
        &infra,
        &[
            ("NASHUB_SECRETS_KEY", &new),
            ("NASHUB_SECRETS_PREVIOUS_KEYS", &old),
        ],
    );
    let api = hub.api();
    let settings = api
        .get(
            &t.super_token,
            &format!("/api/v1/clients/{}/settings", t.client_id),
        )
        .await
        .ok();
    assert_eq!(settings["credentials"][0]["key_id"], new_id.as_str());
    assert_eq!(settings["credentials"][0]["version"], 2);
    api.deposit(&t.admin_token, &t.player_id, "10").await;
    let moved = move_money(
        &api,
        &t.player_token,
        &t.player_id,
        "luckysports",
        "transfer-in",
        "4",
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let member = nashub::providers::provider_uid(&t.player_id);
    assert_eq!(own_ls.balance_minor(&member, 2), Some(400));
    hub.terminate();

    // The audit chain is linked with the original key: verifiable while it is listed.
    let (code, out) = infra.run_nashub_with(
        "audit-verify",
        &[
            ("NASHUB_SECRETS_KEY", &new),
            ("NASHUB_SECRETS_PREVIOUS_KEYS", &old),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let (code, _) = infra.run_nashub_with("audit-verify", &[("NASHUB_SECRETS_KEY", &new)]);
    assert_eq!(
        code,
        Some(1),
        "without the original key the chain cannot be checked"
    );
}

backend_tests!(secrets_key_rotates_without_losing_a_credential);
