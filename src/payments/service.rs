//! The payment service (issue 18): deposits and withdrawals through gateways, on the ledger.
//!
//! Every payment is a row stored before any gateway call (the outbox), with one gateway
//! idempotency key per intent (`pay:<id>:checkout`, `pay:<id>:payout`) reused on every retry, so
//! a timeout is settled by asking again, never by guessing. Each state change is a conditional
//! update plus its journal entry in one transaction, run by the player's wallet actor (keys
//! `pay:<id>:<step>`): a repeated webhook, a late answer and the reconciler move money once.
//!
//! Money: a deposit credits the wallet from `gateway:<g>` (net of the fee) and `payment_fees`;
//! a withdrawal holds the amount in `withdrawals_pending` at once, then either pays it out to
//! `gateway:<g>` (plus the fee, from `payment_fees`) or returns it to the wallet.

use std::sync::Arc;

use dashmap::DashSet;
use sha2::{Digest, Sha256};

use super::gateway::{
    CheckoutRequest, CheckoutState, CheckoutView, EventObject, GatewayError, PayoutRequest,
    PayoutState, PayoutView, WebhookError,
};
use super::registry::{GatewayAccount, Gateways, RegistryError};
use super::settings::{self, PaymentSettings};
use super::wallet_steps::{PaymentMove, PaymentMoved, PaymentOp};
use crate::actors::wallet_registry::{WalletError, WalletRegistry};
use crate::domain::{Currency, PaymentKind, PaymentState, format_minor, new_id, now_ms};
use crate::ledger::accounts::{
    PAYMENT_FEES, WITHDRAWALS_PENDING, gateway_account, house_id, payment_house_accounts, wallet_id,
};
use crate::ledger::{JournalKind, NewEntry, NewPosting};
use crate::realtime::bus::{Bus, Event, EventKind};
use crate::store::{
    CapRefusal, ClientRow, PaymentBegin, PaymentCaps, PaymentChange, PaymentEventRow, PaymentRow,
    Store, StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("unknown gateway")]
    UnknownGateway,
    #[error("this gateway is not enabled for the client")]
    GatewayNotEnabled,
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
    /// A per-client rule refused the request (`code`, and the field when one is named).
    #[error("{message}")]
    Refused {
        code: &'static str,
        message: String,
        field: Option<&'static str>,
    },
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("the payment is {0}: this is not possible now")]
    WrongState(PaymentState),
    #[error("webhook refused: {0}")]
    Webhook(#[from] WebhookError),
    #[error("the webhook names no payment of this hub")]
    UnknownPayment,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The player's limits or exclusion (`limit_exceeded`, `player_excluded`).
    #[error(transparent)]
    Protection(#[from] crate::protection::GuardError),
}

impl From<RegistryError> for PaymentError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NotConfigured => PaymentError::GatewayNotEnabled,
            RegistryError::Unusable => {
                PaymentError::Unavailable("the client's gateway credentials are unusable".into())
            }
            RegistryError::Store(e) => PaymentError::Store(e),
        }
    }
}

/// A deposit or withdrawal as the HTTP layer asks for it.
pub struct PaymentRequest {
    pub client: ClientRow,
    pub user_id: String,
    pub actor_id: String,
    pub idempotency_key: String,
    pub gateway: String,
    pub amount: i64,
    /// Withdrawals: where to pay out.
    pub destination: Option<String>,
}

/// What a request answers: the payment and whether this call created it.
pub struct Requested {
    pub payment: PaymentRow,
    pub created: bool,
}

/// Webhook outcome, for the acknowledgement.
pub struct WebhookAck {
    pub event_id: String,
    pub duplicate: bool,
}

#[derive(Clone)]
pub struct Payments {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    wallets: WalletRegistry,
    bus: Bus,
    gateways: Gateways,
    /// (client, gateway) whose house accounts are known to exist.
    house_ready: DashSet<(String, String)>,
}

