//! WalletRegistry: finds or starts the WalletActor of a user and forwards messages to it.
//!
//! Actors start on the caller's arbiter (an actix-web worker) and stop when idle; a message that
//! meets a stopping actor is sent again to a fresh one, which is safe because every money
//! message is idempotent.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use dashmap::DashMap;

use super::wallet::{Guarded, Mutate, WalletActor};
use crate::protection::{Check, GuardError, Protection};
use crate::realtime::bus::Bus;
use crate::store::{PostOutcome, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("wallet actor unavailable")]
    Unavailable,
    /// The player's protection refused the movement (limit or exclusion).
    #[error("{}", .0.message)]
    Refused(crate::protection::Refusal),
}

impl From<GuardError> for WalletError {
    fn from(e: GuardError) -> Self {
        match e {
            GuardError::Refused(r) => WalletError::Refused(r),
            GuardError::Store(e) => WalletError::Store(e),
        }
    }
}

#[derive(Clone)]
pub struct WalletRegistry {
    actors: Arc<DashMap<String, Addr<WalletActor>>>,
    store: Store,
    bus: Bus,
    idle: Duration,
    protection: Protection,
}

impl WalletRegistry {
    pub fn new(store: Store, bus: Bus, idle: Duration, protection: Protection) -> Self {
        Self {
            actors: Arc::new(DashMap::new()),
            store,
            bus,
            idle,
            protection,
        }
    }

    /// Player protection (limits, exclusions) with this hub's clock.
    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// Like [`Self::mutate`], after the player's protection admitted `check`, in the actor.
    pub async fn mutate_guarded(
        &self,
        user_id: &str,
        msg: Mutate,
        check: Check,
    ) -> Result<PostOutcome, WalletError> {
        let guarded = Guarded {
            mutate: msg,
            check,
            protection: self.protection.clone(),
        };
        Ok(self.send(user_id, guarded).await??)
    }

    fn actor(&self, user_id: &str) -> Addr<WalletActor> {
        if let Some(addr) = self.actors.get(user_id)
            && addr.connected()
        {
            return addr.clone();
        }
        self.actors
            .entry(user_id.to_owned())
            .and_modify(|addr| {
                if !addr.connected() {
                    *addr = self.spawn(user_id);
                }
            })
            .or_insert_with(|| self.spawn(user_id))
            .clone()
    }

    fn spawn(&self, user_id: &str) -> Addr<WalletActor> {
        WalletActor::new(
            user_id.to_owned(),
            self.store.clone(),
            self.bus.clone(),
            self.idle,
            self.actors.clone(),
        )
        .start()
    }

    /// Commits `msg` through the wallet actor of `user_id` (the account the entry debits or,
    /// for pure credits, the one it credits).
    pub async fn mutate(&self, user_id: &str, msg: Mutate) -> Result<PostOutcome, WalletError> {
        for _ in 0..3 {
            let addr = self.actor(user_id);
            match addr.send(msg.clone()).await {
                Ok(result) => return Ok(result?),
                Err(MailboxError::Closed) => {
                    self.actors.remove_if(user_id, |_, a| *a == addr);
                }
                Err(MailboxError::Timeout) => return Err(WalletError::Unavailable),
            }
        }
        Err(WalletError::Unavailable)
    }

    /// Sends another message the wallet actor handles (provider steps, `transfers::wallet_steps`),
    /// with the same restart-and-resend rule as [`Self::mutate`].
    pub async fn send<M>(&self, user_id: &str, msg: M) -> Result<M::Result, WalletError>
    where
        M: Message + Clone + Send + 'static,
        M::Result: Send,
        WalletActor: Handler<M>,
    {
        for _ in 0..3 {
            let addr = self.actor(user_id);
            match addr.send(msg.clone()).await {
                Ok(result) => return Ok(result),
                Err(MailboxError::Closed) => {
                    self.actors.remove_if(user_id, |_, a| *a == addr);
                }
                Err(MailboxError::Timeout) => return Err(WalletError::Unavailable),
            }
        }
        Err(WalletError::Unavailable)
    }

    pub fn active(&self) -> usize {
        self.actors.len()
    }
}
