//! Per-client configuration (the tenants' settings) and what follows from it.

pub mod origins;
pub mod settings;
