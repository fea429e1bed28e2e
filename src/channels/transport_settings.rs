//! A client's channel transports: the SMTP server and the SMS gateway account a super admin
//! stores per client (`PUT /api/v1/clients/{id}/channels/{email|sms}`, sealed in
//! `client_secrets` under the names `smtp` and `sms`). Validated here before sealing; error
//! messages name the field, never its value.

use serde_json::{Map, Value};

use crate::domain::Channel;

/// The `client_secrets` name a channel's transport is sealed under.
pub fn secret_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "smtp",
        Channel::Sms => "sms",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: format!("settings.{field}"),
        message: message.into(),
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text (a trusted local relay only).
    None,
    /// Plain text upgraded with STARTTLS, required.
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Username and password for AUTH (PLAIN or LOGIN), if the server needs them.
    pub auth: Option<(String, String)>,
    pub from: String,
    pub from_name: Option<String>,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log line.
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct SmsSettings {
    /// `twilio` (the one protocol implemented; docs/sms-twilio.md).
    pub protocol: String,
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// E.164 number or alphanumeric sender id (1 to 11 letters and digits).
    pub from: String,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSettings")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

fn text(doc: &Map<String, Value>, field: &str, max: usize) -> Result<Option<String>, FieldError> {
    match doc.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() || s.len() > max => {
            Err(bad(field, format!("must be 1 to {max} characters")))
        }
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            Err(bad(field, "must not contain control characters"))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

fn required(doc: &Map<String, Value>, field: &str, max: usize) -> Result<String, FieldError> {
    text(doc, field, max)?.ok_or_else(|| bad(field, "is required"))
}

fn number(
    doc: &Map<String, Value>,
    field: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, FieldError> {
    match doc.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(bad(
                field,
                format!("must be an integer from {min} to {max}"),
            )),
        },
    }
}

fn no_unknown(doc: &Map<String, Value>, known: &[&str]) -> Result<(), FieldError> {
    match doc.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(bad(k, "is not a known field")),
        None => Ok(()),
    }
}

impl SmtpSettings {
    /// host, port (default by security: 25, 587, 465), security (`none`, `starttls`, `tls`;
    /// default `starttls`), username and password (both or neither), from, from_name,
    /// timeout_ms.
    pub fn parse(doc: &Map<String, Value>) -> Result<Self, FieldError> {
        no_unknown(
            doc,
            &[
                "host",
                "port",
                "security",
                "username",
                "password",
                "from",
                "from_name",
                "timeout_ms",
            ],
        )?;
        let host = required(doc, "host", 253)?;
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        {
            return Err(bad("host", "must be a host name or IP address"));
        }
        let security = match text(doc, "security", 16)?.as_deref() {
            None | Some("starttls") => SmtpSecurity::StartTls,
            Some("tls") => SmtpSecurity::Tls,
            Some("none") => SmtpSecurity::None,
            Some(_) => return Err(bad("security", "must be none, starttls or tls")),
        };
        let default_port = match security {
            SmtpSecurity::None => 25,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
        };
        let port = number(doc, "port", 1, 65535)?.map_or(default_port, |p| p as u16);
        let auth = match (text(doc, "username", 256)?, text(doc, "password", 256)?) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            (Some(_), None) => return Err(bad("password", "is required with username")),
            (None, Some(_)) => return Err(bad("username", "is required with password")),
        };
        let from = required(doc, "from", 254)?;
        let from = super::contacts::parse_address(Channel::Email, &from)
            .map_err(|_| bad("from", "must be an email address"))?;
        Ok(Self {
            host,
            port,
            security,
            auth,
            from,
            from_name: text(doc, "from_name", 128)?,
            timeout_ms: number(doc, "timeout_ms", 100, 120_000)?.unwrap_or(15_000),
        })
    }
}

