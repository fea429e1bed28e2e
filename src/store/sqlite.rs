//! SQLite backend: the embedded default. WAL with `synchronous=FULL`, so an acknowledged
//! mutation survives power loss (the ledger writer syncs its WAL itself, to the same effect:
//! `ledger/sqlite_wal_sync.rs`); one write connection, since SQLite has one writer anyway and a
//! single connection never meets `SQLITE_BUSY` from itself.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreOptions;

type Db = sqlx::Sqlite;
const NAME: &str = "sqlite";
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The report feed follows the journal's rowid (`report_feed_cursor`, migration 0130): one
/// writer at a time, so rowid order is commit order, and a fed entry costs no journal write.
const FEED_BY_ROWID: bool = true;
/// Locking read suffix: SQLite's one writer needs none.
const FOR_UPDATE: &str = "";
/// A batch reads before it writes: take the write lock up front, so another process's commit
/// makes it wait (busy timeout) instead of failing its lock upgrade.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// A player's history sources (rounds, transfers, sessions), each through its (player, time)
/// index, named as on MySQL: no statistics can turn a page into a scan of the client's rows.
const HISTORY_TABLES: [&str; 3] = [
    "game_rounds INDEXED BY game_rounds_history",
    "provider_transfers INDEXED BY provider_transfers_user",
    "game_sessions INDEXED BY game_sessions_user",
];

/// Adds a round's change to its hour's rollup row (issue 17).
const ROUNDS_ROLLUP_UPSERT: &str = "INSERT INTO report_rounds (client_id, hour, provider, game, user_id, rounds, stake, net) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id, hour, provider, game, user_id) DO UPDATE SET \
     rounds = rounds + excluded.rounds, stake = stake + excluded.stake, net = net + excluded.net";
/// The same change to the client's row (client-wide reports).
const ROUNDS_CLIENT_ROLLUP_UPSERT: &str = "INSERT INTO report_rounds_client (client_id, hour, provider, game, rounds, stake, net) \
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id, hour, provider, game) DO UPDATE SET \
     rounds = rounds + excluded.rounds, stake = stake + excluded.stake, net = net + excluded.net";

include!("sql.rs");
include!("sql_providers.rs");
include!("sql_reads.rs");
include!("sql_payments.rs");
include!("sql_notifications.rs");
include!("sql_channels.rs");
include!("sql_settlements.rs");
include!("sql_games.rs");
include!("sql_commission.rs");
include!("ledger/sql.rs");
include!("sql_identity.rs");
include!("sql_reports.rs");
include!("sql_report_agents.rs");
include!("sql_report_spans.rs");
include!("sql_report_feed.rs");
include!("sql_protection.rs");

impl Backend {
    pub async fn connect(options: &StoreOptions) -> StoreResult<Self> {
        // Every connection (writer, readers, ledger writer, other nodes) must see one database,
        // and an in-memory one is private to its connection.
        if options.url.contains(":memory:") || options.url.contains("mode=memory") {
            return Err(StoreError::Config(
                "an in-memory SQLite database cannot be shared by the hub's connections; \
                 use a file (the default is <data_dir>/nashub.db)"
                    .into(),
            ));
        }
        let connect = SqliteConnectOptions::from_str(&options.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // Checkpoints run on the ledger writer's checkpointer thread, never in a commit.
            .pragma("wal_autocheckpoint", "0");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            // One local connection: a ping per acquire would only add a round trip.
            .test_before_acquire(false)
            .connect_with(connect.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // Local connections do not drop: a ping per acquire was a hop to the connection's
            // thread and back before every read (the report feed's, every request's).
            .test_before_acquire(false)
            .connect_with(connect.clone().read_only(true))
            .await?;
        let ledger_writer = Some(std::sync::Arc::new(
            super::ledger::sqlite_writer::SqliteWriter::start(
                connect.get_filename().to_path_buf(),
                // The naive mode (one entry per commit) is the benchmark's plain baseline:
                // SQLite's own `synchronous = FULL` commit, no sync stage beside it.
                options.group_commit.max_batch > 1,
                options.wal_sync_faults,
            )?,
        ));
        Ok(Self {
            write,
            read,
            ledger_writer,
            ledger_conn: Default::default(),
            marks_seen: Default::default(),
            feed_turn: Default::default(),
            touches_seen: Default::default(),
            owners_seen: Default::default(),
            first_deposits_seen: Default::default(),
        })
    }
}

/// An exclusive lock on `<database file>.setup-lock`, held while a process opens and migrates
/// the database.
pub async fn setup_lock(url: &str) -> StoreResult<std::fs::File> {
    let db = SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_path_buf();
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".setup-lock");
    let path = db.with_file_name(name);
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| StoreError::Config(format!("setup lock: {e}")))?;
    locked.map_err(|e| StoreError::Config(format!("cannot lock the database for set-up: {e}")))
}

/// `SQLITE_BUSY` and `SQLITE_LOCKED`: another process holds the write lock for now.
pub fn is_transient(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| matches!(code.as_ref(), "5" | "6" | "517" | "261"))
}

#[cfg(test)]
/// The statement shapes of `ledger/sql.rs` (included here and in `mysql.rs`).
mod statement_shapes {
    use super::*;

    fn is_size(n: usize) -> bool {
        (1..=ROWS_PER_STATEMENT).contains(&n) && (n <= SIZE_STEP || n.is_multiple_of(SIZE_STEP))
    }

