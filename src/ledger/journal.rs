//! A money movement as the ledger sees it: a balanced journal entry to commit (`NewEntry`) and
//! what committing it produced (`PostedEntry`). Built by `entries.rs`, committed by the store.

use crate::domain::NewAudit;

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
    pub kind: String,
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
