//! A money movement as the ledger sees it: a balanced journal entry to commit (`NewEntry`) and
//! what committing it produced (`PostedEntry`). Built by `entries.rs`, committed by the store.

use crate::domain::NewAudit;
use crate::domain::text_enum::text_enum;

text_enum! {
    /// What a journal entry records: `journal.kind`, the `kind` of transaction listings and
    /// the `balance_transfers_total{kind}` label (`metrics::TRANSFER_KINDS` is `NAMES`).
    pub enum JournalKind("journal kind") {
        /// External cash into a user's wallet (`entries::Movement::Deposit`).
        Deposit = "deposit",
        Withdrawal = "withdrawal",
        /// An agent's own balance into a downline wallet.
        Credit = "credit",
        Debit = "debit",
        /// An admin's correction, up or down.
        Adjustment = "adjustment",
        /// Transfer-in: the player's wallet to `in_flight` before the provider is called.
        ProviderHold = "provider_hold",
        /// Transfer-in failed: `in_flight` back to the player.
        ProviderRelease = "provider_release",
        /// Transfer-in succeeded: `in_flight` to `held_at_provider`.
        ProviderSettle = "provider_settle",
        /// Transfer-out succeeded: `held_at_provider` to the player.
        ProviderCredit = "provider_credit",
        /// A change of a game round's net result (what settlements count as NGR).
        GameResult = "game_result",
        /// An agent's settlement commission.
        Commission = "commission",
        /// The platform's settlement share.
        RevenueShare = "revenue_share",
        /// The platform's collection of its settlement share, or its reversal (issue 21).
        RevenueCollection = "revenue_collection",
        /// A gateway deposit confirmed: the gateway's account to the wallet, its fee to fees.
        PaymentDeposit = "payment_deposit",
        /// A withdrawal requested: the wallet to `withdrawals_pending` (issue 18).
        PaymentHold = "payment_hold",
        /// A withdrawal rejected, cancelled or failed: `withdrawals_pending` back to the wallet.
        PaymentRelease = "payment_release",
        /// A withdrawal paid out: `withdrawals_pending` to the gateway's account.
        PaymentPayout = "payment_payout",
    }
}

/// One leg of a journal entry: a signed amount on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPosting {
    pub account_id: String,
    pub amount: i64,
}

/// A money movement to commit atomically: a journal row and postings that sum to zero.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub id: String,
    pub client_id: String,
    /// Already scoped to the caller (`<caller id>:<key>`).
    pub idempotency_key: String,
    pub request_hash: String,
    pub kind: JournalKind,
    pub actor_id: Option<String>,
    /// The account whose balance the caller is answered with.
    pub subject_account_id: String,
    pub memo: Option<String>,
    pub created_at: i64,
    pub postings: Vec<NewPosting>,
    /// Appended to the audit chain in the same transaction, if the entry commits.
    pub audit: Option<NewAudit>,
}

impl NewEntry {
    /// Double entry: at least two legs, on distinct accounts, summing to exactly zero.
    pub fn assert_balanced(&self) {
        assert!(
            self.postings.len() >= 2,
            "journal entry {} has fewer than two postings",
            self.id
        );
        let sum = self
            .postings
            .iter()
            .try_fold(0_i64, |acc, p| acc.checked_add(p.amount))
            .expect("posting sum overflows i64");
        assert_eq!(sum, 0, "journal entry {} does not balance", self.id);
        let mut ids: Vec<&str> = self
            .postings
            .iter()
            .map(|p| p.account_id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            self.postings.len(),
            "journal entry {} posts twice to one account",
            self.id
        );
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedLine {
    pub account_id: String,
    pub amount: i64,
    pub balance_after: i64,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedEntry {
    pub journal_id: String,
    pub created_at: i64,
    pub lines: Vec<PostedLine>,
}

impl PostedEntry {
    pub fn line(&self, account_id: &str) -> Option<&PostedLine> {
        self.lines.iter().find(|l| l.account_id == account_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text_enum::{assert_parses_only_names, assert_round_trips};
    use proptest::prelude::*;

    #[test]
    fn kinds_round_trip() {
        assert_round_trips(&JournalKind::ALL, &JournalKind::NAMES, JournalKind::as_str);
        // What earlier releases wrote stays readable: the same texts, in the same order.
        assert_eq!(
            JournalKind::NAMES,
            [
                "deposit",
                "withdrawal",
                "credit",
                "debit",
                "adjustment",
                "provider_hold",
                "provider_release",
                "provider_settle",
                "provider_credit",
                "game_result",
                "commission",
                "revenue_share",
                "revenue_collection",
                "payment_deposit",
                "payment_hold",
                "payment_release",
                "payment_payout",
            ]
        );
    }

    proptest! {
        #[test]
        fn only_kind_names_parse(
            text in prop_oneof![
                proptest::sample::select(&JournalKind::NAMES[..]).prop_map(str::to_owned),
                "[a-z_]{0,16}",
            ]
        ) {
            assert_parses_only_names(&text, &JournalKind::NAMES, JournalKind::as_str);
        }
    }
}
