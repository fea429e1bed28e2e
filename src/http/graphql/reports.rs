//! The reports (issue 17) in the read model: the same `crate::reports` functions, scope and
//! period parsing as `/api/v1/reports/*` (so the same reach: other client `not_found`, outside
//! reach `forbidden`, a bad period `validation_error` naming the parameter). Money is a decimal
//! string in the client's currency, times RFC 3339, as in the REST JSON.

use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::{Ctx, OrField};
use crate::domain::{Currency, rfc3339_ms};
use crate::http::reports::{history_cursor, parse_period, scope_and_period};
use crate::reports::{self, Period, Scope};

type Res<T> = async_graphql::Result<T>;

/// A report's period and scope: the REST query parameters.
#[derive(InputObject)]
pub struct ReportInput {
    /// The client (the platform must name one; others may name only their own).
    client_id: Option<String>,
    /// Narrow to an agent's subtree or one player (within the caller's reach).
    user_id: Option<String>,
    /// Start, inclusive: RFC 3339 or YYYY-MM-DD (midnight in `tz`); a whole UTC hour.
    from: String,
    /// End, exclusive, like `from`.
    to: String,
    /// IANA time zone of the buckets (default UTC).
    tz: Option<String>,
    /// hour, day (default), week or month.
    granularity: Option<String>,
}

/// What a report covers.
#[derive(SimpleObject)]
pub struct ReportInfo {
    client_id: Option<String>,
    currency: Option<String>,
    /// RFC 3339
    from: String,
    /// RFC 3339
    to: String,
    tz: String,
    granularity: String,
}

impl ReportInfo {
    fn new(scope: Option<&Scope>, period: &Period) -> Self {
        ReportInfo {
            client_id: scope.map(|s| s.client.id.clone()),
            currency: scope.map(|s| s.client.currency.code.clone()),
            from: rfc3339_ms(period.from),
            to: rfc3339_ms(period.to),
            tz: period.tz.name().to_owned(),
            granularity: period.granularity.as_str().to_owned(),
        }
    }
}

/// One bucket of the client metrics report.
#[derive(SimpleObject)]
pub struct MetricsBucket {
    bucket_start: String,
    bucket_end: String,
    registered: i64,
    new_players: i64,
    active_players: i64,
    depositing_players: i64,
    deposits: i64,
    deposits_sum: String,
    first_time_depositors: i64,
    withdrawals: i64,
    withdrawals_sum: String,
    rounds: i64,
    turnover: String,
    wins: String,
    ggr: String,
    adjustments: String,
    ngr: String,
    /// most users with a live websocket at once (client-wide reports)
    peak_ws_users: i64,
    /// mean users with a live websocket over the bucket's elapsed minutes, 2 decimals
    avg_ws_users: String,
}

impl MetricsBucket {
    fn new(r: &reports::MetricsRow, c: &Currency) -> Self {
        MetricsBucket {
            bucket_start: rfc3339_ms(r.start),
            bucket_end: rfc3339_ms(r.end),
            registered: r.registered,
            new_players: r.new_players,
            active_players: r.active_players,
            depositing_players: r.depositing_players,
            deposits: r.deposits,
            deposits_sum: c.format(r.deposits_sum),
            first_time_depositors: r.first_time_depositors,
            withdrawals: r.withdrawals,
            withdrawals_sum: c.format(r.withdrawals_sum),
            rounds: r.rounds,
            turnover: c.format(r.turnover),
            wins: c.format(r.wins),
            ggr: c.format(r.ggr),
            adjustments: c.format(r.adjustments),
            ngr: c.format(r.ngr),
            peak_ws_users: r.peak_ws_users,
            avg_ws_users: r.avg_ws_users(),
        }
    }
}

#[derive(SimpleObject)]
pub struct MetricsReport {
    info: ReportInfo,
    rows: Vec<MetricsBucket>,
}

