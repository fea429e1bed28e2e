//! Parser fuzzing (issue 23): every place that reads untrusted bytes, fed the checked-in seeds
//! of `tests/fuzz/<target>/` (each as is, then mutated: bytes flipped, inserted, cut, pieces of
//! other seeds spliced in) and generated text. Properties: no panic, and where a parser accepts,
//! what it accepted is what a well-formed input would give. Bounded case counts keep each target
//! to seconds; a failure is shrunk by proptest and the minimal input belongs in the corpus.
//!
//! In-process targets: amounts, access tokens (JWT), `/ws` and `/socket.io/` client frames and
//! hellos, JDB's AES payloads, LuckySports callback bodies, configuration files. Over the wire
//! (a real hub): the websocket handshake (raw request heads on `/ws`, `/socket.io/`) and
//! provider callback bodies: the hub answers each with a 4xx or 101, never 5xx, and stays up.

use std::io::{Read, Write};
use std::time::Duration;

use nashub::domain::Amount;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use crate::backend_tests;
use crate::helpers::{Backend, TestHub};

/// The seeds of one target, as bytes.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Cut(usize, usize),
    Splice(usize, usize, usize),
}

/// A seed, mutated by a few edits (positions taken modulo the length).
fn mutated(target: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    let n = seeds.len();
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 0..16_usize).prop_map(|(i, l)| Edit::Cut(i, l)),
        (any::<usize>(), 0..n, any::<usize>()).prop_map(|(i, s, j)| Edit::Splice(i, s, j)),
    ];
    (0..n, prop::collection::vec(edit, 0..6)).prop_map(move |(pick, edits)| {
        let mut bytes = seeds[pick].clone();
        for edit in edits {
            let len = bytes.len().max(1);
            match edit {
                Edit::Flip(i, b) if !bytes.is_empty() => bytes[i % len] ^= b,
                Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Edit::Cut(i, l) if !bytes.is_empty() => {
                    let start = i % len;
                    let end = (start + l).min(bytes.len());
                    bytes.drain(start..end);
                }
                Edit::Splice(i, s, j) => {
                    let other = &seeds[s];
                    let from = j % other.len().max(1);
                    let piece = other[from.min(other.len())..].to_vec();
                    let at = i % (bytes.len() + 1);
                    bytes.splice(at..at, piece.into_iter().take(32));
                }
                _ => {}
            }
        }
        bytes
    })
}

/// Seeds mutated, or text from scratch.
fn inputs(target: &str) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => mutated(target).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => any::<String>(),
    ]
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

#[test]
fn amounts_parse_exactly_or_refuse() {
    for seed in seeds("amount") {
        let _ = Amount::parse(&String::from_utf8_lossy(&seed), 2);
    }
    run(2000, (inputs("amount"), 0..=8_u32), |(text, exponent)| {
        if let Ok(amount) = Amount::parse(&text, exponent) {
            // Accepted: plain ASCII digits, at most `exponent` decimals, positive, and the
            // canonical rendering parses back to the same value.
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            prop_assert!(amount.minor() > 0);
            let shown = nashub::domain::format_minor(amount.minor(), exponent);
            prop_assert_eq!(Amount::parse(&shown, exponent).unwrap(), amount);
        }
        Ok(())
    });
}

#[test]
fn access_tokens_never_verify_unless_signed() {
    let service = nashub::auth::tokens::TokenService::with_previous(&[7; 32], &[vec![8; 32]], 900);
    let good = service.issue_access("u1", Some("c1"), nashub::domain::Role::Player, "s1");
    assert!(service.verify_access(&good).is_ok());
    let bytes_of_good = good.clone().into_bytes();
    let near_good = (any::<usize>(), any::<u8>()).prop_map(move |(i, b)| {
        let mut t = bytes_of_good.clone();
        let i = i % t.len();
        t[i] = if t[i] == b { b.wrapping_add(1) } else { b };
        String::from_utf8_lossy(&t).into_owned()
    });
    run(1500, prop_oneof![inputs("jwt"), near_good], |text| {
        if text != good {
            // Changing any byte of a signed token must not yield a valid one, except
            // where base64 decodes the changed character to the same bits.
            if let Ok(claims) = service.verify_access(&text) {
                prop_assert_eq!(&claims.sub, "u1");
            }
        }
        Ok(())
    });
}

#[test]
fn websocket_client_frames_never_panic() {
    use nashub::realtime::codec::{Codec, JsonCodec};
    use nashub::realtime::socketio::SocketIoCodec;
    run(1500, inputs("ws_frame"), |text| {
        let mut codec = JsonCodec;
        let _ = codec.hello(&text);
        let _ = codec.decode(&text);
        Ok(())
    });
    run(1500, inputs("socketio_frame"), |text| {
        let mut codec = SocketIoCodec::new();
        let _ = codec.hello(&text);
        let _ = codec.decode(&text);
        Ok(())
    });
}

