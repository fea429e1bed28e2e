//! `nashub sim pay`: a Stripe simulator (the subset of `docs/payments-stripe.md`) reached over
//! real HTTP, in memory, with the faults a hub must survive (`POST /sim/faults`, [`PayFaults`]).
//!
//! Stripe endpoints: `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`
//! (`expand[]=payment_intent`), `POST /v1/checkout/sessions/{id}/expire`, `POST /v1/payouts`,
//! `GET /v1/payouts/{id}`, `GET /v1/balance_transactions`; `Idempotency-Key` replays the first
//! answer. Webhooks are signed as Stripe signs them and retried (3 tries) until answered 2xx.
//! Control (not Stripe): `GET /pay/{id}` (the hosted page), `POST /sim/checkout/{id}/pay`
//! `{"amount"?, "outcome"?: "paid"|"async_paid"|"async_failed"}` (the player pays),
//! `POST /sim/checkout/{id}/expire`, `POST /sim/payouts/settle` (pending payouts finish now),
//! `POST /sim/faults`, `POST /sim/webhook-url` `{"url"}`, `GET /sim/info`.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::stripe;

pub const SIM_API_KEY: &str = "sk_test_nashub_sim";
pub const SIM_WEBHOOK_SECRET: &str = "whsec_nashub_sim";
/// The simulator's fee schedule (and the embedded account's): 2.9% + 0.30, payouts 0.25.
pub const SIM_FEE_BPS: i64 = 290;
pub const SIM_FEE_FIXED: i64 = 30;
pub const SIM_PAYOUT_FEE: i64 = 25;

/// Probabilities in `[0, 1]` and durations; all zero: a perfect gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PayFaults {
    /// Each webhook delivered twice (same event id).
    pub duplicate_webhook_rate: f64,
    /// The events of one change delivered in reverse order.
    pub out_of_order_rate: f64,
    /// Webhooks never delivered (the hub must poll).
    pub webhook_drop_rate: f64,
    /// Webhooks signed with a wrong secret (and never delivered correctly).
    pub bad_signature_rate: f64,
    /// Create requests applied, then the answer held back `drop_ms` (the caller times out).
    pub drop_after_rate: f64,
    pub drop_ms: u64,
    /// Payouts accepted (`pending`), then failed.
    pub payout_fail_rate: f64,
    /// Payouts stay pending until `POST /sim/payouts/settle`.
    pub payouts_manual: bool,
    /// Every request answered 500 without doing anything.
    pub error_5xx_rate: f64,
    /// Every request answered 503.
    pub down: bool,
}

fn roll(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

#[derive(Debug, Default)]
struct Book {
    sessions: HashMap<String, Value>,
    payouts: HashMap<String, Value>,
    /// Idempotency key → the first answer.
    replies: HashMap<String, Value>,
    balance_transactions: Vec<Value>,
    next: u64,
}

impl Book {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_sim{:010}", self.next)
    }
}

pub struct PaySimState {
    faults: Mutex<PayFaults>,
    book: Mutex<Book>,
    webhook_url: Mutex<Option<String>>,
    base_url: String,
    http: reqwest::Client,
}

/// A running simulator (tests set faults and the webhook URL here).
pub struct PaySimHandle {
    pub addr: SocketAddr,
    pub state: Arc<PaySimState>,
    server: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PaySimHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, faults: PayFaults) {
        *self.state.faults.lock().expect("faults lock") = faults;
    }

    pub fn set_webhook_url(&self, url: &str) {
        *self.state.webhook_url.lock().expect("url lock") = Some(url.to_owned());
    }
}

impl Drop for PaySimHandle {
    fn drop(&mut self) {
        let _stopping = self.server.stop(false);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn state_for(addr: SocketAddr, faults: PayFaults) -> Arc<PaySimState> {
    Arc::new(PaySimState {
        faults: Mutex::new(faults),
        book: Mutex::new(Book::default()),
        webhook_url: Mutex::new(None),
        base_url: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client"),
    })
}

fn server(
    state: Arc<PaySimState>,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::from(state);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route("/v1/checkout/sessions", web::post().to(create_session))
            .route("/v1/checkout/sessions/{id}", web::get().to(get_session))
            .route(
                "/v1/checkout/sessions/{id}/expire",
                web::post().to(expire_session),
            )
            .route("/v1/payouts", web::post().to(create_payout))
            .route("/v1/payouts/{id}", web::get().to(get_payout))
            .route(
                "/v1/balance_transactions",
                web::get().to(balance_transactions),
            )
            .route("/pay/{id}", web::get().to(hosted_page))
            .route("/sim/checkout/{id}/pay", web::post().to(sim_pay))
            .route("/sim/checkout/{id}/expire", web::post().to(sim_expire))
            .route("/sim/payouts/settle", web::post().to(sim_settle_payouts))
            .route("/sim/faults", web::post().to(set_faults))
            .route("/sim/webhook-url", web::post().to(set_webhook_url))
            .route("/sim/info", web::get().to(info))
    })
    .listen(listener)?
    .workers(2)
    .shutdown_timeout(1)
    .disable_signals()
    .run())
}

