// Notifications SQL (issue 5), written once and `include!`d after `sql.rs` into both backends.
// A row with `user_id` NULL is a client-wide notice; read state lives per reader in
// `notification_reads`.

use super::notifications::{NotificationQuery, NotificationRow};

macro_rules! notification_columns {
    () => {
        "n.id, n.client_id, n.user_id, n.sender_id, n.title, n.body, n.created_at"
    };
}

fn notification_from_row(row: &DbRow, with_read: bool) -> Result<NotificationRow, sqlx::Error> {
    Ok(NotificationRow {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        sender_id: row.try_get("sender_id")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        read_at: if with_read {
            row.try_get("read_at")?
        } else {
            None
        },
    })
}

impl Backend {
    pub async fn insert_notification(&self, n: &NotificationRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO notifications (id, client_id, user_id, sender_id, title, body, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&n.id)
        .bind(&n.client_id)
        .bind(&n.user_id)
        .bind(&n.sender_id)
        .bind(&n.title)
        .bind(&n.body)
        .bind(n.created_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn notification(&self, id: &str) -> StoreResult<Option<NotificationRow>> {
        let sql = concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications n WHERE n.id = ?"
        );
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
        Ok(row
            .as_ref()
            .map(|r| notification_from_row(r, false))
            .transpose()?)
    }

    /// A member's notices (its own and its client's), newest first, with its read state.
    pub async fn notifications_for(
        &self,
        q: &NotificationQuery<'_>,
    ) -> StoreResult<Vec<NotificationRow>> {
        let sql = concat!(
            "SELECT ",
            notification_columns!(),
            ", r.read_at \
             FROM notifications n \
             LEFT JOIN notification_reads r ON r.notification_id = n.id AND r.user_id = ? \
             WHERE n.client_id = ? AND (n.user_id = ? OR n.user_id IS NULL) AND n.id < ? \
             AND (? = 0 OR r.read_at IS NULL) \
             ORDER BY n.id DESC LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(q.user_id)
            .bind(q.client_id)
            .bind(q.user_id)
            .bind(q.before.unwrap_or("~"))
            .bind(i64::from(q.unread_only))
            .bind(q.limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(|r| notification_from_row(r, true))
            .collect::<Result<_, _>>()?)
    }

    /// Marks a notice read by one reader; reading it again keeps the first time.
    pub async fn mark_notification_read(
        &self,
        id: &str,
        user_id: &str,
        client_id: &str,
        now_ms: i64,
    ) -> StoreResult<i64> {
        let inserted = sqlx::query(
            "INSERT INTO notification_reads (notification_id, user_id, client_id, read_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(user_id)
        .bind(client_id)
        .bind(now_ms)
        .execute(&self.write)
        .await;
        match inserted {
            Ok(_) => Ok(now_ms),
            Err(e) if is_unique_violation(&e) => {
                let row = sqlx::query("SELECT read_at FROM notification_reads WHERE notification_id = ? AND user_id = ?")
                    .bind(id)
                    .bind(user_id)
                    .fetch_one(&self.write)
                    .await?;
                Ok(row.try_get("read_at")?)
            }
            Err(e) => Err(e.into()),
        }
    }
}
