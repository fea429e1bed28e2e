//! Message templates: the built-in English text of every template, per-client overrides (in
//! `channel_templates`), the language fallback chain and rendering. Variables are `{{name}}`;
//! in the HTML part their values are HTML-escaped, in the text part and SMS they are not.

use crate::domain::text_enum::text_enum;

text_enum! {
    /// The messages the hub sends over email and SMS.
    pub enum Template("template") {
        VerifyContact = "verify_contact",
        DepositConfirmed = "deposit_confirmed",
        WithdrawalPaid = "withdrawal_paid",
        WithdrawalRejected = "withdrawal_rejected",
        NewDeviceLogin = "new_device_login",
        PasswordChanged = "password_changed",
        LimitReached = "limit_reached",
        SelfExclusionConfirmed = "self_exclusion_confirmed",
        AdminBroadcast = "admin_broadcast",
    }
}

/// The language every built-in template exists in, and the last fallback.
pub const FALLBACK_LANGUAGE: &str = "en";

/// A template's parts before rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub subject: String,
    pub text: String,
    /// None: the HTML part is made from the text (escaped, paragraphs kept).
    pub html: Option<String>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Template {
    /// Marketing messages need an opt-in; the rest are transactional.
    pub fn category(self) -> crate::domain::Category {
        match self {
            Template::AdminBroadcast => crate::domain::Category::Marketing,
            _ => crate::domain::Category::Transactional,
        }
    }

    /// The variables the template may name.
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Template::VerifyContact => &["code", "minutes", "brand"],
            Template::DepositConfirmed => &["amount", "currency", "reference", "brand"],
            Template::WithdrawalPaid => &["amount", "currency", "reference", "brand"],
            Template::WithdrawalRejected => &["amount", "currency", "reference", "reason", "brand"],
            Template::NewDeviceLogin => &["ip", "device", "time", "brand"],
            Template::PasswordChanged => &["time", "brand"],
            Template::LimitReached => &["limit", "amount", "currency", "period", "brand"],
            Template::SelfExclusionConfirmed => &["until", "brand"],
            Template::AdminBroadcast => &["subject", "body", "brand"],
        }
    }

    /// The built-in English parts.
    pub fn builtin(self) -> Parts {
        let (subject, text) = match self {
            Template::VerifyContact => (
                "Your {{brand}} verification code",
                "Your verification code is {{code}}.\n\nIt is valid for {{minutes}} minutes. If you did not ask for it, ignore this message.",
            ),
            Template::DepositConfirmed => (
                "Deposit confirmed",
                "Your deposit of {{amount}} {{currency}} is confirmed.\n\nReference: {{reference}}",
            ),
            Template::WithdrawalPaid => (
                "Withdrawal paid",
                "Your withdrawal of {{amount}} {{currency}} has been paid.\n\nReference: {{reference}}",
            ),
            Template::WithdrawalRejected => (
                "Withdrawal rejected",
                "Your withdrawal of {{amount}} {{currency}} was rejected: {{reason}}\n\nThe money is back in your wallet. Reference: {{reference}}",
            ),
            Template::NewDeviceLogin => (
                "New sign-in to your {{brand}} account",
                "Your account was signed in to from a new device or address ({{device}}, {{ip}}) at {{time}}.\n\nIf this was not you, change your password now.",
            ),
            Template::PasswordChanged => (
                "Your {{brand}} password was changed",
                "Your password was changed at {{time}}.\n\nIf this was not you, contact support now.",
            ),
            Template::LimitReached => (
                "You reached your limit",
                "You reached your {{period}} {{limit}} limit of {{amount}} {{currency}}.",
            ),
            Template::SelfExclusionConfirmed => (
                "Self-exclusion confirmed",
                "Your self-exclusion is confirmed until {{until}}. You cannot play or deposit until then.",
            ),
            Template::AdminBroadcast => ("{{subject}}", "{{body}}"),
        };
        Parts {
            subject: subject.to_owned(),
            text: text.to_owned(),
            html: None,
        }
    }
}

/// The languages to try, in order: the user's, the client's default, then English.
pub fn language_chain(user: Option<&str>, client: Option<&str>) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(3);
    for lang in [user, client, Some(FALLBACK_LANGUAGE)]
        .into_iter()
        .flatten()
    {
        if !chain.iter().any(|l| l == lang) {
            chain.push(lang.to_owned());
        }
    }
    chain
}

