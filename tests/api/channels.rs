//! Channels (issue 19): contact details and their verification, preferences, templates and
//! languages, email over a real SMTP server (`smtp_sink`), SMS over the Twilio simulator with
//! faults, the outbox's retries, dead letters, rate limits and in-doubt rule, security notices,
//! and who may call each endpoint. Time moves through the hub's clock offset file, never sleeps.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, PASSWORD, TestHub, Tree, metric_value};
use crate::smtp_sink::{self, Mode, SmtpSink};

struct Env {
    hub: TestHub,
    api: Api,
    tree: Tree,
    sink: SmtpSink,
    clock: PathBuf,
    offset: std::sync::atomic::AtomicI64,
}

async fn setup_with(backend: Backend, tune: impl FnOnce(&mut nashub::config::Settings)) -> Env {
    let sink = SmtpSink::start().await;
    let mut clock = PathBuf::new();
    let hub = TestHub::start_with(backend, |s| {
        clock = s.data_dir.join("clock-offset-ms");
        s.test_clock_offset_file = clock.display().to_string();
        s.channel_dispatch_interval_ms = 20;
        s.channel_retry_base_ms = 60_000;
        s.channel_max_attempts = 3;
        tune(s);
    })
    .await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.put(
        &tree.super_token,
        &format!("/api/v1/clients/{}/channels/email", tree.client_id),
        json!({ "settings": sink.settings() }),
    )
    .await
    .ok();
    Env {
        hub,
        api,
        tree,
        sink,
        clock,
        offset: 0.into(),
    }
}

async fn setup(backend: Backend) -> Env {
    setup_with(backend, |_| {}).await
}

