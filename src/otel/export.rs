//! The exporter side of traces: a `tracing-opentelemetry` layer over an SDK tracer provider
//! whose batch processor sends OTLP/HTTP protobuf to `otlp_endpoint`.
//!
//! The OTLP crate's own HTTP clients would bring a second reqwest (0.12) or hyper stack, so the
//! exporter sends through our reqwest 0.13 ([`ReqwestExport`]). The SDK's batch processor runs
//! on its own thread and drives exports with a plain executor, while reqwest needs a tokio
//! reactor: the client keeps a one-thread runtime of its own (`otlp-export`), which also keeps
//! exports off the HTTP workers. Bounded: the processor's queue holds 2,048 spans (spans past
//! it are dropped, never waited for), each export times out after 10 s.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// How traces leave the process (from `Settings`: `otlp_endpoint`, `otlp_service_name`,
/// `otlp_sample_ratio`).
#[derive(Debug, Clone)]
pub struct OtlpOptions {
    /// Base URL of an OTLP/HTTP receiver (`http://collector:4318`); `/v1/traces` is added
    /// unless it already ends so.
    pub endpoint: String,
    pub service_name: String,
    /// Share of new traces recorded, 0.0–1.0; a trace continued from a `traceparent` follows
    /// the caller's decision.
    pub sample_ratio: f64,
}

/// Longest one export may take (connect, send, answer).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The OTLP signal path for traces.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Builds the exporter and the layer that feeds it, and turns [`super::enabled`] on. Once per
/// process (a second call is refused).
pub fn install<S>(options: &OtlpOptions) -> anyhow::Result<impl Layer<S> + use<S>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    anyhow::ensure!(
        (0.0..=1.0).contains(&options.sample_ratio),
        "otlp_sample_ratio must be between 0 and 1"
    );
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(ReqwestExport::new()?)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(&options.endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            options.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(options.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("nashub");
    PROVIDER
        .set(provider)
        .map_err(|_| anyhow::anyhow!("traces are already being exported"))?;
    super::ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
    let only_trace_spans = tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_span() && meta.target().starts_with(super::TARGET)
    });
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_filter(only_trace_spans))
}

/// Longest the last export may hold up the process's exit (a receiver that is down).
const SHUTDOWN_MAX: Duration = Duration::from_secs(3);

/// Exports what is still queued and stops the exporter (at shutdown; a no-op when off).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_MAX)
    {
        tracing::warn!(error = %e, "trace exporter shutdown");
    }
}

/// The OTLP exporter's HTTP client: our reqwest on a runtime of its own.
#[derive(Debug, Clone)]
struct ReqwestExport {
    client: reqwest::Client,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl ReqwestExport {
    fn new() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?;
        Ok(Self {
            client,
            runtime: Arc::new(runtime),
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for ReqwestExport {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
        let client = self.client.clone();
        let answer = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let mut answer = Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        answer.await?
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://c:4318"),
            "http://c:4318/v1/traces".to_owned()
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
