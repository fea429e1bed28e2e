//! Game provider adapters (JDB Games, LuckySports) behind one trait, and their simulators.
//!
//! Not built yet: the transfer-wallet state machine of DESIGN section 5 lands with the
//! providers issue. The ledger already reserves the `in_flight` house account it needs.
