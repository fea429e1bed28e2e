//! Settling a client's period (DESIGN section 4): `service` checks the period, fixes the figures
//! (`ledger::settlement` computes them) and has `poster` post each entry through the wallet actors;
//! `commission` the agent tree's rates and a commission line's statuses, `scheduler` closes
//! periods by each client's schedule (one node at a time, by a database lease), `revenue` the
//! platform's collection of its revenue share (issue 21).

pub mod commission;
pub mod poster;
pub mod revenue;
pub mod scheduler;
pub mod service;
