//! Email over SMTP (lettre, tokio + rustls): one connection per message, STARTTLS or implicit
//! TLS as the client's settings say, AUTH when given. The Message-ID is derived from the outbox
//! row, so a message resent after an admin retry carries the same id and receivers can
//! recognise it.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::SendError;
use super::transport_settings::{SmtpSecurity, SmtpSettings};
use crate::store::MessageRow;

/// The Message-ID of an outbox row's email: stable across attempts.
pub fn message_id(row_id: &str, from: &str) -> String {
    let domain = from.rsplit_once('@').map_or("nashub.invalid", |(_, d)| d);
    format!("<{row_id}@{domain}>")
}

fn build(settings: &SmtpSettings, m: &MessageRow) -> Result<Message, SendError> {
    let from = Mailbox::new(
        settings.from_name.clone(),
        settings
            .from
            .parse()
            .map_err(|_| SendError::permanent("the sender address is invalid"))?,
    );
    let to: Mailbox = m
        .recipient
        .parse()
        .map_err(|_| SendError::permanent("the recipient address is invalid"))?;
    let html = m.html_body.clone().unwrap_or_default();
    let body = if html.is_empty() {
        MultiPart::mixed().singlepart(
            lettre::message::SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(m.text_body.clone()),
        )
    } else {
        MultiPart::alternative_plain_html(m.text_body.clone(), html)
    };
    Message::builder()
        .message_id(Some(message_id(&m.id, &settings.from)))
        .from(from)
        .to(to)
        .subject(m.subject.clone())
        .multipart(body)
        .map_err(|e| SendError::permanent(format!("message not built: {e}")))
}

fn transport(settings: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let tls = match settings.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::StartTls | SmtpSecurity::Tls => {
            let params = TlsParameters::new(settings.host.clone())
                .map_err(|e| SendError::permanent(format!("TLS set-up: {e}")))?;
            if settings.security == SmtpSecurity::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        .port(settings.port)
        .tls(tls)
        .timeout(Some(Duration::from_millis(settings.timeout_ms)));
    if let Some((user, password)) = &settings.auth {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// Sends one message; Ok is the Message-ID the server accepted.
pub async fn send(settings: &SmtpSettings, m: &MessageRow) -> Result<String, SendError> {
    let message = build(settings, m)?;
    let transport = transport(settings)?;
    match transport.send(message).await {
        Ok(_) => Ok(message_id(&m.id, &settings.from)),
        // 5xx answers: the server refuses this message for good (bad recipient, auth).
        Err(e) if e.is_permanent() => Err(SendError::permanent(format!("smtp: {e}"))),
        Err(e) => Err(SendError::transient(format!("smtp: {e}"))),
    }
}
