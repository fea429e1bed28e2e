//! The ledger writer's VFS: SQLite's own `unix` VFS, except that a transaction's WAL frames
//! reach the kernel in one `pwrite` instead of two per page (a 24-byte frame header, then the
//! page). A lone deposit writes ~16 frames, so its commit made 32 write calls; each is a
//! syscall, an inode lock and a page-cache walk, which on this VM cost about as much CPU as the
//! commit's `fdatasync` (issue 22; `disk_floor --one-write` shows the difference).
//!
//! Only the WAL file is wrapped; every other file is the `unix` VFS's own. Appends (a write
//! that starts where the last one ended) are buffered; the buffer goes to the file:
//! - right after the page of a commit frame (its header carries the database size): before
//!   SQLite publishes the commit in the WAL index, so no reader, checkpoint or WAL sync can
//!   see a frame that is not in the file;
//! - before any write elsewhere in the file (checksum rewrites, a page overwritten in place,
//!   the WAL header after a restart), which is then written through, keeping the order;
//! - before every read, sync, truncate, size query, file control and close;
//! - when it reaches [`BUFFER_MAX`].
//!
//! A failed write is reported by the call that made it, as SQLite's own writes are: a commit
//! whose frames could not be written fails and rolls back.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The VFS's registered name: the writer opens its connection with it.
pub const NAME: &CStr = c"nashub-wal";

/// A WAL frame's header; its bytes 4..8 are the database size in pages after a commit, 0 on
/// every other frame.
const FRAME_HEADER: usize = 24;

/// Appends held at most: the `unix` VFS writes at most 128 KiB - 1 per call (it masks larger
/// sizes), so a buffer never exceeds one of its writes. A lone deposit's ~16 frames (66 KB) are
/// one write; a large batch goes out in pieces of this size.
const BUFFER_MAX: usize = 0x1ffff;

/// What SQLite allocates per open file (`szOsFile` bytes): this header, then the `unix`
/// VFS's own file object at [`inner_offset`].
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    pending: *mut Pending,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    start: i64,
    /// Where the last write ended: a write starting here is an append.
    end: i64,
    /// The last write was a commit frame's header: its page completes the transaction.
    commit_next: bool,
}

fn inner_offset() -> usize {
    std::mem::size_of::<WalFile>().next_multiple_of(16)
}

/// Registers the VFS once per process; the name to open the writer's connection with.
pub fn register() -> Result<&'static CStr, String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: `sqlite3_vfs_find` returns SQLite's static `unix` VFS (or null); the copy
            // is leaked, so the registered object lives as long as the process.
            unsafe {
                let unix = ffi::sqlite3_vfs_find(c"unix".as_ptr());
                if unix.is_null() {
                    return Err("SQLite has no unix VFS".to_owned());
                }
                let mut vfs: ffi::sqlite3_vfs = *unix;
                vfs.zName = NAME.as_ptr();
                vfs.pNext = std::ptr::null_mut();
                // The `unix` VFS reads its own `pAppData` only in its `xOpen`, which is always
                // called with the `unix` VFS itself.
                vfs.pAppData = unix.cast();
                vfs.szOsFile = c_int::try_from(inner_offset())
                    .ok()
                    .and_then(|h| h.checked_add((*unix).szOsFile))
                    .ok_or("VFS file size overflows")?;
                vfs.xOpen = Some(open);
                let vfs = Box::leak(Box::new(vfs));
                match ffi::sqlite3_vfs_register(vfs, 0) {
                    ffi::SQLITE_OK => Ok(()),
                    rc => Err(format!("cannot register the WAL VFS: SQLite error {rc}")),
                }
            }
        })
        .clone()
        .map(|()| NAME)
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite calls this with our registered VFS (whose `pAppData` is the `unix` VFS)
    // and `szOsFile` bytes at `file`, room for the header and the `unix` file after it.
    unsafe {
        let unix: *mut ffi::sqlite3_vfs = (*vfs).pAppData.cast();
        let Some(unix_open) = (*unix).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return unix_open(unix, name, file, flags, out_flags);
        }
        let wal: *mut WalFile = file.cast();
        let inner: *mut ffi::sqlite3_file = file.cast::<u8>().add(inner_offset()).cast();
        (*wal).base.pMethods = std::ptr::null();
        let rc = unix_open(unix, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        (*wal).inner = inner;
        (*wal).pending = Box::into_raw(Box::new(Pending {
            end: -1,
            ..Pending::default()
        }));
        (*wal).base.pMethods = &METHODS;
        ffi::SQLITE_OK
    }
}

