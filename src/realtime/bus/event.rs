//! Server frames (DESIGN section 7): `{"type","room","seq","ts","data"}`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    BalanceUpdate,
    GameUpdate,
    Notification,
    /// Issue 19: time played and net result, every N minutes of a play session.
    RealityCheck,
    /// Issue 19: the player's session limit is reached (transfers-in are refused).
    SessionLimit,
    /// A payment changed (issue 18): the player's room and the client's `payments:` room.
    PaymentUpdate,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::BalanceUpdate => "balance_update",
            EventKind::GameUpdate => "game_update",
            EventKind::Notification => "notification",
            EventKind::RealityCheck => "reality_check",
            EventKind::SessionLimit => "session_limit",
            EventKind::PaymentUpdate => "payment_update",
        }
    }
}

/// An event for one room, before it has a `seq`.
#[derive(Debug, Clone)]
pub struct Event {
    pub room: String,
    pub kind: EventKind,
    pub data: serde_json::Value,
    pub ts_ms: i64,
    /// Wall-clock microseconds at publish, for the delivery latency metric (not on the wire).
    pub published_us: i64,
}

impl Event {
    pub fn new(room: String, kind: EventKind, data: serde_json::Value) -> Self {
        Self {
            room,
            kind,
            data,
            ts_ms: crate::domain::now_ms(),
            published_us: 0,
        }
    }

    /// The frame split around its `seq`, so whoever assigns the seq can finish it without
    /// serializing again: `prefix + seq + suffix` is the whole JSON frame.
    pub fn frame_parts(&self) -> (String, String) {
        let room = serde_json::to_string(&self.room).expect("a string serializes");
        let prefix = format!(r#"{{"type":"{}","room":{room},"seq":"#, self.kind.as_str());
        let suffix = format!(
            r#","ts":"{}","data":{}}}"#,
            crate::domain::rfc3339_ms(self.ts_ms),
            self.data
        );
        (prefix, suffix)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frame_is_valid_json_with_seq() {
        let e = super::Event::new(
            "user:\"x".into(),
            super::EventKind::BalanceUpdate,
            serde_json::json!({"balance": "1.00"}),
        );
        let (p, s) = e.frame_parts();
        let v: serde_json::Value = serde_json::from_str(&format!("{p}7{s}")).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["room"], "user:\"x");
        assert_eq!(v["type"], "balance_update");
        assert_eq!(v["data"]["balance"], "1.00");
    }
}