impl SmsSettings {
    /// protocol (`twilio`, the default), base_url (default `https://api.twilio.com`),
    /// account_sid, auth_token, from, timeout_ms.
    pub fn parse(doc: &Map<String, Value>) -> Result<Self, FieldError> {
        no_unknown(
            doc,
            &[
                "protocol",
                "base_url",
                "account_sid",
                "auth_token",
                "from",
                "timeout_ms",
            ],
        )?;
        let protocol = text(doc, "protocol", 32)?.unwrap_or_else(|| "twilio".into());
        if protocol != "twilio" {
            return Err(bad("protocol", "must be twilio"));
        }
        let base_url = text(doc, "base_url", 512)?
            .unwrap_or_else(|| "https://api.twilio.com".into())
            .trim_end_matches('/')
            .to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|_| bad("base_url", "must be an http(s) URL"))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || !parsed.username().is_empty()
            || parsed.query().is_some()
        {
            return Err(bad(
                "base_url",
                "must be an http(s) URL without credentials or query",
            ));
        }
        let account_sid = required(doc, "account_sid", 64)?;
        if !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad("account_sid", "must be letters and digits"));
        }
        let auth_token = required(doc, "auth_token", 128)?;
        let from = required(doc, "from", 16)?;
        let sender_id =
            (1..=11).contains(&from.len()) && from.bytes().all(|b| b.is_ascii_alphanumeric());
        if super::contacts::parse_address(Channel::Sms, &from).is_err() && !sender_id {
            return Err(bad(
                "from",
                "must be an E.164 number or a sender id of 1 to 11 letters and digits",
            ));
        }
        Ok(Self {
            protocol,
            base_url,
            account_sid,
            auth_token,
            from,
            timeout_ms: number(doc, "timeout_ms", 100, 120_000)?.unwrap_or(10_000),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn smtp_defaults_and_errors_name_the_field() {
        let s = SmtpSettings::parse(&doc(
            json!({"host": "mail.example.com", "from": "no-reply@example.com"}),
        ))
        .unwrap();
        assert_eq!(
            (s.port, s.security, s.auth.is_none()),
            (587, SmtpSecurity::StartTls, true)
        );
        let s = SmtpSettings::parse(&doc(json!({"host": "h", "security": "tls", "from": "a@b.co", "username": "u", "password": "p"}))).unwrap();
        assert_eq!(s.port, 465);
        for (body, field) in [
            (json!({"from": "a@b.co"}), "settings.host"),
            (json!({"host": "h", "from": "nope"}), "settings.from"),
            (
                json!({"host": "h", "from": "a@b.co", "username": "u"}),
                "settings.password",
            ),
            (
                json!({"host": "h", "from": "a@b.co", "security": "ssl"}),
                "settings.security",
            ),
            (
                json!({"host": "h", "from": "a@b.co", "port": 0}),
                "settings.port",
            ),
            (
                json!({"host": "h", "from": "a@b.co", "extra": 1}),
                "settings.extra",
            ),
        ] {
            assert_eq!(SmtpSettings::parse(&doc(body)).unwrap_err().field, field);
        }
    }

    #[test]
    fn sms_fields() {
        let s = SmsSettings::parse(&doc(
            json!({"account_sid": "AC1", "auth_token": "t", "from": "+15005550006"}),
        ))
        .unwrap();
        assert_eq!(s.base_url, "https://api.twilio.com");
        assert!(
            SmsSettings::parse(&doc(
                json!({"account_sid": "AC1", "auth_token": "t", "from": "NasHub"})
            ))
            .is_ok()
        );
        let e = SmsSettings::parse(&doc(
            json!({"account_sid": "AC1", "auth_token": "t", "from": "not a sender"}),
        ))
        .unwrap_err();
        assert_eq!(e.field, "settings.from");
        let e = SmsSettings::parse(&doc(json!({"account_sid": "AC1", "auth_token": "t", "from": "+15005550006", "base_url": "ftp://x"}))).unwrap_err();
        assert_eq!(e.field, "settings.base_url");
    }
}
