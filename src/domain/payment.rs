//! Payment kinds and states (`payments.kind`, `payments.state`; issue 18).

use super::text_enum::text_enum;

text_enum! {
    /// Which way a payment moves money.
    pub enum PaymentKind("payment kind") {
        /// From the player, through a gateway, into the wallet.
        Deposit = "deposit",
        /// From the wallet, through a gateway, to the player.
        Withdrawal = "withdrawal",
    }
}

text_enum! {
    /// Where a payment stands. Deposits: `created` (row stored, gateway not yet answered) →
    /// `pending` (checkout open) → `paid` | `failed` | `expired` | `cancelled`. Withdrawals:
    /// `requested` (money held) → `approved` (payout being sent) → `processing` (accepted by the
    /// gateway) → `paid` | `failed`; or `rejected` | `cancelled` before approval.
    pub enum PaymentState("payment state") {
        Created = "created",
        Pending = "pending",
        Paid = "paid",
        Failed = "failed",
        Expired = "expired",
        Cancelled = "cancelled",
        Requested = "requested",
        Approved = "approved",
        Processing = "processing",
        Rejected = "rejected",
    }
}

impl PaymentState {
    /// States nothing moves out of.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PaymentState::Paid
                | PaymentState::Failed
                | PaymentState::Expired
                | PaymentState::Cancelled
                | PaymentState::Rejected
        )
    }

    /// Non-terminal states, for the reconciler.
    pub const OPEN: [PaymentState; 5] = [
        PaymentState::Created,
        PaymentState::Pending,
        PaymentState::Requested,
        PaymentState::Approved,
        PaymentState::Processing,
    ];
}
