//! LuckySports sportsbook transfer-wallet adapter (`/work/shared/providers/LUCKYSPORTS.md`, our
//! design): JSON POSTs to `{base}/api/{method}` signed with HMAC-SHA256 over
//! `timestamp + "." + body`, integer cents, `{"code", "message", "data"}` answers. Callbacks
//! carry the same signature headers.

use serde_json::{Value, json};
use tracing::Instrument;

use super::crypto::{luckysports_signature, luckysports_verify};
use super::units::rescale;
use super::{
    BoxFuture, CallError, CallbackEnvelope, CallbackError, CheckAnswer, GameInfo, ProviderAdapter,
    RoundReport, TransferAnswer, TransferCall,
};
use crate::config::ProviderAccountSettings;
use crate::otel::{TRACEPARENT, TraceParent};

pub const NAME: &str = "luckysports";

/// The one game code of a sportsbook: its catalogue entry and every round's game.
pub const SPORTSBOOK: &str = "sportsbook";
/// LuckySports refuses requests older than this (and so do we, for callbacks).
pub const VALIDITY_MS: i64 = 60_000;
pub const SKEW_MS: i64 = 5_000;
/// Cents: the wire exponent of every amount.
pub const WIRE_EXPONENT: u32 = 2;
/// Bet records per `bets/pull` page (the contract's maximum).
pub const PULL_LIMIT: i64 = 1000;

pub struct LuckySportsAdapter {
    /// Our name for the account (metrics label).
    account: String,
    http: reqwest::Client,
    base: String,
    operator: String,
    secret: Vec<u8>,
    window_ms: i64,
}

impl LuckySportsAdapter {
    pub fn new(s: &ProviderAccountSettings, http: reqwest::Client) -> anyhow::Result<Self> {
        anyhow::ensure!(!s.secret.is_empty(), "LuckySports secret must be set");
        Ok(Self {
            account: s.name.clone(),
            http,
            base: s.base_url.trim_end_matches('/').to_owned(),
            operator: s.operator.clone(),
            secret: s.secret.clone().into_bytes(),
            window_ms: if s.request_window_ms > 0 {
                s.request_window_ms
            } else {
                VALIDITY_MS + SKEW_MS
            },
        })
    }

    /// `(code, data)` of an answer; code 0 is success, anything else a named error.
    async fn call(&self, method: &'static str, body: Value) -> Result<(String, Value), CallError> {
        let body = body.to_string();
        let ts = (crate::domain::now_ms() / 1000).to_string();
        let signature = luckysports_signature(&self.secret, &ts, body.as_bytes());
        let started = std::time::Instant::now();
        let span = super::call_span(NAME, &self.account, method);
        let mut request = self.http.post(format!("{}/api/{method}", self.base));
        if let Some(parent) = TraceParent::of(&span).header() {
            request = request.header(TRACEPARENT, parent);
        }
        let sent = request
            .header("Content-Type", "application/json")
            .header("X-Operator", &self.operator)
            .header("X-Timestamp", ts)
            .header("X-Signature", signature)
            .body(body)
            .send()
            .instrument(span.clone())
            .await;
        let result = match sent {
            Err(e) => Err(CallError::Unavailable(format!("no answer: {e}"))),
            Ok(res) if !res.status().is_success() => {
                Err(CallError::Unavailable(format!("HTTP {}", res.status())))
            }
            Ok(res) => match res.json::<Value>().await {
                Err(e) => Err(CallError::Unavailable(format!("unreadable answer: {e}"))),
                Ok(answer) => {
                    let code = match &answer["code"] {
                        Value::Number(n) if n.as_i64() == Some(0) => "0".to_owned(),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    Ok((code, answer["data"].clone()))
                }
            },
        };
        super::trace_outcome(&span, &result);
        super::observe_call(NAME, &self.account, method, started, &result);
        result
    }

    fn cents(minor: i64, exponent: u32) -> Option<i64> {
        rescale(minor, exponent, WIRE_EXPONENT)
    }

    fn minor(cents: &Value, exponent: u32) -> Option<i64> {
        rescale(cents.as_i64()?, WIRE_EXPONENT, exponent)
    }
}

/// The member is not known at LuckySports (nothing was applied).
const UNKNOWN_MEMBER: &str = "MEMBER_NOT_FOUND";

fn refused(code: String) -> CallError {
    if code == UNKNOWN_MEMBER {
        return CallError::UnknownPlayer { code };
    }
    CallError::Refused {
        message: code.to_lowercase().replace('_', " "),
        code,
    }
}

impl ProviderAdapter for LuckySportsAdapter {
    fn provider(&self) -> &'static str {
        NAME
    }