impl Payments {
    pub fn new(store: Store, wallets: WalletRegistry, bus: Bus, gateways: Gateways) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                wallets,
                bus,
                gateways,
                house_ready: DashSet::new(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn gateways(&self) -> &Gateways {
        &self.inner.gateways
    }

    async fn ensure_house(&self, client: &ClientRow, gateway: &str) -> Result<(), PaymentError> {
        let key = (client.id.clone(), gateway.to_owned());
        if self.inner.house_ready.contains(&key) {
            return Ok(());
        }
        self.inner
            .store
            .ensure_accounts(&payment_house_accounts(
                &client.id,
                &client.currency.code,
                gateway,
            ))
            .await?;
        self.inner.house_ready.insert(key);
        Ok(())
    }

    async fn rules(
        &self,
        client: &ClientRow,
        gateway: &str,
    ) -> Result<PaymentSettings, PaymentError> {
        if !super::gateway::GATEWAY_NAMES.contains(&gateway) {
            return Err(PaymentError::UnknownGateway);
        }
        let rules = settings::load(&self.inner.store, &client.id).await?;
        if !rules.enabled_gateways.iter().any(|g| g == gateway) {
            return Err(PaymentError::GatewayNotEnabled);
        }
        Ok(rules)
    }

    /// Min/max per transaction.
    fn check_bounds(
        rules: &PaymentSettings,
        kind: PaymentKind,
        amount: i64,
        currency: &Currency,
    ) -> Result<(), PaymentError> {
        let e = currency.exponent;
        let (min, max, min_field, max_field) = match kind {
            PaymentKind::Deposit => (
                &rules.min_deposit,
                &rules.max_deposit,
                "min_deposit",
                "max_deposit",
            ),
            PaymentKind::Withdrawal => (
                &rules.min_withdrawal,
                &rules.max_withdrawal,
                "min_withdrawal",
                "max_withdrawal",
            ),
        };
        if let Some(min) = PaymentSettings::minor(min, e)
            && amount < min
        {
            return Err(PaymentError::Refused {
                code: "amount_below_minimum",
                message: format!("the smallest {kind} is {}", format_minor(min, e)),
                field: Some(min_field),
            });
        }
        if let Some(max) = PaymentSettings::minor(max, e)
            && amount > max
        {
            return Err(PaymentError::Refused {
                code: "amount_above_maximum",
                message: format!("the largest {kind} is {}", format_minor(max, e)),
                field: Some(max_field),
            });
        }
        Ok(())
    }

    fn new_row(
        req: &PaymentRequest,
        kind: PaymentKind,
        account: &GatewayAccount,
        state: PaymentState,
    ) -> PaymentRow {
        let now = now_ms();
        let request_hash = hex::encode(Sha256::digest(
            format!(
                "payment\n{kind}\n{}\n{}\n{}\n{}",
                req.gateway,
                req.user_id,
                req.amount,
                req.destination.as_deref().unwrap_or_default()
            )
            .as_bytes(),
        ));
        PaymentRow {
            id: new_id(),
            client_id: req.client.id.clone(),
            user_id: req.user_id.clone(),
            kind,
            gateway: req.gateway.clone(),
            account: account.label.clone(),
            amount: req.amount,
            paid_amount: None,
            fee: 0,
            state,
            gateway_ref: None,
            settlement_ref: None,
            checkout_url: None,
            destination: req.destination.clone(),
            flagged: false,
            reason: None,
            idempotency_key: format!("{}:{}", req.actor_id, req.idempotency_key),
            request_hash,
            requested_by: req.actor_id.clone(),
            decided_by: None,
            attempts: 0,
            created_at: now,
            updated_at: now,
            settled_at: None,
        }
    }

    fn caps(rules: &PaymentSettings, kind: PaymentKind, exponent: u32) -> PaymentCaps {
        let now = now_ms();
        let day = 86_400_000;
        let (daily, pending, settled) = match kind {
            PaymentKind::Deposit => (&rules.daily_deposit_max, None, None),
            PaymentKind::Withdrawal => (
                &rules.daily_withdrawal_max,
                rules.pending_withdrawals_max,
                (rules.withdraw_after_deposit_secs > 0)
                    .then(|| now - rules.withdraw_after_deposit_secs * 1000),
            ),
        };
        PaymentCaps {
            day_start_ms: now - now.rem_euclid(day),
            daily_max: PaymentSettings::minor(daily, exponent),
            pending_max: pending,
            deposits_settled_before_ms: settled,
        }
    }

    async fn begin(
        &self,
        row: PaymentRow,
        hold: Option<NewEntry>,
        caps: PaymentCaps,
        currency: &Currency,
    ) -> Result<Requested, PaymentError> {
        let op = PaymentOp::Begin {
            row: Box::new(row.clone()),
            hold,
            caps: Some(caps),
        };
        let begun = match self.wallet_step(&row.user_id, currency, op).await {
            Ok(PaymentMoved::Begun(b)) => b,
            Ok(PaymentMoved::Transitioned(_)) => unreachable!("Begin answers Begun"),
            Err(PaymentError::Store(StoreError::InsufficientFunds { .. })) => {
                return Err(PaymentError::InsufficientFunds);
            }
            Err(e) => return Err(e),
        };
        match begun {
            PaymentBegin::Existing(existing) => Ok(Requested {
                payment: *existing,
                created: false,
            }),
            PaymentBegin::Refused(refusal) => Err(refused(refusal, row.kind, currency)),
            PaymentBegin::Created(_) => {
                self.changed(&row, row.state, currency).await;
                Ok(Requested {
                    payment: row,
                    created: true,
                })
            }
        }
    }

    async fn wallet_step(
        &self,
        user_id: &str,
        currency: &Currency,
        op: PaymentOp,
    ) -> Result<PaymentMoved, PaymentError> {
        let msg = PaymentMove {
            store: self.inner.store.clone(),
            bus: self.inner.bus.clone(),
            op,
            user_id: user_id.to_owned(),
            currency: currency.clone(),
            trace: crate::otel::TraceParent::current(),
        };
        Ok(self.inner.wallets.send(user_id, msg).await??)
    }

    // ---- deposits ----------------------------------------------------------------------

    /// A deposit request: the row, then a hosted checkout at the gateway. A checkout whose
    /// creation gave no answer stays `created`; the reconciler asks again with the same key.
    pub async fn deposit(&self, req: PaymentRequest) -> Result<Requested, PaymentError> {
        let currency = req.client.currency.clone();
        let rules = self.rules(&req.client, &req.gateway).await?;
        Self::check_bounds(&rules, PaymentKind::Deposit, req.amount, &currency)?;
        // The player's own deposit limits and exclusions (issue 19), before anything is
        // stored. The credit itself is not re-checked: once paid, the money is the player's.
        self.inner
            .wallets
            .protection()
            .check_deposit(&req.user_id, &req.client.id, req.amount, currency.exponent)
            .await?;
        let account = self
            .inner
            .gateways
            .account_for(&self.inner.store, &req.client.id, &req.gateway)
            .await?;
        self.ensure_house(&req.client, &req.gateway).await?;
        let row = Self::new_row(&req, PaymentKind::Deposit, &account, PaymentState::Created);
        let caps = Self::caps(&rules, PaymentKind::Deposit, currency.exponent);
        let requested = self.begin(row, None, caps, &currency).await?;
        if !requested.created {
            return Ok(requested);
        }
        let expires = rules.checkout_expires_secs;
        let payment = self
            .open_checkout(&account, &requested.payment, &currency, expires)
            .await;
        Ok(Requested {
            payment,
            created: true,
        })
    }

    /// Creates (or, with the same key, finds again) the checkout and records it.
    async fn open_checkout(
        &self,
        account: &GatewayAccount,
        row: &PaymentRow,
        currency: &Currency,
        expires_secs: i64,
    ) -> PaymentRow {
        let req = CheckoutRequest {
            payment_id: row.id.clone(),
            amount_minor: row.amount,
            currency: currency.code.clone(),
            idempotency_key: format!("pay:{}:checkout", row.id),
            expires_at: row.created_at / 1000 + expires_secs,
        };
        match account.gateway.create_checkout(&req).await {
            Ok(view) => self.apply_checkout(row, &view, currency).await,
            Err(GatewayError::Refused { code, message }) => {
                let reason = format!("gateway refused: {code} {message}");
                self.finish(
                    row,
                    &[PaymentState::Created],
                    PaymentState::Failed,
                    PaymentChange {
                        reason: Some(clip(&reason)),
                        ..Default::default()
                    },
                    None,
                    currency,
                )
                .await
            }
            Err(e) => {
                self.note_attempt(row, &e).await;
                self.current(row).await
            }
        }
    }

    /// Applies what the gateway says about a deposit's checkout.
    async fn apply_checkout(
        &self,
        row: &PaymentRow,
        view: &CheckoutView,
        currency: &Currency,
    ) -> PaymentRow {
        let open = [PaymentState::Created, PaymentState::Pending];
        let change = PaymentChange {
            gateway_ref: Some(view.id.clone()),
            checkout_url: view.url.clone(),
            settlement_ref: view.settlement_ref.clone(),
            ..Default::default()
        };
        match view.state {
            CheckoutState::Open | CheckoutState::Processing => {
                self.finish(
                    row,
                    &[PaymentState::Created],
                    PaymentState::Pending,
                    change,
                    None,
                    currency,
                )
                .await
            }
            CheckoutState::Expired => {
                self.finish(row, &open, PaymentState::Expired, change, None, currency)
                    .await
            }
            CheckoutState::Failed => {
                let change = PaymentChange {
                    reason: Some("the payment failed at the gateway".into()),
                    ..change
                };
                self.finish(row, &open, PaymentState::Failed, change, None, currency)
                    .await
            }
            CheckoutState::Paid => {
                let paid = view.amount_paid.unwrap_or(row.amount);
                if paid <= 0 {
                    return self.current(row).await;
                }
                let fee = self
                    .account_of(row)
                    .await
                    .map(|a| a.gateway.deposit_fee(paid))
                    .unwrap_or(0)
                    .clamp(0, paid);
                let flagged = paid != row.amount;
                let mut postings = vec![
                    NewPosting {
                        account_id: wallet_id(&row.user_id),
                        amount: paid,
                    },
                    NewPosting {
                        account_id: house_id(&row.client_id, &gateway_account(&row.gateway)),
                        amount: -(paid - fee),
                    },
                ];
                if fee > 0 {
                    postings.push(NewPosting {
                        account_id: house_id(&row.client_id, PAYMENT_FEES),
                        amount: -fee,
                    });
                }
                let e = entry(row, "credit", JournalKind::PaymentDeposit, postings);
                let change = PaymentChange {
                    paid_amount: Some(paid),
                    fee: Some(fee),
                    flagged: Some(flagged),
                    reason: flagged.then(|| {
                        format!(
                            "paid {} instead of {}",
                            currency.format(paid),
                            currency.format(row.amount)
                        )
                    }),
                    settled_at: Some(now_ms()),
                    ..change
                };
                self.finish(row, &open, PaymentState::Paid, change, Some(e), currency)
                    .await
            }
        }
    }

    // ---- withdrawals -------------------------------------------------------------------

    /// A withdrawal request: the amount moves from the wallet to `withdrawals_pending` at once
    /// (with the caps checked in the same step); approved at once under the client's threshold.
    pub async fn withdraw(&self, req: PaymentRequest) -> Result<Requested, PaymentError> {
        let currency = req.client.currency.clone();
        let rules = self.rules(&req.client, &req.gateway).await?;
        Self::check_bounds(&rules, PaymentKind::Withdrawal, req.amount, &currency)?;
        let account = self
            .inner
            .gateways
            .account_for(&self.inner.store, &req.client.id, &req.gateway)
            .await?;
        self.ensure_house(&req.client, &req.gateway).await?;
        let row = Self::new_row(
            &req,
            PaymentKind::Withdrawal,
            &account,
            PaymentState::Requested,
        );
        let hold = entry(
            &row,
            "hold",
            JournalKind::PaymentHold,
            two_legs(
                &wallet_id(&row.user_id),
                &house_id(&row.client_id, WITHDRAWALS_PENDING),
                row.amount,
            ),
        );
        let caps = Self::caps(&rules, PaymentKind::Withdrawal, currency.exponent);
        let requested = self.begin(row, Some(hold), caps, &currency).await?;
        if !requested.created {
            return Ok(requested);
        }
        let auto = PaymentSettings::minor(&rules.auto_approve_max, currency.exponent)
            .is_some_and(|max| requested.payment.amount <= max);
        if !auto {
            return Ok(requested);
        }
        let payment = self
            .approve(&requested.payment, None, &currency)
            .await
            .unwrap_or(requested.payment);
        Ok(Requested {
            payment,
            created: true,
        })
    }

    /// Approves a requested withdrawal (`approver` None: under the automatic threshold), audits
    /// it, and sends the payout.
    pub async fn approve(
        &self,
        row: &PaymentRow,
        approver: Option<&crate::auth::Caller>,
        currency: &Currency,
    ) -> Result<PaymentRow, PaymentError> {
        if row.kind != PaymentKind::Withdrawal {
            return Err(PaymentError::WrongState(row.state));
        }
        let approved = self
            .transition(
                row,
                &[PaymentState::Requested],
                PaymentState::Approved,
                PaymentChange {
                    decided_by: Some(approver.map_or("system", |c| &c.user_id).to_owned()),
                    ..Default::default()
                },
                None,
                currency,
            )
            .await?;
        if !approved {
            let now = self.current(row).await;
            return Err(PaymentError::WrongState(now.state));
        }
        let event = crate::audit::Event::new("payment.approve");
        let event = match approver {
            Some(c) => event.by(c),
            None => event.actor(None),
        };
        let recorded = event
            .client(Some(&row.client_id))
            .target("payment", &row.id)
            .after(serde_json::json!({
                "user_id": row.user_id, "amount": currency.format(row.amount),
                "gateway": row.gateway, "automatic": approver.is_none(),
            }))
            .record(&self.inner.store)
            .await;
        if let Err(e) = recorded {
            tracing::warn!(payment = %row.id, error = %e, "approval not audited");
        }
        let row = self.current(row).await;
        Ok(self.send_payout(&row, currency).await)
    }

    /// Rejects a requested withdrawal with a reason: the money returns to the wallet, and the
    /// audit row is written in the same transaction.
    pub async fn reject(
        &self,
        row: &PaymentRow,
        caller: &crate::auth::Caller,
        reason: &str,
        currency: &Currency,
    ) -> Result<PaymentRow, PaymentError> {
        if row.kind != PaymentKind::Withdrawal {
            return Err(PaymentError::WrongState(row.state));
        }
        let mut e = release(row);
        e.actor_id = Some(caller.user_id.clone());
        e.audit = Some(
            crate::audit::Event::new("payment.reject")
                .by(caller)
                .client(Some(&row.client_id))
                .target("payment", &row.id)
                .after(serde_json::json!({
                    "user_id": row.user_id, "amount": currency.format(row.amount),
                    "gateway": row.gateway, "reason": reason,
                }))
                .into_row(),
        );
        let moved = self
            .transition(
                row,
                &[PaymentState::Requested],
                PaymentState::Rejected,
                PaymentChange {
                    decided_by: Some(caller.user_id.clone()),
                    reason: Some(clip(reason)),
                    ..Default::default()
                },
                Some(e),
                currency,
            )
            .await?;
        let now = self.current(row).await;
        if moved {
            super::hooks::payment_settled(&self.inner.store, &now).await;
            Ok(now)
        } else {
            Err(PaymentError::WrongState(now.state))
        }
    }

    /// Cancels a deposit whose checkout is still open, or a withdrawal not yet approved.
    pub async fn cancel(
        &self,
        row: &PaymentRow,
        currency: &Currency,
    ) -> Result<PaymentRow, PaymentError> {
        match (row.kind, row.state) {
            (PaymentKind::Withdrawal, PaymentState::Requested) => {
                let moved = self
                    .transition(
                        row,
                        &[PaymentState::Requested],
                        PaymentState::Cancelled,
                        PaymentChange::default(),
                        Some(release(row)),
                        currency,
                    )
                    .await?;
                let now = self.current(row).await;
                if moved {
                    Ok(now)
                } else {
                    Err(PaymentError::WrongState(now.state))
                }
            }
            (PaymentKind::Deposit, PaymentState::Pending) => {
                let account = self.account_of(row).await?;
                let Some(reference) = &row.gateway_ref else {
                    return Err(PaymentError::WrongState(row.state));
                };
                match account.gateway.cancel_checkout(reference).await {
                    Ok(view) if view.state == CheckoutState::Expired => {
                        let moved = self
                            .transition(
                                row,
                                &[PaymentState::Pending],
                                PaymentState::Cancelled,
                                PaymentChange::default(),
                                None,
                                currency,
                            )
                            .await?;
                        let now = self.current(row).await;
                        if moved {
                            Ok(now)
                        } else {
                            Err(PaymentError::WrongState(now.state))
                        }
                    }
                    // Not open any more (paid meanwhile, say): take the gateway's word.
                    Ok(_) | Err(GatewayError::Refused { .. }) => {
                        let now = self.poll(row, &account, currency).await;
                        Err(PaymentError::WrongState(now.state))
                    }
                    Err(e) => Err(PaymentError::Unavailable(e.to_string())),
                }
            }
            (_, state) => Err(PaymentError::WrongState(state)),
        }
    }

    /// Sends (or, with the same key, finds again) the payout of an approved withdrawal.
    async fn send_payout(&self, row: &PaymentRow, currency: &Currency) -> PaymentRow {
        let account = match self.account_of(row).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(payment = %row.id, error = %e, "no gateway account for the payout");
                return self.current(row).await;
            }
        };
        let req = PayoutRequest {
            payment_id: row.id.clone(),
            amount_minor: row.amount,
            currency: currency.code.clone(),
            destination: row.destination.clone().unwrap_or_default(),
            idempotency_key: format!("pay:{}:payout", row.id),
        };
        match account.gateway.create_payout(&req).await {
            Ok(view) => self.apply_payout(row, &view, currency).await,
            Err(GatewayError::Refused { code, message }) => {
                let reason = format!("gateway refused the payout: {code} {message}");
                self.fail_withdrawal(row, &[PaymentState::Approved], &reason, currency)
                    .await
            }
            Err(e) => {
                self.note_attempt(row, &e).await;
                self.current(row).await
            }
        }
    }

    async fn apply_payout(
        &self,
        row: &PaymentRow,
        view: &PayoutView,
        currency: &Currency,
    ) -> PaymentRow {
        let sent = [PaymentState::Approved, PaymentState::Processing];
        match view.state {
            PayoutState::Pending => {
                self.finish(
                    row,
                    &[PaymentState::Approved],
                    PaymentState::Processing,
                    PaymentChange {
                        gateway_ref: Some(view.id.clone()),
                        settlement_ref: Some(view.id.clone()),
                        ..Default::default()
                    },
                    None,
                    currency,
                )
                .await
            }
            PayoutState::Paid => {
                let fee = self
                    .account_of(row)
                    .await
                    .map(|a| a.gateway.payout_fee(row.amount))
                    .unwrap_or(0)
                    .max(0);
                let mut postings = vec![
                    NewPosting {
                        account_id: house_id(&row.client_id, WITHDRAWALS_PENDING),
                        amount: -row.amount,
                    },
                    NewPosting {
                        account_id: house_id(&row.client_id, &gateway_account(&row.gateway)),
                        amount: row.amount + fee,
                    },
                ];
                if fee > 0 {
                    postings.push(NewPosting {
                        account_id: house_id(&row.client_id, PAYMENT_FEES),
                        amount: -fee,
                    });
                }
                let e = entry(row, "payout", JournalKind::PaymentPayout, postings);
                self.finish(
                    row,
                    &sent,
                    PaymentState::Paid,
                    PaymentChange {
                        gateway_ref: Some(view.id.clone()),
                        settlement_ref: Some(view.id.clone()),
                        fee: Some(fee),
                        paid_amount: Some(row.amount),
                        settled_at: Some(now_ms()),
                        ..Default::default()
                    },
                    Some(e),
                    currency,
                )
                .await
            }
            PayoutState::Failed => {
                let reason = format!(
                    "the payout failed at the gateway: {}",
                    view.failure.as_deref().unwrap_or("no reason given")
                );
                self.fail_withdrawal(row, &sent, &reason, currency).await
            }
        }
    }

    async fn fail_withdrawal(
        &self,
        row: &PaymentRow,
        from: &[PaymentState],
        reason: &str,
        currency: &Currency,
    ) -> PaymentRow {
        self.finish(
            row,
            from,
            PaymentState::Failed,
            PaymentChange {
                reason: Some(clip(reason)),
                ..Default::default()
            },
            Some(release(row)),
            currency,
        )
        .await
    }

    // ---- webhooks ----------------------------------------------------------------------

    /// A delivery to `/callbacks/payments/{gateway}`: verified by the signature of the account
    /// the payment was made with, stored once per event id, answered; applied in the background
    /// (and by the reconciler if this process dies first).
    pub async fn webhook(
        &self,
        gateway: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookAck, PaymentError> {
        if !super::gateway::GATEWAY_NAMES.contains(&gateway) {
            return Err(PaymentError::UnknownGateway);
        }
        let payment_id = super::gateway::peek_payment_id(gateway, body);
        let row = match &payment_id {
            Some(id) => self.inner.store.payment(id).await?,
            None => None,
        };
        let Some(row) = row.filter(|r| r.gateway == gateway) else {
            return Err(PaymentError::UnknownPayment);
        };
        let account = self.account_of(&row).await?;
        let verified = account
            .gateway
            .verify_webhook(signature, body, now_ms() / 1000);
        let event = match verified {
            Ok(e) => e,
            Err(e) => {
                metrics::counter!(crate::metrics::PAYMENT_WEBHOOKS, "gateway" => gateway.to_owned(), "outcome" => "refused").increment(1);
                return Err(e.into());
            }
        };
        let stored = PaymentEventRow {
            gateway: gateway.to_owned(),
            event_id: event.id.clone(),
            payment_id: Some(row.id.clone()),
            event_type: event.kind.clone(),
            payload: String::from_utf8_lossy(body).into_owned(),
            received_at: now_ms(),
        };
        let fresh = self.inner.store.insert_payment_event(&stored).await?;
        metrics::counter!(crate::metrics::PAYMENT_WEBHOOKS, "gateway" => gateway.to_owned(), "outcome" => if fresh { "accepted" } else { "duplicate" }).increment(1);
        if fresh {
            let me = self.clone();
            tokio::spawn(async move { me.process_event(&stored).await });
        }
        Ok(WebhookAck {
            event_id: event.id,
            duplicate: !fresh,
        })
    }

    /// Applies a stored (already verified) event, then marks it processed.
    pub async fn process_event(&self, e: &PaymentEventRow) {
        let applied = self.apply_event(e).await;
        match applied {
            Ok(()) => {
                if let Err(err) = self
                    .inner
                    .store
                    .mark_payment_event_processed(&e.gateway, &e.event_id)
                    .await
                {
                    tracing::warn!(event = %e.event_id, error = %err, "payment event not marked");
                }
            }
            Err(err) => {
                tracing::warn!(event = %e.event_id, error = %err, "payment event not applied yet")
            }
        }
    }

    async fn apply_event(&self, e: &PaymentEventRow) -> Result<(), PaymentError> {
        let Some(id) = &e.payment_id else {
            return Ok(());
        };
        let Some(row) = self.inner.store.payment(id).await? else {
            return Ok(());
        };
        // Verified when received; parsed again here without the clock (a replay after a crash
        // may be older than the tolerance).
        let event = match super::stripe::parse_event_unverified(e.payload.as_bytes()) {
            Ok(ev) => ev,
            Err(_) => return Ok(()),
        };
        let currency = self.currency_of(&row).await?;
        match (event.object, row.kind) {
            (EventObject::Checkout(view), PaymentKind::Deposit) => {
                self.apply_checkout(&row, &view, &currency).await;
            }
            (EventObject::Payout(view), PaymentKind::Withdrawal) => {
                self.apply_payout(&row, &view, &currency).await;
            }
            _ => {}
        }
        Ok(())
    }

    // ---- reconciliation ----------------------------------------------------------------

    /// Asks the gateway about one open payment and settles what it says.
    pub async fn reconcile(&self, row: &PaymentRow) -> Result<PaymentRow, PaymentError> {
        let currency = self.currency_of(row).await?;
        let account = self.account_of(row).await?;
        Ok(match (row.kind, row.state) {
            (PaymentKind::Deposit, PaymentState::Created) => {
                let rules = settings::load(&self.inner.store, &row.client_id).await?;
                self.open_checkout(&account, row, &currency, rules.checkout_expires_secs)
                    .await
            }
            (PaymentKind::Deposit, PaymentState::Pending) => {
                self.poll(row, &account, &currency).await
            }
            (PaymentKind::Withdrawal, PaymentState::Requested) => {
                // A crash between the hold and the automatic approval: approve it now. One
                // above the threshold keeps waiting for a person.
                let rules = settings::load(&self.inner.store, &row.client_id).await?;
                let auto = PaymentSettings::minor(&rules.auto_approve_max, currency.exponent)
                    .is_some_and(|max| row.amount <= max);
                if auto {
                    self.approve(row, None, &currency).await?
                } else {
                    row.clone()
                }
            }
            (PaymentKind::Withdrawal, PaymentState::Approved) => {
                self.send_payout(row, &currency).await
            }
            (PaymentKind::Withdrawal, PaymentState::Processing) => {
                match row.gateway_ref.as_deref() {
                    Some(reference) => match account.gateway.payout(reference).await {
                        Ok(view) => self.apply_payout(row, &view, &currency).await,
                        Err(e) => {
                            self.note_attempt(row, &e).await;
                            self.current(row).await
                        }
                    },
                    None => self.send_payout(row, &currency).await,
                }
            }
            _ => row.clone(),
        })
    }

    async fn poll(
        &self,
        row: &PaymentRow,
        account: &GatewayAccount,
        currency: &Currency,
    ) -> PaymentRow {
        let Some(reference) = row.gateway_ref.as_deref() else {
            return self.current(row).await;
        };
        match account.gateway.checkout(reference).await {
            Ok(view) => {
                let after = self.apply_checkout(row, &view, currency).await;
                if after.state == row.state {
                    // Still open: touch it so the reconciler moves on to older rows.
                    let _ = self.inner.store.mark_payment_attempt(&row.id, None).await;
                }
                after
            }
            Err(e) => {
                self.note_attempt(row, &e).await;
                self.current(row).await
            }
        }
    }

    // ---- helpers -----------------------------------------------------------------------

    pub async fn account_of(&self, row: &PaymentRow) -> Result<Arc<GatewayAccount>, PaymentError> {
        Ok(self
            .inner
            .gateways
            .account_by_label(
                &self.inner.store,
                &row.client_id,
                &row.gateway,
                &row.account,
            )
            .await?)
    }

    async fn currency_of(&self, row: &PaymentRow) -> Result<Currency, PaymentError> {
        let client = self
            .inner
            .store
            .client(&row.client_id)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        Ok(client.currency)
    }

    async fn note_attempt(&self, row: &PaymentRow, e: &GatewayError) {
        tracing::warn!(payment = %row.id, error = %e, "gateway answer unclear; left for the reconciler");
        let reason = clip(&e.to_string());
        if let Err(err) = self
            .inner
            .store
            .mark_payment_attempt(&row.id, Some(&reason))
            .await
        {
            tracing::warn!(payment = %row.id, error = %err, "attempt not recorded");
        }
    }

    /// The stored row now (or `row` if it cannot be read).
    pub async fn current(&self, row: &PaymentRow) -> PaymentRow {
        match self.inner.store.payment(&row.id).await {
            Ok(Some(now)) => now,
            _ => row.clone(),
        }
    }

    /// A conditional transition through the wallet actor; true if this call moved it.
    async fn transition(
        &self,
        row: &PaymentRow,
        from: &[PaymentState],
        to: PaymentState,
        change: PaymentChange,
        entry: Option<NewEntry>,
        currency: &Currency,
    ) -> Result<bool, PaymentError> {
        let op = PaymentOp::Transition {
            id: row.id.clone(),
            from: from.to_vec(),
            to,
            change: Box::new(change),
            entry,
        };
        let moved = match self.wallet_step(&row.user_id, currency, op).await? {
            PaymentMoved::Transitioned(moved) => moved.is_some(),
            PaymentMoved::Begun(_) => unreachable!("Transition answers Transitioned"),
        };
        if moved {
            self.changed(row, to, currency).await;
        }
        Ok(moved)
    }

    /// A transition whose failure leaves the row for the reconciler; answers the row as stored.
    async fn finish(
        &self,
        row: &PaymentRow,
        from: &[PaymentState],
        to: PaymentState,
        change: PaymentChange,
        entry: Option<NewEntry>,
        currency: &Currency,
    ) -> PaymentRow {
        match self
            .transition(row, from, to, change, entry, currency)
            .await
        {
            Ok(moved) => {
                let now = self.current(row).await;
                if moved && to.is_terminal() {
                    super::hooks::payment_settled(&self.inner.store, &now).await;
                }
                now
            }
            Err(e) => {
                tracing::error!(payment = %row.id, error = %e, "payment step failed; left for the reconciler");
                self.current(row).await
            }
        }
    }

    /// After a state change: metrics and `payment_update` to the player's room and the
    /// client's approval-queue room.
    async fn changed(&self, row: &PaymentRow, to: PaymentState, currency: &Currency) {
        metrics::counter!(crate::metrics::PAYMENTS, "gateway" => row.gateway.clone(), "kind" => row.kind.as_str(), "state" => to.as_str()).increment(1);
        if to.is_terminal() {
            let secs = (now_ms() - row.created_at).max(0) as f64 / 1000.0;
            metrics::histogram!(crate::metrics::PAYMENT_DURATION, "gateway" => row.gateway.clone(), "kind" => row.kind.as_str()).record(secs);
        }
        let now = self.current(row).await;
        let data = frame(&now, currency);
        self.inner.bus.publish(Event::new(
            format!("user:{}", row.user_id),
            EventKind::PaymentUpdate,
            data.clone(),
        ));
        self.inner.bus.publish(Event::new(
            format!("payments:{}", row.client_id),
            EventKind::PaymentUpdate,
            data,
        ));
    }
}

