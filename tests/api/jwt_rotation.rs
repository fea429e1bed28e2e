//! Rotating the JWT signing secret without downtime (issue 23): tokens name their key (`kid`);
//! during a rotation every node accepts the old and the new key, so tokens signed by either
//! node keep working; once the old key is removed its tokens are refused, and a `kid` naming
//! no configured key is refused.

use base64::Engine;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Api, Backend, HubProcess, Infra, Tree, WsClient, ws_url};

const OLD: &str = "old-signing-secret-0123456789abcdef-0001";
const NEW: &str = "new-signing-secret-0123456789abcdef-0002";

fn header_of(token: &str) -> Value {
    let head = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn jwt_signing_key_rotates_without_refusing_a_live_token(backend: Backend) {
    let infra = Infra::new(backend).await;
    // Step 1 (every node): the new key is accepted before any node signs with it.
    let before = HubProcess::start_with_env(
        &infra,
        &[
            ("NASHUB_JWT_SECRET", OLD),
            ("NASHUB_JWT_PREVIOUS_SECRETS", NEW),
        ],
    );
    // Step 2 (rolling): the new key signs, the old one still verifies.
    let rotated = HubProcess::start_with_env(
        &infra,
        &[
            ("NASHUB_JWT_SECRET", NEW),
            ("NASHUB_JWT_PREVIOUS_SECRETS", OLD),
        ],
    );
    let (a, b) = (Api::new(&before.base), Api::new(&rotated.base));
    let tree = Tree::create(&a).await;
    let path = format!("/api/v1/users/{}", tree.player_id);
    let old_token = tree.player_token.clone();
    let old_kid = nashub::auth::tokens::key_id(OLD.as_bytes());
    let new_kid = nashub::auth::tokens::key_id(NEW.as_bytes());
    assert_eq!(header_of(&old_token)["kid"], old_kid.as_str());

    let new_token = b.token(Some(&tree.code), "player1").await;
    assert_eq!(header_of(&new_token)["kid"], new_kid.as_str());
    for api in [&a, &b] {
        for token in [&old_token, &new_token] {
            assert_eq!(api.get(token, &path).await.ok()["id"], tree.player_id);
        }
    }
    // A websocket opened on the rotated node with a token signed by the old key.
    let mut ws = WsClient::connect(&ws_url(&rotated.base, &old_token)).await;
    assert_eq!(
        ws.next_of("subscribed").await["room"],
        format!("user:{}", tree.player_id)
    );
    drop(ws);

    // A kid naming no configured key is refused, even with a valid signature.
    let claims: Value = {
        let payload = new_token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("0123456789abcdef".into());
    let unknown = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(NEW.as_bytes()),
    )
    .unwrap();
    b.get(&unknown, &path).await.error(401, "invalid_token");
    drop((before, rotated));

    // Step 3 (after access_token_ttl_secs): the old key is removed; its tokens are refused.
    let after = HubProcess::start_with_env(&infra, &[("NASHUB_JWT_SECRET", NEW)]);
    let c = Api::new(&after.base);
    c.get(&old_token, &path).await.error(401, "invalid_token");
    assert_eq!(c.get(&new_token, &path).await.ok()["id"], tree.player_id);
    // New logins are signed with the new key.
    let fresh = c.token(Some(&tree.code), "player1").await;
    assert_eq!(header_of(&fresh)["kid"], new_kid.as_str());
}

backend_tests!(jwt_signing_key_rotates_without_refusing_a_live_token);
