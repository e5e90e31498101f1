#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

/// Gives a type whose `FromStr` validates and whose `Display` prints the canonical
/// string form a `TryFrom<&str>` and serde impls that go through those two, so the
/// wire form and the parser can never disagree and invalid JSON values are rejected.
macro_rules! string_form {
    ($ty:ty) => {
        impl TryFrom<&str> for $ty {
            type Error = <$ty as ::core::str::FromStr>::Err;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// Defines a struct with public named fields whose `Deserialize` reads the fields
/// (refusing unknown ones) and then runs the struct's `check(&self)`, so a value
/// parsed from JSON has passed the same checks as one built in code. Field
/// attributes (`#[serde(default, skip_serializing_if = ...)]`) apply both ways;
/// derive `Serialize` in the struct's own attributes.
macro_rules! checked_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Same name, so serde's messages name the right type.
                #[derive(::serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct $name { $( $(#[$fmeta])* $field: $ty, )* }
                let wire = <$name as ::serde::Deserialize>::deserialize(d)?;
                let value = Self { $( $field: wire.$field, )* };
                value.check().map_err(::serde::de::Error::custom)?;
                Ok(value)
            }
        }
    };
}

pub mod consent;
pub mod device;
pub mod directory;
pub mod entry;
pub mod grant;
pub mod grant_token;
pub mod ids;
pub mod jcs;
pub mod linkage;
pub mod pointer;
pub mod roles;
pub mod scope;
pub mod seal;
pub mod signing;
#[cfg(feature = "diesel")]
pub mod sql;
pub mod text;