/// One bucket of the client revenue report.
#[derive(SimpleObject)]
pub struct RevenueBucket {
    bucket_start: String,
    bucket_end: String,
    ggr: String,
    adjustments: String,
    ngr: String,
    settled_ggr: String,
    unsettled_ggr: String,
    settlements_ngr: String,
    commissions: String,
    revenue_share: String,
    client_net: String,
}

#[derive(SimpleObject)]
pub struct RevenueReport {
    info: ReportInfo,
    rows: Vec<RevenueBucket>,
}

/// Figures of an agent: its own players' or its whole subtree's.
#[derive(SimpleObject)]
pub struct AgentTotals {
    players: i64,
    deposits: String,
    turnover: String,
    ggr: String,
    ngr: String,
}

impl AgentTotals {
    fn new(f: &reports::AgentFigures, c: &Currency) -> Self {
        AgentTotals {
            players: f.players,
            deposits: c.format(f.deposits),
            turnover: c.format(f.turnover),
            ggr: c.format(f.ggr),
            ngr: c.format(f.ngr),
        }
    }
}

/// An agent in reach over the period.
#[derive(SimpleObject)]
pub struct AgentLine {
    agent_id: String,
    username: String,
    parent_id: Option<String>,
    depth: i64,
    own: AgentTotals,
    total: AgentTotals,
    commission_earned: String,
    commission_paid: String,
}

#[derive(SimpleObject)]
pub struct AgentsReport {
    info: ReportInfo,
    rows: Vec<AgentLine>,
}

/// One game of a provider in one bucket (or in the whole period with `top`).
#[derive(SimpleObject)]
pub struct GameBucket {
    bucket_start: String,
    bucket_end: String,
    provider: String,
    /// the game code (JDB `<gType>-<mType>`, LuckySports `sportsbook`; empty for rounds
    /// applied before rounds carried one)
    game: String,
    rounds: i64,
    players: i64,
    turnover: String,
    wins: String,
    /// wins / turnover, 4 decimals (empty without turnover)
    rtp: String,
    ggr: String,
}

#[derive(SimpleObject)]
pub struct GamesReport {
    info: ReportInfo,
    rows: Vec<GameBucket>,
}

/// One provider in one bucket (or in the whole period with `top`): its players counted once
/// however many of its games they played.
#[derive(SimpleObject)]
pub struct ProviderBucket {
    bucket_start: String,
    bucket_end: String,
    provider: String,
    rounds: i64,
    players: i64,
    turnover: String,
    wins: String,
    /// wins / turnover, 4 decimals (empty without turnover)
    rtp: String,
    ggr: String,
}

#[derive(SimpleObject)]
pub struct ProvidersReport {
    info: ReportInfo,
    rows: Vec<ProviderBucket>,
}

impl From<GameBucket> for ProviderBucket {
    fn from(g: GameBucket) -> Self {
        ProviderBucket {
            bucket_start: g.bucket_start,
            bucket_end: g.bucket_end,
            provider: g.provider,
            rounds: g.rounds,
            players: g.players,
            turnover: g.turnover,
            wins: g.wins,
            rtp: g.rtp,
            ggr: g.ggr,
        }
    }
}

/// The rows of game-stats or provider-stats (a provider's rows name no game).
async fn games(
    ctx: &Context<'_>,
    input: &ReportInput,
    top: bool,
    split: reports::GameSplit,
) -> Res<(Vec<GameBucket>, ReportInfo)> {
    let (scope, period) = resolve(ctx, input).await?;
    let rows = reports::game_stats(&cx(ctx).state.store, &scope, &period, top, split)
        .await
        .field()?;
    let c = &scope.client.currency;
    let rows = rows
        .iter()
        .map(|r| GameBucket {
            bucket_start: rfc3339_ms(r.start),
            bucket_end: rfc3339_ms(r.end),
            provider: r.provider.clone(),
            game: r.game.clone(),
            rounds: r.rounds,
            players: r.players,
            turnover: c.format(r.turnover),
            wins: c.format(r.wins),
            rtp: r.rtp(),
            ggr: c.format(r.ggr),
        })
        .collect();
    Ok((rows, ReportInfo::new(Some(&scope), &period)))
}

