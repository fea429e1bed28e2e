//! A client's own provider account: the credential document a super admin stores for a client
//! (`PUT /api/v1/clients/{id}/credentials/{provider}`, sealed in `client_secrets`). It is
//! validated here before it is sealed, so a broken document is never stored, and turned into
//! account settings when `transfers::service` builds the client's account from it.
//!
//! Fields: `base_url` (http or https), `operator` (JDB `dc` / LuckySports `X-Operator`); for JDB
//! also `parent`, `key` and `iv` (16 characters each); for LuckySports `secret`. Optional tuning
//! (`timeout_ms`, `request_window_ms`, `breaker_failures`, `breaker_open_ms`, `max_in_flight`,
//! `results_delay_ms`, `results_step_ms`) defaults to the configured account's values. Error
//! messages name the field, never its value.

use serde_json::{Map, Value};

use super::{jdb, luckysports};
use crate::config::ProviderAccountSettings;

/// A document field that is missing or wrong; `field` is its name in the request
/// (`credentials.<name>`), `message` says what is expected, never what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for CredentialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn bad(field: &str, message: impl Into<String>) -> CredentialError {
    CredentialError {
        field: format!("credentials.{field}"),
        message: message.into(),
    }
}

/// A validated credential document. jdb: base_url, operator (dc), parent, key and iv (16
/// characters each); luckysports: base_url, operator, secret. The tuning fields default to the
/// configured account's.
#[derive(Clone, Default, utoipa::ToSchema)]
pub struct ClientCredentials {
    /// http or https
    pub base_url: String,
    /// JDB `dc` / LuckySports `X-Operator`
    pub operator: String,
    /// jdb
    #[schema(required = false)]
    pub parent: String,
    /// jdb, 16 characters
    #[schema(required = false)]
    pub key: String,
    /// jdb, 16 characters
    #[schema(required = false)]
    pub iv: String,
    /// luckysports
    #[schema(required = false)]
    pub secret: String,
    pub timeout_ms: Option<u64>,
    pub request_window_ms: Option<i64>,
    pub breaker_failures: Option<u32>,
    pub breaker_open_ms: Option<u64>,
    pub max_in_flight: Option<usize>,
    pub results_delay_ms: Option<i64>,
    pub results_step_ms: Option<i64>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and secrets never reach a log line.
        f.debug_struct("ClientCredentials")
            .field("base_url", &self.base_url)
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

const TUNING: &[&str] = &[
    "timeout_ms",
    "request_window_ms",
    "breaker_failures",
    "breaker_open_ms",
    "max_in_flight",
    "results_delay_ms",
    "results_step_ms",
];

/// Fields each provider's document carries besides the tuning ones.
fn fields_of(provider: &str) -> Option<&'static [&'static str]> {
    match provider {
        jdb::NAME => Some(&["base_url", "operator", "parent", "key", "iv"]),
        luckysports::NAME => Some(&["base_url", "operator", "secret"]),
        _ => None,
    }
}

