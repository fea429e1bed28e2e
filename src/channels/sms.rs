//! SMS: the `SmsGateway` trait the dispatcher sends through, and its Twilio Programmable
//! Messaging implementation (the subset in docs/sms-twilio.md): `POST
//! /2010-04-01/Accounts/{AccountSid}/Messages.json` with basic auth and a form body, status
//! callbacks signed with `X-Twilio-Signature`. Twilio takes no idempotency key, so before a
//! message that may already have gone out is sent again, the gateway is asked for messages to
//! that number with that exact body (`lookup`); one found is recorded instead of resending.

use std::time::Duration;

use base64::Engine;
use futures_util::future::BoxFuture;
use hmac::{KeyInit, Mac};
use serde::Deserialize;

use super::SendError;
use super::transport_settings::SmsSettings;

/// What the gateway answered for a message it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The gateway's id (Twilio `sid`), which delivery reports name.
    pub provider_ref: String,
}

/// One SMS to send.
#[derive(Debug, Clone)]
pub struct Sms<'a> {
    pub to: &'a str,
    pub body: &'a str,
    /// Where the gateway reports delivery.
    pub status_callback: Option<&'a str>,
}

/// An SMS gateway protocol.
pub trait SmsGateway: Send + Sync {
    fn send<'a>(&'a self, sms: &'a Sms<'a>) -> BoxFuture<'a, Result<Accepted, SendError>>;
    /// A message already taken by the gateway with this recipient and body, if any.
    fn lookup<'a>(&'a self, sms: &'a Sms<'a>)
    -> BoxFuture<'a, Result<Option<Accepted>, SendError>>;
}

pub struct Twilio {
    settings: SmsSettings,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct MessageResource {
    sid: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<MessageResource>,
}

#[derive(Deserialize)]
struct TwilioError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

impl Twilio {
    pub fn new(settings: SmsSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()
            .unwrap_or_default();
        Self { settings, http }
    }

    fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.settings.base_url, self.settings.account_sid
        )
    }

    /// A refusal's error: 4xx (but 429) is final for this message, the rest may pass later.
    async fn refusal(response: reqwest::Response) -> SendError {
        let status = response.status();
        let detail = response
            .json::<TwilioError>()
            .await
            .ok()
            .map(|e| {
                format!(
                    " (code {}: {})",
                    e.code.unwrap_or(0),
                    e.message.unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let reason = format!("twilio: HTTP {}{detail}", status.as_u16());
        if status.is_client_error() && status.as_u16() != 429 {
            SendError::permanent(reason)
        } else {
            SendError::transient(reason)
        }
    }
}

impl SmsGateway for Twilio {
    fn send<'a>(&'a self, sms: &'a Sms<'a>) -> BoxFuture<'a, Result<Accepted, SendError>> {
        Box::pin(async move {
            let mut form = vec![
                ("To", sms.to),
                ("From", self.settings.from.as_str()),
                ("Body", sms.body),
            ];
            if let Some(url) = sms.status_callback {
                form.push(("StatusCallback", url));
            }
            let response = self
                .http
                .post(self.messages_url())
                .basic_auth(&self.settings.account_sid, Some(&self.settings.auth_token))
                .form(&form)
                .send()
                .await
                .map_err(|e| SendError::transient(format!("twilio: {}", transport_error(&e))))?;
            if !response.status().is_success() {
                return Err(Self::refusal(response).await);
            }
            let resource: MessageResource = response
                .json()
                .await
                .map_err(|_| SendError::transient("twilio: unreadable answer"))?;
            Ok(Accepted {
                provider_ref: resource.sid,
            })
        })
    }

    fn lookup<'a>(
        &'a self,
        sms: &'a Sms<'a>,
    ) -> BoxFuture<'a, Result<Option<Accepted>, SendError>> {
        Box::pin(async move {
            let response = self
                .http
                .get(self.messages_url())
                .basic_auth(&self.settings.account_sid, Some(&self.settings.auth_token))
                .query(&[("To", sms.to), ("PageSize", "100")])
                .send()
                .await
                .map_err(|e| {
                    SendError::transient(format!("twilio lookup: {}", transport_error(&e)))
                })?;
            if !response.status().is_success() {
                return Err(Self::refusal(response).await);
            }
            let list: MessageList = response
                .json()
                .await
                .map_err(|_| SendError::transient("twilio lookup: unreadable answer"))?;
            Ok(list
                .messages
                .into_iter()
                .find(|m| m.to == sms.to && m.body == sms.body)
                .map(|m| Accepted {
                    provider_ref: m.sid,
                }))
        })
    }
}

fn transport_error(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    }
}

/// `X-Twilio-Signature`: base64 of HMAC-SHA1 keyed with the auth token over the full URL
/// followed by each POST parameter's name and value, sorted by name.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time comparison of a received signature with the expected one.
pub fn signature_matches(expected: &str, received: &str) -> bool {
    let (a, b) = (expected.as_bytes(), received.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from Twilio's security documentation.
    #[test]
    fn signature_matches_twilios_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let sig = twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params,
        );
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(signature_matches(&sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!signature_matches(&sig, "0/KCTR6DLpKmkAf8muzZqo1nDgR="));
    }
}