/// A language tag we accept: `en`, `de`, `pt-BR`, `fil`.
pub fn valid_language(tag: &str) -> bool {
    let (primary, region) = match tag.split_once('-') {
        Some((p, r)) => (p, Some(r)),
        None => (tag, None),
    };
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
}

/// The `{{name}}` placeholders a text uses.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// Placeholders a client's template names that the template does not have.
pub fn unknown_placeholders(template: Template, parts: &Parts) -> Vec<String> {
    let allowed = template.variables();
    let mut texts = vec![parts.subject.as_str(), parts.text.as_str()];
    if let Some(html) = &parts.html {
        texts.push(html);
    }
    let mut unknown: Vec<String> = texts
        .into_iter()
        .flat_map(placeholders)
        .filter(|p| !allowed.contains(p))
        .map(str::to_owned)
        .collect();
    unknown.sort();
    unknown.dedup();
    unknown
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces each `{{name}}` with its value (through `encode`); an unknown name becomes empty.
fn substitute(text: &str, vars: &[(&str, &str)], encode: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        if let Some((_, value)) = vars.iter().find(|(k, _)| *k == name) {
            out.push_str(&encode(value));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The HTML template made from a text template: escaped, blank lines as paragraphs.
fn html_from_text(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| format!("<p>{}</p>", escape_html(p).replace('\n', "<br>")))
        .collect();
    format!(
        "<!DOCTYPE html><html><body>{}</body></html>",
        paragraphs.join("")
    )
}

/// Renders parts with variables: raw in subject and text, HTML-escaped in the HTML part.
pub fn render(parts: &Parts, vars: &[(&str, &str)]) -> Rendered {
    let html_template = parts
        .html
        .clone()
        .unwrap_or_else(|| html_from_text(&parts.text));
    // Subjects are one header line: a value's line breaks become spaces.
    let subject = substitute(&parts.subject, vars, |v| v.replace(['\r', '\n'], " "));
    Rendered {
        subject,
        text: substitute(&parts.text, vars, str::to_owned),
        html: substitute(&html_template, vars, escape_html),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_builtin_names_only_its_variables() {
        for t in Template::ALL {
            assert!(unknown_placeholders(t, &t.builtin()).is_empty(), "{t}");
        }
    }

    #[test]
    fn html_part_escapes_values_and_text_part_keeps_them() {
        let parts = Template::WithdrawalRejected.builtin();
        let r = render(
            &parts,
            &[
                ("amount", "5.00"),
                ("currency", "EUR"),
                ("reason", "<b>KYC</b> & co"),
            ],
        );
        assert!(r.text.contains("rejected: <b>KYC</b> & co"));
        assert!(r.html.contains("rejected: &lt;b&gt;KYC&lt;/b&gt; &amp; co"));
        assert!(!r.html.contains("<b>"));
    }

    #[test]
    fn fallback_chain_skips_repeats() {
        assert_eq!(language_chain(Some("de"), Some("fr")), ["de", "fr", "en"]);
        assert_eq!(language_chain(None, Some("en")), ["en"]);
        assert_eq!(language_chain(Some("en"), None), ["en"]);
    }

    #[test]
    fn languages() {
        for ok in ["en", "de", "pt-BR", "fil"] {
            assert!(valid_language(ok), "{ok}");
        }
        for bad in ["", "e", "EN", "english", "pt-br", "pt_BR", "de-"] {
            assert!(!valid_language(bad), "{bad}");
        }
    }

    proptest! {
        /// Whatever a value holds, it cannot open a tag in the HTML part or break the subject.
        #[test]
        fn values_never_inject_markup(value in ".{0,40}") {
            let parts = Parts { subject: "S {{body}}".into(), text: "{{body}}".into(), html: Some("<p>{{body}}</p>".into()) };
            let r = render(&parts, &[("body", &value)]);
            let inner = &r.html["<p>".len()..r.html.len() - "</p>".len()];
            prop_assert!(!inner.contains('<') && !inner.contains('>'));
            prop_assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
            prop_assert_eq!(r.text, value);
        }
    }
}
