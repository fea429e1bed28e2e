//! JDB Games transfer-wallet adapter (`/work/shared/providers/JDB.md`): one endpoint, action-coded
//! requests, the payload AES-128-CBC encrypted, plain-JSON answers with a 4-character `status`.
//! Every wire detail marked "our reading" in the contract lives in this file.

use serde_json::{Value, json};
use tracing::Instrument;

use super::crypto::{jdb_encrypt, key16};
use super::units::{from_json_number, to_decimal};
use super::{
    BoxFuture, CallError, CallbackEnvelope, CallbackError, CheckAnswer, Direction, GameInfo,
    ProviderAdapter, RoundReport, TransferAnswer, TransferCall,
};
use crate::config::ProviderAccountSettings;
use crate::otel::{TRACEPARENT, TraceParent};

pub const NAME: &str = "jdb";
/// JDB refuses payloads whose `ts` is older than this.
pub const VALIDITY_MS: i64 = 30_000;
/// Our margin for clock skew on top of the validity window.
pub const SKEW_MS: i64 = 5_000;

pub const ACTION_LAUNCH: i64 = 11;
pub const ACTION_CREATE: i64 = 12;
pub const ACTION_INFO: i64 = 15;
pub const ACTION_KICK: i64 = 17;
pub const ACTION_TRANSFER: i64 = 19;
pub const ACTION_GAMES: i64 = 49;
pub const ACTION_HISTORY: i64 = 29;
/// Action 29 windows span at most this long.
pub const HISTORY_WINDOW_MAX_MS: i64 = 15 * 60 * 1000;
/// Action 29 reaches this far back; a fresh cursor starts there.
pub const HISTORY_REACH_MS: i64 = 2 * 3600 * 1000;
const HISTORY_TIME_FORMAT: &str = "%d-%m-%Y %H:%M:%S";

/// A history query time, `dd-MM-yyyy HH:mm:ss`. Our reading: UTC.
pub fn history_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format(HISTORY_TIME_FORMAT)
        .to_string()
}

