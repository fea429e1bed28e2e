//! `nashub sim sms`: a Twilio Programmable Messaging simulator (the subset in
//! docs/sms-twilio.md) that injects the faults of a real gateway: 5xx answers, a message taken
//! but answered too late (the sender times out, in doubt), status callbacks delayed, never
//! sent, sent twice, or with a bad signature, and undeliverable numbers.
//!
//! Protocol: `POST /2010-04-01/Accounts/{sid}/Messages.json` (basic auth, form `To`, `From`,
//! `Body`, `StatusCallback`) answers 201 with the message resource; `GET` on the same path
//! lists messages (`To` filter). Control (not Twilio's): `GET /sim/messages` (every message
//! taken, bodies included), `POST /sim/faults` (a [`SmsFaults`] JSON).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::sms::twilio_signature;

/// Fault rates in `[0, 1]` and durations; all zero: a perfect gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsFaults {
    /// Answer 500 without taking the message.
    pub error_5xx_rate: f64,
    /// Take the message, then wait `hang_ms` before answering (the sender times out).
    pub hang_after_accept_rate: f64,
    pub hang_ms: u64,
    /// Report delivery this long after taking a message.
    pub callback_delay_ms: u64,
    /// Never report delivery.
    pub callback_drop_rate: f64,
    /// Report each status twice.
    pub callback_duplicate_rate: f64,
    /// Sign reports with a wrong key.
    pub callback_bad_signature_rate: f64,
    /// Report `undelivered` instead of `delivered`.
    pub undelivered_rate: f64,
}

fn roll(rate: f64) -> bool {
    rate > 0.0 && (rate >= 1.0 || rand::random::<f64>() < rate)
}

/// A message the simulator took.
#[derive(Debug, Clone, Serialize)]
pub struct SimMessage {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub status: String,
    pub date_created: String,
    pub status_callback: Option<String>,
}

struct SimState {
    account_sid: String,
    auth_token: String,
    messages: Mutex<Vec<SimMessage>>,
    faults: Mutex<SmsFaults>,
    http: reqwest::Client,
}

#[derive(Debug, Clone)]
pub struct SmsSimConfig {
    pub bind: String,
    pub account_sid: String,
    pub auth_token: String,
    pub faults: SmsFaults,
}

impl Default for SmsSimConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:9003".into(),
            account_sid: "ACsimulator".into(),
            auth_token: "simulator-auth-token".into(),
            faults: SmsFaults::default(),
        }
    }
}

fn authorized(state: &SimState, req: &HttpRequest, sid: &str) -> bool {
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", state.account_sid, state.auth_token));
    sid == state.account_sid
        && req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Basic {expected}"))
}

fn twilio_error(status: u16, code: i64, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .json(json!({ "code": code, "message": message, "status": status }))
}

fn resource(m: &SimMessage, account_sid: &str) -> serde_json::Value {
    json!({
        "sid": m.sid, "account_sid": account_sid, "to": m.to, "from": m.from, "body": m.body,
        "status": m.status, "date_created": m.date_created, "num_segments": "1",
        "direction": "outbound-api", "error_code": null, "error_message": null,
    })
}

async fn create(
    state: web::Data<SimState>,
    req: HttpRequest,
    sid: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if !authorized(&state, &req, &sid) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let faults = state.faults.lock().unwrap().clone();
    if roll(faults.error_5xx_rate) {
        return twilio_error(500, 20500, "Internal Server Error");
    }
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (Some(to), Some(from), Some(body)) = (field("To"), field("From"), field("Body")) else {
        return twilio_error(400, 21604, "A 'To', 'From' and 'Body' are required");
    };
    if !to.starts_with('+') {
        return twilio_error(400, 21211, "Invalid 'To' Phone Number");
    }
    let message = SimMessage {
        sid: format!("SM{}", uuid::Uuid::new_v4().simple()),
        to,
        from,
        body,
        status: "queued".into(),
        date_created: chrono::Utc::now().to_rfc2822(),
        status_callback: field("StatusCallback"),
    };
    state.messages.lock().unwrap().push(message.clone());
    if let Some(url) = message.status_callback.clone() {
        tokio::spawn(report(
            state.clone().into_inner(),
            message.clone(),
            url,
            faults.clone(),
        ));
    }
    if roll(faults.hang_after_accept_rate) {
        tokio::time::sleep(Duration::from_millis(faults.hang_ms)).await;
    }
    HttpResponse::Created().json(resource(&message, &state.account_sid))
}

