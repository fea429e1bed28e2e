//! Staff second factor (issue 19): TOTP enrolment with a QR code, login in two steps, codes
//! never replayed, recovery codes once each, throttled attempts, enforcement per client and for
//! super admins (with the audited exemption the harness uses), resets and who may do them.
//! Time moves by the hub's test clock; codes are computed here from the enrolled secret.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ADMIN_PASSWORD, Api, Backend, PASSWORD, TestHub, Tree};

fn code_at(secret: &str, unix_secs: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    )
    .generate(unix_secs as u64)
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn require_staff_totp(api: &Api, tree: &Tree) {
    api.patch(
        &tree.super_token,
        &format!("/api/v1/clients/{}/settings", tree.client_id),
        json!({ "staff_totp_required": true }),
    )
    .await
    .ok();
}

/// Setup and activation with `auth` (an enrolment token or a bearer); the secret and the
/// recovery codes.
async fn enrol(
    api: &Api,
    bearer: Option<&str>,
    enrolment_token: Option<&str>,
) -> (String, Vec<String>, String) {
    let body = match enrolment_token {
        Some(t) => json!({ "enrolment_token": t }),
        None => json!({}),
    };
    let send = |path: &'static str, body: Value| async move {
        let req = api.http.post(format!("{}{path}", api.base)).json(&body);
        let req = match bearer {
            Some(b) => req.bearer_auth(b),
            None => req,
        };
        api.send(req).await
    };
    let setup = send("/api/v1/auth/second-factor/setup", body.clone())
        .await
        .ok();
    assert!(
        setup["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"),
        "{setup}"
    );
    assert!(
        setup["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let mut wrong = body.clone();
    wrong["code"] = json!(if code_at(&secret, now_secs()) == "000000" {
        "111111"
    } else {
        "000000"
    });
    send("/api/v1/auth/second-factor/activate", wrong)
        .await
        .error(401, "invalid_code");
    let mut right = body;
    let activation = code_at(&secret, now_secs());
    right["code"] = json!(activation);
    let done = send("/api/v1/auth/second-factor/activate", right)
        .await
        .ok();
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes, activation)
}

async fn step(api: &Api, challenge: &str, body: Value) -> crate::helpers::Reply {
    let mut body = body;
    body["challenge_token"] = json!(challenge);
    api.send(
        api.http
            .post(format!("{}/api/v1/auth/login/second-factor", api.base))
            .json(&body),
    )
    .await
}

async fn challenge(api: &Api, code: &str, user: &str, expected: &str) -> String {
    let login = api.try_login(Some(code), user, PASSWORD).await.ok();
    assert_eq!(login["second_factor"], expected, "{login}");
    assert!(login["access_token"].is_null(), "{login}");
    login["challenge_token"].as_str().unwrap().to_owned()
}

async fn advance(api: &Api, super_token: &str, secs: i64) {
    api.post(
        super_token,
        "/api/v1/test/clock",
        json!({ "advance_secs": secs }),
    )
    .await
    .ok();
}

async fn staff_enrol_and_log_in_in_two_steps(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    require_staff_totp(&api, &tree).await;
    let enrolment = challenge(&api, &tree.code, "boss", "enrolment_required").await;
    // The enrolment token opens nothing else.
    assert_eq!(api.get(&enrolment, "/api/v1/users").await.status, 401);
    let (secret, recovery, activation) = enrol(&api, None, Some(&enrolment)).await;

    // Password, then a code; the activation's code never works again.
    let login = challenge(&api, &tree.code, "boss", "required").await;
    step(&api, &login, json!({ "code": activation }))
        .await
        .error(401, "invalid_code");
    advance(&api, &tree.super_token, 30).await;
    let offset = 30;
    let tokens = step(
        &api,
        &login,
        json!({ "code": code_at(&secret, now_secs() + offset) }),
    )
    .await
    .ok();
    let token = tokens["access_token"].as_str().unwrap();
    api.get(token, &format!("/api/v1/users/{}", tree.admin_id))
        .await
        .ok();
    // The challenge is spent.
    step(
        &api,
        &login,
        json!({ "code": code_at(&secret, now_secs() + offset) }),
    )
    .await
    .error(401, "invalid_challenge");

    // A recovery code works once.
    let login = challenge(&api, &tree.code, "boss", "required").await;
    step(
        &api,
        &login,
        json!({ "recovery_code": recovery[3].to_uppercase() }),
    )
    .await
    .ok();
    let login = challenge(&api, &tree.code, "boss", "required").await;
    step(&api, &login, json!({ "recovery_code": recovery[3] }))
        .await
        .error(401, "invalid_code");

    let audit = api
        .get(
            &tree.super_token,
            &format!("/api/v1/audit?client_id={}&limit=200", tree.client_id),
        )
        .await
        .ok();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    for a in [
        "auth.second_factor_setup",
        "auth.second_factor_enabled",
        "auth.second_factor_failed",
        "auth.recovery_code_used",
    ] {
        assert!(actions.contains(&a), "{a} missing: {actions:?}");
    }
}

