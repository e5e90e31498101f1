//! Diesel SQL types for the values services store (feature `diesel`).
//!
//! A value is written as its canonical string form, the same text the services
//! stored before their columns were typed, and read back through its parser: a
//! stored value that does not parse fails the read as [`Corrupt`], naming the
//! column, instead of reaching a service as a plain string.
//!
//! Diesel needs one `ToSql` per backend. [`text_sql_type!`] gives a type those of
//! SQLite and PostgreSQL, and the `AsExpression` and `FromSqlRow` impls its derives
//! would; a `diesel::MultiConnection` adds its own backend with
//! [`multi_backend_sql_types!`], which lists every protocol type stored.

use std::error::Error as StdError;

#[doc(hidden)]
pub use {diesel as __diesel, serde as __serde};

/// A stored value that does not parse as its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored {kind} in column {column} is not valid")]
pub struct Corrupt {
    /// The type the value should have been.
    pub kind: &'static str,
    /// The column it was read from, as the backend names it.
    pub column: String,
}

/// What a failed parse of a stored value carries through diesel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {0}")]
#[doc(hidden)]
pub struct InvalidStored(pub &'static str);

impl Corrupt {
    /// The corrupt value a query failed on, if that is why it failed.
    pub fn of(e: &diesel::result::Error) -> Option<Self> {
        let diesel::result::Error::DeserializationError(e) = e else {
            return None;
        };
        let (column, inner): (_, &(dyn StdError + 'static)) =
            match e.downcast_ref::<diesel::result::DeserializeFieldError>() {
                Some(field) => (field.field_name.clone(), &*field.error),
                None => (None, &**e),
            };
        let InvalidStored(kind) = inner.downcast_ref::<InvalidStored>()?;
        Some(Self {
            kind,
            column: column.unwrap_or_else(|| "?".into()),
        })
    }
}

/// Stores each type in a `Text` column as its `Display` form and reads it back
/// with `FromStr`, on SQLite and PostgreSQL. With `#[derive(AsExpression,
/// FromSqlRow)]` and `#[diesel(sql_type = Text)]` on the type, it is a column type.
#[macro_export]
macro_rules! text_sql_type {
    ($($ty:ty),* $(,)?) => {$(
        const _: () = {
            use $crate::sql::__diesel::{
                backend::Backend,
                deserialize::{self, FromSql},
                pg::Pg,
                serialize::{self, IsNull, Output, ToSql},
                sql_types::Text,
                sqlite::Sqlite,
            };

            impl ToSql<Text, Sqlite> for $ty {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                    out.set_value(self.to_string());
                    Ok(IsNull::No)
                }
            }

            impl ToSql<Text, Pg> for $ty {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                    ::std::io::Write::write_all(out, self.to_string().as_bytes())?;
                    Ok(IsNull::No)
                }
            }

            impl<DB: Backend> FromSql<Text, DB> for $ty
            where
                String: FromSql<Text, DB>,
            {
                fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                    let text = <String as FromSql<Text, DB>>::from_sql(bytes)?;
                    text.parse().map_err(|_| {
                        Box::new($crate::sql::InvalidStored(stringify!($ty))) as Box<_>
                    })
                }
            }
        };
    )*};
}

/// Statuses stored as one of a few fixed strings, each a `Text` column type of
/// SQLite, PostgreSQL and the `MultiConnection` backend named first: the enum,
/// its `as_str`, `Display`, `FromStr`, serde (the same strings), diesel's
/// `AsExpression` and `FromSqlRow` derives and [`text_sql_type!`]. The calling
/// crate depends on diesel.
#[macro_export]
macro_rules! text_enum {
    (
        in $backend:ty;
        $(
            $(#[$meta:meta])*
            pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
        )+
    ) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[derive($crate::sql::__diesel::AsExpression, $crate::sql::__diesel::FromSqlRow)]
        #[diesel(sql_type = $crate::sql::__diesel::sql_types::Text)]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// The stored string.
            pub const fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text ),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::sql::InvalidStored;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err($crate::sql::InvalidStored(stringify!($name))),
                }
            }
        }

        impl $crate::sql::__serde::Serialize for $name {
            fn serialize<S: $crate::sql::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::sql::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::sql::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as $crate::sql::__serde::Deserialize>::deserialize(d)?;
                s.parse().map_err($crate::sql::__serde::de::Error::custom)
            }
        }

        $crate::text_sql_type!($name);
        $crate::multi_backend_sql_types!($backend; $name);
    )+};
}

