//! OpenTelemetry traces (issue 23): a `nashub serve` process exports OTLP/HTTP protobuf to a
//! receiver this test runs; one trace id follows a deposit and a provider transfer-in through
//! the HTTP request, the wallet actor, the ledger write (group commit batch, SQLite writer
//! thread) and the provider call, whose `traceparent` the embedded JDB simulator records. An
//! incoming `traceparent` is continued. Without `otlp_endpoint` nothing is exported, even with
//! the standard `OTEL_EXPORTER_OTLP_*` variables set, and no `traceparent` is sent.
//!
//! Separate processes: the tracing subscriber is process-wide, so in-process hubs would share it.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, HubProcess, Infra, Tree};

/// One exported span, as the test reads it.
#[derive(Debug, Clone)]
struct SpanSeen {
    name: String,
    /// OTLP `SpanKind`: 2 server, 3 client.
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    /// Trace ids of the span's links.
    link_traces: Vec<String>,
    attributes: Vec<(String, String)>,
    service: String,
}

impl SpanSeen {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// In the trace `trace_id`, or linked to it.
    fn joins(&self, trace_id: &str) -> bool {
        self.trace_id == trace_id || self.link_traces.iter().any(|t| t == trace_id)
    }
}

#[derive(Default)]
struct Received {
    exports: usize,
    spans: Vec<SpanSeen>,
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) on its own thread and actix system.
struct Receiver {
    base: String,
    received: Arc<Mutex<Received>>,
    server: actix_web::dev::ServerHandle,
}

fn text_of(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

async fn export(body: web::Bytes, received: web::Data<Mutex<Received>>) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut received = received.lock().unwrap();
    received.exports += 1;
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text_of(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.spans.push(SpanSeen {
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    link_traces: span
                        .links
                        .iter()
                        .map(|l| hex::encode(&l.trace_id))
                        .collect(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| {
                            let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
                            (kv.key.clone(), text_of(value))
                        })
                        .collect(),
                    service: service.clone(),
                });
            }
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let data = web::Data::from(received.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                        .route("/v1/traces", web::post().to(export))
                })
                .listen(listener)
                .unwrap()
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .run();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            })
        });
        let server = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Receiver {
            base,
            received,
            server,
        }
    }

    fn exports(&self) -> usize {
        self.received.lock().unwrap().exports
    }

    fn spans(&self) -> Vec<SpanSeen> {
        self.received.lock().unwrap().spans.clone()
    }

    /// Waits (≤ 20 s) until `found` finds what it looks for in the spans received so far.
    async fn wait_for<T>(&self, what: &str, found: impl Fn(&[SpanSeen]) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.spans();
            if let Some(t) = found(&spans) {
                return t;
            }
            if tokio::time::Instant::now() > deadline {
                let names: Vec<_> = spans
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {} {} parent {}",
                            s.name, s.trace_id, s.span_id, s.parent_span_id
                        )
                    })
                    .collect();
                panic!("{what}: not exported within 20 s; spans: {names:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // The stop is sent now; its completion is not waited for.
        drop(self.server.stop(false));
    }
}

fn sim_addr(infra: &Infra, provider: &str) -> String {
    std::fs::read_to_string(
        infra
            .data_dir
            .path()
            .join("sims")
            .join(format!("{provider}.addr")),
    )
    .unwrap()
}

