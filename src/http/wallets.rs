//! `/api/v1/users/{id}/wallet` and `/transactions`: balances and money movements. Handlers
//! parse and authorize, then hand one journal entry to the wallet actor of the debited user.

use crate::clients::settings::{self, LimitKind};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{Auth, IdempotencyKey, Page};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::users::{reachable_user, readable_user};
use super::views::Page as PageOf;
use crate::access;
use crate::actors::wallet::{BalanceWatch, Mutate};
use crate::audit::Event;
use crate::auth::Caller;
use crate::auth::permissions as perm;
use crate::domain::{Amount, Currency, Role, rfc3339_ms};
use crate::ledger::JournalKind;
use crate::ledger::accounts::wallet_id;
use crate::ledger::entries::{self, Movement, Request};
use crate::protection::{Check, Flow};
use crate::state::AppState;
use crate::store::{HistoryQuery, UserRow};

/// Longest memo kept with a movement.
const MEMO_MAX_CHARS: usize = 256;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// A decimal string in the currency's exponent; kept as raw JSON so a number gets a clear
    /// 422 rather than a guess.
    #[schema(value_type = String, example = "150.00")]
    amount: serde_json::Value,
    #[schema(max_length = 256)]
    memo: Option<String>,
    /// 1 to 128 printable ASCII characters; or send the Idempotency-Key header (both: they
    /// must agree).
    #[schema(min_length = 1, max_length = 128, pattern = "^[\\x21-\\x7E]+$")]
    idempotency_key: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
    /// A movement kind (deposit, withdrawal, credit, ...).
    kind: Option<String>,
    /// RFC 3339, inclusive.
    from: Option<String>,
    /// RFC 3339.
    to: Option<String>,
    /// Size bounds (decimal strings, inclusive) on the movement's absolute amount.
    min_amount: Option<String>,
    max_amount: Option<String>,
    /// A transaction id or memo, matched exactly.
    reference: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceParams {
    /// RFC 3339: the balance as it stood then.
    at: Option<String>,
}

/// A wallet's balance.
#[derive(Serialize, ToSchema)]
pub struct Wallet {
    user_id: String,
    /// decimal string in the currency's exponent
    #[schema(example = "150.00")]
    balance: String,
    currency: String,
    /// The time asked for (`at`), when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<String>,
}

/// A committed movement: the target wallet's balance after it.
#[derive(Serialize, ToSchema)]
pub struct MoveResult {
    transaction_id: String,
    /// decimal string in the currency's exponent
    #[schema(example = "150.00")]
    balance: String,
    currency: String,
}

/// One committed movement of a wallet.
#[derive(Serialize, ToSchema)]
pub struct Transaction {
    id: String,
    kind: String,
    /// signed decimal string: negative when money left the wallet
    #[schema(example = "-5.00")]
    amount: String,
    #[schema(example = "145.00")]
    balance_after: String,
    currency: String,
    /// RFC 3339
    created_at: String,
    memo: Option<String>,
}

/// A decimal-string query bound in the wallet's currency.
fn parse_bound(field: &str, value: Option<&str>, c: &Currency) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            Amount::parse(v, c.exponent)
                .map(Amount::minor)
                .map_err(|e| ApiError::validation(format!("{field}: {e}")))
        })
        .transpose()
}

/// The user's wallet currency (their client's).
async fn currency_of(state: &AppState, user: &UserRow) -> Result<Currency, ApiError> {
    Ok(access::wallet_client(&state.store, user).await?.1)
}