impl Env {
    /// Moves the hub's channel clock forward.
    fn advance(&self, ms: i64) {
        let total = self
            .offset
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst)
            + ms;
        std::fs::write(&self.clock, total.to_string()).unwrap();
    }

    async fn messages(&self, user_id: &str) -> Vec<Value> {
        let page = self
            .api
            .get(
                &self.tree.super_token,
                &format!("/api/v1/users/{user_id}/messages?limit=200"),
            )
            .await
            .ok();
        page["items"].as_array().unwrap().clone()
    }

    /// Polls the user's messages until one matches.
    async fn wait_message(
        &self,
        user_id: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        for _ in 0..500 {
            if let Some(m) = self.messages(user_id).await.into_iter().find(|m| pred(m)) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no message {what}: {:#?}", self.messages(user_id).await);
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.hub.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sets the player's email and verifies it with the code the SMTP server received.
    async fn verified_email(&self, address: &str) {
        let before = self.sink.count();
        let path = format!("/api/v1/users/{}/contacts/email", self.tree.player_id);
        let c = self
            .api
            .put(
                &self.tree.player_token,
                &path,
                json!({ "address": address }),
            )
            .await
            .ok();
        assert_eq!(c["verified"], false);
        let mail = self.sink.wait_for(before + 1).await.pop().unwrap();
        let code = code_in(&text_of(&mail.data));
        self.api
            .post(
                &self.tree.player_token,
                &format!("{path}/verify"),
                json!({ "code": code }),
            )
            .await
            .ok();
    }

    async fn change_password(&self, from: &str, to: &str) {
        let r = self
            .api
            .post(
                &self.tree.player_token,
                "/api/v1/auth/password",
                json!({ "current_password": from, "new_password": to }),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
    }
}

/// The plain-text part of a raw message.
fn text_of(raw: &str) -> String {
    let m = smtp_sink::parse(raw);
    m.part("text/plain")
        .map(|p| p.body.clone())
        .unwrap_or(m.body)
}

fn code_in(text: &str) -> String {
    let at = text.find("code is ").expect("a code") + "code is ".len();
    text[at..at + 6].to_owned()
}

async fn email_contact_verification_and_audit(backend: Backend) {
    let env = setup(backend).await;
    let t = &env.tree;
    let path = format!("/api/v1/users/{}/contacts/email", t.player_id);
    env.api
        .put(
            &t.player_token,
            &path,
            json!({ "address": "not an address" }),
        )
        .await
        .error(422, "validation_error");
    let c = env
        .api
        .put(
            &t.player_token,
            &path,
            json!({ "address": "Ann@Example.COM" }),
        )
        .await
        .ok();
    assert_eq!(
        (c["address"].as_str(), c["verified"].as_bool()),
        (Some("Ann@example.com"), Some(false))
    );
    let mail = env.sink.wait_for(1).await.remove(0);
    assert_eq!(mail.auth_user.as_deref(), Some(smtp_sink::USER));
    assert_eq!(mail.rcpt_to, ["<Ann@example.com>"]);
    assert_eq!(mail.mail_from, "<no-reply@casino.example>");
    let code = code_in(&text_of(&mail.data));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    env.api
        .post(
            &t.player_token,
            &format!("{path}/verify"),
            json!({ "code": wrong }),
        )
        .await
        .error(422, "validation_error");
    // Only the user verifies, even an admin who may change the address.
    env.api
        .post(
            &t.admin_token,
            &format!("{path}/verify"),
            json!({ "code": code }),
        )
        .await
        .error(403, "forbidden");
    let v = env
        .api
        .post(
            &t.player_token,
            &format!("{path}/verify"),
            json!({ "code": code }),
        )
        .await
        .ok();
    assert_eq!(v["verified"], true);
    let all = env
        .api
        .get(
            &t.agent_token,
            &format!("/api/v1/users/{}/contacts", t.player_id),
        )
        .await
        .ok();
    assert_eq!(all["contacts"][0]["verified"], true);
    assert_eq!(
        (
            all["email"]["transactional"].as_bool(),
            all["email"]["marketing"].as_bool()
        ),
        (Some(true), Some(false))
    );

    // A code expires on the channels' clock.
    let c = env
        .api
        .put(
            &t.player_token,
            &path,
            json!({ "address": "ann2@example.com" }),
        )
        .await
        .ok();
    assert_eq!(c["verified"], false);
    let mail = env.sink.wait_for(2).await.remove(1);
    let code = code_in(&text_of(&mail.data));
    env.advance(16 * 60_000);
    env.api
        .post(
            &t.player_token,
            &format!("{path}/verify"),
            json!({ "code": code }),
        )
        .await
        .error(409, "code_expired");
    // Five wrong codes use a code up.
    env.api
        .put(
            &t.player_token,
            &path,
            json!({ "address": "ann3@example.com" }),
        )
        .await
        .ok();
    let mail = env.sink.wait_for(3).await.remove(2);
    let code = code_in(&text_of(&mail.data));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        env.api
            .post(
                &t.player_token,
                &format!("{path}/verify"),
                json!({ "code": wrong }),
            )
            .await
            .error(422, "validation_error");
    }
    env.api
        .post(
            &t.player_token,
            &format!("{path}/verify"),
            json!({ "code": code }),
        )
        .await
        .error(409, "code_attempts_exhausted");

    let audit = env
        .api
        .get(&t.super_token, "/api/v1/audit?limit=200")
        .await
        .ok();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "user.contact_set").count(),
        3,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "user.contact_verified")
            .count(),
        1
    );
    assert!(actions.contains(&"client.channel_transport"));
    env.hub.infra.assert_audit_ok();
}

