//! Client settings (validated, audited) and provider credentials: stored sealed with
//! AES-256-GCM, never returned or stored in clear.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree};

async fn settings_are_validated_and_read_by_the_clients_admin(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    let path = format!("/api/v1/clients/{}/settings", t.client_id);
    let defaults = api.get(&t.admin_token, &path).await.ok();
    assert_eq!(defaults["currency"], "USD");
    assert_eq!(defaults["currency_exponent"], 2);
    assert_eq!(defaults["enabled_providers"], json!(["jdb", "luckysports"]));
    assert_eq!(defaults["commission_rate"], "0.0000");

    let updated = api
        .patch(
            &t.super_token,
            &path,
            json!({
                "enabled_providers": ["jdb"],
                "commission_rate": "0.05",
                "revenue_share_rate": "0.125",
                "branding": { "display_name": "Lucky Star", "primary_color": "#ff0000" },
                "limits": { "max_deposit": "5000", "max_withdrawal": "2500.5" }
            }),
        )
        .await
        .ok();
    assert_eq!(updated["enabled_providers"], json!(["jdb"]));
    assert_eq!(updated["commission_rate"], "0.0500");
    assert_eq!(updated["revenue_share_rate"], "0.1250");
    assert_eq!(updated["branding"]["display_name"], "Lucky Star");
    assert_eq!(updated["limits"]["max_deposit"], "5000.00");
    assert_eq!(updated["limits"]["max_withdrawal"], "2500.50");
    // The client's admin reads it; a partial patch keeps the rest.
    api.patch(&t.super_token, &path, json!({ "commission_rate": "0" }))
        .await
        .ok();
    let read = api.get(&t.admin_token, &path).await.ok();
    assert_eq!(read["commission_rate"], "0.0000");
    assert_eq!(read["revenue_share_rate"], "0.1250");

    for bad in [
        json!({ "enabled_providers": ["pokerstars"] }),
        json!({ "commission_rate": "1.5" }),
        json!({ "commission_rate": "-0.1" }),
        json!({ "commission_rate": "0.00001" }),
        json!({ "revenue_share_rate": 0.1 }),
        json!({ "limits": { "max_deposit": "1.001" } }),
        json!({ "limits": { "max_bet": "1" } }),
        json!({ "branding": { "display_name": "x".repeat(200) } }),
        json!({ "currency_exponent": 3 }),
    ] {
        api.patch(&t.super_token, &path, bad.clone())
            .await
            .error(422, "validation_error");
    }
    let audit = api
        .get(
            &t.admin_token,
            "/api/v1/audit?action=client.settings_update",
        )
        .await
        .ok();
    let rows = audit["items"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["before"]["commission_rate"], "0.0500");
    assert_eq!(rows[0]["after"]["commission_rate"], "0.0000");
}

async fn credentials_are_sealed_and_never_returned(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    // A JDB AES key: exactly 16 characters.
    let secret = "VerySecretKey042";
    let put = api
        .put(
            &t.super_token,
            &format!("/api/v1/clients/{}/credentials/jdb", t.client_id),
            json!({ "credentials": { "base_url": "http://127.0.0.1:9", "operator": "op-7", "parent": "ag7", "key": secret, "iv": "0123456789abcdef" } }),
        )
        .await
        .ok();
    assert_eq!(put["configured"], true);
    assert!(!put.to_string().contains(secret));
    api.put(
        &t.super_token,
        &format!("/api/v1/clients/{}/credentials/unknown", t.client_id),
        json!({ "credentials": {} }),
    )
    .await
    .error(404, "not_found");

    // Nowhere in any answer the client's admin or the platform can get.
    for token in [&t.super_token, &t.admin_token] {
        let settings = api
            .get(token, &format!("/api/v1/clients/{}/settings", t.client_id))
            .await
            .ok();
        assert_eq!(settings["credentials"][0]["provider"], "jdb");
        assert!(!settings.to_string().contains(secret));
        let audit = api.get(token, "/api/v1/audit?limit=200").await.ok();
        assert!(!audit.to_string().contains(secret));
    }

    // Stored sealed: the database holds no clear text, and a ciphertext moved onto another
    // record (different associated data) does not open. Checked through the store.
    let config = hub.infra.settings().resolve().unwrap();
    let store = nashub::startup::open_store(&config).await.unwrap();
    let row = store
        .client_secret(&t.client_id, "jdb")
        .await
        .unwrap()
        .unwrap();
    assert!(!row.ciphertext.contains(secret) && !row.ciphertext.contains("op-7"));
    let sealer = nashub::secrets::SecretBox::new(&config.secrets_key);
    let sealed = nashub::secrets::Sealed {
        key_id: row.key_id.clone(),
        nonce: row.nonce.clone(),
        ciphertext: row.ciphertext.clone(),
    };
    let clear: serde_json::Value =
        serde_json::from_slice(&sealer.open(&row.id, &sealed).unwrap()).unwrap();
    assert_eq!(clear["key"], secret);
    assert!(sealer.open("another-record", &sealed).is_err());
    assert_eq!(row.key_id, sealer.current_key_id());

    // Replacing keeps the record id and takes a fresh nonce.
    api.put(
        &t.super_token,
        &format!("/api/v1/clients/{}/credentials/jdb", t.client_id),
        json!({ "credentials": { "base_url": "http://127.0.0.1:9", "operator": "op-7", "parent": "ag7", "key": secret, "iv": "0123456789abcdef" } }),
    )
    .await
    .ok();
    let again = store
        .client_secret(&t.client_id, "jdb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, row.id);
    assert_eq!((row.version, again.version), (1, 2));
    assert_ne!(again.nonce, row.nonce);
    assert_ne!(again.ciphertext, row.ciphertext);
}

backend_tests!(
    settings_are_validated_and_read_by_the_clients_admin,
    credentials_are_sealed_and_never_returned
);
