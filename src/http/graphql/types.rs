//! The read model's types and the root query's fields. Lists are Relay cursor connections
//! (`first` 1..=200, default 50, as REST's `limit`; `after` a previous edge's cursor).

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, OutputType};

use super::loaders::Loaders;
use super::{Ctx, OrField};
use crate::domain::{Currency, rfc3339_ms};
use crate::http::extract::{Limit, Page};
use crate::http::wallets::{parse_kind, parse_time};
use crate::http::{ApiError, clients, ledger, user_admin, users};
use crate::ledger::accounts::wallet_id;
use crate::store::{
    ClientRow, GameSessionInfo, HistoryItem, HistoryQuery, JournalItem, JournalLine, JournalQuery,
    SESSION_ENDED, SESSION_OPEN, SettlementRow, TransferRow, UserRow,
};

type Res<T> = async_graphql::Result<T>;

fn cx<'a>(ctx: &Context<'a>) -> &'a Ctx {
    ctx.data_unchecked::<Ctx>()
}

fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

/// `first`/`after` checked as REST's `limit`/`cursor` (422 `validation_error` otherwise).
fn page(first: Option<i32>, after: Option<String>) -> Res<(Limit, Option<String>)> {
    let page = Page::new(after, first.map(i64::from));
    let limit = page.limit().field()?;
    Ok((limit, page.cursor))
}

/// A connection from rows fetched with [`Limit::fetch`]: one more row means a next page.
fn connection<T, N: OutputType>(
    limit: Limit,
    after: bool,
    mut rows: Vec<T>,
    cursor: impl Fn(&T) -> String,
    node: impl Fn(T) -> N,
) -> Connection<String, N> {
    let more = rows.len() as i64 > limit.get();
    rows.truncate(limit.get() as usize);
    let mut c = Connection::new(after, more);
    c.edges = rows
        .into_iter()
        .map(|r| Edge::new(cursor(&r), node(r)))
        .collect();
    c
}

/// A numeric cursor (a wallet's account version, a settlement's period start).
fn numeric(after: Option<&str>) -> Res<Option<i64>> {
    crate::http::extract::numeric_cursor(after).field()
}

/// The currency of a client, through the batched loader.
async fn currency_of(ctx: &Context<'_>, client_id: &str) -> Res<Currency> {
    let client = loaders(ctx)
        .clients
        .load_one(client_id.to_owned())
        .await
        .field()?
        .ok_or_else(|| super::field_error(ApiError::not_found("client")))?;
    Ok(client.currency)
}

/// A user the caller may read (`readable_user`'s rules), loaded in a batch.
async fn readable_loaded(ctx: &Context<'_>, id: &str) -> Res<Option<User>> {
    let Some(row) = loaders(ctx).users.load_one(id.to_owned()).await.field()? else {
        return Ok(None);
    };
    let c = cx(ctx);
    users::may_read_row(&c.state, &c.caller, &row)
        .await
        .field()?;
    Ok(Some(User(row)))
}

#[derive(Default)]
pub struct ReadQuery;

#[Object]
impl ReadQuery {
    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> Res<User> {
        let c = cx(ctx);
        let row = users::readable_user(&c.state, &c.caller, &c.caller.user_id)
            .await
            .field()?;
        Ok(User(row))
    }

    /// A user, as `GET /api/v1/users/{id}`: another client's is `not_found`, one outside the
    /// caller's reach `forbidden`.
    async fn user(&self, ctx: &Context<'_>, id: String) -> Res<User> {
        let c = cx(ctx);
        Ok(User(
            users::readable_user(&c.state, &c.caller, &id)
                .await
                .field()?,
        ))
    }

    /// A client, as `GET /api/v1/clients/{id}`.
    async fn client(&self, ctx: &Context<'_>, id: String) -> Res<Client> {
        let c = cx(ctx);
        Ok(Client(
            clients::readable(&c.state, &c.caller, &id).await.field()?,
        ))
    }

    /// The clients the caller may list (as `GET /api/v1/clients`), by id.
    #[graphql(complexity = "first.unwrap_or(50).max(1) as usize * child_complexity + 1")]
    async fn clients(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<Connection<String, Client>> {
        let c = cx(ctx);
        let (limit, after) = page(first, after)?;
        let rows = clients::listed(&c.state, &c.caller, after.as_deref(), limit.fetch())
            .await
            .field()?;
        Ok(connection(
            limit,
            after.is_some(),
            rows,
            |r| r.id.clone(),
            Client,
        ))
    }

    /// Users the caller may list (as `GET /api/v1/users`: an agent its subtree), by id.
    #[graphql(complexity = "first.unwrap_or(50).max(1) as usize * child_complexity + 1")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        client_id: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<Connection<String, User>> {
        user_list(ctx, client_id, first, after).await
    }
}

