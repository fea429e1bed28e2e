//! The clock that time-based channel rules read (code expiry, retry backoff, rate-limit
//! windows): the system clock, or in tests the system clock plus an offset a test moves, so a
//! test jumps an hour ahead without sleeping.

use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// A file holding milliseconds to add (absent or unreadable: 0).
    offset_file: Option<Arc<PathBuf>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// The system clock plus the offset written in `path` (tests: `test_clock_offset_file`).
    pub fn with_offset_file(path: PathBuf) -> Self {
        Self {
            offset_file: Some(Arc::new(path)),
        }
    }

    pub fn now_ms(&self) -> i64 {
        let offset = self.offset_file.as_deref().map_or(0, |path| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .unwrap_or(0)
        });
        super::now_ms() + offset
    }
}