/// The `payment_update` frame's data.
pub fn frame(p: &PaymentRow, currency: &Currency) -> serde_json::Value {
    serde_json::json!({
        "payment_id": p.id,
        "user_id": p.user_id,
        "kind": p.kind,
        "gateway": p.gateway,
        "state": p.state,
        "amount": currency.format(p.amount),
        "paid_amount": p.paid_amount.map(|a| currency.format(a)),
        "fee": currency.format(p.fee),
        "currency": currency.code,
        "flagged": p.flagged,
        "reason": p.reason,
        "checkout_url": p.checkout_url,
    })
}

fn refused(r: CapRefusal, kind: PaymentKind, currency: &Currency) -> PaymentError {
    match r {
        CapRefusal::DailyTotal { used } => PaymentError::Refused {
            code: "daily_limit_exceeded",
            message: format!(
                "this would pass the day's {kind} limit ({} used today)",
                currency.format(used)
            ),
            field: Some(match kind {
                PaymentKind::Deposit => "daily_deposit_max",
                PaymentKind::Withdrawal => "daily_withdrawal_max",
            }),
        },
        CapRefusal::PendingWithdrawals { open } => PaymentError::Refused {
            code: "too_many_pending_withdrawals",
            message: format!("{open} withdrawals are still open; wait for them to finish"),
            field: Some("pending_withdrawals_max"),
        },
        CapRefusal::DepositNotSettled => PaymentError::Refused {
            code: "deposit_not_settled",
            message: "a recent deposit has not settled yet; withdraw later".into(),
            field: Some("withdraw_after_deposit_secs"),
        },
    }
}