/// Balance, now or at a past time (`at`, RFC 3339)
#[utoipa::path(get, path = "/api/v1/users/{id}/wallet", tag = "wallets",
    security(("bearer" = [])), params(BalanceParams),
    responses(
        (status = 200, description = "success", body = Wallet),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn balance(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    q: web::Query<BalanceParams>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    let currency = currency_of(&state, &user).await?;
    let account = state
        .store
        .account(&wallet_id(&user.id))
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))?;
    let Some(at) = parse_time("at", q.at.as_deref())? else {
        return Ok(HttpResponse::Ok().json(Wallet {
            user_id: user.id,
            balance: currency.format(account.balance),
            currency: currency.code,
            at: None,
        }));
    };
    let balance = state.store.balance_at(&account.id, at).await?;
    Ok(HttpResponse::Ok().json(Wallet {
        user_id: user.id,
        balance: currency.format(balance),
        currency: currency.code,
        at: Some(rfc3339_ms(at)),
    }))
}

/// The client limit a movement is subject to: money into or out of a player's wallet by
/// cash or down the tree. Adjustments are corrections by an admin and are not capped.
fn limit_kind(movement: Movement) -> Option<LimitKind> {
    match movement {
        Movement::Deposit | Movement::Credit => Some(LimitKind::Deposit),
        Movement::Withdrawal | Movement::Debit => Some(LimitKind::Withdrawal),
        Movement::AdjustUp | Movement::AdjustDown => None,
    }
}

fn may_move(caller: &Caller, target: &UserRow, movement: Movement) -> Result<(), ApiError> {
    match movement {
        Movement::Deposit | Movement::Withdrawal | Movement::AdjustUp | Movement::AdjustDown
            if caller.role.is_admin() && caller.can(perm::WALLETS_CASH) =>
        {
            Ok(())
        }
        Movement::Credit | Movement::Debit
            if caller.role == Role::Agent
                && caller.can(perm::WALLETS_DOWNLINE)
                && target.id != caller.user_id =>
        {
            Ok(())
        }
        _ => Err(ApiError::forbidden()),
    }
}

async fn move_money(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    user_id: String,
    body: MoveBody,
    movement: Movement,
) -> Result<HttpResponse, ApiError> {
    let key = key.or_body(body.idempotency_key)?;
    let target = reachable_user(&state, &caller, &user_id).await?;
    may_move(&caller, &target, movement)?;
    let currency = currency_of(&state, &target).await?;
    let amount = match &body.amount {
        serde_json::Value::String(text) => Amount::parse(text, currency.exponent)?,
        _ => return Err(crate::domain::AmountError::NotADecimal.into()),
    };
    if body
        .memo
        .as_ref()
        .is_some_and(|m| m.chars().count() > MEMO_MAX_CHARS)
    {
        return Err(ApiError::validation(format!(
            "memo must be at most {MEMO_MAX_CHARS} characters"
        )));
    }
    let client_id = target.client_id.clone().ok_or_else(ApiError::internal)?;
    if let Some(kind) = limit_kind(movement) {
        settings::load(&state.store, &client_id)
            .await?
            .check_limit(kind, amount.minor(), currency.exponent)?;
    }
    let request = Request {
        client_id: &client_id,
        actor_id: &caller.user_id,
        idempotency_key: &key,
        user_id: &target.id,
        amount,
        memo: body.memo.as_deref(),
    };
    let mut entry = entries::build(movement, &request);
    // Signed as it moves the target's wallet (a withdrawal or `-1.00` adjustment is negative),
    // like the transaction listing: the parsed amount has lost its sign.
    let signed = entry
        .postings
        .iter()
        .find(|p| p.account_id == wallet_id(&target.id))
        .map(|p| p.amount)
        .ok_or_else(ApiError::internal)?;
    // Who asked, in the audit chain, committed in the same transaction as the movement.
    entry.audit = Some(
        Event::new(&format!("wallet.{}", movement.kind()))
            .by(&caller)
            .client(Some(&client_id))
            .target("user", &target.id)
            .after(json!({
                "transaction_id": entry.id,
                "amount": currency.format(signed),
                "memo": body.memo,
            }))
            .into_row(),
    );
    let mut watch = vec![BalanceWatch {
        user_id: target.id.clone(),
        account_id: wallet_id(&target.id),
    }];
    if matches!(movement, Movement::Credit | Movement::Debit) {
        watch.push(BalanceWatch {
            user_id: caller.user_id.clone(),
            account_id: wallet_id(&caller.user_id),
        });
    }
    let actor_user = entries::serializing_user(movement, &request).to_owned();
    let mutate = Mutate::new(entry, currency.clone(), watch);
    // Money entering a player's wallet from outside (an admin's deposit, an agent's credit)
    // is what the player's deposit limits and exclusion stop (issue 19). Decided in the
    // actor that serializes the player's wallet: a credit's actor is the agent's, so the
    // player's own actor decides it then (its mailbox orders the player's deposits).
    // A player who never set a limit or exclusion has nothing to check: their deposits keep
    // sharing group commits (a first limit racing a deposit may miss it; later ones do not).
    let guarded = target.role == Role::Player
        && limit_kind(movement) == Some(LimitKind::Deposit)
        && state.wallets.protection().guards(&target.id).await?;
    let outcome = if guarded {
        let check = Check {
            user_id: target.id.clone(),
            client_id: client_id.clone(),
            flow: Flow::Deposit,
            amount: amount.minor(),
            exponent: currency.exponent,
        };
        state
            .wallets
            .mutate_guarded(&target.id, mutate, check)
            .await?
    } else {
        state.wallets.mutate(&actor_user, mutate).await?
    };
    let posted = outcome.entry();
    let line = posted
        .line(&wallet_id(&target.id))
        .ok_or_else(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(MoveResult {
        transaction_id: posted.journal_id.clone(),
        balance: currency.format(line.balance_after),
        currency: currency.code,
    }))
}