async fn user_list(
    ctx: &Context<'_>,
    client_id: Option<String>,
    first: Option<i32>,
    after: Option<String>,
) -> Res<Connection<String, User>> {
    let c = cx(ctx);
    let scope = user_admin::listing_scope(&c.state, &c.caller, client_id.as_deref())
        .await
        .field()?;
    let (limit, after) = page(first, after)?;
    let filter = crate::store::UserFilter {
        after_id: after.clone(),
        limit: limit.fetch(),
        ..scope
    };
    let rows = c.state.store.list_users(&filter).await.field()?;
    Ok(connection(
        limit,
        after.is_some(),
        rows,
        |r| r.id.clone(),
        User,
    ))
}

/// A white-label tenant.
pub struct Client(ClientRow);

#[Object]
impl Client {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn currency(&self) -> &str {
        &self.0.currency.code
    }
    async fn currency_exponent(&self) -> i64 {
        i64::from(self.0.currency.exponent)
    }
    /// active or suspended
    async fn status(&self) -> &str {
        self.0.status.as_str()
    }
    /// RFC 3339
    async fn created_at(&self) -> String {
        rfc3339_ms(self.0.created_at)
    }

    /// The client's users the caller may list (an agent: its subtree), by id.
    #[graphql(complexity = "first.unwrap_or(50).max(1) as usize * child_complexity + 1")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<Connection<String, User>> {
        user_list(ctx, Some(self.0.id.clone()), first, after).await
    }

    /// The client's journal, newest first, as `GET /api/v1/clients/{id}/transactions`.
    #[graphql(complexity = "first.unwrap_or(50).max(1) as usize * child_complexity + 1")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "a movement kind (deposit, withdrawal, credit, ...)")] kind: Option<
            String,
        >,
        #[graphql(desc = "RFC 3339, inclusive")] from: Option<String>,
        #[graphql(desc = "RFC 3339")] to: Option<String>,
    ) -> Res<Connection<String, Transaction>> {
        let c = cx(ctx);
        let client = ledger::journal_client(&c.state, &c.caller, &self.0.id)
            .await
            .field()?;
        let (limit, after) = page(first, after)?;
        let query = JournalQuery {
            before_id: after.clone(),
            limit: limit.fetch(),
            kind,
            from_ms: parse_time("from", from.as_deref()).field()?,
            to_ms: parse_time("to", to.as_deref()).field()?,
        };
        let rows = c
            .state
            .store
            .client_journal(&client.id, &query)
            .await
            .field()?;
        let currency = client.currency;
        Ok(connection(
            limit,
            after.is_some(),
            rows,
            |r| r.id.clone(),
            |r| Transaction::journal(r, &currency),
        ))
    }

    /// One settlement with its commission lines and revenue share, as
    /// `GET /api/v1/clients/{id}/settlements/{settlement_id}` (none: `not_found`).
    async fn settlement(&self, ctx: &Context<'_>, id: String) -> Res<SettlementDetail> {
        let c = cx(ctx);
        let client = clients::readable(&c.state, &c.caller, &self.0.id)
            .await
            .field()?;
        let s = c
            .state
            .store
            .settlement(&client.id, &id)
            .await
            .field()?
            .ok_or_else(|| super::field_error(ApiError::not_found("settlement")))?;
        Ok(SettlementDetail::new(s, &client.currency))
    }

    /// The client's settlements, newest period first, as `GET /api/v1/clients/{id}/settlements`.
    #[graphql(complexity = "first.unwrap_or(50).max(1) as usize * child_complexity + 1")]
    async fn settlements(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<Connection<String, Settlement>> {
        let c = cx(ctx);
        let client = clients::readable(&c.state, &c.caller, &self.0.id)
            .await
            .field()?;
        let (limit, after) = page(first, after)?;
        let rows = c
            .state
            .store
            .settlements(&client.id, numeric(after.as_deref())?, limit.fetch())
            .await
            .field()?;
        let currency = client.currency;
        Ok(connection(
            limit,
            after.is_some(),
            rows,
            |r| r.period_start.to_string(),
            |r| Settlement(r, currency.clone()),
        ))
    }
}

/// A user of a client's tree (or of the platform). Only made once the caller may read it.
pub struct User(UserRow);

