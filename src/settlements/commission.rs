//! Commission as operators run it (issue 21): agents' effective rates up the tree, a
//! commission line's status (calculated → approved → paid, or held; held → approved), what a
//! finished game session earns each agent above its player, and an agent's running commission
//! in the open period. The arithmetic is `ledger::settlement`.

use std::collections::HashMap;

use serde_json::json;

use super::poster;
use super::service::{Rates, SettleError, journal_id_floor, period_figures};
use crate::actors::wallet_registry::{WalletError, WalletRegistry};
use crate::audit::Event;
use crate::domain::{Role, UserStatus, now_ms};
use crate::ledger::accounts::{game_results, house_id, wallet_id};
use crate::ledger::settlement::{Basis, CommissionLine, Rate, differential};
use crate::store::{CommissionRow, GameSessionInfo, Store, StoreError, UserRow};

/// The client's agents with their own rates, read once per computation.
pub struct AgentTree {
    client_max: Rate,
    own: HashMap<String, Rate>,
    users: HashMap<String, Option<UserRow>>,
}

impl AgentTree {
    pub async fn load(
        store: &Store,
        client_id: &str,
        client_max: Rate,
    ) -> Result<Self, StoreError> {
        let own = store
            .agent_rates(client_id)
            .await?
            .into_iter()
            .filter_map(|(user, rate)| Some((user, Rate::parse(&rate)?)))
            .collect();
        Ok(Self {
            client_max,
            own,
            users: HashMap::new(),
        })
    }

    async fn user(&mut self, store: &Store, id: &str) -> Result<Option<UserRow>, StoreError> {
        if let Some(u) = self.users.get(id) {
            return Ok(u.clone());
        }
        let u = store.user(id).await?;
        self.users.insert(id.to_owned(), u.clone());
        Ok(u)
    }

    /// The agents from the top of `user_id`'s path down to it (itself included when
    /// `include_self`), each with its effective rate: its own (or the client's
    /// `commission_rate`), capped by every agent above it and by the client's rate. Closed
    /// agents take no money and are left out (the agent above earns their difference).
    async fn path_agents(
        &mut self,
        store: &Store,
        user_id: &str,
        include_self: bool,
    ) -> Result<Vec<(String, Rate)>, StoreError> {
        let Some(user) = self.user(store, user_id).await? else {
            return Ok(Vec::new());
        };
        let ids: Vec<String> = user
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .filter(|id| include_self || *id != user.id)
            .map(str::to_owned)
            .collect();
        let mut effective = self.client_max.per_10k();
        let mut out = Vec::new();
        for id in ids {
            let Some(u) = self.user(store, &id).await? else {
                continue;
            };
            if u.role != Role::Agent {
                continue;
            }
            let own = self.own.get(&id).copied().unwrap_or(self.client_max);
            effective = effective.min(own.per_10k());
            if u.status != UserStatus::Closed {
                out.push((id, Rate::from_per_10k(effective).unwrap_or(self.client_max)));
            }
        }
        Ok(out)
    }

    /// The agents above a player, nearest first, with their effective rates.
    pub async fn chain(
        &mut self,
        store: &Store,
        player_id: &str,
    ) -> Result<Vec<(String, Rate)>, StoreError> {
        let mut agents = self.path_agents(store, player_id, false).await?;
        agents.reverse();
        Ok(agents)
    }

    /// An agent's effective rate.
    pub async fn effective_rate(
        &mut self,
        store: &Store,
        agent_id: &str,
    ) -> Result<Rate, StoreError> {
        let agents = self.path_agents(store, agent_id, true).await?;
        Ok(agents
            .iter()
            .find(|(id, _)| id == agent_id)
            .map_or(self.client_max, |(_, r)| *r))
    }

    /// The agent's own stored rate, if any.
    pub fn own_rate(&self, agent_id: &str) -> Option<Rate> {
        self.own.get(agent_id).copied()
    }
}

/// An operator's step on a commission line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Approve,
    Hold,
    Pay,
}

impl Step {
    pub fn parse(text: &str) -> Option<Step> {
        match text {
            "approve" => Some(Step::Approve),
            "hold" => Some(Step::Hold),
            "pay" => Some(Step::Pay),
            _ => None,
        }
    }

    /// The status it leads to, and the statuses it may start from.
    fn rule(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Step::Approve => ("approved", &["calculated", "held"]),
            Step::Hold => ("held", &["calculated", "approved"]),
            Step::Pay => ("paid", &["approved"]),
        }
    }

    fn action(self) -> &'static str {
        match self {
            Step::Approve => "commission.approve",
            Step::Hold => "commission.hold",
            Step::Pay => "commission.pay",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("no such commission line")]
    NotFound,
    #[error("a {from} commission cannot be {to}")]
    Illegal { from: String, to: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

async fn line(
    store: &Store,
    client_id: &str,
    settlement_id: &str,
    agent_id: &str,
) -> Result<CommissionRow, StepError> {
    store
        .settlement(client_id, settlement_id)
        .await?
        .and_then(|s| s.commissions.into_iter().find(|c| c.agent_id == agent_id))
        .ok_or(StepError::NotFound)
}

/// Moves a line one step (audited). The step's own target again is a no-op that answers the
/// line (a retried approve, hold or pay); any other status outside the rule is `Illegal`.
/// Paying posts the commission entry through the agent's wallet actor, idempotently.
/// Which commission line.
pub struct Target<'a> {
    pub client_id: &'a str,
    pub settlement_id: &'a str,
    pub agent_id: &'a str,
}