macro_rules! movement_handler {
    ($(#[$attr:meta])* $name:ident, $movement:expr) => {
        $(#[$attr])*
        pub async fn $name(
            state: web::Data<AppState>,
            Auth(caller): Auth,
            key: IdempotencyKey,
            id: web::Path<String>,
            body: web::Json<MoveBody>,
        ) -> Result<HttpResponse, ApiError> {
            move_money(
                state,
                caller,
                key,
                id.into_inner(),
                body.into_inner(),
                $movement,
            )
            .await
        }
    };
}

movement_handler!(
    /// External cash in (admins)
    #[utoipa::path(post, path = "/api/v1/users/{id}/wallet/deposit", tag = "wallets",
        security(("bearer" = [])), params(IdempotencyKey), request_body = MoveBody,
        responses(
            (status = 200, description = "success", body = MoveResult),
            Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
        ))]
    deposit,
    Movement::Deposit
);
movement_handler!(
    /// External cash out (admins)
    #[utoipa::path(post, path = "/api/v1/users/{id}/wallet/withdraw", tag = "wallets",
        security(("bearer" = [])), params(IdempotencyKey), request_body = MoveBody,
        responses(
            (status = 200, description = "success", body = MoveResult),
            Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
        ))]
    withdraw,
    Movement::Withdrawal
);
movement_handler!(
    /// Agent's balance to a downline user
    ///
    /// The answer's balance is user `{id}`'s.
    #[utoipa::path(post, path = "/api/v1/users/{id}/wallet/credit", tag = "wallets",
        security(("bearer" = [])), params(IdempotencyKey), request_body = MoveBody,
        responses(
            (status = 200, description = "success", body = MoveResult),
            Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
        ))]
    credit,
    Movement::Credit
);
movement_handler!(
    /// A downline user's balance back to the agent
    ///
    /// The answer's balance is user `{id}`'s.
    #[utoipa::path(post, path = "/api/v1/users/{id}/wallet/debit", tag = "wallets",
        security(("bearer" = [])), params(IdempotencyKey), request_body = MoveBody,
        responses(
            (status = 200, description = "success", body = MoveResult),
            Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
        ))]
    debit,
    Movement::Debit
);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    /// Signed decimal string: `"-5.00"` takes money off the wallet.
    #[schema(value_type = String, example = "-5.00")]
    amount: serde_json::Value,
    /// Required; kept as the movement's memo and in the audit chain.
    #[schema(min_length = 1)]
    reason: String,
    /// 1 to 128 printable ASCII characters; or send the Idempotency-Key header (both: they
    /// must agree).
    #[schema(min_length = 1, max_length = 128, pattern = "^[\\x21-\\x7E]+$")]
    idempotency_key: Option<String>,
}