async fn templates_languages_and_multipart_email(backend: Backend) {
    let env = setup(backend).await;
    let t = &env.tree;
    env.verified_email("lee@example.com").await;
    let client = format!("/api/v1/clients/{}", t.client_id);
    env.api
        .put(
            &t.admin_token,
            &format!("{client}/channel-templates/admin_broadcast/de"),
            json!({ "subject": "{{nope}}", "text": "x" }),
        )
        .await
        .error(422, "validation_error");
    env.api
        .put(
            &t.admin_token,
            &format!("{client}/channel-templates/admin_broadcast/de"),
            json!({ "subject": "Grüße: {{subject}}", "text": "Hallo!\n\n{{body}}\n\n{{brand}}" }),
        )
        .await
        .ok();
    env.api
        .put(
            &t.admin_token,
            &format!("{client}/channel-settings"),
            json!({ "default_language": "de" }),
        )
        .await
        .ok();
    // Marketing needs an opt-in: before it, the broadcast is recorded suppressed.
    let r = env
        .api
        .post(
            &t.admin_token,
            &format!("{client}/broadcasts"),
            json!({ "subject": "Ünïcode <b>", "body": "a < b & c" }),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let m = env
        .wait_message(&t.player_id, "suppressed broadcast", |m| {
            m["template"] == "admin_broadcast"
        })
        .await;
    assert_eq!(
        (m["state"].as_str(), m["reason"].as_str()),
        (Some("suppressed"), Some("preference"))
    );
    env.api
        .put(
            &t.player_token,
            &format!("/api/v1/users/{}/channel-preferences", t.player_id),
            json!({ "email": { "marketing": true } }),
        )
        .await
        .ok();
    let sent_before = env.sink.count();
    env.api
        .post(
            &t.admin_token,
            &format!("{client}/broadcasts"),
            json!({ "subject": "Ünïcode <b>", "body": "a < b & c" }),
        )
        .await
        .ok();
    let mail = env.sink.wait_for(sent_before + 1).await.pop().unwrap();
    let parsed = smtp_sink::parse(&mail.data);
    assert_eq!(parsed.header("Subject"), Some("Grüße: Ünïcode <b>"));
    assert!(
        parsed
            .header("From")
            .unwrap()
            .contains("no-reply@casino.example")
    );
    assert!(
        parsed
            .header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    let text = &parsed.part("text/plain").expect("text part").body;
    let html = &parsed.part("text/html").expect("html part").body;
    assert!(
        text.contains("Hallo!") && text.contains("a < b & c") && text.contains("Test Casino"),
        "{text}"
    );
    assert!(
        html.contains("a &lt; b &amp; c") && !html.contains("a < b"),
        "{html}"
    );
    let m = env
        .wait_message(&t.player_id, "sent broadcast", |m| {
            m["template"] == "admin_broadcast" && m["state"] == "sent"
        })
        .await;
    assert_eq!(m["language"], "de");
    assert_eq!(parsed.header("Message-ID"), m["provider_ref"].as_str());
    assert_eq!(
        m["provider_ref"],
        format!("<{}@casino.example>", m["id"].as_str().unwrap())
    );

    // The user's own language wins; a language without an override falls back to the client's.
    env.api
        .put(
            &t.player_token,
            &format!("/api/v1/users/{}/channel-preferences", t.player_id),
            json!({ "language": "fr" }),
        )
        .await
        .ok();
    env.change_password(PASSWORD, "password-456").await;
    let m = env
        .wait_message(&t.player_id, "password notice", |m| {
            m["template"] == "password_changed" && m["state"] == "sent"
        })
        .await;
    // No German password_changed override: the chain fr -> de -> en ends at the built-in text.
    assert_eq!(m["language"], "en");
    assert!(m["subject"].as_str().unwrap().contains("Test Casino"));
    let list = env
        .api
        .get(&t.admin_token, &format!("{client}/channel-templates"))
        .await
        .ok();
    assert_eq!(list["default_language"], "de");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["custom"] == true && i["language"] == "de")
    );
}