pub async fn step(
    store: &Store,
    wallets: &WalletRegistry,
    target: Target<'_>,
    step: Step,
    actor_id: &str,
    ip: Option<String>,
) -> Result<CommissionRow, StepError> {
    let Target {
        client_id,
        settlement_id,
        agent_id,
    } = target;
    let (to, from) = step.rule();
    let before = line(store, client_id, settlement_id, agent_id).await?;
    if before.status == to {
        return Ok(before);
    }
    if !from.contains(&before.status.as_str()) {
        return Err(StepError::Illegal {
            from: before.status,
            to,
        });
    }
    let moved = if step == Step::Pay {
        poster::pay_line(store, wallets, &before).await?;
        true
    } else {
        store
            .transition_commission(settlement_id, agent_id, from, to, None)
            .await?
    };
    let after = line(store, client_id, settlement_id, agent_id).await?;
    if !moved || after.status != to {
        // Another operator moved it meanwhile.
        return Err(StepError::Illegal {
            from: after.status,
            to,
        });
    }
    Event::new(step.action())
        .actor(Some(actor_id))
        .client(Some(client_id))
        .target("commission", &format!("{settlement_id}:{agent_id}"))
        .before(json!({ "status": before.status }))
        .after(json!({ "status": after.status, "amount": after.amount, "transaction_id": after.journal_id }))
        .ip(ip)
        .record(store)
        .await?;
    Ok(after)
}

/// What each agent above a session's player would earn from the session: `(agent, effective
/// rate, differential rate in ten-thousandths, amount)`, nearest first, on the session's NGR
/// (signed: a session the player won reduces the agent's period) or, with basis `turnover`, on
/// the stakes of its rounds; truncated toward zero.
pub struct SessionCommission {
    pub basis: i64,
    pub shares: Vec<(String, Rate, i64, i64)>,
}

pub async fn session_commission(
    store: &Store,
    session: &GameSessionInfo,
    ended_at: i64,
    client_max: Rate,
    basis: Basis,
) -> Result<SessionCommission, SettleError> {
    let end = ended_at.saturating_add(1);
    let basis = match basis {
        Basis::Ngr => {
            let account = house_id(&session.client_id, &game_results(&session.provider));
            let subject = wallet_id(&session.user_id);
            store
                .ngr_by_subject(
                    &session.client_id,
                    &[account],
                    &journal_id_floor(session.started_at),
                    &journal_id_floor(end),
                )
                .await?
                .into_iter()
                .filter(|r| r.subject_account_id == subject)
                .map(|r| r.ngr)
                .sum::<i64>()
        }
        Basis::Turnover => store
            .turnover_by_player(
                &session.client_id,
                session.started_at,
                end,
                Some((&session.user_id, &session.provider)),
            )
            .await?
            .into_iter()
            .map(|t| t.turnover)
            .sum::<i64>(),
    };
    let mut tree = AgentTree::load(store, &session.client_id, client_max).await?;
    let chain = tree.chain(store, &session.user_id).await?;
    let rates: Vec<Rate> = chain.iter().map(|(_, r)| *r).collect();
    let shares = chain
        .into_iter()
        .zip(differential(&rates))
        .map(|((agent, rate), diff)| {
            let amount = crate::ledger::settlement::earned(diff, basis);
            (agent, rate, diff, amount)
        })
        .collect();
    Ok(SessionCommission { basis, shares })
}

/// An agent's commission in the open period `[start, now)`: its line as a settlement now would
/// compute it (zeros when its players have no results yet).
pub async fn current(
    store: &Store,
    client_id: &str,
    agent_id: &str,
    client_max: Rate,
    basis: Basis,
    start: i64,
    carry_over: bool,
) -> Result<(CommissionLine, i64), SettleError> {
    let end = now_ms();
    let figures = period_figures(
        store,
        client_id,
        Rates {
            commission: client_max,
            share: Rate::from_per_10k(0).unwrap_or(client_max),
            basis,
        },
        start,
        end + 1,
        carry_over,
    )
    .await?;
    if let Some(line) = figures
        .commissions
        .into_iter()
        .find(|c| c.agent_id == agent_id)
    {
        return Ok((line, end));
    }
    let mut tree = AgentTree::load(store, client_id, client_max).await?;
    let carried_in = if carry_over {
        store.commission_carry(client_id, agent_id).await?
    } else {
        0
    };
    Ok((
        CommissionLine {
            agent_id: agent_id.to_owned(),
            rate: tree.effective_rate(store, agent_id).await?,
            players: 0,
            basis: 0,
            earned: 0,
            carried_in,
            amount: 0,
            carry_out: carried_in,
        },
        end,
    ))
}
