//! Lifecycle states of users and clients, as their `status` columns and the API spell them.

use super::text_enum::text_enum;

text_enum! {
    /// A user's lifecycle (`users.status`). Only `active` users sign in; leaving `active` ends
    /// the user's sessions; `closed` is final (its wallet is frozen).
    pub enum UserStatus("user status") {
        Active = "active",
        Suspended = "suspended",
        Closed = "closed",
    }
}

text_enum! {
    /// A client's lifecycle (`clients.status`): a suspended client's users cannot sign in.
    pub enum ClientStatus("client status") {
        Active = "active",
        Suspended = "suspended",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text_enum::{assert_parses_only_names, assert_round_trips};
    use proptest::prelude::*;

    #[test]
    fn statuses_round_trip() {
        assert_round_trips(&UserStatus::ALL, &UserStatus::NAMES, UserStatus::as_str);
        assert_eq!(UserStatus::NAMES, ["active", "suspended", "closed"]);
        assert_round_trips(
            &ClientStatus::ALL,
            &ClientStatus::NAMES,
            ClientStatus::as_str,
        );
        assert_eq!(ClientStatus::NAMES, ["active", "suspended"]);
    }

    proptest! {
        #[test]
        fn only_the_names_parse(
            text in prop_oneof![
                proptest::sample::select(&UserStatus::NAMES[..]).prop_map(str::to_owned),
                proptest::sample::select(&ClientStatus::NAMES[..]).prop_map(str::to_owned),
                "[a-z_ ]{0,12}",
            ]
        ) {
            assert_parses_only_names(&text, &UserStatus::NAMES, UserStatus::as_str);
            assert_parses_only_names(&text, &ClientStatus::NAMES, ClientStatus::as_str);
        }
    }
}