/// The `unix` file, its methods and the buffer of a file opened by [`open`].
///
/// # Safety
/// `file` must be a WAL file opened by [`open`] and not closed.
unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> (
    *mut ffi::sqlite3_file,
    &'a ffi::sqlite3_io_methods,
    &'a mut Pending,
) {
    // SAFETY: per the contract, `file` is a live `WalFile` whose `inner` was opened by the
    // `unix` VFS (so its methods are set) and whose `pending` is ours until `close`.
    unsafe {
        let wal: *mut WalFile = file.cast();
        let inner = (*wal).inner;
        (inner, &*(*inner).pMethods, &mut *(*wal).pending)
    }
}

/// Writes the buffered appends, if any.
///
/// # Safety
/// `inner` and `methods` are a live `unix` file and its methods.
unsafe fn flush(
    inner: *mut ffi::sqlite3_file,
    methods: &ffi::sqlite3_io_methods,
    p: &mut Pending,
) -> c_int {
    if p.buf.is_empty() {
        return ffi::SQLITE_OK;
    }
    let Some(write) = methods.xWrite else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let Ok(len) = c_int::try_from(p.buf.len()) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // SAFETY: the buffer is `len` readable bytes; `unix` writes all of them or fails.
    let rc = unsafe { write(inner, p.buf.as_ptr().cast(), len, p.start) };
    p.buf.clear();
    rc
}