async fn preferences_and_security_notices(backend: Backend) {
    let env = setup(backend).await;
    let t = &env.tree;
    env.verified_email("kim@example.com").await;
    // A login from a device never seen before is notified; the same device again is not.
    let login = |ua: &'static str| {
        let api = Api {
            base: env.api.base.clone(),
            http: env.api.http.clone(),
        };
        let code = t.code.clone();
        async move {
            let r = api
                .http
                .post(format!("{}/api/v1/auth/login", api.base))
                .header("User-Agent", ua)
                .json(&json!({ "client": code, "username": "player1", "password": PASSWORD }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    login("Browser A/1.0").await;
    let m = env
        .wait_message(&t.player_id, "new device", |m| {
            m["template"] == "new_device_login" && m["state"] == "sent"
        })
        .await;
    assert!(m["text"].as_str().unwrap().contains("Browser A/1.0"));
    let count = |msgs: &[Value]| {
        msgs.iter()
            .filter(|m| m["template"] == "new_device_login")
            .count()
    };
    login("Browser A/1.0").await;
    env.change_password(PASSWORD, "password-789").await;
    env.wait_message(&t.player_id, "password notice", |m| {
        m["template"] == "password_changed" && m["state"] == "sent"
    })
    .await;
    assert_eq!(count(&env.messages(&t.player_id).await), 1);

    // Opted out of transactional email: recorded suppressed, never sent.
    let sent = env.sink.count();
    let prefs = env
        .api
        .put(
            &t.player_token,
            &format!("/api/v1/users/{}/channel-preferences", t.player_id),
            json!({ "email": { "transactional": false } }),
        )
        .await
        .ok();
    assert_eq!(prefs["email"]["transactional"], false);
    env.change_password("password-789", "password-790").await;
    let m = env
        .wait_message(&t.player_id, "suppressed", |m| {
            m["template"] == "password_changed" && m["state"] == "suppressed"
        })
        .await;
    assert_eq!(m["reason"], "preference");
    assert_eq!(env.sink.count(), sent);
    let metrics = env.metrics().await;
    assert!(
        metric_value(
            &metrics,
            r#"channel_messages_total{channel="email",state="suppressed"}"#
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        metric_value(
            &metrics,
            r#"channel_messages_total{channel="email",state="sent"}"#
        )
        .unwrap()
            >= 3.0
    );
    let audit = env
        .api
        .get(
            &t.super_token,
            "/api/v1/audit?action=user.channel_preferences",
        )
        .await
        .ok();
    let row = &audit["items"][0];
    assert!(
        row["before"].to_string().contains("\"transactional\":true"),
        "{row}"
    );
    assert!(
        row["after"].to_string().contains("\"transactional\":false"),
        "{row}"
    );
}

async fn retries_dead_letters_and_rate_limits(backend: Backend) {
    let env = setup_with(backend, |s| s.channel_rate_per_recipient_per_hour = 3).await;
    let t = &env.tree;
    env.verified_email("max@example.com").await; // sent #1 to this address
    env.sink.set_mode(Mode::Transient);
    env.change_password(PASSWORD, "password-a1").await;
    let pending = |attempts: i64| {
        move |m: &Value| {
            m["template"] == "password_changed"
                && m["attempts"] == attempts
                && m["state"] == "queued"
        }
    };
    let m = env
        .wait_message(&t.player_id, "first failure", pending(1))
        .await;
    assert!(m["reason"].as_str().unwrap().contains("451"), "{m}");
    env.advance(60_000);
    env.wait_message(&t.player_id, "second failure", pending(2))
        .await;
    // Backoff doubled: a minute is not enough now.
    env.advance(60_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*env.sink.refused.lock().unwrap(), 2);
    env.advance(60_000);
    let dead = env
        .wait_message(&t.player_id, "dead letter", |m| {
            m["template"] == "password_changed" && m["state"] == "failed"
        })
        .await;
    assert_eq!(dead["attempts"], 3);
    let client = format!("/api/v1/clients/{}", t.client_id);
    let list = env
        .api
        .get(&t.admin_token, &format!("{client}/messages?state=failed"))
        .await
        .ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], dead["id"]);
    env.sink.set_mode(Mode::Accept);
    let id = dead["id"].as_str().unwrap();
    let again = env
        .api
        .post(
            &t.admin_token,
            &format!("{client}/messages/{id}/retry"),
            json!({}),
        )
        .await
        .ok();
    assert_eq!(
        (again["state"].as_str(), again["attempts"].as_i64()),
        (Some("queued"), Some(0))
    );
    env.wait_message(&t.player_id, "retried", |m| {
        m["id"] == id && m["state"] == "sent"
    })
    .await; // #2
    env.api
        .post(
            &t.admin_token,
            &format!("{client}/messages/{id}/retry"),
            json!({}),
        )
        .await
        .error(409, "message_not_failed");

    // A permanent refusal is dead-lettered at once.
    env.sink.set_mode(Mode::Permanent);
    env.change_password("password-a1", "password-a2").await;
    let m = env
        .wait_message(&t.player_id, "permanent", |m| {
            m["template"] == "password_changed" && m["state"] == "failed" && m["id"] != id
        })
        .await;
    assert_eq!(m["attempts"], 1);
    assert!(m["reason"].as_str().unwrap().contains("550"));

    // Three per recipient per hour: the fourth waits for the window, costing no attempt.
    env.sink.set_mode(Mode::Accept);
    env.change_password("password-a2", "password-a3").await; // #3
    env.wait_message(&t.player_id, "third", |m| {
        m["state"] == "sent" && m["id"] != id && m["template"] == "password_changed"
    })
    .await;
    let before = env.sink.count();
    env.change_password("password-a3", "password-a4").await;
    let limited = env
        .wait_message(&t.player_id, "limited", |m| {
            m["reason"] == "rate_limited" && m["state"] == "queued"
        })
        .await;
    assert_eq!(limited["attempts"], 0);
    assert_eq!(env.sink.count(), before);
    env.advance(61 * 60_000);
    env.wait_message(&t.player_id, "after the window", |m| {
        m["id"] == limited["id"] && m["state"] == "sent"
    })
    .await;
    let metrics = env.metrics().await;
    assert!(
        metric_value(
            &metrics,
            r#"channel_send_failures_total{channel="email",kind="transient"}"#
        )
        .unwrap()
            >= 3.0
    );
    assert!(
        metric_value(&metrics, r#"channel_rate_limited_total{scope="recipient"}"#).unwrap() >= 1.0
    );
}

async fn in_doubt_email_is_dead_lettered_not_resent(backend: Backend) {
    let env = setup(backend).await;
    let t = &env.tree;
    env.verified_email("zoe@example.com").await;
    let sent = env.sink.count();
    // A node died between recording `sending` and learning the outcome; its lease ran out.
    env.hub
        .infra
        .execute(&format!(
            "INSERT INTO channel_messages (id, client_id, user_id, channel, template, category, recipient, language, \
             subject, text_body, html_body, state, attempts, next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
             VALUES ('0190aaaa-0000-7000-8000-000000000001', '{}', '{}', 'email', 'password_changed', 'transactional', \
             'zoe@example.com', 'en', 's', 't', NULL, 'sending', 1, 0, 'node-gone', 1, 1, 1)",
            t.client_id, t.player_id
        ))
        .await;
    let m = env
        .wait_message(&t.player_id, "in doubt", |m| {
            m["id"] == "0190aaaa-0000-7000-8000-000000000001" && m["state"] == "failed"
        })
        .await;
    assert!(
        m["reason"].as_str().unwrap().starts_with("outcome_unknown"),
        "{m}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env.sink.count(),
        sent,
        "an in-doubt email is never sent again by itself"
    );
}

async fn sms_over_twilio_simulator_with_faults(backend: Backend) {
    use nashub::channels::sim::{SmsSimConfig, SmsSimThread};
    let env = setup(backend).await;
    let t = &env.tree;
    let sim = SmsSimThread::start(SmsSimConfig::default()).unwrap();
    let http = reqwest::Client::new();
    let sim_messages = || {
        let http = http.clone();
        let url = format!("{}/sim/messages", sim.base_url);
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()["messages"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let faults = |f: Value| {
        let http = http.clone();
        let url = format!("{}/sim/faults", sim.base_url);
        async move {
            assert!(
                http.post(url)
                    .json(&f)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .is_success()
            )
        }
    };
    let client = format!("/api/v1/clients/{}", t.client_id);
    env.api
        .put(&t.super_token, &format!("{client}/channels/sms"), json!({ "settings": { "base_url": sim.base_url, "account_sid": "ACsimulator", "auth_token": "secret-wrong", "from": "+15005550006" } }))
        .await
        .ok();
    env.api
        .put(
            &t.super_token,
            &format!("{client}/channels/sms"),
            json!({ "settings": { "account_sid": "ACsimulator" } }),
        )
        .await
        .error(422, "validation_error");
    // The right token now (the wrong one would be refused with 401 by the gateway: permanent).
    env.api
        .put(&t.super_token, &format!("{client}/channels/sms"), json!({ "settings": { "base_url": sim.base_url, "account_sid": "ACsimulator", "auth_token": "simulator-auth-token", "from": "+15005550006", "timeout_ms": 500 } }))
        .await
        .ok();
    let path = format!("/api/v1/users/{}/contacts/sms", t.player_id);
    let c = env
        .api
        .put(
            &t.player_token,
            &path,
            json!({ "address": "+63 917 123 4567" }),
        )
        .await
        .ok();
    assert_eq!(c["address"], "+639171234567");
    let mut got = Vec::new();
    for _ in 0..250 {
        got = sim_messages().await;
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["to"], "+639171234567");
    let code = code_in(got[0]["body"].as_str().unwrap());
    env.api
        .post(
            &t.player_token,
            &format!("{path}/verify"),
            json!({ "code": code }),
        )
        .await
        .ok();
    // The gateway's signed report marks it delivered.
    let v = env
        .wait_message(&t.player_id, "delivered code", |m| {
            m["channel"] == "sms" && m["state"] == "delivered"
        })
        .await;
    assert_eq!(v["provider_ref"], got[0]["sid"]);

    // 5xx: retried. Then the gateway takes the message but answers too late (timeout): the next
    // attempt finds it by lookup instead of sending it again.
    faults(json!({ "error_5xx_rate": 1.0 })).await;
    env.change_password(PASSWORD, "password-s1").await;
    let first = env
        .wait_message(&t.player_id, "5xx", |m| {
            m["channel"] == "sms"
                && m["template"] == "password_changed"
                && m["attempts"] == 1
                && m["state"] == "queued"
        })
        .await;
    assert!(
        first["reason"].as_str().unwrap().contains("HTTP 500"),
        "{first}"
    );
    faults(json!({ "hang_after_accept_rate": 1.0, "hang_ms": 1500, "callback_delay_ms": 4000, "callback_duplicate_rate": 1.0 })).await;
    env.advance(60_000);
    let second = env
        .wait_message(&t.player_id, "timeout", |m| {
            m["id"] == first["id"] && m["attempts"] == 2 && m["state"] == "queued"
        })
        .await;
    assert!(
        second["reason"].as_str().unwrap().contains("timed out"),
        "{second}"
    );
    faults(json!({ "callback_delay_ms": 0 })).await;
    env.advance(120_000);
    let found = env
        .wait_message(&t.player_id, "found by lookup", |m| {
            m["id"] == first["id"] && (m["state"] == "sent" || m["state"] == "delivered")
        })
        .await;
    let texts: Vec<Value> = sim_messages()
        .await
        .into_iter()
        .filter(|m| m["body"] == found["text"])
        .collect();
    assert_eq!(texts.len(), 1, "sent once: {texts:?}");
    assert_eq!(found["provider_ref"], texts[0]["sid"]);
    env.wait_message(&t.player_id, "late report", |m| {
        m["id"] == first["id"] && m["state"] == "delivered"
    })
    .await;

    // Reports with a bad signature change nothing.
    faults(json!({ "callback_bad_signature_rate": 1.0 })).await;
    env.change_password("password-s1", "password-s2").await;
    let m = env
        .wait_message(&t.player_id, "sent", |m| {
            m["channel"] == "sms"
                && m["template"] == "password_changed"
                && m["id"] != first["id"]
                && m["state"] == "sent"
        })
        .await;
    for _ in 0..250 {
        if metric_value(
            &env.metrics().await,
            r#"channel_delivery_reports_total{outcome="bad_signature"}"#,
        )
        .unwrap_or(0.0)
            >= 2.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        metric_value(
            &env.metrics().await,
            r#"channel_delivery_reports_total{outcome="bad_signature"}"#
        )
        .unwrap()
            >= 2.0
    );
    let still = env
        .messages(&t.player_id)
        .await
        .into_iter()
        .find(|x| x["id"] == m["id"])
        .unwrap();
    assert_eq!(still["state"], "sent");
    let r = env
        .hub
        .http
        .post(format!("{}/callbacks/sms/{}", env.hub.base, t.client_id))
        .form(&[
            ("MessageSid", m["provider_ref"].as_str().unwrap()),
            ("MessageStatus", "delivered"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Method, name, path, body, and the status each caller gets.
type Case<'a> = (
    &'a str,
    &'a str,
    String,
    Option<&'a Value>,
    &'a [(&'a str, u16)],
);

async fn authorization_matrix(backend: Backend) {
    let env = setup(backend).await;
    let t = &env.tree;
    let other = Tree::create(&env.api).await;
    let p = &t.player_id;
    let c = &t.client_id;
    let email = json!({ "address": "x@example.com" });
    let tpl = json!({ "subject": "s", "text": "t" });
    let prefs = json!({ "sms": { "marketing": true } });
    let lang = json!({ "default_language": "en" });
    let smtp = json!({ "settings": env.sink.settings() });
    let code = json!({ "code": "123456" });
    let bc = json!({ "subject": "s", "body": "b" });
    let cases: Vec<Case> = vec![
        (
            "GET",
            "contacts",
            format!("/api/v1/users/{p}/contacts"),
            None,
            &[
                ("super", 200),
                ("admin", 200),
                ("agent", 200),
                ("player", 200),
                ("other_admin", 404),
                ("other_player", 404),
            ],
        ),
        (
            "PUT",
            "contact",
            format!("/api/v1/users/{p}/contacts/email"),
            Some(&email),
            &[
                ("super", 200),
                ("admin", 200),
                ("agent", 200),
                ("player", 200),
                ("other_admin", 404),
                ("other_player", 404),
            ],
        ),
        (
            "PUT",
            "prefs",
            format!("/api/v1/users/{p}/channel-preferences"),
            Some(&prefs),
            &[
                ("super", 200),
                ("admin", 200),
                ("agent", 200),
                ("player", 200),
                ("other_admin", 404),
            ],
        ),
        (
            "POST",
            "verify",
            format!("/api/v1/users/{p}/contacts/email/verify"),
            Some(&code),
            &[
                ("super", 403),
                ("admin", 403),
                ("agent", 403),
                ("player", 422),
                ("other_admin", 404),
            ],
        ),
        (
            "GET",
            "user messages",
            format!("/api/v1/users/{p}/messages"),
            None,
            &[
                ("super", 200),
                ("admin", 200),
                ("player", 200),
                ("other_admin", 404),
            ],
        ),
        (
            "GET",
            "agent contacts by player",
            format!("/api/v1/users/{}/contacts", t.agent_id),
            None,
            &[("player", 403)],
        ),
        (
            "PUT",
            "agent contact by player",
            format!("/api/v1/users/{}/contacts/email", t.agent_id),
            Some(&email),
            &[("player", 403)],
        ),
        (
            "GET",
            "templates",
            format!("/api/v1/clients/{c}/channel-templates"),
            None,
            &[
                ("super", 200),
                ("admin", 200),
                ("agent", 403),
                ("player", 403),
                ("other_admin", 404),
            ],
        ),
        (
            "PUT",
            "template",
            format!("/api/v1/clients/{c}/channel-templates/deposit_confirmed/en"),
            Some(&tpl),
            &[
                ("super", 200),
                ("admin", 200),
                ("agent", 403),
                ("player", 403),
                ("other_admin", 404),
            ],
        ),
        (
            "PUT",
            "channel settings",
            format!("/api/v1/clients/{c}/channel-settings"),
            Some(&lang),
            &[
                ("super", 200),
                ("admin", 200),
                ("agent", 403),
                ("player", 403),
                ("other_admin", 404),
            ],
        ),
        (
            "PUT",
            "transport",
            format!("/api/v1/clients/{c}/channels/email"),
            Some(&smtp),
            &[
                ("super", 200),
                ("admin", 403),
                ("agent", 403),
                ("player", 403),
                ("other_admin", 404),
            ],
        ),
        (
            "GET",
            "client messages",
            format!("/api/v1/clients/{c}/messages"),
            None,
            &[
                ("super", 200),
                ("admin", 200),
                ("agent", 403),
                ("player", 403),
                ("other_admin", 404),
            ],
        ),
        (
            "POST",
            "retry",
            format!("/api/v1/clients/{c}/messages/nope/retry"),
            Some(&code),
            &[
                ("super", 404),
                ("admin", 404),
                ("agent", 403),
                ("player", 403),
                ("other_admin", 404),
            ],
        ),
        (
            "POST",
            "broadcast",
            format!("/api/v1/clients/{c}/broadcasts"),
            Some(&bc),
            &[
                ("super", 202),
                ("admin", 202),
                ("agent", 403),
                ("player", 403),
                ("other_admin", 404),
            ],
        ),
        (
            "DELETE",
            "template",
            format!("/api/v1/clients/{c}/channel-templates/deposit_confirmed/en"),
            None,
            &[
                ("agent", 403),
                ("player", 403),
                ("other_admin", 404),
                ("admin", 204),
                ("super", 404),
            ],
        ),
        (
            "DELETE",
            "contact",
            format!("/api/v1/users/{p}/contacts/email"),
            None,
            &[("other_admin", 404), ("agent", 204), ("player", 404)],
        ),
    ];
    let token = |who: &str| match who {
        "super" => t.super_token.clone(),
        "admin" => t.admin_token.clone(),
        "agent" => t.agent_token.clone(),
        "player" => t.player_token.clone(),
        "other_admin" => other.admin_token.clone(),
        "other_player" => other.player_token.clone(),
        _ => unreachable!(),
    };
    let http = &env.hub.http;
    for (method, name, path, body, expected) in &cases {
        let url = format!("{}{path}", env.hub.base);
        let build = |tok: Option<String>| {
            let mut req = http.request(method.parse().unwrap(), &url);
            if let Some(tok) = tok {
                req = req.bearer_auth(tok);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            req
        };
        let anonymous = build(None).send().await.unwrap().status().as_u16();
        assert_eq!(anonymous, 401, "{method} {name} without a token");
        for (who, status) in expected.iter() {
            let got = build(Some(token(who))).send().await.unwrap();
            let got_status = got.status().as_u16();
            let text = got.text().await.unwrap_or_default();
            assert_eq!(got_status, *status, "{method} {name} as {who}: {text}");
        }
    }
}

/// Two nodes on one database race for the same outbox: every message is sent exactly once.
async fn two_nodes_send_each_message_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let infra = crate::helpers::Infra::new(backend).await;
    let env: &[(&str, &str)] = &[
        ("NASHUB_CHANNEL_DISPATCH_INTERVAL_MS", "5"),
        ("NASHUB_CHANNEL_RATE_PER_RECIPIENT_PER_HOUR", "0"),
    ];
    let node_a = crate::helpers::HubProcess::start_with_env(&infra, env);
    let node_b = crate::helpers::HubProcess::start_with_env(&infra, env);
    let (api_a, api_b) = (node_a.api(), node_b.api());
    let t = Tree::create(&api_a).await;
    api_a
        .put(
            &t.super_token,
            &format!("/api/v1/clients/{}/channels/email", t.client_id),
            json!({ "settings": sink.settings() }),
        )
        .await
        .ok();
    let path = format!("/api/v1/users/{}/contacts/email", t.player_id);
    api_a
        .put(
            &t.player_token,
            &path,
            json!({ "address": "duo@example.com" }),
        )
        .await
        .ok();
    let code = code_in(&text_of(&sink.wait_for(1).await[0].data));
    api_b
        .post(
            &t.player_token,
            &format!("{path}/verify"),
            json!({ "code": code }),
        )
        .await
        .ok();
    api_b
        .put(
            &t.player_token,
            &format!("/api/v1/users/{}/channel-preferences", t.player_id),
            json!({ "email": { "marketing": true } }),
        )
        .await
        .ok();
    let client = format!("/api/v1/clients/{}/broadcasts", t.client_id);
    for i in 0..20 {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        api.post(
            &t.admin_token,
            &client,
            json!({ "subject": format!("n{i}"), "body": "b" }),
        )
        .await
        .ok();
    }
    let got = sink.wait_for(21).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 21, "no message sent twice");
    let mut ids: Vec<String> = got
        .iter()
        .map(|m| {
            smtp_sink::parse(&m.data)
                .header("Message-ID")
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 21);
}

backend_tests!(
    email_contact_verification_and_audit,
    templates_languages_and_multipart_email,
    preferences_and_security_notices,
    retries_dead_letters_and_rate_limits,
    in_doubt_email_is_dead_lettered_not_resent,
    sms_over_twilio_simulator_with_faults,
    authorization_matrix,
    two_nodes_send_each_message_once,
);
