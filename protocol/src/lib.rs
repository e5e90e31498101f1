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

/// Gives a key, id or signature written as base64 of a fixed number of bytes its
/// `Display` (`$engine` base64 of `$bytes`, where `$v` is the value), `Debug`
/// (`Name(<base64>)`), `FromStr` (decode to `$b: [u8; N]`, refusing with `$bad`, then
/// `$parse`; for a plain `$ty([u8; N])`, `Self(bytes)`) and the serde impls of
/// [`string_form`].
macro_rules! base64_form {
    (
        $ty:ident, $engine:expr,
        |$v:ident| $bytes:expr,
        |$b:ident: [u8; $len:literal]| $parse:expr,
        $err:ty = $bad:expr
    ) => {
        impl ::core::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let $v = self;
                f.write_str(&::base64::Engine::encode(&$engine, $bytes))
            }
        }

        impl ::core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self)
            }
        }

        impl ::core::str::FromStr for $ty {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, $err> {
                let $b = crate::signing::decode_b64_array::<$len>(&$engine, s).ok_or($bad)?;
                $parse
            }
        }

        string_form!($ty);
    };
    // A plain byte-array newtype.
    ($ty:ident([u8; $len:literal]), $engine:expr, $err:ty = $bad:expr) => {
        base64_form!(
            $ty,
            $engine,
            |v| v.0,
            |b: [u8; $len]| Ok(Self(b)),
            $err = $bad
        );
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

/// Gives a secret key a `Debug` that shows only `$field` (its public half or id, as
/// `$public` with `$k` the key) and a redacted secret, so logging a key leaks nothing.
macro_rules! redacted_debug {
    ($ty:ident, $field:literal, |$k:ident| $public:expr) => {
        impl ::core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let $k = self;
                f.debug_struct(stringify!($ty))
                    .field($field, &$public)
                    .field("secret", &"<redacted>")
                    .finish()
            }
        }
    };
}

/// Declares a token's claims struct: the registered JWT claims every Locus token
/// carries (`iss` to `exp`, in this wire order), then the token's own claims.
macro_rules! token_claims {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($own:tt)* }
    ) => {
        $(#[$meta])*
        pub struct $name {
            /// The issuer (the consent service).
            pub iss: $crate::ids::MemberId,
            /// The patient.
            pub sub: $crate::ids::PatientKey,
            /// The member allowed to use the grant.
            pub aud: $crate::ids::MemberId,
            /// Grant id (for revocation and the ledger; discovery and retrieval are
            /// logged under it).
            pub jti: $crate::ids::GrantId,
            /// Issued at, Unix seconds.
            pub iat: i64,
            /// Not before, Unix seconds.
            pub nbf: i64,
            /// Expires, Unix seconds (exclusive).
            pub exp: i64,
            $($own)*
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
pub mod member;
pub mod pointer;
pub mod roles;
pub mod scope;
pub mod seal;
pub mod signing;
#[cfg(feature = "diesel")]
pub mod sql;
#[cfg(test)]
mod test_support;
pub mod text;