async fn code_attempts_are_throttled_and_resets_are_authorized(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;
    // Not required by the client: the agent enrols of its own accord, with its token.
    let (secret, _, _) = enrol(&api, Some(&tree.agent_token), None).await;
    let login = challenge(&api, &tree.code, "agent1", "required").await;
    let right = code_at(&secret, now_secs() + 60);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..5 {
        step(&api, &login, json!({ "code": wrong }))
            .await
            .error(401, "invalid_code");
    }
    advance(&api, &tree.super_token, 60).await;
    let locked = step(&api, &login, json!({ "code": right })).await;
    locked.error(429, "too_many_login_attempts");

    // Resets: admins of the user's client (or super admins), nobody else.
    let reset = format!("/api/v1/users/{}/second-factor/reset", tree.agent_id);
    for (token, status) in [
        (tree.player_token.as_str(), 403),
        (tree.agent_token.as_str(), 403),
        (other.admin_token.as_str(), 404),
    ] {
        let r = api.post(token, &reset, json!({})).await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    api.post(
        &tree.agent_token,
        &format!("/api/v1/users/{}/second-factor/reset", tree.admin_id),
        json!({}),
    )
    .await
    .error(403, "forbidden");
    let r = api.post(&tree.admin_token, &reset, json!({})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    // Not enrolled and not required: a password is enough again; the reset is audited.
    api.login(Some(&tree.code), "agent1", PASSWORD).await["access_token"]
        .as_str()
        .unwrap();
    let super_reset = format!("/api/v1/users/{}/second-factor/reset", tree.admin_id);
    let r = api.post(&tree.super_token, &super_reset, json!({})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let audit = api
        .get(
            &tree.super_token,
            &format!(
                "/api/v1/audit?client_id={}&action=auth.second_factor_reset",
                tree.client_id
            ),
        )
        .await
        .ok();
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    // With the client's requirement, the reset agent enrols again at its next login.
    require_staff_totp(&api, &tree).await;
    challenge(&api, &tree.code, "agent1", "enrolment_required").await;
    // Players never have a second factor.
    api.post(
        &tree.super_token,
        &format!("/api/v1/users/{}/second-factor/reset", tree.player_id),
        json!({}),
    )
    .await
    .error(404, "not_found");
}

async fn super_admins_must_enrol_unless_exempt(backend: Backend) {
    // The harness's hub: the bootstrap admin is exempt, and each such login is audited.
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let token = api.token(None, "admin").await;
    let audit = api
        .get(
            &token,
            "/api/v1/audit?action=auth.login_second_factor_exempt",
        )
        .await
        .ok();
    assert!(!audit["items"].as_array().unwrap().is_empty(), "{audit}");
    drop(hub);

    let hub = TestHub::start_with(backend, |s| s.second_factor_exempt = String::new()).await;
    let api = hub.api();
    let login = api.try_login(None, "admin", ADMIN_PASSWORD).await.ok();
    assert_eq!(login["second_factor"], "enrolment_required", "{login}");
    let enrolment = login["challenge_token"].as_str().unwrap();
    assert_eq!(api.get(enrolment, "/api/v1/clients").await.status, 401);
    let (secret, _, _) = enrol(&api, None, Some(enrolment)).await;
    let login = api.try_login(None, "admin", ADMIN_PASSWORD).await.ok();
    assert_eq!(login["second_factor"], "required", "{login}");
    let challenge = login["challenge_token"].as_str().unwrap();
    // The activation used this step: the next one (the clock cannot go back, so a
    // different step is a fresh code) lets the admin in.
    let after = code_at(&secret, now_secs() + 30);
    let reply = step(&api, challenge, json!({ "code": after })).await;
    let tokens = reply.ok();
    api.get(tokens["access_token"].as_str().unwrap(), "/api/v1/clients")
        .await
        .ok();
}

backend_tests!(
    staff_enrol_and_log_in_in_two_steps,
    code_attempts_are_throttled_and_resets_are_authorized,
    super_admins_must_enrol_unless_exempt,
);