#[Object]
impl User {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }
    async fn parent_id(&self) -> Option<&str> {
        self.0.parent_id.as_deref()
    }
    /// super_admin, client_admin, agent or player
    async fn role(&self) -> &str {
        self.0.role.as_str()
    }
    async fn username(&self) -> &str {
        &self.0.username
    }
    /// active, suspended or closed
    async fn status(&self) -> &str {
        self.0.status.as_str()
    }
    async fn depth(&self) -> i64 {
        self.0.depth
    }
    /// RFC 3339
    async fn created_at(&self) -> String {
        rfc3339_ms(self.0.created_at)
    }

    /// The user's client (null for platform users), as `GET /api/v1/clients/{id}`.
    async fn client(&self, ctx: &Context<'_>) -> Res<Option<Client>> {
        let Some(id) = &self.0.client_id else {
            return Ok(None);
        };
        clients::may_read(&cx(ctx).caller, id).field()?;
        let row = loaders(ctx).clients.load_one(id.clone()).await.field()?;
        Ok(row.map(Client))
    }

    /// The parent user (null at a tree's root), as `GET /api/v1/users/{id}`.
    async fn parent(&self, ctx: &Context<'_>) -> Res<Option<User>> {
        match &self.0.parent_id {
            Some(id) => readable_loaded(ctx, id).await,
            None => Ok(None),
        }
    }

    /// The wallet's balance now, as `GET /api/v1/users/{id}/wallet` (`not_found` for users
    /// without one).
    async fn wallet(&self, ctx: &Context<'_>) -> Res<Wallet> {
        let client_id = crate::access::wallet_owner_client(&self.0).field()?;
        let currency = currency_of(ctx, client_id).await?;
        let account = loaders(ctx)
            .accounts
            .load_one(wallet_id(&self.0.id))
            .await
            .field()?
            .ok_or_else(|| super::field_error(ApiError::not_found("wallet")))?;
        Ok(Wallet {
            user_id: self.0.id.clone(),
            balance: currency.format(account.balance),
            currency: currency.code,
        })
    }

    /// Direct children, by id, as `GET /api/v1/users/{id}/children`.
    #[graphql(complexity = "first.unwrap_or(50).max(1) as usize * child_complexity + 1")]
    async fn children(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<Connection<String, User>> {
        let (limit, after) = page(first, after)?;
        let rows = cx(ctx)
            .state
            .store
            .children(&self.0.id, after.as_deref(), limit.fetch())
            .await
            .field()?;
        Ok(connection(
            limit,
            after.is_some(),
            rows,
            |r| r.id.clone(),
            User,
        ))
    }

    /// The wallet's committed movements, newest first, as `GET /api/v1/users/{id}/transactions`.
    #[graphql(complexity = "first.unwrap_or(50).max(1) as usize * child_complexity + 1")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "a movement kind (deposit, withdrawal, credit, ...)")] kind: Option<
            String,
        >,
        #[graphql(desc = "RFC 3339, inclusive")] from: Option<String>,
        #[graphql(desc = "RFC 3339")] to: Option<String>,
    ) -> Res<Connection<String, Transaction>> {
        let client_id = crate::access::wallet_owner_client(&self.0).field()?;
        let currency = currency_of(ctx, client_id).await?;
        let (limit, after) = page(first, after)?;
        let kind = parse_kind(kind.as_deref()).field()?;
        let query = HistoryQuery {
            before_version: numeric(after.as_deref())?,
            limit: limit.fetch(),
            kind,
            from_ms: parse_time("from", from.as_deref()).field()?,
            to_ms: parse_time("to", to.as_deref()).field()?,
            ..HistoryQuery::default()
        };
        let rows = cx(ctx)
            .state
            .store
            .account_history(&wallet_id(&self.0.id), &query)
            .await
            .field()?;
        Ok(connection(
            limit,
            after.is_some(),
            rows,
            |r| r.version.to_string(),
            |r| Transaction::history(r, &self.0.id, &currency),
        ))
    }

    /// Transfers between the wallet and game providers, newest first.
    #[graphql(complexity = "first.unwrap_or(50).max(1) as usize * child_complexity + 1")]
    async fn transfers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<Connection<String, Transfer>> {
        let client_id = crate::access::wallet_owner_client(&self.0).field()?;
        let currency = currency_of(ctx, client_id).await?;
        let (limit, after) = page(first, after)?;
        let rows = cx(ctx)
            .state
            .store
            .user_transfers(&self.0.id, after.as_deref(), limit.fetch())
            .await
            .field()?;
        Ok(connection(
            limit,
            after.is_some(),
            rows,
            |r| r.id.clone(),
            |r| Transfer(r, currency.clone()),
        ))
    }

    /// Game sessions, newest first, as `GET /api/v1/users/{id}/game-sessions`; `status`: open
    /// or ended (default both).
    #[graphql(complexity = "first.unwrap_or(50).max(1) as usize * child_complexity + 1")]
    async fn game_sessions(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<Connection<String, GameSession>> {
        if status
            .as_deref()
            .is_some_and(|s| s != SESSION_OPEN && s != SESSION_ENDED)
        {
            return Err(super::field_error(ApiError::validation(
                "status must be open or ended",
            )));
        }
        let (limit, after) = page(first, after)?;
        let rows = cx(ctx)
            .state
            .store
            .user_game_sessions(
                &self.0.id,
                status.as_deref(),
                after.as_deref(),
                limit.fetch(),
            )
            .await
            .field()?;
        Ok(connection(
            limit,
            after.is_some(),
            rows,
            |r| r.id.clone(),
            GameSession,
        ))
    }
}