pub fn parse_history_time(text: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(text, HISTORY_TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// JDB amounts are parsed at this many decimals (then converted exactly to a client's).
const HISTORY_EXPONENT: u32 = 4;
pub const ACTION_STATUS: i64 = 55;

/// Codes that mean "applied by an earlier call": confirm with action 55.
const APPLIED_EARLIER: &[&str] = &["6005", "6004", "9011"];
/// Codes that mean "nothing was applied".
const DEFINITE_FAILURE: &[&str] = &[
    "6001", "6002", "6003", "6006", "6009", "6010", "6901", "7501", "7502", "7503", "7504", "7601",
    "7001", "7002", "7003", "7004", "8000", "8001", "8002", "8003", "8004", "8005", "8006", "8007",
    "8008", "8009", "8010", "9003", "9004", "9005", "9006", "9007",
];
const INSUFFICIENT: &[&str] = &["6001", "6006", "6002"];
/// The player is not known at JDB (nothing was applied).
const UNKNOWN_PLAYER: &str = "7501";

pub struct JdbAdapter {
    /// Our name for the account (metrics label).
    account: String,
    results_delay_ms: i64,
    results_step_ms: i64,
    http: reqwest::Client,
    url: String,
    dc: String,
    parent: String,
    key: [u8; 16],
    iv: [u8; 16],
    window_ms: i64,
}

impl JdbAdapter {
    pub fn new(s: &ProviderAccountSettings, http: reqwest::Client) -> anyhow::Result<Self> {
        let key = key16(&s.key).ok_or_else(|| anyhow::anyhow!("JDB key must be 16 characters"))?;
        let iv = key16(&s.iv).ok_or_else(|| anyhow::anyhow!("JDB iv must be 16 characters"))?;
        Ok(Self {
            account: s.name.clone(),
            results_delay_ms: s.results_delay_ms.max(0),
            results_step_ms: s.results_step_ms.max(1000),
            http,
            url: format!("{}/apiRequest.do", s.base_url.trim_end_matches('/')),
            dc: s.operator.clone(),
            parent: s.parent.clone(),
            key,
            iv,
            window_ms: if s.request_window_ms > 0 {
                s.request_window_ms
            } else {
                VALIDITY_MS + SKEW_MS
            },
        })
    }

    /// Sends one action; the answer JSON whatever its status, or Unavailable for no answer.
    async fn call(&self, action: i64, mut payload: Value) -> Result<Value, CallError> {
        payload["action"] = json!(action);
        payload["ts"] = json!(crate::domain::now_ms());
        let x = jdb_encrypt(&self.key, &self.iv, payload.to_string().as_bytes());
        let started = std::time::Instant::now();
        let span = super::call_span(NAME, &self.account, action_name(action));
        let mut request = self.http.post(&self.url);
        if let Some(parent) = TraceParent::of(&span).header() {
            request = request.header(TRACEPARENT, parent);
        }
        let sent = request
            .json(&json!({ "dc": self.dc, "x": x }))
            .send()
            .instrument(span.clone())
            .await;
        let result = match sent {
            Err(e) => Err(CallError::Unavailable(format!("no answer: {e}"))),
            Ok(res) if !res.status().is_success() => {
                Err(CallError::Unavailable(format!("HTTP {}", res.status())))
            }
            Ok(res) => res
                .json::<Value>()
                .await
                .map_err(|e| CallError::Unavailable(format!("unreadable answer: {e}"))),
        };
        super::trace_outcome(&span, &result);
        super::observe_call(NAME, &self.account, action_name(action), started, &result);
        result
    }

    fn refused(answer: &Value) -> CallError {
        if status_of(answer) == UNKNOWN_PLAYER {
            return CallError::UnknownPlayer {
                code: UNKNOWN_PLAYER.to_owned(),
            };
        }
        CallError::Refused {
            code: status_of(answer).to_owned(),
            message: answer["err_text"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

fn action_name(action: i64) -> &'static str {
    match action {
        ACTION_LAUNCH => "launch",
        ACTION_CREATE => "create_player",
        ACTION_INFO => "balance",
        ACTION_KICK => "kick",
        ACTION_HISTORY => "history",
        ACTION_TRANSFER => "transfer",
        ACTION_GAMES => "games",
        ACTION_STATUS => "check",
        _ => "other",
    }
}

fn status_of(answer: &Value) -> &str {
    answer["status"].as_str().unwrap_or("")
}

impl ProviderAdapter for JdbAdapter {
    fn provider(&self) -> &'static str {
        NAME
    }

    fn request_window_ms(&self) -> i64 {
        self.window_ms
    }

    fn ensure_player<'a>(
        &'a self,
        uid: &'a str,
        // A JDB player's currency is the agent's (`parent`), fixed at JDB's side.
        _currency: &'a str,
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let answer = self
                .call(
                    ACTION_CREATE,
                    json!({ "parent": self.parent, "uid": uid, "name": uid }),
                )
                .await?;
            match status_of(&answer) {
                "0000" | "7602" => Ok(()),
                _ => Err(Self::refused(&answer)),
            }
        })
    }

    fn transfer<'a>(&'a self, call: &'a TransferCall) -> BoxFuture<'a, TransferAnswer> {
        Box::pin(async move {
            let signed = match call.direction {
                Direction::In => call.amount_minor,
                Direction::Out => -call.amount_minor,
            };
            let Ok(amount) = to_decimal(signed, call.exponent).parse::<serde_json::Number>() else {
                return TransferAnswer::Rejected {
                    code: "amount".into(),
                    insufficient_funds: false,
                };
            };
            let payload = json!({
                "parent": self.parent, "uid": call.uid, "serialNo": call.serial,
                "amount": amount, "allCashOutFlag": "0",
            });
            let answer = match self.call(ACTION_TRANSFER, payload).await {
                Ok(a) => a,
                Err(e) => return TransferAnswer::Unknown(e.to_string()),
            };
            let status = status_of(&answer);
            if status == "0000" {
                TransferAnswer::Applied {
                    balance_minor: from_json_number(&answer["userBalance"], call.exponent),
                }
            } else if status == "6901" {
                TransferAnswer::PlayerInGame
            } else if status == UNKNOWN_PLAYER {
                TransferAnswer::UnknownPlayer {
                    code: status.to_owned(),
                }
            } else if APPLIED_EARLIER.contains(&status) {
                TransferAnswer::AlreadyApplied
            } else if DEFINITE_FAILURE.contains(&status) {
                TransferAnswer::Rejected {
                    code: status.to_owned(),
                    insufficient_funds: INSUFFICIENT.contains(&status),
                }
            } else {
                // 6012, 9009, 9010, 9012, 9013, 9017, 9999 and anything unmapped.
                TransferAnswer::Unknown(format!("status {status}"))
            }
        })
    }

    fn check<'a>(&'a self, serial: &'a str, exponent: u32) -> BoxFuture<'a, CheckAnswer> {
        Box::pin(async move {
            let answer = match self
                .call(
                    ACTION_STATUS,
                    json!({ "parent": self.parent, "serialNo": serial }),
                )
                .await
            {
                Ok(a) => a,
                Err(e) => return CheckAnswer::Unknown(e.to_string()),
            };
            match status_of(&answer) {
                "0000" => CheckAnswer::Applied {
                    balance_minor: from_json_number(&answer["data"][0]["afterBalance"], exponent),
                },
                "9015" => CheckAnswer::NotFound,
                other => CheckAnswer::Unknown(format!("status {other}")),
            }
        })
    }

    fn balance<'a>(&'a self, uid: &'a str, exponent: u32) -> BoxFuture<'a, Result<i64, CallError>> {
        Box::pin(async move {
            let answer = self
                .call(ACTION_INFO, json!({ "parent": self.parent, "uid": uid }))
                .await?;
            if status_of(&answer) != "0000" {
                return Err(Self::refused(&answer));
            }
            from_json_number(&answer["data"][0]["balance"], exponent)
                .ok_or_else(|| CallError::Invalid("balance is not an exact amount".into()))
        })
    }

    fn launch<'a>(
        &'a self,
        uid: &'a str,
        game: &'a str,
        lang: &'a str,
    ) -> BoxFuture<'a, Result<String, CallError>> {
        Box::pin(async move {
            // Our game code for JDB is `<gType>-<mType>`.
            let (g_type, m_type) = game
                .split_once('-')
                .ok_or_else(|| CallError::Invalid("JDB game codes are <gType>-<mType>".into()))?;
            let answer = self
                .call(
                    ACTION_LAUNCH,
                    json!({ "uid": uid, "lang": lang, "gType": g_type, "mType": m_type, "windowMode": "2" }),
                )
                .await?;
            match (status_of(&answer), answer["path"].as_str()) {
                ("0000", Some(path)) => Ok(path.to_owned()),
                _ => Err(Self::refused(&answer)),
            }
        })
    }

    fn games(&self) -> BoxFuture<'_, Result<Vec<GameInfo>, CallError>> {
        Box::pin(async move {
            let answer = self
                .call(ACTION_GAMES, json!({ "parent": self.parent, "lang": "en" }))
                .await?;
            if status_of(&answer) != "0000" {
                return Err(Self::refused(&answer));
            }
            let mut games = Vec::new();
            for group in answer["data"].as_array().into_iter().flatten() {
                let g_type = match &group["gType"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                for game in group["list"].as_array().into_iter().flatten() {
                    let m = if game["mType"].is_null() {
                        &game["mtype"]
                    } else {
                        &game["mType"]
                    };
                    let m_type = match m {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    games.push(GameInfo {
                        code: format!("{g_type}-{m_type}"),
                        name: game["name"].as_str().unwrap_or_default().to_owned(),
                        game_type: game_type(&g_type),
                    });
                }
            }
            Ok(games)
        })
    }

    fn kick<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let answer = self
                .call(ACTION_KICK, json!({ "parent": self.parent, "uid": uid }))
                .await?;
            match status_of(&answer) {
                "0000" => Ok(()),
                _ => Err(Self::refused(&answer)),
            }
        })
    }

    fn pull_rounds(&self, since: i64) -> BoxFuture<'_, Result<(Vec<RoundReport>, i64), CallError>> {
        Box::pin(async move {
            let step = self.results_step_ms;
            let now = crate::domain::now_ms();
            let floor = |t: i64| t - t.rem_euclid(step);
            let start = if since > 0 {
                since
            } else {
                floor(now - HISTORY_REACH_MS + step)
            };
            // Only windows whose rounds are all visible by now, at most 15 minutes long.
            let end = floor((now - self.results_delay_ms).min(start + HISTORY_WINDOW_MAX_MS));
            if end <= start {
                return Ok((Vec::new(), since));
            }
            let answer = self
                .call(
                    ACTION_HISTORY,
                    json!({ "parent": self.parent, "starttime": history_time(start), "endtime": history_time(end) }),
                )
                .await?;
            if status_of(&answer) != "0000" {
                return Err(Self::refused(&answer));
            }
            let mut reports = Vec::new();
            for round in answer["data"].as_array().into_iter().flatten() {
                let Some(report) = history_round(round) else {
                    tracing::warn!(round = %round["historyId"], "unreadable JDB round skipped");
                    continue;
                };
                reports.push(report);
            }
            Ok((reports, end))
        })
    }

    fn callback_operator(&self, _env: &CallbackEnvelope<'_>) -> Option<String> {
        None
    }

    fn verify_callback(&self, _env: &CallbackEnvelope<'_>) -> Result<RoundReport, CallbackError> {
        // JDB pushes nothing to a transfer-wallet operator: results come from actions 29/64.
        Err(CallbackError::Unsupported)
    }
}

