//! The wallet actors: one per active user, owning the order of that user's balance mutations
//! (`wallet`), and the registry that finds or starts them (`wallet_registry`).

pub mod wallet;
pub mod wallet_registry;