/// A required text field: printable ASCII without spaces, 1 to `max` bytes.
fn token(doc: &Map<String, Value>, field: &str, max: usize) -> Result<String, CredentialError> {
    match doc.get(field) {
        None | Some(Value::Null) => Err(bad(field, "is required")),
        Some(Value::String(s)) if s.is_empty() => Err(bad(field, "must not be empty")),
        Some(Value::String(s)) if s.len() > max => {
            Err(bad(field, format!("must be at most {max} characters")))
        }
        Some(Value::String(s)) if !s.bytes().all(|b| b.is_ascii_graphic()) => Err(bad(
            field,
            "must be printable ASCII characters without spaces",
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

/// JDB key and iv: exactly 16 characters, used as raw AES-128 bytes.
fn aes16(doc: &Map<String, Value>, field: &str) -> Result<String, CredentialError> {
    let text = token(doc, field, 64)?;
    if text.len() != 16 {
        return Err(bad(field, "must be exactly 16 characters (AES-128)"));
    }
    Ok(text)
}

fn base_url(doc: &Map<String, Value>) -> Result<String, CredentialError> {
    let text = token(doc, "base_url", 512)?;
    let url = reqwest::Url::parse(&text)
        .map_err(|_| bad("base_url", "must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("base_url", "must be an absolute http(s) URL"));
    }
    // The URL is logged with the account (Debug); credentials belong in their own fields.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("base_url", "must not carry a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("base_url", "must not carry a query or fragment"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn number<T: TryFrom<i64>>(
    doc: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
) -> Result<Option<T>, CredentialError> {
    let Some(value) = doc.get(field).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    value
        .as_i64()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| bad(field, format!("must be an integer from {min} to {max}")))
}

impl ClientCredentials {
    /// Validates a document for `provider`: every field known, every required one present
    /// and well-formed.
    pub fn parse(provider: &str, doc: &Map<String, Value>) -> Result<Self, CredentialError> {
        let fields = fields_of(provider).ok_or_else(|| CredentialError {
            field: "provider".into(),
            message: "unknown provider".into(),
        })?;
        // Sorted, so the first unknown field named is always the same one.
        let mut keys: Vec<&String> = doc.keys().collect();
        keys.sort();
        if let Some(unknown) = keys
            .into_iter()
            .find(|k| !fields.contains(&k.as_str()) && !TUNING.contains(&k.as_str()))
        {
            return Err(bad(
                unknown,
                format!(
                    "is not a {provider} credential field (expected: {})",
                    fields.join(", ")
                ),
            ));
        }
        let mut c = ClientCredentials {
            base_url: base_url(doc)?,
            operator: token(doc, "operator", 64)?,
            timeout_ms: number(doc, "timeout_ms", 50, 120_000)?,
            request_window_ms: number(doc, "request_window_ms", 0, 3_600_000)?,
            breaker_failures: number(doc, "breaker_failures", 1, 1000)?,
            breaker_open_ms: number(doc, "breaker_open_ms", 10, 3_600_000)?,
            max_in_flight: number(doc, "max_in_flight", 1, 4096)?,
            results_delay_ms: number(doc, "results_delay_ms", 0, 86_400_000)?,
            results_step_ms: number(doc, "results_step_ms", 1000, 3_600_000)?,
            ..Default::default()
        };
        match provider {
            jdb::NAME => {
                c.parent = token(doc, "parent", 64)?;
                c.key = aes16(doc, "key")?;
                c.iv = aes16(doc, "iv")?;
            }
            _ => c.secret = token(doc, "secret", 256)?,
        }
        Ok(c)
    }

    /// Account settings for these credentials: `defaults` (the configured account of the
    /// provider) supply every tuning value the document leaves out.
    pub fn settings(
        &self,
        provider: &str,
        name: String,
        defaults: &ProviderAccountSettings,
    ) -> ProviderAccountSettings {
        ProviderAccountSettings {
            name,
            provider: provider.to_owned(),
            base_url: self.base_url.clone(),
            operator: self.operator.clone(),
            parent: self.parent.clone(),
            key: self.key.clone(),
            iv: self.iv.clone(),
            secret: self.secret.clone(),
            clients: Vec::new(),
            timeout_ms: self.timeout_ms.unwrap_or(defaults.timeout_ms),
            request_window_ms: self.request_window_ms.unwrap_or(defaults.request_window_ms),
            breaker_failures: self.breaker_failures.unwrap_or(defaults.breaker_failures),
            breaker_open_ms: self.breaker_open_ms.unwrap_or(defaults.breaker_open_ms),
            max_in_flight: self.max_in_flight.unwrap_or(defaults.max_in_flight),
            results_delay_ms: self.results_delay_ms.unwrap_or(defaults.results_delay_ms),
            results_step_ms: self.results_step_ms.unwrap_or(defaults.results_step_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn jdb_doc() -> Value {
        json!({ "base_url": "http://127.0.0.1:9000/", "operator": "dc1", "parent": "ag1",
                "key": "0123456789abcdef", "iv": "fedcba9876543210" })
    }

    #[test]
    fn valid_documents_parse_and_fill_defaults() {
        let c = ClientCredentials::parse("jdb", &doc(jdb_doc())).unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:9000");
        let defaults = ProviderAccountSettings {
            timeout_ms: 1234,
            ..Default::default()
        };
        let s = c.settings("jdb", "jdb:acme".into(), &defaults);
        assert_eq!((s.timeout_ms, s.key.as_str()), (1234, "0123456789abcdef"));
        let ls = json!({ "base_url": "https://ls.example/x", "operator": "op", "secret": "s3",
                         "timeout_ms": 900 });
        let c = ClientCredentials::parse("luckysports", &doc(ls)).unwrap();
        assert_eq!(
            c.settings("luckysports", "n".into(), &defaults).timeout_ms,
            900
        );
        assert!(!format!("{c:?}").contains("s3"));
    }

    #[test]
    fn broken_documents_name_the_field_never_the_value() {
        let cases = [
            (json!({ "key": "short" }), "credentials.key"),
            (json!({ "iv": "0123456789abcdefX" }), "credentials.iv"),
            (json!({ "base_url": "ftp://x" }), "credentials.base_url"),
            (json!({ "base_url": "not a url" }), "credentials.base_url"),
            (
                json!({ "base_url": "http://u:pw@host" }),
                "credentials.base_url",
            ),
            (json!({ "operator": null }), "credentials.operator"),
            (json!({ "parent": 5 }), "credentials.parent"),
            (json!({ "secret": "x" }), "credentials.secret"),
            (json!({ "timeout_ms": -1 }), "credentials.timeout_ms"),
        ];
        for (patch, field) in cases {
            let mut d = doc(jdb_doc());
            for (k, v) in patch.as_object().unwrap() {
                d.insert(k.clone(), v.clone());
            }
            let e = ClientCredentials::parse("jdb", &d).unwrap_err();
            assert_eq!(e.field, field, "{patch}");
            assert!(!e.message.contains("short") && !e.message.contains("pw"));
        }
        let e = ClientCredentials::parse(
            "luckysports",
            &doc(json!({ "base_url": "http://h", "operator": "o" })),
        )
        .unwrap_err();
        assert_eq!(e.field, "credentials.secret");
    }
}
