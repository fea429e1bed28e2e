//! LuckySports simulator: `POST /api/{method}` with HMAC-signed JSON, a 60-second timestamp
//! window, integer cents; a bet stream driven by `POST /sim/bet` that moves the member's balance
//! and delivers signed callbacks to the hub, duplicated or out of order on request.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Faults, SimRefusal, SimState, common_faults};
use crate::providers::crypto::{luckysports_signature, luckysports_verify};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/{method:.*}", web::post().to(api))
        .route("/sim/bet", web::post().to(bet));
}

fn ok(data: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "code": 0, "message": "ok", "data": data }))
}

fn err(code: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "code": code, "message": code.to_lowercase(), "data": {} }))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 50 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

async fn api(
    state: web::Data<SimState>,
    req: HttpRequest,
    method: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(early) = common_faults(&state).await {
        return early;
    }
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let (operator, ts, signature) = (
        header("X-Operator"),
        header("X-Timestamp"),
        header("X-Signature"),
    );
    let Some(secret) = state.secret_of(operator) else {
        return err("BAD_SIGNATURE");
    };
    if !luckysports_verify(secret.as_bytes(), ts, &body, signature) {
        return err("BAD_SIGNATURE");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return err("INVALID_REQUEST");
    };
    let ts_ms = ts.parse::<i64>().unwrap_or_default().saturating_mul(1000);
    let fresh = || (crate::domain::now_ms() - ts_ms).abs() <= state.config.window_ms;
    let faults = state.faults();
    let member = body["member_id"].as_str().unwrap_or_default().to_owned();
    let now = crate::domain::now_ms();
    match method.as_str() {
        "fund/transfer" => {
            let trans_id = body["trans_id"].as_str().unwrap_or_default().to_owned();
            let amount = body["amount"].as_i64().filter(|a| *a > 0);
            let direction = body["direction"].as_str().unwrap_or_default();
            let (Some(amount), true, true) = (
                amount,
                valid_id(&trans_id),
                matches!(direction, "in" | "out"),
            ) else {
                return err("INVALID_AMOUNT");
            };
            if Faults::roll(faults.drop_before_rate) {
                tokio::time::sleep(Duration::from_millis(faults.drop_ms)).await;
                return HttpResponse::GatewayTimeout().finish();
            }
            if Faults::roll(faults.maintenance_rate) {
                return err("MAINTENANCE");
            }
            // Checked when the transfer would apply: a request held past its window never does.
            if Faults::roll(faults.stale_clock_rate) || !fresh() {
                return err("TIMESTAMP_EXPIRED");
            }
            let signed = if direction == "in" { amount } else { -amount };
            let in_progress = Faults::roll(faults.in_progress_rate);
            let ready_at = if in_progress {
                now + faults.in_progress_ms as i64
            } else {
                now
            };
            let applied = state
                .book
                .lock()
                .expect("book lock")
                .apply(&trans_id, &member, signed, ready_at);
            match applied {
                Err(SimRefusal::Duplicate) => err("DUPLICATE_TRANS"),
                Err(SimRefusal::UnknownMember) => err("MEMBER_NOT_FOUND"),
                Err(SimRefusal::Insufficient) => err("INSUFFICIENT_BALANCE"),
                Err(SimRefusal::InvalidAmount) => err("INVALID_AMOUNT"),
                Err(SimRefusal::Storage) => HttpResponse::InternalServerError().finish(),
                Ok(_) if in_progress => ok(json!({ "trans_id": trans_id, "status": "processing" })),
                Ok(t) => {
                    if Faults::roll(faults.drop_after_rate) {
                        tokio::time::sleep(Duration::from_millis(faults.drop_ms)).await;
                    }
                    ok(json!({ "trans_id": trans_id, "status": "success", "balance": t.after }))
                }
            }
        }
        _ if !fresh() => err("TIMESTAMP_EXPIRED"),
        "fund/check" => {
            let trans_id = body["trans_id"].as_str().unwrap_or_default();
            let book = state.book.lock().expect("book lock");
            match book.transfers.get(trans_id) {
                None => err("TRANS_NOT_FOUND"),
                Some(t) if t.ready_at_ms > now => ok(json!({ "status": "processing" })),
                Some(t) => ok(json!({
                    "status": "success", "amount": t.amount.abs(),
                    "direction": if t.amount > 0 { "in" } else { "out" }, "balance_after": t.after,
                })),
            }
        }
        "member/create" => {
            if !valid_id(&member) {
                return err("INVALID_REQUEST");
            }
            let added = state
                .book
                .lock()
                .expect("book lock")
                .add_member(&member, operator);
            match added {
                Ok(true) => ok(json!({ "member_id": member })),
                Ok(false) => err("MEMBER_EXISTS"),
                Err(_) => HttpResponse::InternalServerError().finish(),
            }
        }
        "member/balance" => match state.book.lock().expect("book lock").members.get(&member) {
            None => err("MEMBER_NOT_FOUND"),
            Some((balance, _)) => ok(json!({ "balance": balance })),
        },
        "member/login-url" => {
            if !state
                .book
                .lock()
                .expect("book lock")
                .members
                .contains_key(&member)
            {
                return err("MEMBER_NOT_FOUND");
            }
            ok(
                json!({ "url": format!("http://{}/sportsbook?token={}", req.connection_info().host(), crate::providers::new_serial()) }),
            )
        }
        "bets/pull" => {
            let since = body["since_version"].as_i64().unwrap_or(0);
            let limit = body["limit"].as_i64().unwrap_or(1000).clamp(1, 1000) as usize;
            let book = state.book.lock().expect("book lock");
            // The log is in version order: this operator's changes after `since`, one page.
            let start = book
                .bet_log
                .partition_point(|r| r["version"].as_i64().unwrap_or(0) <= since);
            let ours = |r: &&Value| {
                r["member_id"]
                    .as_str()
                    .and_then(|m| book.members.get(m))
                    .is_some_and(|(_, op)| op == operator)
            };
            let page: Vec<Value> = book.bet_log[start..]
                .iter()
                .filter(ours)
                .take(limit)
                .cloned()
                .collect();
            let next = page
                .last()
                .and_then(|r| r["version"].as_i64())
                .unwrap_or(since);
            ok(json!({ "bets": page, "next_version": next }))
        }
        _ => err("UNKNOWN_METHOD"),
    }
}