/// The `traceparent` headers the embedded simulator of `provider` received.
async fn sim_traceparents(infra: &Infra, provider: &str) -> Vec<String> {
    let addr = sim_addr(infra, provider);
    let seen: Value = reqwest::get(format!("http://{}/sim/traceparents", addr.trim()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    seen["traceparents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// A deposit to the player carrying `traceparent` (if any).
async fn deposit(api: &Api, tree: &Tree, traceparent: Option<&str>) {
    let mut request = api
        .http
        .post(format!(
            "{}/api/v1/users/{}/wallet/deposit",
            api.base, tree.player_id
        ))
        .bearer_auth(&tree.admin_token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&json!({ "amount": "50" }));
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    api.send(request).await.ok();
}

fn transfer_in_path(tree: &Tree) -> String {
    format!("/api/v1/users/{}/providers/jdb/transfer-in", tree.player_id)
}

async fn transfer_in(api: &Api, tree: &Tree) {
    let reply = api
        .post_key(
            &tree.player_token,
            &transfer_in_path(tree),
            &uuid::Uuid::new_v4().to_string(),
            json!({ "amount": "20" }),
        )
        .await;
    assert_eq!(reply.status, 200, "transfer-in: {}", reply.body);
    assert_eq!(reply.body["state"], "succeeded", "{}", reply.body);
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const INCOMING_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INCOMING_SPAN: &str = "00f067aa0ba902b7";

async fn traces_follow_a_request_to_the_ledger_and_the_provider(backend: Backend) {
    let receiver = Receiver::start();
    let infra = Infra::new(backend).await;
    let hub = HubProcess::start_with_env(
        &infra,
        &[
            ("NASHUB_OTLP_ENDPOINT", receiver.base.as_str()),
            ("NASHUB_OTLP_SERVICE_NAME", "nashub-traces-test"),
            // Export every 100 ms instead of every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let api = hub.api();
    let tree = Tree::create(&api).await;

    // A deposit continuing the caller's trace.
    let incoming = format!("00-{INCOMING_TRACE}-{INCOMING_SPAN}-01");
    deposit(&api, &tree, Some(&incoming)).await;
    let (request, wallet, commit) = receiver
        .wait_for("the deposit's spans", |spans| {
            let request = spans
                .iter()
                .find(|s| s.kind == SERVER && s.trace_id == INCOMING_TRACE)?;
            let wallet = spans
                .iter()
                .find(|s| s.name.starts_with("wallet.") && s.trace_id == INCOMING_TRACE)?;
            let commit = spans
                .iter()
                .find(|s| s.name == "ledger.commit" && s.joins(INCOMING_TRACE))?;
            Some((request.clone(), wallet.clone(), commit.clone()))
        })
        .await;
    assert_eq!(
        request.parent_span_id, INCOMING_SPAN,
        "the request span continues the incoming traceparent"
    );
    assert_eq!(request.service, "nashub-traces-test");
    assert_eq!(request.name, "POST /api/v1/users/{id}/wallet/deposit");
    assert_eq!(request.attribute("http.request.method"), Some("POST"));
    assert_eq!(request.attribute("http.response.status_code"), Some("200"));
    assert_eq!(
        wallet.parent_span_id, request.span_id,
        "the wallet actor's span is the request's child: {wallet:?}"
    );
    if commit.trace_id == INCOMING_TRACE {
        assert_eq!(commit.parent_span_id, wallet.span_id, "{commit:?}");
    }
    if backend == Backend::Sqlite {
        // The writer thread's span continues the batch.
        receiver
            .wait_for("the SQLite writer's span", |spans| {
                spans
                    .iter()
                    .find(|s| s.name == "ledger.sqlite_write" && s.parent_span_id == commit.span_id)
                    .map(|_| ())
            })
            .await;
    }

    // A provider transfer-in with no incoming traceparent: a new trace, followed to JDB.
    transfer_in(&api, &tree).await;
    let path = transfer_in_path(&tree);
    let (request, wallet, write, call) = receiver
        .wait_for("the transfer's spans", |spans| {
            let request = spans
                .iter()
                .find(|s| s.kind == SERVER && s.attribute("url.path") == Some(path.as_str()))?;
            let trace = request.trace_id.as_str();
            let in_trace =
                |name: &str| spans.iter().find(|s| s.name == name && s.trace_id == trace);
            let wallet = in_trace("wallet.provider_move")?;
            let write = in_trace("ledger.transfer_write")?;
            let call = spans.iter().find(|s| {
                s.kind == CLIENT && s.trace_id == trace && s.attribute("method") == Some("transfer")
            })?;
            Some((request.clone(), wallet.clone(), write.clone(), call.clone()))
        })
        .await;
    assert_ne!(request.trace_id, INCOMING_TRACE, "a new trace");
    assert_eq!(request.parent_span_id, "", "a root span: {request:?}");
    assert_eq!(wallet.parent_span_id, request.span_id, "{wallet:?}");
    assert_eq!(write.parent_span_id, wallet.span_id, "{write:?}");
    assert_eq!(call.attribute("provider"), Some("jdb"), "{call:?}");
    assert_eq!(call.name, "jdb transfer");
    assert_eq!(call.parent_span_id, request.span_id, "{call:?}");
    // The simulator received the call span's position as its traceparent.
    let sent = format!("00-{}-{}-01", call.trace_id, call.span_id);
    let seen = sim_traceparents(&infra, "jdb").await;
    assert!(
        seen.contains(&sent),
        "the simulator saw {seen:?}, not {sent}"
    );
    assert!(
        seen.iter()
            .all(|tp| tp.len() == 55 && tp.starts_with("00-")),
        "{seen:?}"
    );
    infra.assert_ledger_ok();
}

/// A batch serving several requests links to each (it cannot be the child of all).
async fn a_commit_batch_links_every_request_it_serves(backend: Backend) {
    let receiver = Receiver::start();
    let infra = Infra::new(backend).await;
    let hub = HubProcess::start_with_env(
        &infra,
        &[
            ("NASHUB_OTLP_ENDPOINT", receiver.base.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            // The committer waits 300 ms for company: concurrent deposits share a batch.
            ("NASHUB_LEDGER_BATCH_WAIT_US", "300000"),
        ],
    );
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let traces: Vec<String> = (0..4)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    futures_util::future::join_all(traces.iter().map(|trace| {
        let (api, tree) = (&api, &tree);
        async move {
            deposit(api, tree, Some(&format!("00-{trace}-{INCOMING_SPAN}-01"))).await;
        }
    }))
    .await;
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "200.00"
    );
    let batch = receiver
        .wait_for("a batch linking several deposits", |spans| {
            let commits: Vec<_> = spans.iter().filter(|s| s.name == "ledger.commit").collect();
            // Every deposit's trace reaches a commit span.
            if !traces.iter().all(|t| commits.iter().any(|c| c.joins(t))) {
                return None;
            }
            commits
                .into_iter()
                .find(|c| traces.iter().filter(|t| c.link_traces.contains(t)).count() >= 2)
                .cloned()
        })
        .await;
    let size: usize = batch.attribute("batch_size").unwrap().parse().unwrap();
    assert!(size >= 2, "{batch:?}");
    assert_eq!(
        batch.link_traces.len(),
        size,
        "one link per entry: {batch:?}"
    );
    assert_eq!(
        batch.parent_span_id, "",
        "a batch of many is a root: {batch:?}"
    );
}

async fn traces_off_export_nothing(backend: Backend) {
    let receiver = Receiver::start();
    let infra = Infra::new(backend).await;
    let traces_url = format!("{}/v1/traces", receiver.base);
    // The standard variables alone do not turn traces on: only `otlp_endpoint` does.
    let hub = HubProcess::start_with_env(
        &infra,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base.as_str()),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces_url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let api = hub.api();
    let tree = Tree::create(&api).await;
    deposit(
        &api,
        &tree,
        Some(&format!("00-{INCOMING_TRACE}-{INCOMING_SPAN}-01")),
    )
    .await;
    transfer_in(&api, &tree).await;
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "30.00"
    );
    // The provider calls (player creation, transfer) went out with no traceparent.
    assert_eq!(sim_traceparents(&infra, "jdb").await, Vec::<String>::new());
    // Twenty export intervals, and the process's shutdown (which would flush an exporter).
    tokio::time::sleep(Duration::from_secs(2)).await;
    hub.terminate();
    let mut hub = hub;
    assert!(hub.exit_within(Duration::from_secs(15)).is_some());
    assert_eq!(
        receiver.exports(),
        0,
        "nothing is exported: {:?}",
        receiver.spans()
    );
}

backend_tests!(
    traces_follow_a_request_to_the_ledger_and_the_provider,
    a_commit_batch_links_every_request_it_serves,
    traces_off_export_nothing
);