/// What `#[derive(AsExpression, FromSqlRow)]` with `sql_type = Text` gives, for
/// the protocol's types, which are defined without diesel.
macro_rules! text_column_type {
    ($($ty:ty),* $(,)?) => {$(
        text_sql_type!($ty);

        const _: () = {
            use diesel::backend::Backend;
            use diesel::deserialize::{self, FromSql, Queryable};
            use diesel::expression::AsExpression;
            use diesel::internal::derives::as_expression::Bound;
            use diesel::serialize::{self, Output, ToSql};
            use diesel::sql_types::{Nullable, Text};

            impl<DB: Backend> ToSql<Nullable<Text>, DB> for $ty
            where
                Self: ToSql<Text, DB>,
            {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                    ToSql::<Text, DB>::to_sql(self, out)
                }
            }

            impl<DB: Backend> Queryable<Text, DB> for $ty
            where
                Self: FromSql<Text, DB>,
            {
                type Row = Self;
                fn build(row: Self) -> deserialize::Result<Self> {
                    Ok(row)
                }
            }

            as_expression!($ty, Text);
            as_expression!($ty, Nullable<Text>);
        };
    )*};
}

macro_rules! as_expression {
    ($ty:ty, $st:ty) => {
        impl AsExpression<$st> for $ty {
            type Expression = Bound<$st, Self>;
            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }

        impl<'a> AsExpression<$st> for &'a $ty {
            type Expression = Bound<$st, Self>;
            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }

        impl<'a, 'b> AsExpression<$st> for &'b &'a $ty {
            type Expression = Bound<$st, Self>;
            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }
    };
}

/// Every protocol type stored in a column, handed to the macro in brackets: the
/// one list of them.
#[doc(hidden)]
#[macro_export]
macro_rules! __stored_protocol_types {
    ([$($then:tt)*] ($($arg:tt)*)) => {
        $($then)*!(
            $($arg)*
            $crate::ids::PatientKey,
            $crate::ids::ScopeTag,
            $crate::ids::PointerId,
            $crate::ids::GrantId,
            $crate::ids::RequestId,
            $crate::ids::RuleId,
            $crate::ids::MemberId,
            $crate::ids::HospitalId,
            $crate::device::DeviceKeyId,
            $crate::entry::EventKind,
        );
    };
}

crate::__stored_protocol_types!([text_column_type]());

/// The `ToSql` impls of a `diesel::MultiConnection`'s backend, which hands each
/// value on to the impls of the backend in use (`FromSql` is generic): for every
/// stored protocol type, or for the types listed after the backend.
#[macro_export]
macro_rules! multi_backend_sql_types {
    ($backend:ty) => {
        $crate::__stored_protocol_types!([$crate::multi_backend_sql_types] ($backend;));
    };
    ($backend:ty; $($ty:ty),* $(,)?) => {$(
        impl $crate::sql::__diesel::serialize::ToSql<$crate::sql::__diesel::sql_types::Text, $backend>
            for $ty
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut $crate::sql::__diesel::serialize::Output<'b, '_, $backend>,
            ) -> $crate::sql::__diesel::serialize::Result {
                out.set_value(($crate::sql::__diesel::sql_types::Text, self));
                Ok($crate::sql::__diesel::serialize::IsNull::No)
            }
        }
    )*};
}