/// Sends the status callbacks of one message (`sent`, then `delivered` or `undelivered`).
async fn report(state: Arc<SimState>, message: SimMessage, url: String, faults: SmsFaults) {
    if roll(faults.callback_drop_rate) {
        return;
    }
    tokio::time::sleep(Duration::from_millis(faults.callback_delay_ms)).await;
    let last = if roll(faults.undelivered_rate) {
        "undelivered"
    } else {
        "delivered"
    };
    let bad_signature = roll(faults.callback_bad_signature_rate);
    let times = if roll(faults.callback_duplicate_rate) {
        2
    } else {
        1
    };
    set_status(&state, &message.sid, last);
    for status in ["sent", last] {
        let mut params = vec![
            ("AccountSid".to_owned(), state.account_sid.clone()),
            ("MessageSid".to_owned(), message.sid.clone()),
            ("MessageStatus".to_owned(), status.to_owned()),
            ("To".to_owned(), message.to.clone()),
            ("From".to_owned(), message.from.clone()),
        ];
        if status == "undelivered" {
            params.push(("ErrorCode".to_owned(), "30003".to_owned()));
        }
        let key = if bad_signature {
            "not-the-auth-token"
        } else {
            state.auth_token.as_str()
        };
        let signature = twilio_signature(key, &url, &params);
        for _ in 0..times {
            let sent = state
                .http
                .post(&url)
                .header("X-Twilio-Signature", &signature)
                .form(&params)
                .send()
                .await;
            if let Err(e) = sent {
                tracing::debug!(error = %e, "sms simulator: callback not delivered");
            }
        }
    }
}

fn set_status(state: &SimState, sid: &str, status: &str) {
    if let Some(m) = state
        .messages
        .lock()
        .unwrap()
        .iter_mut()
        .find(|m| m.sid == sid)
    {
        m.status = status.to_owned();
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "To")]
    to: Option<String>,
}

async fn list(
    state: web::Data<SimState>,
    req: HttpRequest,
    sid: web::Path<String>,
    q: web::Query<ListQuery>,
) -> HttpResponse {
    if !authorized(&state, &req, &sid) {
        return twilio_error(401, 20003, "Authenticate");
    }
    if roll(state.faults.lock().unwrap().error_5xx_rate) {
        return twilio_error(500, 20500, "Internal Server Error");
    }
    let messages: Vec<serde_json::Value> = state
        .messages
        .lock()
        .unwrap()
        .iter()
        .rev()
        .filter(|m| q.to.as_ref().is_none_or(|to| *to == m.to))
        .map(|m| resource(m, &state.account_sid))
        .collect();
    HttpResponse::Ok().json(json!({ "messages": messages, "page": 0, "page_size": messages.len() }))
}

async fn all_messages(state: web::Data<SimState>) -> HttpResponse {
    let messages = state.messages.lock().unwrap().clone();
    HttpResponse::Ok().json(json!({ "messages": messages }))
}

async fn set_faults(state: web::Data<SimState>, faults: web::Json<SmsFaults>) -> HttpResponse {
    *state.faults.lock().unwrap() = faults.into_inner();
    HttpResponse::Ok().json(json!({ "ok": true }))
}

/// Binds and returns the address and the server to run (inside an actix system).
pub fn serve(config: SmsSimConfig) -> std::io::Result<(SocketAddr, actix_web::dev::Server)> {
    let state = web::Data::new(SimState {
        account_sid: config.account_sid,
        auth_token: config.auth_token,
        messages: Mutex::new(Vec::new()),
        faults: Mutex::new(config.faults),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
    });
    let listener = std::net::TcpListener::bind(&config.bind)?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                web::post().to(create),
            )
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                web::get().to(list),
            )
            .route("/sim/messages", web::get().to(all_messages))
            .route("/sim/faults", web::post().to(set_faults))
    })
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok((addr, server))
}

/// Runs the simulator until the process ends (`nashub sim sms`).
pub async fn run(config: SmsSimConfig) -> std::io::Result<()> {
    let (addr, server) = serve(config)?;
    println!("nashub sms simulator (twilio) listening on http://{addr}");
    server.await
}

/// The simulator on its own thread and actix system (tests); stops when dropped.
pub struct SmsSimThread {
    pub base_url: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SmsSimThread {
    pub fn start(mut config: SmsSimConfig) -> std::io::Result<Self> {
        config.bind = "127.0.0.1:0".into();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                match serve(config) {
                    Ok((addr, server)) => {
                        let _ = tx.send(Ok((addr, server.handle())));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let (addr, handle) = rx
            .recv()
            .map_err(|_| std::io::Error::other("sms simulator thread ended"))??;
        Ok(Self {
            base_url: format!("http://{addr}"),
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for SmsSimThread {
    fn drop(&mut self) {
        let _stopping = self.handle.stop(false);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