/// Starts the simulator on its own thread (and actix system); returns once it listens.
pub fn spawn(bind: &str, faults: PayFaults) -> std::io::Result<PaySimHandle> {
    let listener = TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    let state = state_for(addr, faults);
    let (tx, rx) = std::sync::mpsc::channel();
    let thread_state = state.clone();
    let thread = std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            match server(thread_state, listener) {
                Ok(server) => {
                    let _ = tx.send(Ok(server.handle()));
                    let _ = server.await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    let server = rx
        .recv()
        .map_err(|_| std::io::Error::other("simulator thread ended"))??;
    Ok(PaySimHandle {
        addr,
        state,
        server,
        thread: Some(thread),
    })
}

/// `nashub sim pay`: serves until interrupted.
pub async fn run(
    bind: &str,
    faults: PayFaults,
    webhook_url: Option<String>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    println!("nashub sim pay (stripe) listening on http://{addr}");
    let state = state_for(addr, faults);
    *state.webhook_url.lock().expect("url lock") = webhook_url;
    server(state, listener)?.await
}

fn stripe_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
        .json(json!({"error": {"type": "invalid_request_error", "code": code, "message": message}}))
}

/// Down, 5xx and the API key: `Some` answers now.
fn gate(state: &PaySimState, req: &HttpRequest) -> Option<HttpResponse> {
    let f = state.faults.lock().expect("faults lock").clone();
    if f.down {
        return Some(stripe_error(503, "down", "simulated outage"));
    }
    if roll(f.error_5xx_rate) {
        return Some(stripe_error(500, "api_error", "simulated failure"));
    }
    let auth = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {SIM_API_KEY}") {
        return Some(stripe_error(
            401,
            "api_key_invalid",
            "Invalid API Key provided",
        ));
    }
    None
}

