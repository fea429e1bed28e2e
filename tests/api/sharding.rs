//! The hub's MySQL SQL avoids what sharded MySQL-compatible engines (Vitess, TiDB) lack, and
//! every feature it does use that they would not carry is a known, documented exception
//! (deploy/SHARDING.md): a new trigger, a new table without `client_id`, a new named lock or
//! any of the refused features fails here until the note says what would change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// (file, upper-cased text) of every MySQL migration and every store source (the SQL texts).
fn sql_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    files(&root.join("migrations/mysql"), "sql", &mut paths);
    files(&root.join("src/store"), "rs", &mut paths);
    paths.sort();
    assert!(paths.len() > 20, "{paths:?}");
    paths
        .into_iter()
        // SQLite-only code is not sent to a MySQL-compatible engine.
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            !name.starts_with("sqlite")
        })
        .map(|p| {
            // Comments are prose, not SQL.
            let text: String = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    !(l.starts_with("//") || l.starts_with("--"))
                })
                .map(|l| format!("{l}\n"))
                .collect();
            (
                p.strip_prefix(root).unwrap().display().to_string(),
                text.to_uppercase(),
            )
        })
        .collect()
}

/// Features Vitess or TiDB lack (deploy/SHARDING.md, first table).
const REFUSED: &[(&str, &str)] = &[
    ("CREATE PROCEDURE", "stored procedures"),
    ("CREATE FUNCTION", "stored functions"),
    ("CALL ", "stored procedure calls"),
    ("CREATE EVENT", "events"),
    ("LOCK TABLES", "table locks"),
    ("SET @", "user variables"),
    (":=", "user variable assignment"),
    ("FULLTEXT", "full-text indexes"),
    ("SPATIAL", "spatial indexes"),
    ("XA START", "XA transactions"),
    ("XA COMMIT", "XA transactions"),
    ("SQL_CALC_FOUND_ROWS", "found rows"),
    ("FOUND_ROWS(", "found rows"),
    ("WITH RECURSIVE", "recursive queries"),
    ("AS SELECT", "CREATE TABLE ... AS SELECT"),
];

#[test]
fn the_sql_avoids_what_sharded_engines_lack() {
    let sources = sql_sources();
    let mut found = Vec::new();
    for (file, text) in &sources {
        for (needle, what) in REFUSED {
            if text.contains(needle) {
                found.push(format!("{file}: {what} ({needle})"));
            }
        }
        // A user variable read: `@name` (not `@@system`).
        let bytes = text.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'@'
                && (i == 0 || bytes[i - 1] != b'@')
                && bytes
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                && file.ends_with(".sql")
            {
                found.push(format!("{file}: user variable at byte {i}"));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_known_exceptions_are_exactly_the_documented_ones() {
    let sources = sql_sources();
    let note = include_str!("../../deploy/SHARDING.md");

    // Triggers: only the read cache's epoch bumps, each only updating cache_epoch.
    let mut triggers = BTreeSet::new();
    for (file, text) in &sources {
        for (at, _) in text.match_indices("CREATE TRIGGER ") {
            let rest = &text[at + "CREATE TRIGGER ".len()..];
            let name = rest.split_whitespace().next().unwrap().to_lowercase();
            let body = rest.split(';').next().unwrap();
            assert!(
                name.ends_with("_bump_epoch") && body.contains("UPDATE CACHE_EPOCH SET"),
                "{file}: trigger {name} is not a documented cache_epoch bump: {body}"
            );
            triggers.insert(name);
        }
    }
    assert_eq!(triggers.len(), 13, "{triggers:?}");
    assert!(note.contains("`*_bump_epoch` triggers"));

    // Named locks: the migration lock alone.
    let locks: Vec<&String> = sources
        .iter()
        .filter(|(_, t)| t.contains("GET_LOCK("))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(locks, ["src/store/mysql.rs"]);
    assert_eq!(
        sources
            .iter()
            .map(|(_, t)| t.matches("GET_LOCK(").count())
            .sum::<usize>(),
        1
    );
    assert!(note.contains("**`GET_LOCK`**"));

    // Tables without client_id: exactly those the note lists.
    let mut without = BTreeSet::new();
    for (file, text) in sources.iter().filter(|(f, _)| f.ends_with(".sql")) {
        for (at, _) in text.match_indices("CREATE TABLE ") {
            let rest = &text[at + "CREATE TABLE ".len()..];
            let name = rest
                .split(|c: char| c.is_whitespace() || c == '(')
                .next()
                .unwrap()
                .to_lowercase();
            let body = rest.split("ENGINE").next().unwrap();
            let added_later = sources.iter().any(|(_, t)| {
                t.contains(&format!(
                    "ALTER TABLE {} ADD COLUMN CLIENT_ID",
                    name.to_uppercase()
                ))
            });
            if !body.contains("CLIENT_ID ") && !added_later {
                without.insert(name);
            }
        }
        let _ = file;
    }
    let documented = [
        "cache_epoch",
        "channel_preferences",
        "client_secret_versions",
        "clients",
        "games",
        "job_leases",
        "payment_events",
        "providers",
        "refresh_tokens",
        "second_factor_challenges",
        "staff_recovery_codes",
        "staff_totp",
        "user_devices",
        "user_languages",
    ];
    assert_eq!(
        without.iter().map(String::as_str).collect::<Vec<_>>(),
        documented,
        "a table without client_id must be listed in deploy/SHARDING.md"
    );
    for table in documented {
        assert!(note.contains(&format!("`{table}`")), "{table}");
    }
}