#[derive(Deserialize)]
struct BetRequest {
    member_id: String,
    /// Cents.
    stake: i64,
    payout: i64,
    /// A resettlement with this payout after the settlement.
    resettle_payout: Option<i64>,
}

/// Places and settles a bet for a member: the stake leaves their balance, the payout arrives,
/// and every version of the bet is sent to the hub as a signed callback (answered once all are
/// delivered, so a test can check the hub right after).
async fn bet(state: web::Data<SimState>, body: web::Json<BetRequest>) -> HttpResponse {
    let b = body.into_inner();
    if b.stake <= 0 || b.payout < 0 || b.resettle_payout.is_some_and(|p| p < 0) {
        return HttpResponse::UnprocessableEntity().json(json!({ "error": "amounts" }));
    }
    let bet_id = crate::providers::new_serial();
    let final_payout = b.resettle_payout.unwrap_or(b.payout);
    let status_of = |payout: i64| {
        if payout > b.stake {
            "won"
        } else if payout == b.stake {
            "draw"
        } else {
            "lost"
        }
    };
    let mut stages = vec![("running", 0), (status_of(b.payout), b.payout)];
    if let Some(p) = b.resettle_payout {
        stages.push((status_of(p), p));
    }
    // Balance and bet log change together; versions are global and grow per record.
    let (operator, mut events) = {
        let mut book = state.book.lock().expect("book lock");
        let Some((balance, operator)) = book.members.get(&b.member_id) else {
            return HttpResponse::NotFound().json(json!({ "error": "member" }));
        };
        let Some(after) = balance.checked_sub(b.stake).filter(|a| *a >= 0) else {
            return HttpResponse::Conflict().json(json!({ "error": "INSUFFICIENT_BALANCE" }));
        };
        let Some(after) = after.checked_add(final_payout) else {
            return HttpResponse::UnprocessableEntity().json(json!({ "error": "amounts" }));
        };
        let operator = operator.clone();
        let now = crate::domain::rfc3339_ms(crate::domain::now_ms());
        let mut records = Vec::new();
        let mut version = book.last_bet_version;
        for (status, payout) in stages {
            version += 1;
            records.push(json!({
                "bet_id": bet_id, "member_id": b.member_id, "stake": b.stake, "payout": payout,
                "status": status, "placed_at": now, "settled_at": now, "version": version,
            }));
        }
        // Durable first: the balance and the bet's versions are one commit.
        if let Some(store) = book.store.as_mut()
            && let Err(e) = store.add_bets(&b.member_id, after, &records)
        {
            tracing::error!(error = %e, "simulator bet not stored");
            return HttpResponse::InternalServerError().finish();
        }
        if let Some((balance, _)) = book.members.get_mut(&b.member_id) {
            *balance = after;
        }
        book.last_bet_version = version;
        let mut events = Vec::new();
        for record in records {
            book.bet_log.push(record.clone());
            events.push(json!({ "event": "bet_settled", "bet": record }));
        }
        (operator, events)
    };
    let faults = state.faults();
    if Faults::roll(faults.callback_out_of_order_rate) {
        events.reverse();
    }
    let mut deliveries = Vec::new();
    events.retain(|_| !Faults::roll(faults.callback_drop_rate));
    for e in events {
        deliveries.push(e.clone());
        if Faults::roll(faults.callback_duplicate_rate) {
            deliveries.push(e);
        }
    }
    let Some(url) = state.callback_url.lock().expect("url lock").clone() else {
        return HttpResponse::Ok().json(json!({ "bet_id": bet_id, "delivered": 0 }));
    };
    let secret = state.secret_of(&operator).unwrap_or_default().to_owned();
    let mut delivered = 0;
    for event in deliveries {
        let body = event.to_string();
        for _attempt in 0..3 {
            let ts = (crate::domain::now_ms() / 1000).to_string();
            let sent = state
                .http
                .post(&url)
                .header("Content-Type", "application/json")
                .header("X-Operator", &operator)
                .header(
                    "X-Signature",
                    luckysports_signature(secret.as_bytes(), &ts, body.as_bytes()),
                )
                .header("X-Timestamp", ts)
                .body(body.clone())
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                delivered += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    HttpResponse::Ok().json(json!({ "bet_id": bet_id, "delivered": delivered }))
}
