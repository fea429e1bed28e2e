//! `/api/v1/reports/...` (issue 17): the `crate::reports` functions as JSON, or as CSV with
//! `?format=csv` or `Accept: text/csv` (a header row, then one row per line; money as exact
//! decimal strings). Each report is a table: JSON `rows` are objects keyed by the CSV header.
//! Reach: see `reports::scope` (other client 404, outside reach 403).

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::Auth;
use super::openapi::{Invalid, Secured, Unavailable, Unknown};
use crate::domain::{Currency, rfc3339_ms};
use crate::reports::{self, GameSplit, Period, Scope};
use crate::state::AppState;
use crate::store::reports::HistoryScan;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// The client (the platform must name one; others may name only their own).
    client_id: Option<String>,
    /// Narrow to an agent's subtree or one player (within the caller's reach).
    user_id: Option<String>,
    /// Start, inclusive: RFC 3339 or YYYY-MM-DD (midnight in `tz`); a whole UTC hour.
    from: String,
    /// End, exclusive, like `from`.
    to: String,
    /// IANA time zone of the buckets (default UTC); whole-hour offsets only below hourly.
    tz: Option<String>,
    /// hour, day (default), week or month.
    granularity: Option<String>,
    /// `csv` for CSV (same as `Accept: text/csv`), `json` (default).
    format: Option<String>,
    /// game-stats, provider-stats: one row per provider and game (or provider) for the whole
    /// period, biggest GGR first (the top games).
    top: Option<bool>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100); CSV streams every row from the cursor on.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
    /// `csv` for CSV (same as `Accept: text/csv`), `json` (default).
    format: Option<String>,
}

/// A report: its period and scope, and one object per row (the CSV columns).
#[derive(Serialize, ToSchema)]
pub struct ReportBody {
    report: &'static str,
    client_id: Option<String>,
    currency: Option<String>,
    /// RFC 3339
    from: String,
    /// RFC 3339
    to: String,
    tz: String,
    granularity: &'static str,
    columns: Vec<&'static str>,
    #[schema(value_type = Vec<Object>)]
    rows: Vec<Value>,
}

/// One value of a report row.
enum Cell {
    Int(i64),
    Money(i64),
    Text(String),
}

struct Table {
    columns: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Cell {
    fn json(&self, c: Option<&Currency>) -> Value {
        match self {
            Cell::Int(v) => Value::from(*v),
            Cell::Money(v) => Value::from(money(*v, c)),
            Cell::Text(t) => Value::from(t.as_str()),
        }
    }

    fn text(&self, c: Option<&Currency>) -> String {
        match self {
            Cell::Int(v) => v.to_string(),
            Cell::Money(v) => money(*v, c),
            Cell::Text(t) => t.clone(),
        }
    }
}

fn money(v: i64, c: Option<&Currency>) -> String {
    match c {
        Some(c) => c.format(v),
        None => v.to_string(),
    }
}

/// A CSV field, quoted when it must be.
fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn csv_line(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, &f);
    }
    out.push_str("\r\n");
}

fn wants_csv(req: &HttpRequest, format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(ApiError::validation("format: csv or json").with_field("format")),
        None => Ok(req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv"))),
    }
}

/// Rows per streamed CSV chunk.
const CSV_CHUNK_ROWS: usize = 2048;