fn idempotency_key(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn now_secs() -> i64 {
    crate::domain::now_ms() / 1000
}

/// Holds the answer back after applying (`drop_after_rate`): the caller's timeout fires.
async fn maybe_drop_after(state: &PaySimState) {
    let f = state.faults.lock().expect("faults lock").clone();
    if roll(f.drop_after_rate) {
        tokio::time::sleep(Duration::from_millis(f.drop_ms)).await;
    }
}

async fn create_session(
    state: web::Data<PaySimState>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Some(r) = gate(&state, &req) {
        return r;
    }
    let key = idempotency_key(&req);
    let reply = {
        let mut book = state.book.lock().expect("book lock");
        if let Some(first) = key.as_ref().and_then(|k| book.replies.get(k)) {
            return HttpResponse::Ok()
                .insert_header(("Idempotent-Replayed", "true"))
                .json(first);
        }
        let f = &form;
        let unit: i64 = f
            .get("line_items[0][price_data][unit_amount]")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let quantity: i64 = f
            .get("line_items[0][quantity]")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        if unit <= 0 || f.get("mode").map(String::as_str) != Some("payment") {
            return stripe_error(400, "parameter_invalid", "line_items or mode invalid");
        }
        let id = book.id("cs_test");
        let intent = book.id("pi");
        let session = json!({
            "id": id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": unit * quantity,
            "currency": f.get("line_items[0][price_data][currency]").cloned().unwrap_or_default(),
            "client_reference_id": f.get("client_reference_id"),
            "metadata": {"payment_id": f.get("metadata[payment_id]")},
            "expires_at": f.get("expires_at").and_then(|v| v.parse::<i64>().ok()),
            "payment_intent": intent,
            "url": format!("{}/pay/{id}", state.base_url),
            "created": now_secs(),
            "livemode": false,
        });
        book.sessions.insert(id, session.clone());
        if let Some(k) = &key {
            book.replies.insert(k.clone(), session.clone());
        }
        session
    };
    maybe_drop_after(&state).await;
    HttpResponse::Ok().json(reply)
}

fn session_view(session: &Value, expand: bool) -> Value {
    let mut s = session.clone();
    if expand {
        let status = match (s["status"].as_str(), s["payment_status"].as_str()) {
            (_, Some("paid")) => "succeeded",
            (Some("complete"), _) if s["_async_failed"] == json!(true) => "requires_payment_method",
            (Some("complete"), _) => "processing",
            (Some("expired"), _) => "canceled",
            _ => "requires_payment_method",
        };
        s["payment_intent"] =
            json!({"id": session["payment_intent"], "object": "payment_intent", "status": status});
    }
    if let Some(o) = s.as_object_mut() {
        o.remove("_async_failed");
    }
    s
}

async fn get_session(
    state: web::Data<PaySimState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = gate(&state, &req) {
        return r;
    }
    let expand = req.query_string().contains("payment_intent");
    match state
        .book
        .lock()
        .expect("book lock")
        .sessions
        .get(id.as_str())
    {
        Some(s) => HttpResponse::Ok().json(session_view(s, expand)),
        None => stripe_error(404, "resource_missing", "No such checkout.session"),
    }
}

async fn expire_session(
    state: web::Data<PaySimState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = gate(&state, &req) {
        return r;
    }
    match expire(&state, &id) {
        Ok(s) => HttpResponse::Ok().json(s),
        Err(r) => *r,
    }
}

fn expire(state: &PaySimState, id: &str) -> Result<Value, Box<HttpResponse>> {
    let session = {
        let mut book = state.book.lock().expect("book lock");
        let Some(s) = book.sessions.get_mut(id) else {
            return Err(Box::new(stripe_error(
                404,
                "resource_missing",
                "No such checkout.session",
            )));
        };
        if s["status"] != "open" {
            return Err(Box::new(stripe_error(
                400,
                "checkout_session_not_open",
                "Only open sessions can be expired",
            )));
        }
        s["status"] = json!("expired");
        session_view(s, false)
    };
    send_events(state, vec![("checkout.session.expired", session.clone())]);
    Ok(session)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PayBody {
    /// What the player paid (default: the session's amount).
    amount: Option<i64>,
    /// `paid` (card, default), `async_paid` or `async_failed` (bank debit).
    outcome: Option<String>,
}

/// The player pays on the hosted page.
async fn sim_pay(
    state: web::Data<PaySimState>,
    id: web::Path<String>,
    body: Option<web::Json<PayBody>>,
) -> HttpResponse {
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    let outcome = body.outcome.unwrap_or_else(|| "paid".into());
    let (events, session) = {
        let mut book = state.book.lock().expect("book lock");
        let Some(s) = book.sessions.get_mut(id.as_str()) else {
            return stripe_error(404, "resource_missing", "No such checkout.session");
        };
        if s["status"] != "open" {
            return stripe_error(400, "checkout_session_not_open", "session is not open");
        }
        if let Some(a) = body.amount {
            s["amount_total"] = json!(a);
        }
        s["status"] = json!("complete");
        let mut events = Vec::new();
        match outcome.as_str() {
            "async_paid" | "async_failed" => {
                events.push(("checkout.session.completed", session_view(s, false)));
                if outcome == "async_paid" {
                    s["payment_status"] = json!("paid");
                    events.push((
                        "checkout.session.async_payment_succeeded",
                        session_view(s, false),
                    ));
                } else {
                    s["_async_failed"] = json!(true);
                    events.push((
                        "checkout.session.async_payment_failed",
                        session_view(s, false),
                    ));
                }
            }
            _ => {
                s["payment_status"] = json!("paid");
                events.push(("checkout.session.completed", session_view(s, false)));
            }
        }
        let paid = s["payment_status"] == "paid";
        let amount = s["amount_total"].as_i64().unwrap_or(0);
        let source = s["payment_intent"].clone();
        let session = session_view(s, false);
        if paid {
            let txn = book.id("txn");
            let fee = amount * SIM_FEE_BPS / 10_000 + SIM_FEE_FIXED;
            book.balance_transactions.push(json!({
                "id": txn, "object": "balance_transaction", "amount": amount, "fee": fee,
                "net": amount - fee, "type": "charge", "source": source, "created": now_secs(),
            }));
        }
        (events, session)
    };
    send_events(&state, events);
    HttpResponse::Ok().json(session)
}

async fn sim_expire(state: web::Data<PaySimState>, id: web::Path<String>) -> HttpResponse {
    match expire(&state, &id) {
        Ok(s) => HttpResponse::Ok().json(s),
        Err(r) => *r,
    }
}

async fn hosted_page(state: web::Data<PaySimState>, id: web::Path<String>) -> HttpResponse {
    let Some(s) = state
        .book
        .lock()
        .expect("book lock")
        .sessions
        .get(id.as_str())
        .cloned()
    else {
        return HttpResponse::NotFound().body("no such checkout");
    };
    let amount = s["amount_total"].as_i64().unwrap_or(0);
    let currency = s["currency"].as_str().unwrap_or_default().to_uppercase();
    let page = format!(
        "<!doctype html><title>Checkout (simulator)</title><h1>Pay {amount} {currency} (minor units)</h1>\
         <p>Status: {}</p><button onclick=\"fetch('/sim/checkout/{id}/pay',{{method:'POST'}}).then(()=>location.reload())\">Pay</button>",
        s["status"].as_str().unwrap_or_default(),
        id = id.as_str()
    );
    HttpResponse::Ok().content_type("text/html").body(page)
}

async fn create_payout(
    state: web::Data<PaySimState>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Some(r) = gate(&state, &req) {
        return r;
    }
    let key = idempotency_key(&req);
    let payout = {
        let mut book = state.book.lock().expect("book lock");
        if let Some(first) = key.as_ref().and_then(|k| book.replies.get(k)) {
            // The payout's current state, as Stripe's replay shows the first answer's object.
            let id = first["id"].as_str().unwrap_or_default();
            let current = book
                .payouts
                .get(id)
                .cloned()
                .unwrap_or_else(|| first.clone());
            return HttpResponse::Ok()
                .insert_header(("Idempotent-Replayed", "true"))
                .json(current);
        }
        let amount: i64 = form.get("amount").and_then(|v| v.parse().ok()).unwrap_or(0);
        let Some(destination) = form.get("destination").filter(|d| !d.is_empty()) else {
            return stripe_error(400, "parameter_missing", "destination is required");
        };
        if amount <= 0 {
            return stripe_error(400, "parameter_invalid_integer", "amount must be positive");
        }
        if !destination.starts_with("ba_") && !destination.starts_with("card_") {
            return stripe_error(400, "resource_missing", "No such external account");
        }
        let id = book.id("po");
        let payout = json!({
            "id": id, "object": "payout", "amount": amount,
            "currency": form.get("currency"), "destination": destination,
            "status": "pending", "failure_code": null,
            "metadata": {"payment_id": form.get("metadata[payment_id]")},
            "created": now_secs(),
        });
        book.payouts.insert(id, payout.clone());
        if let Some(k) = &key {
            book.replies.insert(k.clone(), payout.clone());
        }
        payout
    };
    let f = state.faults.lock().expect("faults lock").clone();
    if !f.payouts_manual {
        let state = state.clone().into_inner();
        let id = payout["id"].as_str().unwrap_or_default().to_owned();
        let fail = roll(f.payout_fail_rate);
        crate::rt::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            settle_payout(&state, &id, fail);
        });
    }
    maybe_drop_after(&state).await;
    HttpResponse::Ok().json(payout)
}