/// A wallet's balance.
#[derive(async_graphql::SimpleObject)]
pub struct Wallet {
    user_id: String,
    /// decimal string in the currency's exponent
    balance: String,
    currency: String,
}

/// A journal entry: one balanced movement and its postings.
pub struct Transaction {
    id: String,
    kind: String,
    memo: Option<String>,
    created_at: i64,
    currency: Currency,
    /// The listed wallet's side (user listings only).
    amount: Option<i64>,
    balance_after: Option<i64>,
    actor_id: Option<String>,
    /// The user whose wallet the entry is about, when it is one.
    subject_user: Option<String>,
    /// Already read with the entry (client journal), else loaded in a batch.
    postings: Option<Vec<JournalLine>>,
}

impl Transaction {
    fn history(r: HistoryItem, user_id: &str, currency: &Currency) -> Self {
        Transaction {
            id: r.journal_id,
            kind: r.kind.as_str().to_owned(),
            memo: r.memo,
            created_at: r.created_at,
            currency: currency.clone(),
            amount: Some(r.amount),
            balance_after: Some(r.balance_after),
            actor_id: None,
            subject_user: Some(user_id.to_owned()),
            postings: None,
        }
    }

    fn journal(r: JournalItem, currency: &Currency) -> Self {
        Transaction {
            subject_user: r.subject_account_id.strip_prefix("w:").map(str::to_owned),
            id: r.id,
            kind: r.kind.as_str().to_owned(),
            memo: r.memo,
            created_at: r.created_at,
            currency: currency.clone(),
            amount: None,
            balance_after: None,
            actor_id: r.actor_id,
            postings: Some(r.postings),
        }
    }
}

#[Object]
impl Transaction {
    async fn id(&self) -> &str {
        &self.id
    }
    /// deposit, withdrawal, credit, ...
    async fn kind(&self) -> &str {
        &self.kind
    }
    async fn memo(&self) -> Option<&str> {
        self.memo.as_deref()
    }
    /// RFC 3339
    async fn created_at(&self) -> String {
        rfc3339_ms(self.created_at)
    }
    async fn currency(&self) -> &str {
        &self.currency.code
    }
    /// Signed, as it moved the listed wallet (a user's transactions only).
    async fn amount(&self) -> Option<String> {
        self.amount.map(|a| self.currency.format(a))
    }
    /// The listed wallet's balance after it (a user's transactions only).
    async fn balance_after(&self) -> Option<String> {
        self.balance_after.map(|a| self.currency.format(a))
    }
    /// Who asked for it (a client's journal only).
    async fn actor_id(&self) -> Option<&str> {
        self.actor_id.as_deref()
    }
    /// The user whose wallet the entry is about (null for house-only entries).
    async fn user(&self, ctx: &Context<'_>) -> Res<Option<User>> {
        match &self.subject_user {
            Some(id) => readable_loaded(ctx, id).await,
            None => Ok(None),
        }
    }
    /// Every account's side; they sum to zero.
    async fn postings(&self, ctx: &Context<'_>) -> Res<Vec<Posting>> {
        let lines = match &self.postings {
            Some(lines) => lines.clone(),
            None => loaders(ctx)
                .postings
                .load_one(self.id.clone())
                .await
                .field()?
                .unwrap_or_default(),
        };
        Ok(lines
            .into_iter()
            .map(|l| Posting {
                account_id: l.account_id,
                amount: self.currency.format(l.amount),
                balance_after: self.currency.format(l.balance_after),
            })
            .collect())
    }
}

/// One account's side of an entry.
#[derive(async_graphql::SimpleObject)]
pub struct Posting {
    account_id: String,
    /// signed decimal string
    amount: String,
    balance_after: String,
}

