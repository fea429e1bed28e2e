//! A minimal RFC 5321 SMTP server for tests (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET,
//! QUIT, no TLS) that keeps every message it accepts, with a MIME reader for what it kept:
//! headers (unfolded, RFC 2047 words decoded) and the parts of a multipart body (base64 and
//! quoted-printable decoded).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the sink does with the next RCPT commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// 451: try again later.
    Transient,
    /// 550: mailbox unavailable, for good.
    Permanent,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub auth_user: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
}

pub struct SmtpSink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    mode: Arc<Mutex<Mode>>,
    pub refused: Arc<Mutex<u32>>,
}

pub const USER: &str = "mailer";
pub const PASSWORD: &str = "mail-secret";

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(Mode::Accept));
        let refused = Arc::new(Mutex::new(0));
        let (r, m, f) = (received.clone(), mode.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, m, f) = (r.clone(), m.clone(), f.clone());
                tokio::spawn(async move {
                    let _ = session(stream, r, m, f).await;
                });
            }
        });
        SmtpSink {
            port,
            received,
            mode,
            refused,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until at least `n` messages arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            if self.count() >= n {
                return self.received.lock().unwrap().clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} messages, got {}", self.count());
    }

    /// The settings document a client stores for this server.
    pub fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "host": "127.0.0.1", "port": self.port, "security": "none",
            "username": USER, "password": PASSWORD,
            "from": "no-reply@casino.example", "from_name": "Test Casino",
            "timeout_ms": 5000,
        })
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    mode: Arc<Mutex<Mode>>,
    refused: Arc<Mutex<u32>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut auth_user = None;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
        } else if upper.starts_with("AUTH PLAIN") {
            let b64 = command[10..].trim();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default();
            let parts: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            if parts.len() == 3 && parts[1] == USER.as_bytes() && parts[2] == PASSWORD.as_bytes() {
                auth_user = Some(USER.to_owned());
                "235 2.7.0 accepted\r\n".into()
            } else {
                "535 5.7.8 bad credentials\r\n".into()
            }
        } else if upper.starts_with("MAIL FROM:") {
            if auth_user.is_none() {
                "530 5.7.0 authentication required\r\n".into()
            } else {
                mail_from = command[10..].trim().to_owned();
                rcpt_to.clear();
                "250 2.1.0 ok\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            let m = *mode.lock().unwrap();
            match m {
                Mode::Accept => {
                    rcpt_to.push(command[8..].trim().to_owned());
                    "250 2.1.5 ok\r\n".into()
                }
                Mode::Transient => {
                    *refused.lock().unwrap() += 1;
                    "451 4.3.0 try again later\r\n".into()
                }
                Mode::Permanent => {
                    *refused.lock().unwrap() += 1;
                    "550 5.1.1 no such mailbox\r\n".into()
                }
            }
        } else if upper == "DATA" {
            write.write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l).await? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                // Dot-unstuffing (RFC 5321 4.5.2).
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            received.lock().unwrap().push(Received {
                auth_user: auth_user.clone(),
                mail_from: mail_from.clone(),
                rcpt_to: rcpt_to.clone(),
                data,
            });
            "250 2.0.0 queued\r\n".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 ok\r\n".into()
        } else {
            "502 5.5.2 not implemented\r\n".into()
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// A parsed message or part.
#[derive(Debug, Clone)]
pub struct Mime {
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub parts: Vec<Mime>,
}

impl Mime {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn part(&self, content_type: &str) -> Option<&Mime> {
        self.parts.iter().find(|p| {
            p.header("Content-Type")
                .is_some_and(|t| t.to_ascii_lowercase().starts_with(content_type))
        })
    }
}

pub fn parse(raw: &str) -> Mime {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    for h in &mut headers {
        h.1 = decode_words(&h.1);
    }
    let mut mime = Mime {
        headers,
        body: String::new(),
        parts: Vec::new(),
    };
    let content_type = mime
        .header("Content-Type")
        .unwrap_or("text/plain")
        .to_owned();
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .expect("boundary")
            .trim_matches('"')
            .to_owned();
        let delimiter = format!("--{boundary}");
        for chunk in body.split(&delimiter).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            mime.parts.push(parse(chunk.trim_start_matches("\r\n")));
        }
    } else {
        let encoding = mime
            .header("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        mime.body = match encoding.as_str() {
            "base64" => String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(body.split_whitespace().collect::<String>())
                    .expect("base64 body"),
            )
            .expect("utf-8 body"),
            "quoted-printable" => quoted_printable(body, false),
            _ => body.to_owned(),
        };
    }
    mime
}

fn quoted_printable(text: &str, underscores: bool) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'_' if underscores => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8 after quoted-printable")
}

/// RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`); whitespace between two words
/// is dropped.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        let after = &rest[start + 2..];
        let mut fields = after.splitn(3, '?');
        let (Some(_charset), Some(enc), Some(tail)) = (fields.next(), fields.next(), fields.next())
        else {
            out.push_str(&rest[start..]);
            return out;
        };
        let Some(end) = tail.find("?=") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let text = &tail[..end];
        let decoded = if enc.eq_ignore_ascii_case("b") {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .expect("b word"),
            )
            .expect("utf-8 word")
        } else {
            quoted_printable(text, true)
        };
        out.push_str(&decoded);
        last_was_word = true;
        rest = &tail[end + 2..];
    }
    out.push_str(rest);
    out
}
