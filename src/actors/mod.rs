//! Actors: the hub's owners of mutable state. Each file begins with what it owns and handles.

pub mod provider;
pub mod provider_accounts;
pub mod provider_games;
pub mod provider_wallet;
pub mod reconciler;
pub mod settlement_poster;
pub mod settlement_service;
pub mod wallet;
pub mod wallet_registry;
