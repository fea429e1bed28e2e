//! Every user-visible string of the web pages, looked up by key (English first). A template
//! says `{{ t.get("login.title") }}`; a missing key shows the key itself, and a test checks
//! that every key a template names exists.

use std::collections::HashMap;
use std::sync::OnceLock;

/// `key = text` lines; `#` starts a comment. One file per language, embedded.
const EN: &str = include_str!("../../templates/i18n/en.txt");

/// The strings of one language.
#[derive(Debug)]
pub struct Strings {
    map: HashMap<&'static str, &'static str>,
}

impl Strings {
    /// The text of `key`, or the key itself when unknown (visible, never a panic).
    pub fn get<'a>(&self, key: &'a str) -> &'a str
    where
        'static: 'a,
    {
        self.map.get(key).copied().unwrap_or(key)
    }

    /// Whether a key exists (tests).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
}

fn parse(text: &'static str) -> Strings {
    let map = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    Strings { map }
}

/// English, the only language so far; the place to pick by `Accept-Language` later.
pub fn english() -> &'static Strings {
    static EN_STRINGS: OnceLock<Strings> = OnceLock::new();
    EN_STRINGS.get_or_init(|| parse(EN))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `t.get("...")` in the templates names a key of the English file.
    #[test]
    fn every_template_key_exists() {
        let strings = english();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut missing = Vec::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for part in text.split("t.get(\"").skip(1) {
                    let key = part.split('"').next().unwrap();
                    if !strings.has(key) {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys missing from en.txt: {missing:?}");
    }
}