fn clip(s: &str) -> String {
    s.chars().take(250).collect()
}

fn two_legs(from: &str, to: &str, amount: i64) -> Vec<NewPosting> {
    vec![
        NewPosting {
            account_id: from.to_owned(),
            amount: -amount,
        },
        NewPosting {
            account_id: to.to_owned(),
            amount,
        },
    ]
}

/// `withdrawals_pending` back to the wallet (rejected, cancelled, failed).
fn release(row: &PaymentRow) -> NewEntry {
    entry(
        row,
        "release",
        JournalKind::PaymentRelease,
        two_legs(
            &house_id(&row.client_id, WITHDRAWALS_PENDING),
            &wallet_id(&row.user_id),
            row.amount,
        ),
    )
}

/// The entry of step `step` of payment `row` (key `pay:<id>:<step>`).
fn entry(row: &PaymentRow, step: &str, kind: JournalKind, postings: Vec<NewPosting>) -> NewEntry {
    let key = format!("pay:{}:{step}", row.id);
    let wallet = wallet_id(&row.user_id);
    // The account the entry is answered with: the wallet when it moves, else the first leg.
    let subject = if postings.iter().any(|p| p.account_id == wallet) {
        wallet
    } else {
        postings[0].account_id.clone()
    };
    let e = NewEntry {
        id: new_id(),
        client_id: row.client_id.clone(),
        idempotency_key: key.clone(),
        request_hash: key,
        kind,
        actor_id: None,
        subject_account_id: subject,
        memo: Some(format!("{} {} {}", row.gateway, row.kind, row.id)),
        created_at: now_ms(),
        audit: None,
        postings,
    };
    e.assert_balanced();
    e
}
