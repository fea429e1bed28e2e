//! Closed sets of names that are stored and sent as text (`journal.kind`, a transfer's `state`,
//! a user's `status`, ...): one table per enum gives its text, parsing, `Display` and JSON form,
//! so the column, the wire and the code can never spell a variant differently.

/// A stored name that is not one of its enum's variants (a corrupt row, or a request's filter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {text:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub text: String,
}

/// `text_enum! { /// doc  pub enum Name("what it is") { Variant = "text", ... } }`: the enum
/// (`Copy`, `Eq`, `Hash`), `ALL` and `NAMES` in declaration order, `as_str`, `FromStr` (an
/// unknown text is an [`UnknownName`]), `Display` and `Serialize` as the text.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            /// Every variant's text, in declaration order.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            /// The text stored in the database and sent on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::UnknownName;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::domain::UnknownName {
                        what: $what,
                        text: other.to_owned(),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

pub(crate) use text_enum;

/// Round-trip checks every `text_enum!` test runs: `as_str` parses back to the variant,
/// `Display` and JSON are the same text, the texts are distinct, and other texts are refused.
#[cfg(test)]
pub(crate) fn assert_round_trips<T>(all: &[T], names: &[&str], as_str: fn(T) -> &'static str)
where
    T: Copy
        + PartialEq
        + std::fmt::Debug
        + std::fmt::Display
        + std::str::FromStr<Err = UnknownName>
        + serde::Serialize,
{
    assert_eq!(all.len(), names.len());
    let mut seen = std::collections::HashSet::new();
    for (&v, &name) in all.iter().zip(names) {
        assert_eq!(as_str(v), name);
        assert_eq!(name.parse::<T>(), Ok(v), "{name}");
        assert_eq!(v.to_string(), name);
        assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(name));
        assert!(seen.insert(name), "{name} names two variants");
        for other in [
            name.to_uppercase(),
            format!(" {name}"),
            format!("{name} "),
            format!("{name}x"),
        ] {
            assert!(other.parse::<T>().is_err(), "{other:?} parsed");
        }
    }
    assert!("".parse::<T>().is_err());
}

/// For property tests: a text parses exactly when it is one of `names`, to the variant whose
/// text it is.
#[cfg(test)]
pub(crate) fn assert_parses_only_names<T>(text: &str, names: &[&str], as_str: fn(T) -> &'static str)
where
    T: Copy + std::str::FromStr<Err = UnknownName>,
{
    match text.parse::<T>() {
        Ok(v) => assert_eq!(as_str(v), text),
        Err(e) => {
            assert!(!names.contains(&text), "{text:?} refused");
            assert_eq!(e.text, text);
        }
    }
}
