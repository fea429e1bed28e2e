//! WalletActor: one per active user. Owns the order of that user's balance mutations.
//!
//! Handles: [`Mutate`] (commit one journal entry, then publish `balance_update` for every wallet
//! it touched). Mutations enter the group committer in mailbox order; each is persisted before
//! its reply, and its events are published in commit order. The database guard
//! under it (`store::post_entry`) keeps the money right even if another node's actor, or a
//! restarted one, touches the same wallet. Stops itself after `idle` without messages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use dashmap::DashMap;
use tracing::Instrument;

use crate::domain::Currency;
use crate::ledger::{NewEntry, PostedEntry};
use crate::otel::TraceParent;
use crate::protection::{Check, GuardError, Protection};
use crate::realtime::bus::{Bus, Event, EventKind};
use crate::store::{AfterCommit, PostOutcome, Store, StoreError};

/// A wallet whose balance change is pushed to its owner's room after commit.
#[derive(Debug, Clone)]
pub struct BalanceWatch {
    pub user_id: String,
    pub account_id: String,
}

/// Commit one journal entry. Safe to resend: the entry's idempotency key makes a retry return
/// the first result (actix drops a queued message whose sender went away). Shared, not owned:
/// the registry keeps a copy for that resend, and a deep copy per send was ~3% of a deposit.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PostOutcome, StoreError>")]
pub struct Mutate {
    pub entry: Arc<NewEntry>,
    pub currency: Currency,
    pub watch: Arc<[BalanceWatch]>,
    /// The sender's trace position (empty while traces are off): the handler runs on this
    /// actor's task, not the request's.
    pub trace: TraceParent,
}

impl Mutate {
    pub fn new(entry: NewEntry, currency: Currency, watch: Vec<BalanceWatch>) -> Self {
        Self {
            entry: Arc::new(entry),
            currency,
            watch: watch.into(),
            trace: TraceParent::current(),
        }
    }
}

/// Messages one wallet may queue before senders wait.
const MAILBOX_MAX: usize = 1024;

pub struct WalletActor {
    user_id: String,
    store: Store,
    bus: Bus,
    idle: Duration,
    last_message: Instant,
    registry: Arc<DashMap<String, Addr<WalletActor>>>,
}

impl WalletActor {
    pub fn new(
        user_id: String,
        store: Store,
        bus: Bus,
        idle: Duration,
        registry: Arc<DashMap<String, Addr<WalletActor>>>,
    ) -> Self {
        Self {
            user_id,
            store,
            bus,
            idle,
            last_message: Instant::now(),
            registry,
        }
    }
}

impl Actor for WalletActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_MAX);
        metrics::gauge!(crate::metrics::WALLET_ACTORS).increment(1.0);
        let check_every = (self.idle / 2).max(Duration::from_millis(100));
        ctx.run_interval(check_every, |act, ctx| {
            if act.last_message.elapsed() >= act.idle {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        let me = ctx.address();
        self.registry
            .remove_if(&self.user_id, |_, addr| *addr == me);
        metrics::gauge!(crate::metrics::WALLET_ACTORS).decrement(1.0);
    }
}

/// Queues the entry at once (its place in the commit order is taken before this returns); the
/// future answers when it is durable.
fn queue(
    store: &Store,
    bus: &Bus,
    msg: Mutate,
) -> impl Future<Output = Result<PostOutcome, StoreError>> + use<> {
    {
        let Mutate {
            entry,
            currency,
            watch,
            trace: _,
        } = msg;
        let kind = entry.kind.as_str();
        let client = crate::metrics::client_label(&entry.client_id);
        let bus = bus.clone();
        let publish: AfterCommit = Box::new(move |outcome| {
            let PostOutcome::Committed(posted) = outcome else {
                return;
            };
            metrics::counter!(crate::metrics::BALANCE_TRANSFERS, "client_id" => client, "transfer_type" => kind)
                .increment(1);
            for w in watch.iter() {
                publish_balance(&bus, posted, &w.user_id, &w.account_id, &currency);
            }
        });
        store.queue_entry(entry, Some(publish))
    }
}

/// Pushes `balance_update` to `user_id`'s room with `account_id`'s balance after `posted`, if
/// the entry moved that account (every wallet step announces its commit through this).
pub(crate) fn publish_balance(
    bus: &Bus,
    posted: &PostedEntry,
    user_id: &str,
    account_id: &str,
    currency: &Currency,
) {
    if let Some(line) = posted.line(account_id) {
        bus.publish(Event::new(
            format!("user:{user_id}"),
            EventKind::BalanceUpdate,
            serde_json::json!({
                "user_id": user_id,
                "balance": currency.format(line.balance_after),
                "currency": currency.code,
                "transaction_id": posted.journal_id,
            }),
        ));
    }
}

impl Handler<Mutate> for WalletActor {
    type Result = ResponseFuture<Result<PostOutcome, StoreError>>;

    /// Queues the entry at once, in mailbox order, and answers when it is durable: a hot
    /// wallet's mutations share group commits instead of waiting for each other's fsync.
    fn handle(&mut self, msg: Mutate, _ctx: &mut Self::Context) -> Self::Result {
        self.last_message = Instant::now();
        // The trace's span of this message (disabled, so free, while traces are off).
        let span = tracing::info_span!(target: crate::otel::TARGET, "wallet.mutate", user_id = %self.user_id);
        msg.trace.adopt(&span);
        // Queued inside the span: the committer takes it as this entry's parent.
        let queued = span.in_scope(|| queue(&self.store, &self.bus, msg));
        Box::pin(queued.instrument(span))
    }
}

/// A mutation a player's protection must admit first (deposits and agent credits into a
/// player's wallet). Atomic in the actor: the next message waits until this one is committed
/// or refused, so the check always sees the movements admitted before it.
#[derive(Clone, Message)]
#[rtype(result = "Result<PostOutcome, GuardError>")]
pub struct Guarded {
    pub mutate: Mutate,
    pub check: Check,
    pub protection: Protection,
}

impl Handler<Guarded> for WalletActor {
    type Result = AtomicResponse<Self, Result<PostOutcome, GuardError>>;

    fn handle(&mut self, msg: Guarded, _ctx: &mut Self::Context) -> Self::Result {
        self.last_message = Instant::now();
        let Guarded {
            mutate,
            check,
            protection,
        } = msg;
        let span = tracing::info_span!(target: crate::otel::TARGET, "wallet.guarded", user_id = %self.user_id);
        mutate.trace.adopt(&span);
        let (store, bus) = (self.store.clone(), self.bus.clone());
        AtomicResponse::new(Box::pin(
            crate::rt::InRuntime::new(
                async move {
                    let _held = protection.admit(&check).await?;
                    Ok(queue(&store, &bus, mutate).await?)
                }
                .instrument(span),
            )
            .into_actor(self),
        ))
    }
}