    fn request_window_ms(&self) -> i64 {
        self.window_ms
    }

    fn ensure_player<'a>(
        &'a self,
        uid: &'a str,
        currency: &'a str,
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let (code, _) = self
                .call(
                    "member/create",
                    json!({ "member_id": uid, "currency": currency }),
                )
                .await?;
            match code.as_str() {
                "0" | "MEMBER_EXISTS" => Ok(()),
                _ => Err(refused(code)),
            }
        })
    }

    fn transfer<'a>(&'a self, call: &'a TransferCall) -> BoxFuture<'a, TransferAnswer> {
        Box::pin(async move {
            let Some(amount) = Self::cents(call.amount_minor, call.exponent) else {
                return TransferAnswer::Rejected {
                    code: "INVALID_AMOUNT".into(),
                    insufficient_funds: false,
                };
            };
            let body = json!({
                "member_id": call.uid, "trans_id": call.serial,
                "direction": call.direction.as_str(), "amount": amount,
            });
            match self.call("fund/transfer", body).await {
                Err(e) => TransferAnswer::Unknown(e.to_string()),
                Ok((code, data)) => match code.as_str() {
                    "0" if data["status"] == "success" => TransferAnswer::Applied {
                        balance_minor: Self::minor(&data["balance"], call.exponent),
                    },
                    "DUPLICATE_TRANS" => TransferAnswer::AlreadyApplied,
                    "INSUFFICIENT_BALANCE" => TransferAnswer::Rejected {
                        code,
                        insufficient_funds: true,
                    },
                    UNKNOWN_MEMBER => TransferAnswer::UnknownPlayer { code },
                    "INVALID_AMOUNT" | "TIMESTAMP_EXPIRED" | "BAD_SIGNATURE" => {
                        TransferAnswer::Rejected {
                            code,
                            insufficient_funds: false,
                        }
                    }
                    // MAINTENANCE, "processing", anything unmapped: ask fund/check later.
                    _ => TransferAnswer::Unknown(format!("code {code} {}", data["status"])),
                },
            }
        })
    }

    fn check<'a>(&'a self, serial: &'a str, exponent: u32) -> BoxFuture<'a, CheckAnswer> {
        Box::pin(async move {
            match self.call("fund/check", json!({ "trans_id": serial })).await {
                Err(e) => CheckAnswer::Unknown(e.to_string()),
                Ok((code, data)) => match (code.as_str(), data["status"].as_str()) {
                    ("0", Some("success")) => CheckAnswer::Applied {
                        balance_minor: Self::minor(&data["balance_after"], exponent),
                    },
                    ("0", Some("failed")) => CheckAnswer::Failed,
                    ("TRANS_NOT_FOUND", _) => CheckAnswer::NotFound,
                    _ => CheckAnswer::Unknown(format!("code {code} {}", data["status"])),
                },
            }
        })
    }

    fn balance<'a>(&'a self, uid: &'a str, exponent: u32) -> BoxFuture<'a, Result<i64, CallError>> {
        Box::pin(async move {
            let (code, data) = self
                .call("member/balance", json!({ "member_id": uid }))
                .await?;
            if code != "0" {
                return Err(refused(code));
            }
            Self::minor(&data["balance"], exponent)
                .ok_or_else(|| CallError::Invalid("balance is not an exact amount".into()))
        })
    }

    fn launch<'a>(
        &'a self,
        uid: &'a str,
        _game: &'a str,
        lang: &'a str,
    ) -> BoxFuture<'a, Result<String, CallError>> {
        Box::pin(async move {
            let (code, data) = self
                .call(
                    "member/login-url",
                    json!({ "member_id": uid, "lang": lang, "platform": "desktop" }),
                )
                .await?;
            match (code.as_str(), data["url"].as_str()) {
                ("0", Some(url)) => Ok(url.to_owned()),
                _ => Err(refused(code)),
            }
        })
    }

    fn games(&self) -> BoxFuture<'_, Result<Vec<GameInfo>, CallError>> {
        // A sportsbook is one "game": its lobby.
        Box::pin(async {
            Ok(vec![GameInfo {
                code: SPORTSBOOK.into(),
                name: "LuckySports".into(),
                game_type: "sports",
            }])
        })
    }

    fn callback_operator(&self, env: &CallbackEnvelope<'_>) -> Option<String> {
        env.headers
            .get("X-Operator")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    fn verify_callback(&self, env: &CallbackEnvelope<'_>) -> Result<RoundReport, CallbackError> {
        let header = |name| {
            env.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(CallbackError::Unauthenticated)
        };
        let ts = header("X-Timestamp")?;
        let signature = header("X-Signature")?;
        if !luckysports_verify(&self.secret, ts, env.body, signature) {
            return Err(CallbackError::BadSignature);
        }
        let ts_ms = ts
            .parse::<i64>()
            .map_err(|_| CallbackError::Unauthenticated)?
            .saturating_mul(1000);
        if (env.now_ms - ts_ms).abs() > VALIDITY_MS {
            return Err(CallbackError::Stale);
        }
        let body: Value = serde_json::from_slice(env.body)
            .map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let event = body["event"].as_str().unwrap_or_default();
        if !matches!(event, "bet_settled" | "bet_cancelled") {
            return Err(CallbackError::Malformed(format!("unknown event {event:?}")));
        }
        parse_bet(&body["bet"], event == "bet_cancelled")
    }

    fn pull_rounds(&self, since: i64) -> BoxFuture<'_, Result<(Vec<RoundReport>, i64), CallError>> {
        Box::pin(async move {
            let (code, data) = self
                .call(
                    "bets/pull",
                    json!({ "since_version": since, "limit": PULL_LIMIT }),
                )
                .await?;
            if code != "0" {
                return Err(refused(code));
            }
            let next = data["next_version"].as_i64().unwrap_or(since).max(since);
            let mut reports = Vec::new();
            for bet in data["bets"].as_array().into_iter().flatten() {
                match parse_bet(bet, false) {
                    Ok(r) => reports.push(r),
                    Err(e) => tracing::warn!(error = %e, "unreadable bet record skipped"),
                }
            }
            Ok((reports, next))
        })
    }
}

