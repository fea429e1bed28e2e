//! JDB simulator: `POST /apiRequest.do` with `dc`/`x` as JSON, form fields or query parameters,
//! padding-tolerant decryption, the 30-second `ts` window, and actions 11, 12, 15, 19, 49, 55.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{Faults, SimRefusal, SimState, common_faults};
use crate::providers::crypto::{jdb_decrypt, key16};
use crate::providers::units::{parse_decimal, to_decimal};

/// The simulator keeps JDB balances with 4 decimals (JDB amounts are decimals).
pub const SIM_EXPONENT: u32 = 4;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/apiRequest.do", web::post().to(api))
        .route("/sim/play", web::post().to(play));
}

#[derive(serde::Deserialize)]
struct PlayRequest {
    uid: String,
    /// Cents.
    bet: i64,
    win: i64,
    /// `<gType>-<mType>` of a game the simulator lists (action 49); default: one of them at
    /// random, so history rows name varied games as JDB's do.
    game: Option<String>,
}

/// The games the simulator lists (action 49) and plays: (gType, mType, name).
const GAMES: [(u32, u32, &str); 3] = [
    (0, 8001, "Lucky Dragon"),
    (0, 8003, "Fortune Treasure"),
    (7, 7001, "Dragon Fishing"),
];

/// Plays one settled round for a player: the bet leaves their balance, the win arrives, and
/// the round appears in the history (action 29) after `history_delay_ms`.
async fn play(state: web::Data<SimState>, body: web::Json<PlayRequest>) -> HttpResponse {
    let p = body.into_inner();
    let scale = 10_i64.pow(SIM_EXPONENT - 2);
    let (Some(bet), Some(win)) = (p.bet.checked_mul(scale), p.win.checked_mul(scale)) else {
        return HttpResponse::UnprocessableEntity().finish();
    };
    if bet <= 0 || win < 0 {
        return HttpResponse::UnprocessableEntity().finish();
    }
    let game = match &p.game {
        Some(code) => GAMES.iter().find(|(g, m, _)| format!("{g}-{m}") == *code),
        None => GAMES.get(rand::random_range(0..GAMES.len())),
    };
    let Some(&(g_type, m_type, _)) = game else {
        return HttpResponse::UnprocessableEntity().finish();
    };
    let now = crate::domain::now_ms();
    let mut book = state.book.lock().expect("book lock");
    let Some((balance, _)) = book.members.get(&p.uid) else {
        return HttpResponse::NotFound().finish();
    };
    if *balance < bet {
        return HttpResponse::Conflict().json(json!({ "status": "6006" }));
    }
    let Some(after) = balance.checked_add(win - bet) else {
        return HttpResponse::UnprocessableEntity().finish();
    };
    let id = crate::providers::new_serial();
    let time = crate::providers::jdb::history_time(now);
    let record = json!({
        "historyId": id, "playerId": p.uid, "gType": g_type, "mtype": m_type, "gameDate": time,
        "bet": number(-bet), "win": number(win), "total": number(win - bet),
        "lastModifyTime": time,
    });
    if let Some(store) = book.store.as_mut()
        && let Err(e) = store.add_round(&p.uid, after, now, &record)
    {
        tracing::error!(error = %e, "simulator round not stored");
        return HttpResponse::InternalServerError().finish();
    }
    if let Some((balance, _)) = book.members.get_mut(&p.uid) {
        *balance = after;
    }
    book.rounds.push((now, record));
    HttpResponse::Ok().json(json!({ "historyId": id }))
}

fn answer(status: &str, extra: Value) -> HttpResponse {
    let mut body = json!({ "status": status });
    if status != "0000" {
        body["err_text"] = json!(format!("error {status}"));
    }
    if let Value::Object(map) = extra {
        for (k, v) in map {
            body[k] = v;
        }
    }
    HttpResponse::Ok().json(body)
}