    #[test]
    fn inserts_split_into_at_most_two_statements_of_known_sizes_per_full_chunk() {
        for n in 1..=600 {
            let items: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = shaped_chunks(&items).collect();
            assert_eq!(chunks.concat(), items, "n = {n}");
            assert!(chunks.iter().all(|c| is_size(c.len())), "n = {n}");
            assert!(
                chunks.len() <= 2 * n.div_ceil(ROWS_PER_STATEMENT),
                "n = {n}"
            );
        }
    }

    #[test]
    fn lookups_pad_to_a_known_size_with_the_last_item() {
        for n in 1..=600 {
            let items: Vec<usize> = (0..n).collect();
            let mut seen = Vec::new();
            for (chunk, size) in padded_chunks(&items) {
                assert!(is_size(size) && size >= chunk.len(), "n = {n}");
                let bound: Vec<usize> = padded(chunk, size).copied().collect();
                assert_eq!(bound.len(), size);
                assert_eq!(&bound[..chunk.len()], chunk);
                assert!(
                    bound[chunk.len()..]
                        .iter()
                        .all(|x| x == chunk.last().unwrap())
                );
                seen.extend_from_slice(chunk);
            }
            assert_eq!(seen, items);
        }
    }
}

#[cfg(test)]
/// The row edge (`sql.rs`, included here and in `mysql.rs`): stored text becomes types once,
/// and text no type matches is a decode error, not a panic.
mod decoding {
    use sqlx::Connection;

    use super::*;
    use crate::domain::TransferDirection;

    /// One row of a `SELECT` of literals.
    async fn row(sql: &str) -> DbRow {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }

    fn is_decode_error(e: &sqlx::Error, column: &str) -> bool {
        matches!(e, sqlx::Error::ColumnDecode { index, .. } if index == column)
    }

    #[tokio::test]
    async fn known_names_decode_and_unknown_ones_are_errors() {
        let r = row(
            "SELECT 'provider_hold' AS kind, 'out' AS direction, 'unknown' AS state, \
             'bogus' AS bad, 'Deposit' AS cased",
        )
        .await;
        assert_eq!(
            decode_text::<JournalKind>(&r, "kind").unwrap(),
            JournalKind::ProviderHold
        );
        assert_eq!(
            decode_text::<TransferDirection>(&r, "direction").unwrap(),
            TransferDirection::Out
        );
        assert_eq!(
            decode_text::<TransferState>(&r, "state").unwrap(),
            TransferState::Unknown
        );
        let e = decode_text::<JournalKind>(&r, "bad").unwrap_err();
        assert!(is_decode_error(&e, "bad"), "{e}");
        assert!(
            StoreError::from(e)
                .to_string()
                .contains(r#"unknown journal kind "bogus""#)
        );
        for e in [
            decode_text::<JournalKind>(&r, "cased").unwrap_err(),
            decode_text::<TransferState>(&r, "bad").unwrap_err(),
            decode_text::<TransferDirection>(&r, "bad").unwrap_err(),
            decode_text::<Role>(&r, "bad").unwrap_err(),
            decode_text::<UserStatus>(&r, "bad").unwrap_err(),
            decode_text::<ClientStatus>(&r, "bad").unwrap_err(),
        ] {
            assert!(matches!(e, sqlx::Error::ColumnDecode { .. }), "{e}");
        }
    }

    #[tokio::test]
    async fn client_and_user_rows_decode_their_types() {
        let client = client_from_row(
            &row(
                "SELECT 'c1' AS id, 'acme' AS code, 'Acme' AS name, 'EUR' AS currency, \
                 3 AS currency_exponent, 'suspended' AS status, 7 AS created_at",
            )
            .await,
        )
        .unwrap();
        assert_eq!(
            client.currency,
            crate::domain::Currency::parse("EUR", 3).unwrap()
        );
        assert_eq!(client.status, ClientStatus::Suspended);
        for bad in [
            "SELECT 'c1' AS id, 'acme' AS code, 'Acme' AS name, 'eur' AS currency, \
             2 AS currency_exponent, 'active' AS status, 7 AS created_at",
            "SELECT 'c1' AS id, 'acme' AS code, 'Acme' AS name, 'EUR' AS currency, \
             9 AS currency_exponent, 'active' AS status, 7 AS created_at",
            "SELECT 'c1' AS id, 'acme' AS code, 'Acme' AS name, 'EUR' AS currency, \
             2 AS currency_exponent, 'closed' AS status, 7 AS created_at",
        ] {
            let e = client_from_row(&row(bad).await).unwrap_err();
            assert!(matches!(e, sqlx::Error::ColumnDecode { .. }), "{bad}: {e}");
        }
        let user = |role, status| {
            format!(
                "SELECT 'u1' AS id, 'c1' AS client_id, 'c1' AS login_scope, NULL AS parent_id, \
                 '/u1/' AS path, 0 AS depth, '{role}' AS role, 'ann' AS username, \
                 'h' AS password_hash, '{status}' AS status, 7 AS created_at"
            )
        };
        let u = user_from_row(&row(&user("agent", "closed")).await).unwrap();
        assert_eq!((u.role, u.status), (Role::Agent, UserStatus::Closed));
        let e = user_from_row(&row(&user("admin", "active")).await).unwrap_err();
        assert!(is_decode_error(&e, "role"), "{e}");
        let e = user_from_row(&row(&user("player", "deleted")).await).unwrap_err();
        assert!(is_decode_error(&e, "status"), "{e}");
    }
}
