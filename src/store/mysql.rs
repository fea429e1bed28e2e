//! MySQL backend: production. MySQL 8 and MariaDB 10.11 run the same statements. InnoDB's
//! default isolation is fine for money: a batch reads its accounts with `FOR UPDATE` (row locks
//! held to commit, taken in id order) and writes them guarded by the version it read.

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

use super::StoreOptions;

type Db = sqlx::MySql;
const NAME: &str = "mysql";
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/mysql");

/// The report feed marks each journal row it takes (`rolled_up = 1`, `FOR UPDATE SKIP LOCKED`:
/// every node feeds).
const FEED_BY_ROWID: bool = false;
/// Locking read suffix: the rows read stay locked by this transaction until it ends.
const FOR_UPDATE: &str = " FOR UPDATE";
const BEGIN_WRITE: &str = "BEGIN";

/// A player's history sources (rounds, transfers, sessions), each through its (player, time)
/// index. Named: for a player with most of a client's rounds, MariaDB chose a `ref` read of
/// `game_rounds_created` on `client_id` alone, each page scanning back from the client's newest
/// round past every row already sent (a 1M-row export took 57 to 87 s).
const HISTORY_TABLES: [&str; 3] = [
    "game_rounds FORCE INDEX (game_rounds_history)",
    "provider_transfers FORCE INDEX (provider_transfers_user)",
    "game_sessions FORCE INDEX (game_sessions_user)",
];

/// Adds a round's change to its hour's rollup row (issue 17).
const ROUNDS_ROLLUP_UPSERT: &str = "INSERT INTO report_rounds (client_id, hour, provider, game, user_id, rounds, stake, net) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
     rounds = rounds + VALUES(rounds), stake = stake + VALUES(stake), net = net + VALUES(net)";
/// The same change to the client's row (client-wide reports).
const ROUNDS_CLIENT_ROLLUP_UPSERT: &str = "INSERT INTO report_rounds_client (client_id, hour, provider, game, rounds, stake, net) \
     VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
     rounds = rounds + VALUES(rounds), stake = stake + VALUES(stake), net = net + VALUES(net)";

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
        let url = options.url.replacen("mariadb://", "mysql://", 1);
        // The ledger's multi-row statements come in ~23 sizes per table (`ledger/sql.rs`); with
        // the rest of the queries they outgrow sqlx's default cache of 100, and a statement
        // evicted from it costs a prepare and a close round trip next time.
        let connect = MySqlConnectOptions::from_str(&url)?
            .charset("utf8mb4")
            .statement_cache_capacity(512);
        let pool = MySqlPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&pool)
            .await?;
        if let Err(why) = supported_server(&version) {
            return Err(StoreError::Config(why));
        }
        Ok(Self {
            write: pool.clone(),
            read: pool,
            ledger_writer: None,
            ledger_conn: Default::default(),
            marks_seen: Default::default(),
            feed_turn: Default::default(),
            touches_seen: Default::default(),
            owners_seen: Default::default(),
            first_deposits_seen: Default::default(),
        })
    }
}

impl Backend {
    /// Locks the player's `player_protection` row in a transaction the answer holds (no row:
    /// nothing to lock, nothing is limited).
    pub async fn protection_lock(
        &self,
        user_id: &str,
    ) -> StoreResult<super::protection::ProtectionLock> {
        let mut tx = self.write.begin().await?;
        let found: Option<String> = sqlx::query_scalar(
            "SELECT user_id FROM player_protection WHERE user_id = ? FOR UPDATE",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(match found {
            Some(_) => super::protection::ProtectionLock::held(Box::new(tx)),
            None => super::protection::ProtectionLock::none(),
        })
    }
}

/// The servers the SQL is written for: MySQL 8.0 or later, MariaDB 10.6 or later (window
/// functions, `SKIP LOCKED`, JSON, utf8mb4 defaults). `VERSION()` reads like `8.0.36`,
/// `10.11.19-MariaDB` or `5.5.5-10.11.19-MariaDB` (the old replication prefix).
pub fn supported_server(version: &str) -> Result<(), String> {
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let text = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut parts = text
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let (name, min) = if mariadb {
        ("MariaDB", (10, 6))
    } else {
        ("MySQL", (8, 0))
    };
    if (major, minor) >= min {
        Ok(())
    } else {
        Err(format!(
            "the database server is {name} {version}; nashub needs {name} {}.{} or later: \
             upgrade it, or unset NASHUB_DATABASE_URL to use the embedded SQLite file",
            min.0, min.1
        ))
    }
}

impl Backend {
    /// Migrations one process at a time: two nodes starting at once on a fresh database would
    /// otherwise both apply them (seen on MariaDB: a duplicate `_sqlx_migrations` row). A named
    /// lock per database, held on its own connection while the migrator runs.
    pub async fn migrate_locked(&self) -> StoreResult<()> {
        const NAME_SQL: &str = "LEFT(CONCAT('nashub_migrate:', DATABASE()), 64)";
        let mut conn = self.write.acquire().await?;
        let granted: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT GET_LOCK({NAME_SQL}, 120)"
        )))
        .fetch_one(&mut *conn)
        .await?;
        if granted != Some(1) {
            return Err(StoreError::Config(
                "the migration lock was not granted within 120 s".into(),
            ));
        }
        let result = self.migrate().await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT RELEASE_LOCK({NAME_SQL})"
        )))
        .execute(&mut *conn)
        .await;
        result
    }
}

/// Deadlock (1213) and lock wait timeout (1205): the transaction was rolled back; retry it.
pub fn is_transient(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .is_some_and(|d| matches!(d.number(), 1213 | 1205))
}

#[cfg(test)]
mod server_version_tests {
    use super::supported_server;

    #[test]
    fn old_servers_are_refused_with_the_fix() {
        for ok in [
            "8.0.36",
            "8.4.2",
            "10.11.19-MariaDB",
            "5.5.5-10.6.1-MariaDB-log",
            "11.4.2-MariaDB",
        ] {
            assert!(supported_server(ok).is_ok(), "{ok}");
        }
        for old in ["5.7.44", "10.5.9-MariaDB", "5.5.5-10.3.39-MariaDB"] {
            let why = supported_server(old).unwrap_err();
            assert!(why.contains("or later") && why.contains(old), "{why}");
        }
    }
}
