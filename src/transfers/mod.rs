//! Transfer wallets (DESIGN section 5): moving a player's money to a provider and back, and the
//! game side that rides on the same accounts. Beside `providers` (the adapters and simulators
//! that speak each protocol), this is what the hub does with them.
//!
//! - `service`: `Providers`, the transfer state machine and house accounts.
//! - `accounts`: which operator account serves a client at a provider.
//! - `games`: provider balance, launch and game results.
//! - `catalog`: provider rows (registration as data) and the games catalogue.
//! - `sessions`: ending game sessions.
//! - `wallet_steps`: the steps that touch a wallet, run by the player's `WalletActor`.
//! - `reconciler`: finishes transfers left `pending` or `unknown`.
//! - `reality`: reality-check frames of players' play sessions (issue 19).

pub mod accounts;
pub mod catalog;
pub mod games;
pub mod reality;
pub mod reconciler;
pub mod service;
pub mod sessions;
pub mod wallet_steps;

pub use service::{ProviderError, Providers, TransferRequest};
