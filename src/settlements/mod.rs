//! Settling a client's period (DESIGN section 4): `service` checks the period, fixes the figures
//! (`ledger::settlement` computes them) and has `poster` post each entry through the wallet actors.

pub mod poster;
pub mod service;