#[test]
fn jdb_payloads_decrypt_exactly_or_refuse() {
    use nashub::providers::crypto::{jdb_decrypt, jdb_encrypt};
    let (key, iv) = (*b"0123456789abcdef", *b"fedcba9876543210");
    // Ciphertexts of the seeds, then mutated ciphertexts and arbitrary `x` values.
    let ciphers: Vec<String> = seeds("jdb_payload")
        .iter()
        .map(|s| jdb_encrypt(&key, &iv, s))
        .collect();
    for (seed, x) in seeds("jdb_payload").iter().zip(&ciphers) {
        assert_eq!(jdb_decrypt(&key, &iv, x).as_deref(), Some(seed.as_slice()));
    }
    let mutated_cipher =
        (0..ciphers.len(), any::<usize>(), any::<char>()).prop_map(move |(pick, at, c)| {
            let mut x: Vec<char> = ciphers[pick].chars().collect();
            let at = at % x.len().max(1);
            if x.is_empty() {
                x.push(c);
            } else {
                x[at] = c;
            }
            x.into_iter().collect::<String>()
        });
    run(
        1500,
        prop_oneof![mutated_cipher, any::<String>(), inputs("jdb_payload")],
        |x| {
            if let Some(plain) = jdb_decrypt(&key, &iv, &x) {
                // Whatever decrypts is then read as the sim and adapters read it.
                let _ = serde_json::from_slice::<serde_json::Value>(&plain);
            }
            Ok(())
        },
    );
    // NUL padding: trailing bytes up to 0x20 are padding by the protocol (JSON never ends in
    // one that matters), everything before them comes back exactly.
    run(500, prop::collection::vec(any::<u8>(), 0..300), |plain| {
        let x = jdb_encrypt(&key, &iv, &plain);
        let mut expected = plain;
        while expected.last().is_some_and(|b| *b <= 0x20) {
            expected.pop();
        }
        prop_assert_eq!(jdb_decrypt(&key, &iv, &x), Some(expected));
        Ok(())
    });
}

#[test]
fn luckysports_callback_bodies_never_panic() {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    use nashub::providers::crypto::luckysports_signature;
    use nashub::providers::{CallbackEnvelope, build_adapter};
    let settings = nashub::config::ProviderAccountSettings {
        name: "ls".into(),
        provider: "luckysports".into(),
        base_url: "http://127.0.0.1:9".into(),
        operator: "op".into(),
        secret: "secret".into(),
        ..Default::default()
    };
    let adapter = build_adapter(&settings).unwrap();
    let now_ms = 1_700_000_000_000_i64;
    run(
        1500,
        (mutated("luckysports_body"), any::<bool>()),
        |(body, signed)| {
            let ts = (now_ms / 1000).to_string();
            let signature = if signed {
                luckysports_signature(b"secret", &ts, &body)
            } else {
                "00".repeat(32)
            };
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("x-operator", "op".to_owned()),
                ("x-timestamp", ts),
                ("x-signature", signature),
            ] {
                headers.insert(
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).unwrap(),
                );
            }
            let env = CallbackEnvelope {
                headers: &headers,
                body: &body,
                now_ms,
            };
            let _ = adapter.callback_operator(&env);
            let verified = adapter.verify_callback(&env);
            prop_assert!(signed || verified.is_err(), "unsigned body accepted");
            Ok(())
        },
    );
}

#[test]
fn configuration_files_load_or_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nashub.toml");
    run(600, inputs("config"), |text| {
        std::fs::write(&file, &text).unwrap();
        if let Ok(settings) = nashub::config::Settings::load(Some(&file)) {
            // Accepted settings resolve or refuse, never panic.
            let settings = nashub::config::Settings {
                data_dir: dir.path().join("data"),
                ..settings
            };
            let _ = settings.resolve();
        }
        Ok(())
    });
}

/// Raw request heads on the websocket paths of a real hub: each answered (101, 4xx, or a page
/// when a mutation made it a plain GET; or the connection closed), never 5xx, and the hub still
/// healthy after all of them.
async fn websocket_handshakes_and_callback_bodies_never_break_the_hub(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let addr = hub.base.trim_start_matches("http://").to_owned();
    let heads: Vec<Vec<u8>> = {
        let mut runner = TestRunner::new(Config {
            cases: 1,
            ..Config::default()
        });
        let strategy = mutated("ws_handshake");
        let mut all = seeds("ws_handshake");
        for _ in 0..120 {
            all.push(strategy.new_tree(&mut runner).unwrap().current());
        }
        all
    };
    let statuses = tokio::task::spawn_blocking(move || {
        heads
            .into_iter()
            .map(|head| (raw_exchange(&addr, &head), head))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (status, head) in &statuses {
        assert!(
            status.is_none_or(|s| s < 500),
            "{status:?} for {:?}",
            String::from_utf8_lossy(head)
        );
    }
    assert!(
        statuses
            .iter()
            .any(|(s, _)| *s == Some(101) || *s == Some(401))
    );

    // Callback bodies (signed or not) on both providers' callback path: never 5xx.
    let http = reqwest::Client::new();
    let bodies = {
        let mut runner = TestRunner::new(Config::default());
        let strategy = mutated("luckysports_body");
        (0..60)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect::<Vec<_>>()
    };
    for (i, body) in bodies.into_iter().enumerate() {
        let provider = ["luckysports", "jdb"][i % 2];
        let reply = http
            .post(format!("{}/callbacks/{provider}", hub.base))
            .header("X-Operator", "op")
            .header("X-Timestamp", "1700000000")
            .header("X-Signature", "00")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{status} for {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    let health = http
        .get(format!("{}/health", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

/// Writes one request head and reads the status line (None: closed without an answer).
fn raw_exchange(addr: &str, head: &[u8]) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(head);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let mut buf = [0_u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

backend_tests!(websocket_handshakes_and_callback_bodies_never_break_the_hub);
