//! A provider transfer's direction and state (DESIGN section 5), as `provider_transfers` stores
//! them and the API shows them. Here rather than in `transfers`, so the store can decode its rows
//! and the provider adapters can name a direction without importing the state machine.

use super::text_enum::text_enum;

text_enum! {
    /// Which way a transfer moves money (`provider_transfers.direction`).
    pub enum TransferDirection("transfer direction") {
        /// Player → provider.
        In = "in",
        /// Provider → player.
        Out = "out",
    }
}

text_enum! {
    /// Where a transfer stands (`provider_transfers.state`). Only forward: `pending` →
    /// `unknown` → `succeeded` | `failed`; the last two are final.
    pub enum TransferState("transfer state") {
        /// Committed (with its hold, for transfer-in) and being sent.
        Pending = "pending",
        /// No definite answer yet; the money stays on hold until the reconciler settles it.
        Unknown = "unknown",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

impl TransferState {
    /// The states the reconciler still finishes.
    pub const OPEN: [TransferState; 2] = [TransferState::Pending, TransferState::Unknown];

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text_enum::{assert_parses_only_names, assert_round_trips};
    use proptest::prelude::*;

    #[test]
    fn directions_and_states_round_trip() {
        assert_round_trips(
            &TransferDirection::ALL,
            &TransferDirection::NAMES,
            TransferDirection::as_str,
        );
        assert_eq!(TransferDirection::NAMES, ["in", "out"]);
        assert_round_trips(
            &TransferState::ALL,
            &TransferState::NAMES,
            TransferState::as_str,
        );
        assert_eq!(
            TransferState::NAMES,
            ["pending", "unknown", "succeeded", "failed"]
        );
        let open: Vec<_> = TransferState::ALL
            .into_iter()
            .filter(|s| s.is_open())
            .collect();
        assert_eq!(open, TransferState::OPEN);
    }

    proptest! {
        #[test]
        fn only_the_names_parse(
            text in prop_oneof![
                proptest::sample::select(&TransferState::NAMES[..]).prop_map(str::to_owned),
                proptest::sample::select(&TransferDirection::NAMES[..]).prop_map(str::to_owned),
                "[a-z_ ]{0,12}",
            ]
        ) {
            assert_parses_only_names(&text, &TransferState::NAMES, TransferState::as_str);
            assert_parses_only_names(&text, &TransferDirection::NAMES, TransferDirection::as_str);
        }
    }
}