/// One action 29/64 record as a round report, amounts at [`HISTORY_EXPONENT`]. A settled round
/// is final: one version. Our reading: `total` = `bet` + `win` with `bet` negative (what left
/// the player); the stake is `bet`'s magnitude. None when a field is missing or not exact.
fn history_round(round: &Value) -> Option<RoundReport> {
    let id = match &round["historyId"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let uid = round["playerId"].as_str()?;
    let total = from_json_number(&round["total"], HISTORY_EXPONENT)?;
    let stake = from_json_number(&round["bet"], HISTORY_EXPONENT)?.checked_abs()?;
    Some(RoundReport {
        uid: uid.to_owned(),
        round_id: id,
        game: history_game(round),
        version: 1,
        status: "settled".into(),
        net_wire: total,
        stake_wire: stake,
        wire_exponent: HISTORY_EXPONENT,
        final_state: true,
    })
}

/// A history record's game as our JDB game code `<gType>-<mType>` (the catalogue's and the
/// launch's); the record spells it `mtype` (accept `mType` too, as action 49 does), as a number
/// or a numeric string. '' when either is missing or not a whole number: the round still counts.
fn history_game(round: &Value) -> String {
    let part = |v: &Value| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    let m = if round["mtype"].is_null() {
        &round["mType"]
    } else {
        &round["mtype"]
    };
    match (part(&round["gType"]), part(m)) {
        (Some(g), Some(m)) => super::game_code(&format!("{g}-{m}")),
        _ => String::new(),
    }
}

/// Our reading of JDB's `gType` (action 49): 0 slots, 7 fishing, 9 arcade, 12 lottery, 18 card
/// games; anything else is `other` until JDB's table says more.
pub fn game_type(g_type: &str) -> &'static str {
    match g_type {
        "0" => "slot",
        "7" => "fishing",
        "9" => "arcade",
        "12" => "lottery",
        "18" => "card",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_record_carries_its_stake() {
        let r = history_round(&json!({
            "historyId": 7, "playerId": "u1", "bet": -1.5, "win": 4, "total": 2.5,
        }))
        .unwrap();
        assert_eq!((r.round_id.as_str(), r.uid.as_str()), ("7", "u1"));
        assert_eq!(r.game, "");
        assert_eq!(
            (r.net_wire, r.stake_wire, r.wire_exponent),
            (25_000, 15_000, 4)
        );
        // The game: `<gType>-<mType>`, numbers or numeric strings, `mtype` or `mType`.
        for (g, m) in [
            (json!(7), json!({ "mtype": 7001 })),
            (json!("7"), json!({ "mType": "7001" })),
        ] {
            let mut record = json!({ "historyId": 9, "playerId": "u1", "bet": -1, "total": 0 });
            record["gType"] = g;
            for (k, v) in m.as_object().unwrap() {
                record[k] = v.clone();
            }
            assert_eq!(history_round(&record).unwrap().game, "7-7001", "{record}");
        }
        let odd = json!({ "historyId": 9, "playerId": "u1", "bet": -1, "total": 0, "gType": "x", "mtype": 1 });
        assert_eq!(history_round(&odd).unwrap().game, "");
        // A bet with more decimals than the wire carries, or none at all: unreadable.
        for bad in [json!("-1.00001"), Value::Null] {
            let record = json!({ "historyId": "8", "playerId": "u1", "bet": bad, "total": 0 });
            assert!(history_round(&record).is_none(), "{record}");
        }
    }
}