/// A bet record (callback or pull) as a round report; amounts stay in cents.
fn parse_bet(bet: &Value, cancelled: bool) -> Result<RoundReport, CallbackError> {
    let text = |field: &str| {
        bet[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CallbackError::Malformed(format!("bet.{field} missing")))
    };
    let cents = |field: &str| {
        bet[field]
            .as_i64()
            .filter(|c| *c >= 0)
            .ok_or_else(|| CallbackError::Malformed(format!("bet.{field} is not whole cents")))
    };
    let status = text("status")?;
    let stake = cents("stake")?;
    let payout = cents("payout")?;
    let version = bet["version"]
        .as_i64()
        .filter(|v| *v > 0)
        .ok_or_else(|| CallbackError::Malformed("bet.version missing".into()))?;
    // A cancelled, void, refunded or rejected bet gives the stake back: net zero, and no
    // turnover (the stake did not stand).
    let stands = !cancelled && !matches!(status.as_str(), "void" | "refunded" | "rejected");
    let net = if stands {
        payout
            .checked_sub(stake)
            .ok_or_else(|| CallbackError::Malformed("amounts overflow".into()))?
    } else {
        0
    };
    Ok(RoundReport {
        uid: text("member_id")?,
        round_id: text("bet_id")?,
        // Our contract's bet records name no sport, market or event: every bet is a play of
        // the one game our catalogue lists (the sportsbook lobby, `games()`).
        game: SPORTSBOOK.to_owned(),
        version,
        final_state: status != "running" && status != "pending",
        status,
        net_wire: net,
        stake_wire: if stands { stake } else { 0 },
        wire_exponent: WIRE_EXPONENT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bet(status: &str) -> Value {
        json!({
            "bet_id": "b1", "member_id": "m1", "stake": 250, "payout": 600,
            "status": status, "version": 3,
        })
    }

    #[test]
    fn a_bet_that_stands_is_turnover_a_returned_one_is_not() {
        let won = parse_bet(&bet("won"), false).unwrap();
        assert_eq!((won.net_wire, won.stake_wire), (350, 250));
        let running = parse_bet(&bet("running"), false).unwrap();
        assert_eq!(running.stake_wire, 250);
        for status in ["void", "refunded", "rejected"] {
            let r = parse_bet(&bet(status), false).unwrap();
            assert_eq!((r.net_wire, r.stake_wire), (0, 0), "{status}");
        }
        let cancelled = parse_bet(&bet("won"), true).unwrap();
        assert_eq!((cancelled.net_wire, cancelled.stake_wire), (0, 0));
        let mut negative = bet("lost");
        negative["stake"] = json!(-1);
        assert!(parse_bet(&negative, false).is_err());
    }
}
