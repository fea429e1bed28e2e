//! The financial model (DESIGN section 4): which accounts exist and how each kind of money
//! movement becomes one balanced journal entry. Pure functions; the store commits them.

pub mod accounts;
pub mod entries;
pub mod journal;
pub mod settlement;

pub use journal::{JournalKind, NewEntry, NewPosting, PostedEntry, PostedLine};