/// An admin's correction: signed amount, required reason (audited)
///
/// The reason is kept as the movement's memo and in the audit chain; the other side is the
/// house's adjustments account.
#[utoipa::path(post, path = "/api/v1/users/{id}/wallet/adjust", tag = "wallets",
    security(("bearer" = [])), params(IdempotencyKey), request_body = AdjustBody,
    responses(
        (status = 200, description = "success", body = MoveResult),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn adjust(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    key: IdempotencyKey,
    id: web::Path<String>,
    body: web::Json<AdjustBody>,
) -> Result<HttpResponse, ApiError> {
    let AdjustBody {
        amount,
        reason,
        idempotency_key,
    } = body.into_inner();
    let reason = reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::validation("reason is required for an adjustment"));
    }
    let (movement, amount) = match amount {
        serde_json::Value::String(text) => match text.strip_prefix('-') {
            Some(rest) => (
                Movement::AdjustDown,
                serde_json::Value::String(rest.to_owned()),
            ),
            None => (Movement::AdjustUp, serde_json::Value::String(text)),
        },
        other => (Movement::AdjustUp, other),
    };
    let body = MoveBody {
        amount,
        memo: Some(reason),
        idempotency_key,
    };
    move_money(state, caller, key, id.into_inner(), body, movement).await
}

/// A movement kind as a query names it (422 naming the kinds otherwise).
pub(super) fn parse_kind(kind: Option<&str>) -> Result<Option<JournalKind>, ApiError> {
    kind.map(str::parse::<JournalKind>)
        .transpose()
        .map_err(|_| {
            ApiError::validation(format!(
                "kind must be one of {}",
                JournalKind::NAMES.join(", ")
            ))
        })
}

pub(super) fn parse_time(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| ApiError::validation(format!("{field} must be an RFC 3339 time")))
        })
        .transpose()
}

/// Committed movements, newest first
#[utoipa::path(get, path = "/api/v1/users/{id}/transactions", tag = "wallets",
    security(("bearer" = [])), params(HistoryParams),
    responses(
        (status = 200, description = "success", body = PageOf<Transaction>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn history(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    q: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    let currency = currency_of(&state, &user).await?;
    let page = Page::new(q.cursor.clone(), q.limit);
    let limit = page.limit()?;
    let before_version = page.numeric_cursor()?;
    let kind = parse_kind(q.kind.as_deref())?;
    let query = HistoryQuery {
        before_version,
        limit: limit.fetch(),
        kind,
        from_ms: parse_time("from", q.from.as_deref())?,
        to_ms: parse_time("to", q.to.as_deref())?,
        min_abs_amount: parse_bound("min_amount", q.min_amount.as_deref(), &currency)?,
        max_abs_amount: parse_bound("max_amount", q.max_amount.as_deref(), &currency)?,
        reference: q.reference.clone(),
    };
    let items = state
        .store
        .account_history(&wallet_id(&user.id), &query)
        .await?;
    let body = limit.page(
        items,
        |i| i.version.to_string(),
        |i| Transaction {
            id: i.journal_id.clone(),
            kind: i.kind.as_str().to_owned(),
            amount: currency.format(i.amount),
            balance_after: currency.format(i.balance_after),
            currency: currency.code.clone(),
            created_at: rfc3339_ms(i.created_at),
            memo: i.memo.clone(),
        },
    );
    Ok(HttpResponse::Ok().json(body))
}
