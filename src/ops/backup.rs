//! `nashub backup <path>`: an online, consistent copy of a SQLite hub database while nodes keep
//! writing. `VACUUM INTO` reads one snapshot (a read transaction: writers go on, WAL included),
//! writes a compact standalone file, and the copy is checked and synced before it takes its
//! name, so `path` only ever holds a whole backup. MySQL is backed up with its own tools
//! (deploy/RUNBOOK.md): the command says so instead of copying half of it.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;

/// What was written.
#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub journal_entries: i64,
}

/// Copies the SQLite database at `database_url` to `target` (which must not exist).
pub fn sqlite_backup(database_url: &str, target: &Path) -> anyhow::Result<BackupReport> {
    anyhow::ensure!(
        database_url.starts_with("sqlite:"),
        "nashub backup copies SQLite databases; back up MySQL with mysqldump --single-transaction \
         or a physical backup tool (deploy/RUNBOOK.md)"
    );
    let source = sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
        .context("database URL")?
        .get_filename()
        .to_path_buf();
    anyhow::ensure!(
        source.exists(),
        "no database at {} (nothing to back up)",
        source.display()
    );
    anyhow::ensure!(
        !target.exists(),
        "{} exists: a backup never overwrites a file",
        target.display()
    );
    let file_name = target
        .file_name()
        .and_then(|n| n.to_str())
        .context("the backup path needs a file name")?;
    let partial = target.with_file_name(format!(".{file_name}.{}.partial", std::process::id()));
    let _ = std::fs::remove_file(&partial);
    let result = copy_checked(&source, &partial);
    let journal_entries = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("sync {}", partial.display()))?;
    // A hard link fails if `target` appeared meanwhile: never replace someone's file.
    let linked = std::fs::hard_link(&partial, target);
    let _ = std::fs::remove_file(&partial);
    linked.with_context(|| format!("cannot create {}", target.display()))?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(BackupReport {
        path: target.to_path_buf(),
        bytes: std::fs::metadata(target)?.len(),
        journal_entries,
    })
}

/// `VACUUM INTO` then a check of the copy; returns the copy's journal entry count.
fn copy_checked(source: &Path, partial: &Path) -> anyhow::Result<i64> {
    let conn = rusqlite::Connection::open_with_flags(
        source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("open {}", source.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = partial
        .to_str()
        .context("the backup path must be valid UTF-8")?;
    conn.execute("VACUUM INTO ?1", [target])
        .with_context(|| format!("VACUUM INTO {}", partial.display()))?;
    drop(conn);
    let copy = rusqlite::Connection::open_with_flags(
        partial,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let check: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    anyhow::ensure!(
        check == "ok",
        "the copy failed its integrity check: {check}"
    );
    Ok(copy.query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))?)
}