/// A transfer between a wallet and a game provider.
pub struct Transfer(TransferRow, Currency);

#[Object]
impl Transfer {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// in or out
    async fn direction(&self) -> &str {
        self.0.direction.as_str()
    }
    async fn amount(&self) -> String {
        self.1.format(self.0.amount)
    }
    async fn currency(&self) -> &str {
        &self.1.code
    }
    /// pending, unknown, succeeded or failed
    async fn state(&self) -> &str {
        self.0.state.as_str()
    }
    /// RFC 3339
    async fn created_at(&self) -> String {
        rfc3339_ms(self.0.created_at)
    }
    /// RFC 3339
    async fn updated_at(&self) -> String {
        rfc3339_ms(self.0.updated_at)
    }
}

/// A game session: opened by a launch, ended once.
pub struct GameSession(GameSessionInfo);

#[Object]
impl GameSession {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn user_id(&self) -> &str {
        &self.0.user_id
    }
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    async fn game_code(&self) -> &str {
        &self.0.game_code
    }
    /// open or ended
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// RFC 3339
    async fn started_at(&self) -> String {
        rfc3339_ms(self.0.started_at)
    }
    /// RFC 3339
    async fn ended_at(&self) -> Option<String> {
        self.0.ended_at.map(rfc3339_ms)
    }
    /// the user who ended it, or `provider`
    async fn ended_by(&self) -> Option<&str> {
        self.0.ended_by.as_deref()
    }
}

/// A period settlement of a client (its figures; lines via REST
/// `GET /api/v1/clients/{id}/settlements/{settlement_id}`).
pub struct Settlement(SettlementRow, Currency);

#[Object]
impl Settlement {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn client_id(&self) -> &str {
        &self.0.client_id
    }
    /// RFC 3339
    async fn period_start(&self) -> String {
        rfc3339_ms(self.0.period_start)
    }
    /// RFC 3339
    async fn period_end(&self) -> String {
        rfc3339_ms(self.0.period_end)
    }
    async fn currency(&self) -> &str {
        &self.1.code
    }
    /// the client's net gaming revenue in the period
    async fn ngr(&self) -> String {
        self.1.format(self.0.ngr)
    }
    /// pending or posted
    async fn state(&self) -> &str {
        &self.0.state
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// RFC 3339
    async fn created_at(&self) -> String {
        rfc3339_ms(self.0.created_at)
    }
    /// RFC 3339
    async fn posted_at(&self) -> Option<String> {
        self.0.posted_at.map(rfc3339_ms)
    }
    /// manual or scheduled
    async fn origin(&self) -> &str {
        &self.0.origin
    }
}

/// A settlement with its lines.
#[derive(async_graphql::SimpleObject)]
pub struct SettlementDetail {
    settlement: Settlement,
    /// the sum of the commission lines
    commission_total: String,
    commissions: Vec<Commission>,
    revenue_share: RevenueShare,
}

impl SettlementDetail {
    fn new(s: crate::store::Settlement, currency: &Currency) -> Self {
        let total: i64 = s.commissions.iter().map(|c| c.amount).sum();
        let r = s.revenue_share;
        SettlementDetail {
            commission_total: currency.format(total),
            commissions: s
                .commissions
                .into_iter()
                .map(|c| Commission {
                    agent_id: c.agent_id,
                    players: c.players,
                    basis: c.basis,
                    basis_amount: currency.format(c.ngr),
                    rate: c.rate,
                    earned: currency.format(c.earned),
                    carried_in: currency.format(c.carried_in),
                    carry_out: currency.format(c.carry_out),
                    amount: currency.format(c.amount),
                    status: c.status,
                    transaction_id: c.journal_id,
                })
                .collect(),
            revenue_share: RevenueShare {
                base: currency.format(r.base),
                rate: r.rate,
                amount: currency.format(r.amount),
                transaction_id: r.journal_id,
            },
            settlement: Settlement(s.header, currency.clone()),
        }
    }
}

/// An agent's commission line of a settlement.
#[derive(async_graphql::SimpleObject)]
pub struct Commission {
    agent_id: String,
    players: i64,
    /// ngr or turnover
    basis: String,
    basis_amount: String,
    rate: String,
    earned: String,
    carried_in: String,
    carry_out: String,
    amount: String,
    /// calculated, approved, held or paid
    status: String,
    transaction_id: Option<String>,
}

/// The platform's share of a settlement.
#[derive(async_graphql::SimpleObject)]
pub struct RevenueShare {
    base: String,
    rate: String,
    amount: String,
    transaction_id: Option<String>,
}
