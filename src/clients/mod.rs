//! Per-client configuration (the tenants' settings).

pub mod settings;
