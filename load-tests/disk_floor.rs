//! What one durable SQLite commit costs on this disk, without SQLite: append N WAL-shaped frames
//! (a 24-byte header and a page, one `pwrite` each, as SQLite's WAL writer does) and
//! `fdatasync`. The ledger's group commit pays exactly this per batch, so it is the floor under
//! `ledger_bench`'s batch time; disks (and one VM from day to day) differ by several times.
//!
//!     cargo run --release --example disk_floor -- [--dir DIR] [--rounds N] [--every-us N]
//!
//! `--page B --frames N` measures that one shape instead of all eight (16 frames of 4096 B is
//! a lone deposit's commit; `load-tests/table_floors.sh`).
//! `--one-write` writes each commit's frames with one `pwrite` (as a WAL-buffering VFS would).
//! `--every-us N` starts one commit every N µs (2000: 500 commits/s) instead of back to back:
//! what a lone commit costs at an ordinary rate, where the disk and the thread idle between
//! commits (issue 22).
//!
//! DIR defaults to the system temp directory, where `ledger_bench` puts its hubs' databases.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

const HEADER: usize = 24;

fn main() {
    let mut dir = std::env::temp_dir();
    let mut rounds = 60_u32;
    let mut every = Duration::ZERO;
    let mut one_write = false;
    let (mut pages, mut frame_counts) = (vec![1024_usize, 4096], vec![1_usize, 16, 64, 256]);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().expect("flag value");
        match flag.as_str() {
            "--dir" => dir = value().into(),
            "--rounds" => rounds = value().parse().expect("--rounds N"),
            "--one-write" => one_write = true,
            "--page" => pages = vec![value().parse().expect("--page B")],
            "--frames" => frame_counts = vec![value().parse().expect("--frames N")],
            "--every-us" => every = Duration::from_micros(value().parse().expect("--every-us N")),
            other => panic!("unknown flag {other}"),
        }
    }
    let path = dir.join(format!("nashub-disk-floor-{}", std::process::id()));
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("open the test file");
    println!(
        "disk_floor: {} rounds per shape, file in {}, {}",
        rounds,
        dir.display(),
        if every.is_zero() {
            "back to back".to_owned()
        } else {
            format!("one commit every {} µs", every.as_micros())
        }
    );
    for &page in &pages {
        for &frames in &frame_counts {
            let (write, sync, cpu) = measure(&file, page, frames, rounds, every, one_write);
            let bytes = frames * (HEADER + page);
            let commit = write + sync;
            println!(
                "page {page:>4} B x {frames:>3} frames ({:>7.1} KB): writes {:>6.3} ms  fdatasync {:>6.3} ms  \
                 commit {:>6.3} ms  -> {:>6.0} commits/s, {:>6.1} MB/s, {:>4.0} µs CPU per commit",
                bytes as f64 / 1024.0,
                ms(write),
                ms(sync),
                ms(commit),
                1.0 / commit.as_secs_f64(),
                bytes as f64 / commit.as_secs_f64() / 1e6,
                cpu.as_secs_f64() * 1e6,
            );
        }
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
}

/// Average time of the frame writes and of the `fdatasync` for one commit of this shape, and
/// the CPU this thread was charged for it (on a VM each sync's device kick is charged here,
/// and its price moves with the host: the floor under a lone deposit's CPU, issue 22). Like
/// the WAL after a restart, commits overwrite the start of an already written file.
fn measure(
    file: &File,
    page: usize,
    frames: usize,
    rounds: u32,
    every: Duration,
    one_write: bool,
) -> (Duration, Duration, Duration) {
    let header = [7_u8; HEADER];
    let body = vec![1_u8; page];
    let span = (frames * (HEADER + page)) as u64;
    // Eight commits' worth of file, written once and synced: later rounds only overwrite it,
    // so no `fdatasync` has a size change to log.
    let mut offset = 0;
    while offset < 8 * span {
        file.write_all_at(&body, offset).expect("write");
        offset += page as u64;
    }
    file.sync_all().expect("sync");
    let (mut write, mut sync) = (Duration::ZERO, Duration::ZERO);
    let cpu_before = thread_cpu();
    let paced_from = Instant::now();
    for round in 0..rounds {
        if let Some(wait) = (paced_from + every * round).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut offset = span * u64::from(round % 8);
        let start = Instant::now();
        if one_write {
            let mut all = Vec::with_capacity(frames * (HEADER + page));
            for _ in 0..frames {
                all.extend_from_slice(&header);
                all.extend_from_slice(&body);
            }
            file.write_all_at(&all, offset).expect("write");
        } else {
            for _ in 0..frames {
                file.write_all_at(&header, offset).expect("write");
                offset += HEADER as u64;
                file.write_all_at(&body, offset).expect("write");
                offset += page as u64;
            }
        }
        let written = Instant::now();
        file.sync_data().expect("fdatasync");
        write += written - start;
        sync += written.elapsed();
    }
    let cpu = thread_cpu() - cpu_before;
    (write / rounds, sync / rounds, cpu / rounds)
}

fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
