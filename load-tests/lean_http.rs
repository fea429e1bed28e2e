//! A minimal HTTP/1.1 keep-alive client for the load generators.
//!
//! The generators share the hub's two cores; a general-purpose client (reqwest: connection pool,
//! header maps, JSON values per request) cost more CPU per request than the hub's own handler
//! and took it from the hub being measured. This one keeps one connection per caller, writes
//! each request with a single `write`, and parses only the status line and `Content-Length`:
//! what `wrk` does, in the same process as the rest of the generator.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    buf: Vec<u8>,
    /// The path of the next deposit, kept to reuse its allocation.
    path: String,
}

/// `http://host:port` → `host:port`.
fn authority(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

impl Conn {
    /// A connection to `base` (`http://host:port`), opened on first use.
    pub fn new(base: &str) -> Conn {
        Conn {
            addr: authority(base).to_owned(),
            stream: None,
            request: Vec::with_capacity(512),
            buf: Vec::with_capacity(4096),
            path: String::new(),
        }
    }

    /// The deposit both generators send: 1.00 to `user_id`'s wallet under `key`, with
    /// `authorization` (`Bearer <token>`).
    pub async fn deposit(
        &mut self,
        authorization: &str,
        user_id: &str,
        key: &str,
    ) -> io::Result<(u16, &[u8])> {
        use std::fmt::Write;
        let mut path = std::mem::take(&mut self.path);
        path.clear();
        let _ = write!(path, "/api/v1/users/{user_id}/wallet/deposit");
        let headers = [("Authorization", authorization), ("Idempotency-Key", key)];
        let sent = self.send(&path, &headers, br#"{"amount":"1.00"}"#).await;
        self.path = path;
        sent.map(|len| self.answer(len))
    }

    /// POSTs a JSON `body` with the given extra headers; returns the status and the body.
    /// A connection the server closed is reopened once.
    pub async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<(u16, &[u8])> {
        let len = self.send(path, headers, body).await?;
        Ok(self.answer(len))
    }

    /// Writes the request and reads its answer into `self.buf`.
    async fn send(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<(u16, usize, usize)> {
        self.request.clear();
        self.request.extend_from_slice(b"POST ");
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.request.extend_from_slice(self.addr.as_bytes());
        self.request
            .extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
        self.request
            .extend_from_slice(body.len().to_string().as_bytes());
        for (name, value) in headers {
            self.request.extend_from_slice(b"\r\n");
            self.request.extend_from_slice(name.as_bytes());
            self.request.extend_from_slice(b": ");
            self.request.extend_from_slice(value.as_bytes());
        }
        self.request.extend_from_slice(b"\r\n\r\n");
        self.request.extend_from_slice(body);
        let fresh = self.stream.is_none();
        match self.exchange().await {
            Err(_) if !fresh => {
                self.stream = None;
                self.exchange().await
            }
            other => other,
        }
    }

    fn answer(&self, (status, head, len): (u16, usize, usize)) -> (u16, &[u8]) {
        (status, &self.buf[head..head + len])
    }

    /// Sends `self.request`, reads one response into `self.buf`: (status, header length,
    /// body length).
    async fn exchange(&mut self) -> io::Result<(u16, usize, usize)> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(&self.request).await?;
        self.buf.clear();
        loop {
            if let Some((status, head, len, close)) = parse_head(&self.buf)? {
                while self.buf.len() < head + len {
                    read_more(stream, &mut self.buf).await?;
                }
                if close {
                    self.stream = None;
                }
                return Ok((status, head, len));
            }
            read_more(stream, &mut self.buf).await?;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    if stream.read_buf(buf).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Status, header length, body length and whether the server will close, once the head is in.
fn parse_head(buf: &[u8]) -> io::Result<Option<(u16, usize, usize, bool)>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let (mut len, mut close) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            len = value.parse().ok();
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked answers are not expected"));
        }
    }
    let len = len.ok_or_else(|| bad("no Content-Length"))?;
    Ok(Some((status, end + 4, len, close)))
}

/// Seconds of CPU this process has used (user + system).
pub fn own_cpu_secs() -> f64 {
    cpu_secs_of("self")
}

/// Seconds of CPU process `pid` (or `"self"`) has used (user + system), from `/proc/<pid>/stat`.
pub fn cpu_secs_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5); 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