/// Flushes, then runs `then` on the `unix` file.
///
/// # Safety
/// As [`parts`].
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    then: impl FnOnce(*mut ffi::sqlite3_file, &ffi::sqlite3_io_methods) -> c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        let (inner, methods, p) = parts(file);
        match flush(inner, methods, p) {
            ffi::SQLITE_OK => then(inner, methods),
            rc => rc,
        }
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite passes our open WAL file and `amt` readable bytes at `data`.
    unsafe {
        let (inner, methods, p) = parts(file);
        let Ok(len) = usize::try_from(amt) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
        let header_commits = len == FRAME_HEADER && bytes[4..8] != [0, 0, 0, 0];
        let completes_commit = len != FRAME_HEADER && p.commit_next;
        p.commit_next = header_commits;
        if offset != p.end {
            // Not an append: what was buffered first, then this, in the order SQLite wrote.
            let rc = flush(inner, methods, p);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            p.end = offset + i64::from(amt);
            let Some(write) = methods.xWrite else {
                return ffi::SQLITE_IOERR_WRITE;
            };
            return write(inner, data, amt, offset);
        }
        if p.buf.len() + len > BUFFER_MAX {
            let rc = flush(inner, methods, p);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if p.buf.is_empty() {
            p.start = offset;
        }
        p.buf.extend_from_slice(bytes);
        p.end = offset + i64::from(amt);
        if completes_commit {
            return flush(inner, methods, p);
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: forwarded to the `unix` file with SQLite's own arguments.
    unsafe {
        flushed(file, |inner, m| match m.xRead {
            Some(f) => f(inner, data, amt, offset),
            None => ffi::SQLITE_IOERR_READ,
        })
    }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: as `read`.
    unsafe {
        flushed(file, |inner, m| match m.xTruncate {
            Some(f) => f(inner, size),
            None => ffi::SQLITE_IOERR_TRUNCATE,
        })
    }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: as `read`.
    unsafe {
        flushed(file, |inner, m| match m.xSync {
            Some(f) => f(inner, flags),
            None => ffi::SQLITE_IOERR_FSYNC,
        })
    }
}

unsafe extern "C" fn file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as `read`.
    unsafe {
        flushed(file, |inner, m| match m.xFileSize {
            Some(f) => f(inner, size),
            None => ffi::SQLITE_IOERR_FSTAT,
        })
    }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: as `read`.
    unsafe {
        flushed(file, |inner, m| match m.xFileControl {
            Some(f) => f(inner, op, arg),
            None => ffi::SQLITE_NOTFOUND,
        })
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file once; `pending` is freed here and never used again.
    unsafe {
        let (inner, methods, p) = parts(file);
        let flushed = flush(inner, methods, p);
        let closed = methods.xClose.map_or(ffi::SQLITE_OK, |f| f(inner));
        let wal: *mut WalFile = file.cast();
        drop(Box::from_raw((*wal).pending));
        (*wal).pending = std::ptr::null_mut();
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarded to the `unix` file.
    unsafe {
        let (inner, m, _) = parts(file);
        m.xLock.map_or(ffi::SQLITE_OK, |f| f(inner, level))
    }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarded to the `unix` file.
    unsafe {
        let (inner, m, _) = parts(file);
        m.xUnlock.map_or(ffi::SQLITE_OK, |f| f(inner, level))
    }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: forwarded to the `unix` file.
    unsafe {
        let (inner, m, _) = parts(file);
        m.xCheckReservedLock
            .map_or(ffi::SQLITE_OK, |f| f(inner, out))
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarded to the `unix` file.
    unsafe {
        let (inner, m, _) = parts(file);
        m.xSectorSize.map_or(4096, |f| f(inner))
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarded to the `unix` file.
    unsafe {
        let (inner, m, _) = parts(file);
        m.xDeviceCharacteristics.map_or(0, |f| f(inner))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, OpenFlags};

    use super::*;

    fn writer(path: &std::path::Path) -> Connection {
        let conn =
            Connection::open_with_flags_and_vfs(path, OpenFlags::default(), register().unwrap())
                .unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn
    }

    /// Every commit is readable by another connection (its own file handle, the plain `unix`
    /// VFS) as soon as it returns: small and large transactions, pages written twice in one
    /// transaction (checksum rewrites after a cache spill), rollbacks after a spill, and WAL
    /// restarts after checkpoints; the file then passes SQLite's integrity check.
    #[test]
    fn every_commit_is_in_the_file_when_it_returns() {
        let dir = std::env::temp_dir().join(format!("nashub-wal-vfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let w = writer(&path);
        w.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
            .unwrap();
        let r = Connection::open(&path).unwrap();
        let mut expected: i64 = 0;
        for round in 0..300_i64 {
            // A tiny cache makes big transactions spill frames before their commit.
            let rolls_back = round % 13 == 3;
            let tiny = round % 7 == 0 || rolls_back;
            w.pragma_update(None, "cache_size", if tiny { 2 } else { -2000 })
                .unwrap();
            let rows = match round % 10 {
                _ if rolls_back => 400,
                0 => 400,
                5 => 60,
                _ => 1 + round % 3,
            };
            let tx = w.unchecked_transaction().unwrap();
            // With a tiny cache, pages spilled in the first pass are written again in the
            // second: SQLite overwrites those frames in place and rewrites checksums.
            let passes = if tiny { 2 } else { 1 };
            for i in (0..rows).cycle().take((rows * passes) as usize) {
                let k = (round * 37 + i * 7) % 500;
                tx.execute(
                    "INSERT INTO t (k, v) VALUES (?1, zeroblob(700)) \
                     ON CONFLICT (k) DO UPDATE SET v = zeroblob(700 + ?2 % 50)",
                    rusqlite::params![k, round],
                )
                .unwrap();
            }
            if rolls_back {
                tx.rollback().unwrap();
            } else {
                tx.commit().unwrap();
                expected = w
                    .query_row("SELECT COUNT(*) FROM t", [], |x| x.get(0))
                    .unwrap();
            }
            let seen: i64 = r
                .query_row("SELECT COUNT(*) FROM t", [], |x| x.get(0))
                .unwrap();
            assert_eq!(seen, expected, "round {round}");
            // Checkpoints restart the WAL (its header rewritten at offset 0); none near the end,
            // so the crash copy below has frames to recover.
            if round >= 270 {
                continue;
            }
            if round % 50 == 49 {
                r.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
            } else if round % 25 == 24 {
                r.execute_batch("PRAGMA wal_checkpoint(RESTART)").unwrap();
            }
        }
        // What a crash leaves (the database file and its WAL, no WAL index) recovers to the
        // last commit: every frame is in the file with valid checksums.
        let crashed = dir.join("crashed");
        std::fs::create_dir_all(&crashed).unwrap();
        for f in ["t.db", "t.db-wal"] {
            std::fs::copy(dir.join(f), crashed.join(f)).unwrap();
        }
        assert!(std::fs::metadata(crashed.join("t.db-wal")).unwrap().len() > 0);
        let recovered = Connection::open(crashed.join("t.db")).unwrap();
        let count: i64 = recovered
            .query_row("SELECT COUNT(*) FROM t", [], |x| x.get(0))
            .unwrap();
        assert_eq!(count, expected);
        let ok: String = recovered
            .query_row("PRAGMA integrity_check", [], |x| x.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        drop((w, r, recovered));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
