//! The money path's storage: one write algorithm (`write`) over a pure planner (`batch_plan`),
//! run by the group committer (`group_commit`) on sqlx (`sql.rs`, MySQL batches and the provider
//! path on both backends, `include!`d by `sqlite.rs` and `mysql.rs`) or on the SQLite writer
//! thread (`sqlite_writer`, with its WAL sync and checkpointer threads and the VFS that writes a
//! commit's WAL frames at once, `sqlite_wal_vfs`).

pub(super) mod batch_plan;
pub(super) mod commit_linger;
pub(super) mod group_commit;
pub(super) mod sqlite_checkpointer;
pub(super) mod sqlite_wal_sync;
pub(super) mod sqlite_wal_vfs;
pub(super) mod sqlite_writer;
pub(super) mod write;
