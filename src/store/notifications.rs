//! Notifications in the store (issue 5): rows, queries, and the `Store` methods that dispatch
//! them to the backend (SQL in `sql_notifications.rs`).

use super::{Backend, Store, StoreResult};

/// A stored notice: to one user (`user_id`), or to every member of a client (`user_id` None).
#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub sender_id: String,
    pub title: String,
    pub body: String,
    pub created_at: i64,
    /// When the reader of a listing read it (None: unread, or not asked).
    pub read_at: Option<i64>,
}

impl NotificationRow {
    /// The room it was pushed to.
    pub fn room(&self) -> String {
        match &self.user_id {
            Some(user) => format!("user:{user}"),
            None => format!("client:{}", self.client_id),
        }
    }
}

/// One page of a member's notices, newest first.
pub struct NotificationQuery<'a> {
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub unread_only: bool,
    /// Only notices with an id below this (the previous page's last id).
    pub before: Option<&'a str>,
    pub limit: i64,
}

impl Store {
    pub async fn insert_notification(&self, n: &NotificationRow) -> StoreResult<()> {
        dispatch!(self, b => b.insert_notification(n).await)
    }

    pub async fn notification(&self, id: &str) -> StoreResult<Option<NotificationRow>> {
        dispatch!(self, b => b.notification(id).await)
    }

    pub async fn notifications_for(
        &self,
        q: &NotificationQuery<'_>,
    ) -> StoreResult<Vec<NotificationRow>> {
        dispatch!(self, b => b.notifications_for(q).await)
    }

    /// Marks read for one reader; returns when it was first read.
    pub async fn mark_notification_read(
        &self,
        id: &str,
        user_id: &str,
        client_id: &str,
        now_ms: i64,
    ) -> StoreResult<i64> {
        dispatch!(self, b => b.mark_notification_read(id, user_id, client_id, now_ms).await)
    }
}