/// One client's totals over the period (platform overview).
#[derive(SimpleObject)]
pub struct OverviewLine {
    client_id: String,
    code: String,
    currency: String,
    totals: MetricsBucket,
    commissions: String,
    revenue_share: String,
}

#[derive(SimpleObject)]
pub struct OverviewReport {
    info: ReportInfo,
    rows: Vec<OverviewLine>,
}

/// One line of a player's history: a round, a transfer or a game session.
#[derive(SimpleObject)]
pub struct HistoryLine {
    /// RFC 3339
    at: String,
    kind: String,
    id: String,
    provider: String,
    detail: String,
    amount: String,
    net: String,
}

/// A page of a player's history, newest first.
#[derive(SimpleObject)]
pub struct HistoryPage {
    currency: String,
    items: Vec<HistoryLine>,
    /// pass as `after` for the next page; null on the last
    next_cursor: Option<String>,
}

#[derive(Default)]
pub struct ReportQuery;

fn cx<'a>(ctx: &Context<'a>) -> &'a Ctx {
    ctx.data_unchecked::<Ctx>()
}

async fn resolve(ctx: &Context<'_>, input: &ReportInput) -> Res<(Scope, Period)> {
    let c = cx(ctx);
    let period = parse_period(
        &input.from,
        &input.to,
        input.tz.as_deref(),
        input.granularity.as_deref(),
    );
    scope_and_period(
        &c.state,
        &c.caller,
        input.client_id.as_deref(),
        input.user_id.as_deref(),
        period,
    )
    .await
    .field()
}

#[Object]
impl ReportQuery {
    /// Client metrics per bucket (REST `/api/v1/reports/client-metrics`).
    async fn client_metrics(&self, ctx: &Context<'_>, input: ReportInput) -> Res<MetricsReport> {
        let (scope, period) = resolve(ctx, &input).await?;
        let rows = reports::client_metrics(&cx(ctx).state.store, &scope, &period)
            .await
            .field()?;
        let c = &scope.client.currency;
        Ok(MetricsReport {
            rows: rows.iter().map(|r| MetricsBucket::new(r, c)).collect(),
            info: ReportInfo::new(Some(&scope), &period),
        })
    }

    /// Client revenue per bucket (REST `/api/v1/reports/client-revenue`; client-wide only).
    async fn client_revenue(&self, ctx: &Context<'_>, input: ReportInput) -> Res<RevenueReport> {
        let (scope, period) = resolve(ctx, &input).await?;
        reports::require_client_wide(&cx(ctx).caller, &scope).field()?;
        let rows = reports::client_revenue(&cx(ctx).state.store, &scope, &period)
            .await
            .field()?;
        let c = &scope.client.currency;
        Ok(RevenueReport {
            rows: rows
                .iter()
                .map(|r| RevenueBucket {
                    bucket_start: rfc3339_ms(r.start),
                    bucket_end: rfc3339_ms(r.end),
                    ggr: c.format(r.ggr),
                    adjustments: c.format(r.adjustments),
                    ngr: c.format(r.ngr),
                    settled_ggr: c.format(r.settled_ggr),
                    unsettled_ggr: c.format(r.unsettled_ggr),
                    settlements_ngr: c.format(r.settlements_ngr),
                    commissions: c.format(r.commissions),
                    revenue_share: c.format(r.revenue_share),
                    client_net: c.format(r.client_net),
                })
                .collect(),
            info: ReportInfo::new(Some(&scope), &period),
        })
    }

