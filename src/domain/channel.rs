//! Message channels (issue 19): which channel a message goes over, what kind of message it is
//! (a user may opt out of each kind per channel), and where an outbox row is in its life.

use super::text_enum::text_enum;

text_enum! {
    /// A channel a user can be reached on besides the websocket.
    pub enum Channel("channel") {
        Email = "email",
        Sms = "sms",
    }
}

text_enum! {
    /// What a message is for: transactional (account and money events) or marketing (admin
    /// broadcasts). Preferences are per channel and category.
    pub enum Category("message category") {
        Transactional = "transactional",
        Marketing = "marketing",
    }
}

text_enum! {
    /// An outbox row's state. `sending` is recorded before the send, so a row found in it after
    /// a crash is known to be in doubt; `failed` rows are the dead-letter list.
    pub enum DeliveryState("delivery state") {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Delivered = "delivered",
        Failed = "failed",
        Suppressed = "suppressed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text_enum::assert_round_trips;

    #[test]
    fn names_round_trip() {
        assert_round_trips(&Channel::ALL, &Channel::NAMES, Channel::as_str);
        assert_round_trips(&Category::ALL, &Category::NAMES, Category::as_str);
        assert_round_trips(
            &DeliveryState::ALL,
            &DeliveryState::NAMES,
            DeliveryState::as_str,
        );
    }
}
