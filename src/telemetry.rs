//! Logging (tracing) and the Prometheus recorder, both installed once per process.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

use crate::otel::export::OtlpOptions;

/// Installs the tracing subscriber: human-readable text, or JSON for production, and, when
/// `traces` is set, the OpenTelemetry layer exporting to it (`otel`). Fails only if the trace
/// exporter cannot be built.
pub fn init_logging(format: &str, traces: Option<&OtlpOptions>) -> anyhow::Result<()> {
    let filter = log_filter(std::env::var("NASHUB_LOG").ok().as_deref());
    let _ = match traces {
        None => logs_only(format, filter).try_init(),
        Some(options) => {
            let traces = crate::otel::export::install(options)?;
            tracing_subscriber::registry()
                .with(log_layer(format).with_filter(filter))
                .with(traces)
                .try_init()
        }
    };
    Ok(())
}

/// The subscriber without traces: the filter applies to the whole subscriber (no per-layer
/// filtering on the request path), and spans of `otel::TARGET` are disabled where they are made.
fn logs_only(format: &str, filter: EnvFilter) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry()
        .with(filter)
        .with(log_layer(format))
}

fn log_layer<S>(format: &str) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let logs = tracing_subscriber::fmt::layer().with_target(false);
    if format == "json" {
        logs.json().boxed()
    } else {
        logs.boxed()
    }
}

/// The log filter: `NASHUB_LOG` (default `info,sqlx=warn`), with actix-http's HTTP/1
/// dispatcher silenced unless `NASHUB_LOG` names `actix_http` itself. That module logs every
/// malformed request at ERROR ("stream error: request parse error"), so any client could flood
/// the error log; the same errors reach `admission`, which counts client faults in
/// `http_client_errors_total` and logs them at debug (and anything else at warn). The spans made
/// for traces only (`otel::TARGET`) are never logged unless `NASHUB_LOG` names them: so, with
/// traces off, no layer wants them and they cost nothing.
pub fn log_filter(spec: Option<&str>) -> EnvFilter {
    let spec = spec.filter(|s| !s.trim().is_empty());
    let mut filter = spec
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn"));
    if !spec.is_some_and(|s| s.contains("actix_http")) {
        filter = filter.add_directive(
            "actix_http::h1::dispatcher=off"
                .parse()
                .expect("a valid directive"),
        );
    }
    if !spec.is_some_and(|s| s.contains(crate::otel::TARGET)) {
        filter = filter.add_directive(
            format!("{}=off", crate::otel::TARGET)
                .parse()
                .expect("a valid directive"),
        );
    }
    filter
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, with every metric of DESIGN section 8 present at zero.
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .expect("bucket list is not empty")
            .install_recorder()
            .expect("the Prometheus recorder is installed once per process");
        crate::metrics::register_all();
        handle
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With traces off, the trace-only spans cost nothing: disabled at their call site, so
    /// nothing is recorded, formatted or allocated for them.
    #[test]
    fn trace_spans_are_disabled_without_traces() {
        let subscriber = logs_only("text", log_filter(Some("trace")));
        tracing::subscriber::with_default(subscriber, || {
            let log = tracing::info_span!("request");
            assert!(!log.is_disabled(), "log spans are still recorded");
            let trace = tracing::info_span!(target: crate::otel::TARGET, "wallet.mutate");
            assert!(trace.is_disabled());
            assert!(crate::otel::TraceParent::of(&trace).header().is_none());
        });
        let named = logs_only("text", log_filter(Some("info,nashub::trace=info")));
        tracing::subscriber::with_default(named, || {
            let trace = tracing::info_span!(target: crate::otel::TARGET, "wallet.mutate");
            assert!(!trace.is_disabled(), "logged when NASHUB_LOG names them");
        });
    }
}
