//! OpenTelemetry traces (issue 23): one trace id follows a request from the HTTP handler through
//! the wallet actor, the group committer (and the SQLite writer thread) to the provider call.
//!
//! Off unless `otlp_endpoint` is set, and then free: the spans of this module's [`TARGET`] are
//! disabled at their call sites (the log filter turns them off, and no other layer exists), and
//! a [`TraceParent`] holds nothing. On, [`export`] installs a `tracing-opentelemetry` layer that
//! sees only these spans and the HTTP request span, and a batch exporter (OTLP/HTTP protobuf
//! through our reqwest).
//!
//! Work that leaves the request's task carries a [`TraceParent`] in its message (actix runs a
//! handler on the actor's task, the committer and the SQLite writer run elsewhere): the span
//! there is made its child ([`TraceParent::adopt`]) or, for a batch serving many requests,
//! linked to it ([`TraceParent::link_from`]).
//!
//! Depends on nothing else in the crate: `store`, `providers`, `actors` and `http` all use it.

pub mod export;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of every span made for traces only (never logged: `telemetry::log_filter`).
pub const TARGET: &str = "nashub::trace";

/// The W3C Trace Context header, read on our requests and sent on provider calls.
pub const TRACEPARENT: &str = "traceparent";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported by this process (set once, by [`export::install`]).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The trace position of the work that sent a message: the span the receiver's span continues.
/// Empty (no allocation, nothing to clone) while traces are off.
#[derive(Clone, Default)]
pub struct TraceParent(Option<opentelemetry::Context>);

impl std::fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.span_context() {
            Some(sc) => write!(f, "TraceParent({}-{})", sc.trace_id(), sc.span_id()),
            None => f.write_str("TraceParent(none)"),
        }
    }
}

impl TraceParent {
    /// The current span's position (the sender's task), if traces are on.
    pub fn current() -> Self {
        if !enabled() {
            return Self(None);
        }
        Self::of(&tracing::Span::current())
    }

    /// `span`'s position, if traces are on and the span is recorded.
    pub fn of(span: &tracing::Span) -> Self {
        if !enabled() || span.is_disabled() {
            return Self(None);
        }
        let cx = span.context();
        let valid = cx.span().span_context().is_valid();
        Self(valid.then_some(cx))
    }

    /// A position read from a `traceparent` header (W3C Trace Context), if traces are on and
    /// the header is well formed.
    pub fn from_header(value: Option<&str>) -> Self {
        let Some(value) = value.filter(|_| enabled()) else {
            return Self(None);
        };
        let cx = TraceContextPropagator::new().extract(&OneHeader(value));
        let valid = cx.span().span_context().is_valid();
        Self(valid.then_some(cx))
    }

    fn span_context(&self) -> Option<opentelemetry::trace::SpanContext> {
        self.0
            .as_ref()
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid())
    }

    /// Makes `span` (new, not yet entered) a child of this position.
    pub fn adopt(&self, span: &tracing::Span) {
        if let Some(cx) = &self.0 {
            // Refused only for a disabled or already started span: then it keeps its parent.
            let _ = span.set_parent(cx.clone());
        }
    }

    /// Adds a link from `span` to this position (a batch serving many requests).
    pub fn link_from(&self, span: &tracing::Span) {
        if let Some(sc) = self.span_context() {
            span.add_link(sc);
        }
    }

    /// The `traceparent` header value naming this position, for an outgoing request.
    pub fn header(&self) -> Option<String> {
        let sc = self.span_context()?;
        Some(format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        ))
    }
}

/// The propagator's view of one header value.
struct OneHeader<'a>(&'a str);

impl Extractor for OneHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}