fn render(
    req: &HttpRequest,
    q: &ReportParams,
    name: &'static str,
    scope: Option<&Scope>,
    period: &Period,
    table: Table,
) -> Result<HttpResponse, ApiError> {
    let currency = scope.map(|s| &s.client.currency);
    if wants_csv(req, q.format.as_deref())? {
        let currency = currency.cloned();
        let columns = table.columns;
        let mut header = String::new();
        csv_line(&mut header, columns.iter().map(|c| (*c).to_owned()));
        let mut rows = table.rows.into_iter();
        let mut first = Some(header);
        let body = futures_util::stream::iter(std::iter::from_fn(move || {
            let mut chunk = first.take().unwrap_or_default();
            for row in rows.by_ref().take(CSV_CHUNK_ROWS) {
                csv_line(&mut chunk, row.iter().map(|c| c.text(currency.as_ref())));
            }
            (!chunk.is_empty()).then(|| Ok::<_, actix_web::Error>(Bytes::from(chunk)))
        }));
        return Ok(csv_response(name).streaming(body));
    }
    let rows = table
        .rows
        .iter()
        .map(|row| {
            let mut o = Map::new();
            for (c, cell) in table.columns.iter().zip(row) {
                o.insert((*c).to_owned(), cell.json(currency));
            }
            Value::Object(o)
        })
        .collect();
    Ok(HttpResponse::Ok().json(ReportBody {
        report: name,
        client_id: scope.map(|s| s.client.id.clone()),
        currency: currency.map(|c| c.code.clone()),
        from: rfc3339_ms(period.from),
        to: rfc3339_ms(period.to),
        tz: period.tz.name().to_owned(),
        granularity: period.granularity.as_str(),
        columns: table.columns,
        rows,
    }))
}

fn csv_response(name: &str) -> actix_web::HttpResponseBuilder {
    let mut r = HttpResponse::Ok();
    r.content_type("text/csv; charset=utf-8").insert_header((
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}.csv\""),
    ));
    r
}

fn period(q: &ReportParams) -> Result<Period, ApiError> {
    parse_period(&q.from, &q.to, q.tz.as_deref(), q.granularity.as_deref())
}

/// A report's period, as REST and GraphQL take it (422 naming the parameter).
pub(crate) fn parse_period(
    from: &str,
    to: &str,
    tz: Option<&str>,
    granularity: Option<&str>,
) -> Result<Period, ApiError> {
    Period::parse(from, to, tz, granularity)
        .map_err(|(field, message)| ApiError::validation(message).with_field(field))
}

/// A report's scope and period, as REST and GraphQL resolve them (the one reach check).
pub(crate) async fn scope_and_period(
    state: &AppState,
    caller: &crate::auth::Caller,
    client_id: Option<&str>,
    user_id: Option<&str>,
    period: Result<Period, ApiError>,
) -> Result<(Scope, Period), ApiError> {
    let period = period?;
    let scope = reports::scope(&state.store, caller, client_id, user_id).await?;
    Ok((scope, period))
}

async fn scoped(
    state: &AppState,
    caller: &crate::auth::Caller,
    q: &ReportParams,
) -> Result<(Scope, Period), ApiError> {
    scope_and_period(
        state,
        caller,
        q.client_id.as_deref(),
        q.user_id.as_deref(),
        period(q),
    )
    .await
}

fn bucket_cells(start: i64, end: i64) -> [Cell; 2] {
    [Cell::Text(rfc3339_ms(start)), Cell::Text(rfc3339_ms(end))]
}

