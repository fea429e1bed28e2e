//! Request-body deadline (issue 25). actix-http times out a request's head, not its body: a
//! client could send `Content-Length: 100` and then nothing, and hold the connection (and its
//! descriptor and buffers) for as long as it liked.
//!
//! This middleware swaps the payload of every request that has a body for a stream with two
//! limits: the whole body within `request_body_timeout_ms` of the head, and, after
//! `request_body_grace_ms`, at least `request_body_min_rate` bytes per second on average
//! (a body of n bytes must be in by `grace + n / rate`). When either runs out, the handler's
//! read fails and the answer becomes 408 `request_timeout` with `Connection: close`; since the
//! body was not read to its end, actix-http closes the connection after that answer, which
//! releases the descriptor.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use super::error::ApiError;
use crate::metrics as m;
use crate::state::AppState;

#[derive(Clone, Copy)]
pub struct BodyLimits {
    pub total: Duration,
    pub min_rate: u64,
    pub grace: Duration,
}

impl BodyLimits {
    pub fn from_settings(s: &crate::config::Settings) -> Option<Self> {
        (s.request_body_timeout_ms > 0).then(|| Self {
            total: Duration::from_millis(s.request_body_timeout_ms),
            min_rate: s.request_body_min_rate,
            grace: Duration::from_millis(s.request_body_grace_ms),
        })
    }
}

fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<BusyBody<EitherBody<impl MessageBody>>>, actix_web::Error> {
    // The connection has a request in progress until its answer's body is written (its idle
    // watchdog waits): a streamed body (a CSV export) may take longer than the idle limit.
    let busy = req
        .request()
        .conn_data::<std::sync::Arc<crate::admission::Conn>>()
        .map(|conn| conn.request_started());
    let res = limit_body(req, next).await?;
    Ok(res.map_body(|_, body| BusyBody { body, _busy: busy }))
}

/// A response body that keeps its connection's request in progress until it is dropped
/// (written out, or the connection gone).
pub struct BusyBody<B> {
    body: B,
    _busy: Option<crate::admission::RequestGuard>,
}

impl<B: MessageBody + Unpin> MessageBody for BusyBody<B> {
    type Error = B::Error;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

async fn limit_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limits = req
        .app_data::<actix_web::web::Data<AppState>>()
        .and_then(|s| BodyLimits::from_settings(&s.config.settings));
    let (Some(limits), true) = (limits, has_body(&req)) else {
        return next.call(req).await.map(|res| res.map_into_left_body());
    };
    let timed_out = Rc::new(Cell::new(false));
    let inner = req.take_payload();
    let stream = DeadlineBody::new(inner, limits, timed_out.clone());
    req.set_payload(Payload::Stream {
        payload: Box::pin(stream),
    });
    let res = next.call(req).await;
    if !timed_out.get() {
        return res.map(|res| res.map_into_left_body());
    }
    // The handler's own answer to a cut-off body (400, 422...) says nothing true: replace it.
    let (req, _) = match res {
        Ok(res) => res.into_parts(),
        Err(e) => return Err(e),
    };
    metrics::counter!(m::BODY_TIMEOUTS).increment(1);
    tracing::debug!(path = %req.path(), "request body too slow; closing");
    let mut response = actix_web::ResponseError::error_response(&ApiError::new(
        actix_web::http::StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request body did not arrive in time",
    ));
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    Ok(ServiceResponse::new(req, response).map_into_right_body())
}

/// The request payload with a total deadline and a minimum rate.
struct DeadlineBody {
    inner: Payload,
    limits: BodyLimits,
    start: Instant,
    received: u64,
    /// Made the first time the body has to be waited for: most bodies are in the buffer with
    /// their head, and a timer costs a registration in the runtime's wheel and a cancellation.
    timer: Option<Pin<Box<Sleep>>>,
    done: bool,
    timed_out: Rc<Cell<bool>>,
}

impl DeadlineBody {
    fn new(inner: Payload, limits: BodyLimits, timed_out: Rc<Cell<bool>>) -> Self {
        Self {
            inner,
            limits,
            start: Instant::now(),
            received: 0,
            timer: None,
            done: false,
            timed_out,
        }
    }
}

/// When a body started at `start` with `received` bytes in is late if no more come.
fn deadline(start: Instant, limits: &BodyLimits, received: u64) -> Instant {
    let total = start + limits.total;
    if limits.min_rate == 0 {
        return total;
    }
    let by_rate = limits.grace + Duration::from_secs_f64(received as f64 / limits.min_rate as f64);
    total.min(start + by_rate)
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                if let Some(timer) = &mut this.timer {
                    timer
                        .as_mut()
                        .reset(deadline(this.start, &this.limits, this.received));
                }
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(None) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
            Poll::Pending => {}
        }
        let timer = this.timer.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep_until(deadline(
                this.start,
                &this.limits,
                this.received,
            )))
        });
        if timer.as_mut().poll(cx).is_ready() {
            this.done = true;
            this.timed_out.set(true);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request body too slow",
            )))));
        }
        Poll::Pending
    }
}
