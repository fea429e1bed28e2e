//! Per-request observation: a request id (header `x-request-id` and a tracing span), the trace's
//! server span (continuing an incoming `traceparent`; `otel`), request
//! count and latency by route pattern, and one log line that never includes the query string
//! (websocket tokens travel there).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use metrics::{Counter, Histogram};
use tracing::Instrument;

use crate::metrics as m;

/// The request's future, dropped inside the worker's runtime if actix stops the worker while
/// the request is in flight (`crate::rt`): a query in progress would otherwise abort the process.
pub async fn drop_in_runtime(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    crate::rt::InRuntime::new(next.call(req)).await
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let mut id_text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let request_id: &str = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id_text);
    let method = req.method().clone();
    let route = req.match_pattern();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = %req.path());
    // The trace's server span (disabled, so free, unless traces are exported): inside the log
    // span, so the handler's current span is this one and what it sends on carries it.
    let trace = tracing::info_span!(
        target: crate::otel::TARGET,
        "HTTP request",
        otel.name = %format_args!("{method} {}", route.as_deref().unwrap_or("unmatched")),
        otel.kind = "server",
        http.request.method = %method,
        url.path = %req.path(),
        http.route = route.as_deref().unwrap_or("unmatched"),
        request_id = %request_id,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if !trace.is_disabled() {
        let header = req.headers().get(crate::otel::TRACEPARENT);
        crate::otel::TraceParent::from_header(header.and_then(|v| v.to_str().ok())).adopt(&trace);
    }
    let mut res = next
        .call(req)
        .instrument(trace.clone())
        .instrument(span.clone())
        .await?;
    let status = res.status().as_u16();
    trace.record("http.response.status_code", status);
    if status >= 500 {
        trace.record("otel.status_code", "ERROR");
    }
    let elapsed = started.elapsed().as_secs_f64();
    record(
        &method,
        route.as_deref().unwrap_or("unmatched"),
        status,
        elapsed,
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    span.in_scope(|| tracing::debug!(status, elapsed_ms = elapsed * 1e3, "answered"));
    Ok(res)
}

/// One route's metric handles on this worker thread.
#[derive(Default)]
struct RouteHandles {
    requests: Vec<(Method, u16, Counter)>,
    durations: Vec<(Method, Histogram)>,
}

thread_local! {
    // Handles are kept per worker: registering a labelled metric builds and hashes its key and
    // takes the registry's lock, about 2% of a deposit's HTTP work when done per request.
    static HANDLES: RefCell<HashMap<String, RouteHandles>> = RefCell::new(HashMap::new());
}

/// Extension methods share one label: a client choosing the method must not choose how many
/// series `/metrics` holds.
fn method_label(method: &Method) -> Method {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if KNOWN.contains(method) {
        method.clone()
    } else {
        Method::from_bytes(b"OTHER").expect("a valid method token")
    }
}

fn record(method: &Method, route: &str, status: u16, elapsed: f64) {
    let method = &method_label(method);
    HANDLES.with_borrow_mut(|routes| {
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteHandles::default());
        }
        let handles = routes.get_mut(route).expect("inserted above");
        let requests = match handles
            .requests
            .iter()
            .position(|(m, s, _)| m == method && *s == status)
        {
            Some(i) => &handles.requests[i].2,
            None => {
                let counter = metrics::counter!(m::HTTP_REQUESTS, "method" => method.to_string(), "route" => route.to_owned(), "status_code" => status.to_string());
                handles.requests.push((method.clone(), status, counter));
                &handles.requests.last().expect("pushed").2
            }
        };
        requests.increment(1);
        let duration = match handles.durations.iter().position(|(m, _)| m == method) {
            Some(i) => &handles.durations[i].1,
            None => {
                let histogram = metrics::histogram!(m::HTTP_DURATION, "method" => method.to_string(), "route" => route.to_owned());
                handles.durations.push((method.clone(), histogram));
                &handles.durations.last().expect("pushed").1
            }
        };
        duration.record(elapsed);
    });
}
