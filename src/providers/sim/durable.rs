//! A simulator's durable state: one SQLite file per simulator (the embedded ones under
//! `<data_dir>/sims/`). Every acknowledged mutation is committed here (`synchronous=FULL`)
//! inside the same critical section that changes the in-memory [`super::Book`], before the
//! answer is sent, so a simulator that dies with the hub (kill -9 included) comes back on the
//! state its answers promised. The `Book` stays the read model, loaded from here at start.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Book, SimTransfer};

#[derive(Debug, thiserror::Error)]
#[error("simulator state: {0}")]
pub struct StateError(#[from] rusqlite::Error);

pub struct SimStore {
    conn: Connection,
}

impl std::fmt::Debug for SimStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimStore")
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS members (
    uid TEXT PRIMARY KEY, balance INTEGER NOT NULL, operator TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transfers (
    serial TEXT PRIMARY KEY, uid TEXT NOT NULL, amount INTEGER NOT NULL,
    before_balance INTEGER NOT NULL, after_balance INTEGER NOT NULL,
    ready_at_ms INTEGER NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bets (version INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

impl SimStore {
    /// Opens (creating) the state file and loads the book it holds.
    pub fn open(path: &Path) -> Result<(SimStore, Book), StateError> {
        let conn = Connection::open(path)?;
        // Full durability: an answer is only sent after its commit reached the disk.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let mut book = Book::default();
        {
            let mut stmt = conn.prepare("SELECT uid, balance, operator FROM members")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
            for row in rows {
                let (uid, v): (String, (i64, String)) = row?;
                book.members.insert(uid, v);
            }
            let mut stmt = conn.prepare(
                "SELECT serial, uid, amount, before_balance, after_balance, ready_at_ms, at_ms \
                 FROM transfers",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    SimTransfer {
                        uid: r.get(1)?,
                        amount: r.get(2)?,
                        before: r.get(3)?,
                        after: r.get(4)?,
                        ready_at_ms: r.get(5)?,
                        at_ms: r.get(6)?,
                    },
                ))
            })?;
            for row in rows {
                let (serial, t) = row?;
                book.transfers.insert(serial, t);
            }
            let mut stmt = conn.prepare("SELECT at_ms, record FROM rounds ORDER BY seq")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (at, record) = row?;
                book.rounds
                    .push((at, serde_json::from_str(&record).unwrap_or_default()));
            }
            let mut stmt = conn.prepare("SELECT version, record FROM bets ORDER BY version")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (version, record) = row?;
                book.last_bet_version = book.last_bet_version.max(version);
                book.bet_log
                    .push(serde_json::from_str(&record).unwrap_or_default());
            }
        }
        Ok((SimStore { conn }, book))
    }

    /// The port this simulator listened on last time, if any.
    pub fn port(&self) -> Option<u16> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'port'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .ok()
            .flatten()
            .and_then(|p| p.parse().ok())
    }

    pub fn set_port(&self, port: u16) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('port', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![port.to_string()],
        )?;
        Ok(())
    }

    pub fn add_member(&self, uid: &str, operator: &str) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT INTO members (uid, balance, operator) VALUES (?1, 0, ?2)",
            params![uid, operator],
        )?;
        Ok(())
    }

    pub fn forget_member(&self, uid: &str) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM members WHERE uid = ?1", params![uid])?;
        Ok(())
    }

    /// A transfer and the member balance it leaves, in one transaction.
    pub fn apply(&mut self, serial: &str, t: &SimTransfer) -> Result<(), StateError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE members SET balance = ?1 WHERE uid = ?2",
            params![t.after, t.uid],
        )?;
        tx.execute(
            "INSERT INTO transfers (serial, uid, amount, before_balance, after_balance, \
             ready_at_ms, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                serial,
                t.uid,
                t.amount,
                t.before,
                t.after,
                t.ready_at_ms,
                t.at_ms
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A JDB round played and the balance it leaves, in one transaction.
    pub fn add_round(
        &mut self,
        uid: &str,
        balance: i64,
        at_ms: i64,
        record: &serde_json::Value,
    ) -> Result<(), StateError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE members SET balance = ?1 WHERE uid = ?2",
            params![balance, uid],
        )?;
        tx.execute(
            "INSERT INTO rounds (at_ms, record) VALUES (?1, ?2)",
            params![at_ms, record.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Versions of a LuckySports bet and the balance they leave, in one transaction.
    pub fn add_bets(
        &mut self,
        uid: &str,
        balance: i64,
        records: &[serde_json::Value],
    ) -> Result<(), StateError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE members SET balance = ?1 WHERE uid = ?2",
            params![balance, uid],
        )?;
        for r in records {
            tx.execute(
                "INSERT INTO bets (version, record) VALUES (?1, ?2)",
                params![r["version"].as_i64().unwrap_or_default(), r.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Test control: every "in progress" period ends now.
    pub fn finish_in_progress(&self, now_ms: i64) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE transfers SET ready_at_ms = ?1 WHERE ready_at_ms > ?1",
            params![now_ms],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SimKind, SimRefusal, default_config, spawn};

    /// What a durable simulator acknowledged is there after it stops (or dies) and starts
    /// again on the same file, on the same port when that is free.
    #[test]
    fn state_and_port_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = super::super::SimConfig {
            state_path: Some(dir.path().join("sims").join("jdb.sqlite")),
            ..default_config(SimKind::Jdb)
        };
        let first = spawn(SimKind::Jdb, config.clone()).unwrap();
        let addr = first.addr;
        {
            let mut book = first.state.book.lock().unwrap();
            assert_eq!(book.add_member("p1", "dc"), Ok(true));
            assert_eq!(book.add_member("p1", "dc"), Ok(false));
            book.apply("s1", "p1", 500, 0).unwrap();
            book.apply("s2", "p1", -200, 0).unwrap();
            assert_eq!(
                book.apply("s2", "p1", -1, 0).err(),
                Some(SimRefusal::Duplicate)
            );
            assert_eq!(book.add_member("p2", "dc"), Ok(true));
            assert_eq!(book.forget_member("p2"), Ok(true));
        }
        drop(first);
        let second = spawn(SimKind::Jdb, config).unwrap();
        assert_eq!(second.addr, addr);
        let book = second.state.book.lock().unwrap();
        assert_eq!(book.members.get("p1"), Some(&(300, "dc".to_owned())));
        assert!(!book.members.contains_key("p2"));
        assert_eq!(book.transfers["s2"].after, 300);
        assert_eq!(book.transfers.len(), 2);
    }
}