fn number(units: i64) -> Value {
    to_decimal(units, SIM_EXPONENT)
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// `dc` and `x` from a JSON body, a form body or the query string.
fn envelope(req: &HttpRequest, body: &[u8]) -> Option<(String, String)> {
    let pick = |v: &Value| Some((v["dc"].as_str()?.to_owned(), v["x"].as_str()?.to_owned()));
    if let Ok(v) = serde_json::from_slice::<Value>(body)
        && let Some(found) = pick(&v)
    {
        return Some(found);
    }
    let form = |text: &str| {
        let pairs: std::collections::HashMap<String, String> =
            serde_urlencoded_pairs(text).into_iter().collect();
        Some((pairs.get("dc")?.clone(), pairs.get("x")?.clone()))
    };
    std::str::from_utf8(body)
        .ok()
        .and_then(form)
        .or_else(|| form(req.query_string()))
}

/// Minimal `a=b&c=d` parsing with percent-decoding (enough for `dc` and base64url `x`).
fn serde_urlencoded_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 50
        && uid
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_serial(serial: &str) -> bool {
    !serial.is_empty() && serial.len() <= 50 && serial.bytes().all(|b| b.is_ascii_alphanumeric())
}

async fn api(state: web::Data<SimState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Some(early) = common_faults(&state).await {
        return early;
    }
    let Some((dc, x)) = envelope(&req, &body) else {
        return answer("9004", json!({}));
    };
    if !state.config.operators.iter().any(|(op, _)| *op == dc) {
        return answer("9003", json!({}));
    }
    let (Some(key), Some(iv)) = (key16(&state.config.key), key16(&state.config.iv)) else {
        return answer("9006", json!({}));
    };
    let Some(payload) =
        jdb_decrypt(&key, &iv, &x).and_then(|p| serde_json::from_slice::<Value>(&p).ok())
    else {
        return answer("9006", json!({}));
    };
    let action = payload["action"].as_i64().unwrap_or_default();
    let faults = state.faults();
    if action == 19 {
        return transfer(&state, &payload, &faults).await;
    }
    if !fresh(&state, &payload) {
        return answer("9005", json!({}));
    }
    let parent_ok =
        action == 11 || payload["parent"].as_str() == Some(state.config.parent.as_str());
    if !parent_ok {
        return answer("7001", json!({}));
    }
    let uid = payload["uid"].as_str().unwrap_or_default().to_owned();
    let now = crate::domain::now_ms();
    match action {
        12 => {
            if !valid_uid(&uid) {
                return answer("7601", json!({}));
            }
            let added = state.book.lock().expect("book lock").add_member(&uid, &dc);
            match added {
                Ok(true) => answer("0000", json!({})),
                Ok(false) => answer("7602", json!({})),
                Err(_) => HttpResponse::InternalServerError().finish(),
            }
        }
        15 => {
            let book = state.book.lock().expect("book lock");
            match book.members.get(&uid) {
                None => answer("7501", json!({})),
                Some((balance, _)) => answer(
                    "0000",
                    json!({ "data": [{ "uid": uid, "balance": number(*balance), "currency": "NA", "locked": 0, "closed": 0 }] }),
                ),
            }
        }
        55 => {
            let serial = payload["serialNo"].as_str().unwrap_or_default();
            let book = state.book.lock().expect("book lock");
            match book.transfers.get(serial) {
                None => answer("9015", json!({})),
                Some(t) if t.ready_at_ms > now => answer("6012", json!({})),
                Some(t) => answer(
                    "0000",
                    json!({ "data": [{
                        "uid": t.uid, "action": if t.amount >= 0 { "deposit" } else { "withdraw" },
                        "amount": number(t.amount), "plsBalance": number(t.before),
                        "afterBalance": number(t.after), "date": crate::domain::rfc3339_ms(t.at_ms),
                        "pid": serial,
                    }] }),
                ),
            }
        }
        11 => {
            let mut book = state.book.lock().expect("book lock");
            if !book.members.contains_key(&uid) {
                return answer("7501", json!({}));
            }
            if faults.in_game_after_launch_ms > 0 {
                book.in_game_until_ms
                    .insert(uid.clone(), now + faults.in_game_after_launch_ms as i64);
            }
            let game = format!(
                "{}-{}",
                payload["gType"].as_str().unwrap_or_default(),
                payload["mType"].as_str().unwrap_or_default()
            );
            answer(
                "0000",
                json!({ "path": format!("http://{}/game?uid={uid}&game={game}&t={}", req.connection_info().host(), crate::providers::new_serial()) }),
            )
        }
        17 => {
            let mut book = state.book.lock().expect("book lock");
            if !book.members.contains_key(&uid) {
                return answer("7501", json!({}));
            }
            book.in_game_until_ms.remove(&uid);
            answer("0000", json!({}))
        }
        29 => {
            use crate::providers::jdb::{HISTORY_WINDOW_MAX_MS, parse_history_time};
            let time = |field: &str| payload[field].as_str().and_then(parse_history_time);
            let (Some(start), Some(end)) = (time("starttime"), time("endtime")) else {
                return answer("8000", json!({}));
            };
            let step = state.config.history_step_ms;
            if start % step != 0
                || end % step != 0
                || end <= start
                || end - start > HISTORY_WINDOW_MAX_MS
            {
                return answer("8000", json!({}));
            }
            let visible_until = now - state.config.history_delay_ms;
            let book = state.book.lock().expect("book lock");
            let data: Vec<Value> = book
                .rounds
                .iter()
                .filter(|(at, _)| *at >= start && *at < end && *at <= visible_until)
                .map(|(_, r)| r.clone())
                .collect();
            answer("0000", json!({ "data": data }))
        }
        49 => {
            // Grouped by gType; the fishing group spells `mtype` as JDB's table does.
            let mut groups: Vec<Value> = Vec::new();
            for (g, m, name) in GAMES {
                let key = if g == 7 { "mtype" } else { "mType" };
                let game = json!({ key: m.to_string(), "name": name, "image": "" });
                let g = g.to_string();
                match groups.iter_mut().find(|x| x["gType"].as_str() == Some(&g)) {
                    Some(group) => group["list"].as_array_mut().expect("list").push(game),
                    None => groups.push(json!({ "gType": g, "list": [game] })),
                }
            }
            answer("0000", json!({ "data": groups }))
        }
        _ => answer("9007", json!({})),
    }
}

fn fresh(state: &SimState, payload: &Value) -> bool {
    let ts = payload["ts"].as_i64().unwrap_or_default();
    (crate::domain::now_ms() - ts).abs() <= state.config.window_ms
}

/// Action 19 with its faults. The `ts` window is checked when the transfer would apply, so a
/// request that arrives (or is held) past its window never applies.
async fn transfer(state: &SimState, payload: &Value, faults: &Faults) -> HttpResponse {
    let uid = payload["uid"].as_str().unwrap_or_default().to_owned();
    let serial = payload["serialNo"].as_str().unwrap_or_default().to_owned();
    if payload["parent"].as_str() != Some(state.config.parent.as_str()) {
        return answer("7001", json!({}));
    }
    if !valid_serial(&serial) {
        return answer("8000", json!({}));
    }
    let Some(amount) =
        parse_decimal(&payload["amount"].to_string(), SIM_EXPONENT).filter(|a| *a != 0)
    else {
        return answer("8001", json!({}));
    };
    if Faults::roll(faults.drop_before_rate) {
        tokio::time::sleep(Duration::from_millis(faults.drop_ms)).await;
        return HttpResponse::GatewayTimeout().finish();
    }
    if Faults::roll(faults.maintenance_rate) {
        return answer("9013", json!({}));
    }
    if Faults::roll(faults.stale_clock_rate) || !fresh(state, payload) {
        return answer("9005", json!({}));
    }
    let now = crate::domain::now_ms();
    let in_progress = Faults::roll(faults.in_progress_rate);
    let ready_at = if in_progress {
        now + faults.in_progress_ms as i64
    } else {
        now
    };
    let applied = {
        let mut book = state.book.lock().expect("book lock");
        if let Some(t) = book.transfers.get(&serial) {
            return answer(if t.ready_at_ms > now { "6012" } else { "6005" }, json!({}));
        }
        if amount < 0
            && book
                .in_game_until_ms
                .get(&uid)
                .is_some_and(|until| *until > now)
        {
            return answer("6901", json!({}));
        }
        book.apply(&serial, &uid, amount, ready_at)
    };
    let t = match applied {
        Ok(t) => t,
        Err(SimRefusal::Duplicate) => return answer("6005", json!({})),
        Err(SimRefusal::UnknownMember) => return answer("7501", json!({})),
        Err(SimRefusal::Insufficient) => return answer("6006", json!({})),
        Err(SimRefusal::InvalidAmount) => return answer("6010", json!({})),
        Err(SimRefusal::Storage) => return HttpResponse::InternalServerError().finish(),
    };
    if in_progress {
        return answer("6012", json!({}));
    }
    if Faults::roll(faults.drop_after_rate) {
        tokio::time::sleep(Duration::from_millis(faults.drop_ms)).await;
    }
    answer(
        "0000",
        json!({ "userBalance": number(t.after), "amount": number(t.amount), "serialNo": serial, "pid": serial, "payDate": crate::domain::rfc3339_ms(t.at_ms) }),
    )
}