    /// Agents in reach with own and subtree figures (REST `/api/v1/reports/agents`).
    async fn agents_report(&self, ctx: &Context<'_>, input: ReportInput) -> Res<AgentsReport> {
        let (scope, period) = resolve(ctx, &input).await?;
        let rows = reports::agents(&cx(ctx).state.store, &scope, &period)
            .await
            .field()?;
        let c = &scope.client.currency;
        Ok(AgentsReport {
            rows: rows
                .iter()
                .map(|r| AgentLine {
                    agent_id: r.agent_id.clone(),
                    username: r.username.clone(),
                    parent_id: r.parent_id.clone(),
                    depth: r.depth as i64,
                    own: AgentTotals::new(&r.own, c),
                    total: AgentTotals::new(&r.total, c),
                    commission_earned: c.format(r.commission_earned),
                    commission_paid: c.format(r.commission_paid),
                })
                .collect(),
            info: ReportInfo::new(Some(&scope), &period),
        })
    }

    /// Game statistics per bucket, provider and game; `top`: per game for the whole period,
    /// biggest GGR first (REST `/api/v1/reports/game-stats`).
    async fn game_stats(
        &self,
        ctx: &Context<'_>,
        input: ReportInput,
        #[graphql(default = false)] top: bool,
    ) -> Res<GamesReport> {
        let (rows, info) = games(ctx, &input, top, reports::GameSplit::Game).await?;
        Ok(GamesReport { rows, info })
    }

    /// Statistics per bucket and provider; `top`: per provider for the whole period, biggest
    /// GGR first (REST `/api/v1/reports/provider-stats`).
    async fn provider_stats(
        &self,
        ctx: &Context<'_>,
        input: ReportInput,
        #[graphql(default = false)] top: bool,
    ) -> Res<ProvidersReport> {
        let (rows, info) = games(ctx, &input, top, reports::GameSplit::Provider).await?;
        Ok(ProvidersReport {
            rows: rows.into_iter().map(ProviderBucket::from).collect(),
            info,
        })
    }

    /// Every client side by side (the platform only; REST `/api/v1/reports/platform-overview`).
    async fn platform_overview(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
        tz: Option<String>,
    ) -> Res<OverviewReport> {
        let c = cx(ctx);
        let period = parse_period(&from, &to, tz.as_deref(), None).field()?;
        let rows = reports::platform_overview(&c.state.store, &c.caller, &period)
            .await
            .field()?;
        Ok(OverviewReport {
            rows: rows
                .iter()
                .map(|r| {
                    let cur = &r.client.currency;
                    OverviewLine {
                        client_id: r.client.id.clone(),
                        code: r.client.code.clone(),
                        currency: cur.code.clone(),
                        totals: MetricsBucket::new(&r.totals, cur),
                        commissions: cur.format(r.revenue.commissions),
                        revenue_share: cur.format(r.revenue.revenue_share),
                    }
                })
                .collect(),
            info: ReportInfo::new(None, &period),
        })
    }

    /// A player's rounds, transfers and sessions, newest first (REST
    /// `/api/v1/reports/players/{id}/history`; `first` 1..=1000, default 100).
    async fn player_history(
        &self,
        ctx: &Context<'_>,
        user_id: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<HistoryPage> {
        let c = cx(ctx);
        let (client, user_id) = reports::history_target(&c.state.store, &c.caller, &user_id)
            .await
            .field()?;
        let cursor = history_cursor(after.as_deref()).field()?;
        let limit = i64::from(first.unwrap_or(100));
        if !(1..=1000).contains(&limit) {
            return Err(crate::http::ApiError::validation("first: 1 to 1000").with_field("first"))
                .field();
        }
        let mut items = c
            .state
            .store
            .player_history(&client.id, &user_id, cursor, limit + 1)
            .await
            .field()?;
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_cursor = more
            .then(|| items.last().map(|h| format!("{}~{}", h.at, h.id)))
            .flatten();
        let cur = &client.currency;
        Ok(HistoryPage {
            currency: cur.code.clone(),
            items: items
                .into_iter()
                .map(|h| HistoryLine {
                    at: rfc3339_ms(h.at),
                    kind: h.kind.to_owned(),
                    id: h.id,
                    provider: h.provider,
                    detail: h.detail,
                    amount: cur.format(h.amount),
                    net: cur.format(h.net),
                })
                .collect(),
            next_cursor,
        })
    }
}