/// A pending payout is paid (or fails after being accepted) and its webhook goes out.
fn settle_payout(state: &PaySimState, id: &str, fail: bool) {
    let payout = {
        let mut book = state.book.lock().expect("book lock");
        let Some(p) = book.payouts.get_mut(id) else {
            return;
        };
        if p["status"] != "pending" {
            return;
        }
        if fail {
            p["status"] = json!("failed");
            p["failure_code"] = json!("account_closed");
        } else {
            p["status"] = json!("paid");
        }
        let p = p.clone();
        if !fail {
            let txn = book.id("txn");
            let amount = p["amount"].as_i64().unwrap_or(0);
            book.balance_transactions.push(json!({
                "id": txn, "object": "balance_transaction", "amount": -amount, "fee": SIM_PAYOUT_FEE,
                "net": -amount - SIM_PAYOUT_FEE, "type": "payout", "source": id, "created": now_secs(),
            }));
        }
        p
    };
    let kind = if fail { "payout.failed" } else { "payout.paid" };
    send_events(state, vec![(kind, payout)]);
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SettleBody {
    /// Fail them instead of paying them.
    fail: bool,
}

async fn sim_settle_payouts(
    state: web::Data<PaySimState>,
    body: Option<web::Json<SettleBody>>,
) -> HttpResponse {
    let fail = body.is_some_and(|b| b.fail);
    let pending: Vec<String> = state
        .book
        .lock()
        .expect("book lock")
        .payouts
        .iter()
        .filter(|(_, p)| p["status"] == "pending")
        .map(|(id, _)| id.clone())
        .collect();
    for id in &pending {
        settle_payout(&state, id, fail);
    }
    HttpResponse::Ok().json(json!({ "settled": pending.len() }))
}

async fn get_payout(
    state: web::Data<PaySimState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = gate(&state, &req) {
        return r;
    }
    match state
        .book
        .lock()
        .expect("book lock")
        .payouts
        .get(id.as_str())
    {
        Some(p) => HttpResponse::Ok().json(p),
        None => stripe_error(404, "resource_missing", "No such payout"),
    }
}

async fn balance_transactions(state: web::Data<PaySimState>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = gate(&state, &req) {
        return r;
    }
    let q: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .unwrap_or_default();
    let gte: i64 = q
        .get("created[gte]")
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN);
    let lt: i64 = q
        .get("created[lt]")
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MAX);
    let limit: usize = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .min(100);
    let book = state.book.lock().expect("book lock");
    let all: Vec<&Value> = book
        .balance_transactions
        .iter()
        .filter(|t| (gte..lt).contains(&t["created"].as_i64().unwrap_or(0)))
        .collect();
    let start = match q.get("starting_after") {
        Some(after) => all
            .iter()
            .position(|t| t["id"].as_str() == Some(after))
            .map_or(all.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<&Value> = all.iter().skip(start).take(limit).copied().collect();
    let has_more = start + page.len() < all.len();
    HttpResponse::Ok().json(json!({"object": "list", "data": page, "has_more": has_more}))
}

async fn set_faults(state: web::Data<PaySimState>, body: web::Json<PayFaults>) -> HttpResponse {
    *state.faults.lock().expect("faults lock") = body.into_inner();
    HttpResponse::Ok().json(&*state.faults.lock().expect("faults lock"))
}

#[derive(Deserialize)]
struct WebhookUrl {
    url: String,
}

async fn set_webhook_url(
    state: web::Data<PaySimState>,
    body: web::Json<WebhookUrl>,
) -> HttpResponse {
    *state.webhook_url.lock().expect("url lock") = Some(body.url.clone());
    HttpResponse::NoContent().finish()
}

async fn info(state: web::Data<PaySimState>) -> HttpResponse {
    let book = state.book.lock().expect("book lock");
    HttpResponse::Ok().json(json!({
        "gateway": "stripe",
        "sessions": book.sessions.len(),
        "payouts": book.payouts.len(),
        "payouts_paid": book.payouts.values().filter(|p| p["status"] == "paid").count(),
        "payouts_paid_amount": book.payouts.values().filter(|p| p["status"] == "paid").map(|p| p["amount"].as_i64().unwrap_or(0)).sum::<i64>(),
        "sessions_paid_amount": book.sessions.values().filter(|s| s["payment_status"] == "paid").map(|s| s["amount_total"].as_i64().unwrap_or(0)).sum::<i64>(),
    }))
}

/// Builds the events of one change and delivers them in the background, with the faults.
fn send_events(state: &PaySimState, changes: Vec<(&str, Value)>) {
    let Some(url) = state.webhook_url.lock().expect("url lock").clone() else {
        return;
    };
    let f = state.faults.lock().expect("faults lock").clone();
    let mut events: Vec<Vec<u8>> = {
        let mut book = state.book.lock().expect("book lock");
        changes
            .into_iter()
            .map(|(kind, object)| {
                let id = book.id("evt");
                serde_json::to_vec(&json!({
                    "id": id, "object": "event", "api_version": "2024-06-20",
                    "created": now_secs(), "type": kind, "livemode": false,
                    "pending_webhooks": 1, "data": {"object": object},
                }))
                .expect("event serializes")
            })
            .collect()
    };
    if roll(f.out_of_order_rate) {
        events.reverse();
    }
    let http = state.http.clone();
    let bad = roll(f.bad_signature_rate);
    let dropped = roll(f.webhook_drop_rate);
    let duplicate = roll(f.duplicate_webhook_rate);
    if dropped {
        return;
    }
    crate::rt::spawn(async move {
        for body in events {
            let copies = if duplicate { 2 } else { 1 };
            for _ in 0..copies {
                deliver(&http, &url, &body, bad).await;
            }
        }
    });
}

async fn deliver(http: &reqwest::Client, url: &str, body: &[u8], bad_signature: bool) {
    for attempt in 0..3_u32 {
        let secret = if bad_signature {
            "whsec_wrong"
        } else {
            SIM_WEBHOOK_SECRET
        };
        let signature = stripe::sign(secret, now_secs(), body);
        let sent = http
            .post(url)
            .header("Content-Type", "application/json")
            .header(stripe::SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return,
            // A refused signature is not retried with the same signature forever.
            Ok(r) if r.status().is_client_error() && bad_signature => return,
            _ => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
        }
    }
}