/// Client metrics per bucket: players, deposits, withdrawals, play, GGR, NGR
#[utoipa::path(get, path = "/api/v1/reports/client-metrics", tag = "reports",
    security(("bearer" = [])), params(ReportParams),
    responses(
        (status = 200, description = "JSON, or CSV (text/csv) with ?format=csv or Accept: text/csv", body = ReportBody),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn client_metrics(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    req: HttpRequest,
    q: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let (scope, period) = scoped(&state, &caller, &q).await?;
    let rows = reports::client_metrics(&state.store, &scope, &period).await?;
    let table = Table {
        columns: vec![
            "bucket_start",
            "bucket_end",
            "registered",
            "new_players",
            "active_players",
            "depositing_players",
            "deposits",
            "deposits_sum",
            "first_time_depositors",
            "withdrawals",
            "withdrawals_sum",
            "rounds",
            "turnover",
            "wins",
            "ggr",
            "adjustments",
            "ngr",
            "peak_ws_users",
            "avg_ws_users",
        ],
        rows: rows
            .into_iter()
            .map(|r| {
                let avg = r.avg_ws_users();
                let [a, b] = bucket_cells(r.start, r.end);
                vec![
                    a,
                    b,
                    Cell::Int(r.registered),
                    Cell::Int(r.new_players),
                    Cell::Int(r.active_players),
                    Cell::Int(r.depositing_players),
                    Cell::Int(r.deposits),
                    Cell::Money(r.deposits_sum),
                    Cell::Int(r.first_time_depositors),
                    Cell::Int(r.withdrawals),
                    Cell::Money(r.withdrawals_sum),
                    Cell::Int(r.rounds),
                    Cell::Money(r.turnover),
                    Cell::Money(r.wins),
                    Cell::Money(r.ggr),
                    Cell::Money(r.adjustments),
                    Cell::Money(r.ngr),
                    Cell::Int(r.peak_ws_users),
                    Cell::Text(avg),
                ]
            })
            .collect(),
    };
    render(&req, &q, "client-metrics", Some(&scope), &period, table)
}

/// Client revenue per bucket: GGR → NGR → commissions → revenue share, settled and not yet
#[utoipa::path(get, path = "/api/v1/reports/client-revenue", tag = "reports",
    security(("bearer" = [])), params(ReportParams),
    responses(
        (status = 200, description = "JSON, or CSV (text/csv) with ?format=csv or Accept: text/csv", body = ReportBody),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn client_revenue(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    req: HttpRequest,
    q: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let (scope, period) = scoped(&state, &caller, &q).await?;
    reports::require_client_wide(&caller, &scope)?;
    let rows = reports::client_revenue(&state.store, &scope, &period).await?;
    let table = Table {
        columns: vec![
            "bucket_start",
            "bucket_end",
            "ggr",
            "adjustments",
            "ngr",
            "settled_ggr",
            "unsettled_ggr",
            "settlements_ngr",
            "commissions",
            "revenue_share",
            "client_net",
        ],
        rows: rows
            .into_iter()
            .map(|r| {
                let [a, b] = bucket_cells(r.start, r.end);
                vec![
                    a,
                    b,
                    Cell::Money(r.ggr),
                    Cell::Money(r.adjustments),
                    Cell::Money(r.ngr),
                    Cell::Money(r.settled_ggr),
                    Cell::Money(r.unsettled_ggr),
                    Cell::Money(r.settlements_ngr),
                    Cell::Money(r.commissions),
                    Cell::Money(r.revenue_share),
                    Cell::Money(r.client_net),
                ]
            })
            .collect(),
    };
    render(&req, &q, "client-revenue", Some(&scope), &period, table)
}

/// Agents in reach over the period: own and subtree figures, commission earned and paid
#[utoipa::path(get, path = "/api/v1/reports/agents", tag = "reports",
    security(("bearer" = [])), params(ReportParams),
    responses(
        (status = 200, description = "JSON, or CSV (text/csv) with ?format=csv or Accept: text/csv", body = ReportBody),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn agents(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    req: HttpRequest,
    q: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let (scope, period) = scoped(&state, &caller, &q).await?;
    let rows = reports::agents(&state.store, &scope, &period).await?;
    let table = Table {
        columns: vec![
            "agent_id",
            "username",
            "parent_id",
            "depth",
            "own_players",
            "own_deposits",
            "own_turnover",
            "own_ggr",
            "own_ngr",
            "players",
            "deposits",
            "turnover",
            "ggr",
            "ngr",
            "commission_earned",
            "commission_paid",
        ],
        rows: rows
            .into_iter()
            .map(|r| {
                vec![
                    Cell::Text(r.agent_id),
                    Cell::Text(r.username),
                    Cell::Text(r.parent_id.unwrap_or_default()),
                    Cell::Int(r.depth as i64),
                    Cell::Int(r.own.players),
                    Cell::Money(r.own.deposits),
                    Cell::Money(r.own.turnover),
                    Cell::Money(r.own.ggr),
                    Cell::Money(r.own.ngr),
                    Cell::Int(r.total.players),
                    Cell::Money(r.total.deposits),
                    Cell::Money(r.total.turnover),
                    Cell::Money(r.total.ggr),
                    Cell::Money(r.total.ngr),
                    Cell::Money(r.commission_earned),
                    Cell::Money(r.commission_paid),
                ]
            })
            .collect(),
    };
    render(&req, &q, "agents", Some(&scope), &period, table)
}

/// Game statistics per bucket, provider and game (or, with top=true, per game for the period)
#[utoipa::path(get, path = "/api/v1/reports/game-stats", tag = "reports",
    security(("bearer" = [])), params(ReportParams),
    responses(
        (status = 200, description = "JSON, or CSV (text/csv) with ?format=csv or Accept: text/csv", body = ReportBody),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn game_stats(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    req: HttpRequest,
    q: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    games_table(&state, &caller, &req, &q, GameSplit::Game).await
}

/// Statistics per bucket and provider, each player counted once however many of the
/// provider's games they played (with top=true, per provider for the period)
#[utoipa::path(get, path = "/api/v1/reports/provider-stats", tag = "reports",
    security(("bearer" = [])), params(ReportParams),
    responses(
        (status = 200, description = "JSON, or CSV (text/csv) with ?format=csv or Accept: text/csv", body = ReportBody),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn provider_stats(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    req: HttpRequest,
    q: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    games_table(&state, &caller, &req, &q, GameSplit::Provider).await
}

async fn games_table(
    state: &AppState,
    caller: &crate::auth::Caller,
    req: &HttpRequest,
    q: &ReportParams,
    split: GameSplit,
) -> Result<HttpResponse, ApiError> {
    let (scope, period) = scoped(state, caller, q).await?;
    let top = q.top.unwrap_or(false);
    let rows = reports::game_stats(&state.store, &scope, &period, top, split).await?;
    let per_game = split == GameSplit::Game;
    let mut columns = vec!["bucket_start", "bucket_end", "provider"];
    if per_game {
        columns.push("game");
    }
    columns.extend(["rounds", "players", "turnover", "wins", "rtp", "ggr"]);
    let table = Table {
        columns,
        rows: rows
            .into_iter()
            .map(|r| {
                let rtp = r.rtp();
                let [a, b] = bucket_cells(r.start, r.end);
                let mut row = vec![a, b, Cell::Text(r.provider)];
                if per_game {
                    row.push(Cell::Text(r.game));
                }
                row.extend([
                    Cell::Int(r.rounds),
                    Cell::Int(r.players),
                    Cell::Money(r.turnover),
                    Cell::Money(r.wins),
                    Cell::Text(rtp),
                    Cell::Money(r.ggr),
                ]);
                row
            })
            .collect(),
    };
    let name = if per_game {
        "game-stats"
    } else {
        "provider-stats"
    };
    render(req, q, name, Some(&scope), &period, table)
}

/// Every client side by side over the period (the platform only)
#[utoipa::path(get, path = "/api/v1/reports/platform-overview", tag = "reports",
    security(("bearer" = [])), params(ReportParams),
    responses(
        (status = 200, description = "JSON, or CSV (text/csv) with ?format=csv or Accept: text/csv", body = ReportBody),
        Secured, Invalid, Unavailable,
    ))]
pub async fn platform_overview(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    req: HttpRequest,
    q: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let period = period(&q)?;
    let rows = reports::platform_overview(&state.store, &caller, &period).await?;
    let table = Table {
        columns: vec![
            "client_id",
            "code",
            "currency",
            "registered",
            "new_players",
            "active_players",
            "deposits",
            "deposits_sum",
            "withdrawals",
            "withdrawals_sum",
            "rounds",
            "turnover",
            "ggr",
            "ngr",
            "commissions",
            "revenue_share",
        ],
        rows: rows
            .into_iter()
            .map(|r| {
                let c = &r.client.currency;
                vec![
                    Cell::Text(r.client.id.clone()),
                    Cell::Text(r.client.code.clone()),
                    Cell::Text(c.code.clone()),
                    Cell::Int(r.totals.registered),
                    Cell::Int(r.totals.new_players),
                    Cell::Int(r.totals.active_players),
                    Cell::Int(r.totals.deposits),
                    Cell::Text(c.format(r.totals.deposits_sum)),
                    Cell::Int(r.totals.withdrawals),
                    Cell::Text(c.format(r.totals.withdrawals_sum)),
                    Cell::Int(r.totals.rounds),
                    Cell::Text(c.format(r.totals.turnover)),
                    Cell::Text(c.format(r.totals.ggr)),
                    Cell::Text(c.format(r.totals.ngr)),
                    Cell::Text(c.format(r.revenue.commissions)),
                    Cell::Text(c.format(r.revenue.revenue_share)),
                ]
            })
            .collect(),
    };
    render(&req, &q, "platform-overview", None, &period, table)
}

/// Rows fetched from each history source at a time by the CSV export.
const HISTORY_BATCH: i64 = 10_000;
/// Rows written per chunk of the CSV export.
const HISTORY_CHUNK_ROWS: usize = 5_000;

const HISTORY_COLUMNS: [&str; 7] = ["at", "kind", "id", "provider", "detail", "amount", "net"];

pub(crate) fn history_cursor(text: Option<&str>) -> Result<Option<(i64, String)>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    let bad = || ApiError::validation("cursor: a next_cursor value").with_field("cursor");
    let (at, id) = text.split_once('~').ok_or_else(bad)?;
    Ok(Some((at.parse().map_err(|_| bad())?, id.to_owned())))
}

fn history_row(h: &crate::store::reports::HistoryRow, c: &Currency) -> [String; 7] {
    [
        rfc3339_ms(h.at),
        h.kind.to_owned(),
        h.id.clone(),
        h.provider.clone(),
        h.detail.clone(),
        c.format(h.amount),
        c.format(h.net),
    ]
}

/// A player's rounds, transfers and game sessions across providers, newest first
#[utoipa::path(get, path = "/api/v1/reports/players/{id}/history", tag = "reports",
    security(("bearer" = [])), params(("id" = String, Path, description = "the player"), HistoryParams),
    responses(
        (status = 200, description = "{items, next_cursor} JSON, or every row from the cursor on as streamed CSV", body = Object),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn player_history(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let (client, user_id) = reports::history_target(&state.store, &caller, &id).await?;
    let cursor = history_cursor(q.cursor.as_deref())?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit: 1 to 1000").with_field("limit"));
    }
    let currency = client.currency.clone();
    if wants_csv(&req, q.format.as_deref())? {
        // One scan through the history, a chunk of rows at a time, each written out before
        // the next is read: memory stays bounded by the scan's batches whatever the length.
        let store = state.store.clone();
        let mut header = String::new();
        csv_line(&mut header, HISTORY_COLUMNS.iter().map(|c| (*c).to_owned()));
        let scan = HistoryScan::new(&client.id, &user_id, cursor, HISTORY_BATCH);
        let state0 = (Some(header), Some(scan));
        let body = futures_util::stream::unfold(state0, move |(header, scan)| {
            let (store, currency) = (store.clone(), currency.clone());
            async move {
                if let Some(h) = header {
                    return Some((Ok(Bytes::from(h)), (None, scan)));
                }
                let mut scan = scan?;
                let rows = match scan.next(&store, HISTORY_CHUNK_ROWS).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "history CSV stopped");
                        let e = actix_web::error::ErrorInternalServerError("storage");
                        return Some((Err(e), (None, None)));
                    }
                };
                if rows.is_empty() {
                    return None;
                }
                let mut chunk = String::with_capacity(rows.len() * 96);
                for h in &rows {
                    csv_line(&mut chunk, history_row(h, &currency).into_iter());
                }
                let more = rows.len() == HISTORY_CHUNK_ROWS;
                Some((Ok(Bytes::from(chunk)), (None, more.then_some(scan))))
            }
        });
        return Ok(csv_response("player-history").streaming(body));
    }
    let mut items = state
        .store
        .player_history(&client.id, &user_id, cursor, limit + 1)
        .await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = more
        .then(|| items.last().map(|h| format!("{}~{}", h.at, h.id)))
        .flatten();
    let items: Vec<Value> = items
        .iter()
        .map(|h| {
            let mut o = Map::new();
            for (c, v) in HISTORY_COLUMNS.iter().zip(history_row(h, &currency)) {
                o.insert((*c).to_owned(), Value::from(v));
            }
            Value::Object(o)
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "currency": client.currency.code,
        "items": items,
        "next_cursor": next_cursor,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut out = String::new();
        csv_line(
            &mut out,
            ["a", "b,c", "d\"e", "-1.50"]
                .iter()
                .map(|s| (*s).to_owned()),
        );
        assert_eq!(out, "a,\"b,c\",\"d\"\"e\",-1.50\r\n");
    }
}
