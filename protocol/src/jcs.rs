//! Canonical JSON per RFC 8785 (JCS), restricted to integer numbers.
//!
//! Signed ledger entries are hashed and signed as canonical bytes, so every party
//! must produce the same bytes for the same value. RFC 8785 gets there by sorting
//! object keys by UTF-16 code units, printing strings the way ECMAScript's
//! `JSON.stringify` does, and printing numbers the way ECMAScript does.
//!
//! Numbers: Locus values use integers only. RFC 8785 numbers are IEEE 754 doubles,
//! and reproducing ECMAScript's shortest round-trip float printing exactly is a
//! well-known source of cross-implementation mismatches; we avoid the problem by
//! refusing every non-integer. Integers are accepted only within ±(2^53 − 1), where
//! a double holds them exactly and ECMAScript prints them as plain decimal digits,
//! so our output is still valid RFC 8785 for any conforming verifier.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Largest integer magnitude accepted: 2^53 − 1 (ECMAScript `Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why a value could not be canonicalized or a byte string is not canonical.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    /// A number with a fraction or exponent, or one that does not fit an integer.
    #[error("canonical JSON here allows integers only, found a non-integer number")]
    NonInteger,
    /// An integer whose magnitude exceeds 2^53 − 1.
    #[error("integer outside the safe range ±(2^53 - 1)")]
    IntegerOutOfRange,
    /// The value could not be turned into JSON (e.g. a map with non-string keys).
    #[error("value cannot be serialized as JSON: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The input is not JSON.
    #[error("input is not valid JSON: {0}")]
    Parse(#[source] serde_json::Error),
    /// The input is JSON but not in canonical form (whitespace, key order,
    /// duplicate keys, escapes, number spelling, ...).
    #[error("input is not in RFC 8785 canonical form")]
    NotCanonical,
    /// Canonical JSON, but not of the expected shape.
    #[error("canonical JSON does not match the expected structure: {0}")]
    Deserialize(#[source] serde_json::Error),
}

/// The RFC 8785 canonical form of `value`.
pub fn canonicalize(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::new();
    write_value(&mut out, value)?;
    Ok(out)
}

/// Serializes `value` to canonical JSON bytes.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(value).map_err(CanonicalError::Serialize)?;
    canonicalize(&value).map(String::into_bytes)
}

/// What a member key signs: a domain-separation `context` label, then the canonical
/// JSON of `value`, so a signature over one kind of statement never passes for another.
pub fn signed_message<T: Serialize + ?Sized>(
    context: &[u8],
    value: &T,
) -> Result<Vec<u8>, CanonicalError> {
    Ok([context, &to_canonical_vec(value)?].concat())
}

/// Parses canonical JSON bytes, refusing anything that is not byte-for-byte the
/// canonical form of what it parses to. A value therefore has exactly one accepted
/// encoding, which is what makes hashes and signatures over it meaningful.
pub fn from_canonical_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CanonicalError> {
    let value: Value = serde_json::from_slice(bytes).map_err(CanonicalError::Parse)?;
    // Duplicate keys collapse while parsing, so they show up here as a mismatch.
    if canonicalize(&value)?.as_bytes() != bytes {
        return Err(CanonicalError::NotCanonical);
    }
    serde_json::from_value(value).map_err(CanonicalError::Deserialize)
}

fn write_value(out: &mut String, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            let digits = if let Some(u) = n.as_u64() {
                (u <= MAX_SAFE_INTEGER).then(|| u.to_string())
            } else if let Some(i) = n.as_i64() {
                (i.unsigned_abs() <= MAX_SAFE_INTEGER).then(|| i.to_string())
            } else {
                return Err(CanonicalError::NonInteger);
            };
            out.push_str(&digits.ok_or(CanonicalError::IntegerOutOfRange)?);
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            // RFC 8785 §3.2.3: sort by UTF-16 code units, which differs from the
            // UTF-8 byte order of serde_json's map for characters above U+FFFF
            // against those in U+E000..U+FFFF.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// RFC 8785 §3.2.2.2 (ECMAScript `JSON.stringify`): the two-character escapes where
/// they exist, `\u00xx` (lowercase hex) for other controls, everything else as is.
fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let b = c as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(text: &str) -> Result<String, CanonicalError> {
        canonicalize(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn rfc8785_key_ordering_example() {
        // RFC 8785 §3.2.3: U+1F600 (surrogates D83D DE00) sorts before U+FB33,
        // although its UTF-8 bytes sort after.
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                    \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
                    \"\u{1f600}\":\"Emoji: Grinning Face\",\
                    \"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canon(input).unwrap(), want);
    }

    #[test]
    fn rfc8785_string_and_literal_example() {
        // RFC 8785 §3.2.2 example, without its "numbers" member (non-integers).
        let input = r#"{
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let want = r#"{"literals":[null,true,false],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        assert_eq!(canon(input).unwrap(), want);
        // And its numbers are refused rather than printed differently.
        let numbers = "[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]";
        assert!(matches!(canon(numbers), Err(CanonicalError::NonInteger)));
    }

    #[test]
    fn control_escapes() {
        let s: String = (0u8..0x20).map(char::from).chain(['\u{7f}', 'é']).collect();
        let got = canonicalize(&Value::String(s)).unwrap();
        assert_eq!(
            got,
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\
             \\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\
             \\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\u{7f}é\""
        );
    }

    #[test]
    fn integer_limits() {
        assert_eq!(
            canon("[0, 1, -1, 9007199254740991, -9007199254740991]").unwrap(),
            "[0,1,-1,9007199254740991,-9007199254740991]"
        );
        for big in [
            "9007199254740992",
            "-9007199254740992",
            "18446744073709551615",
        ] {
            assert!(
                matches!(canon(big), Err(CanonicalError::IntegerOutOfRange)),
                "{big}"
            );
        }
        for frac in ["1.0", "1e2", "0.5", "-0.0"] {
            assert!(canon(frac).is_err(), "{frac}");
        }
        assert!(matches!(
            canonicalize(&json!(f64::MAX)),
            Err(CanonicalError::NonInteger)
        ));
    }

    #[test]
    fn nested_and_empty() {
        assert_eq!(
            canon(r#" { "b" : [ {}, [] , {"z":1,"a":{"y":null,"x":true}} ], "a" : "" } "#).unwrap(),
            r#"{"a":"","b":[{},[],{"a":{"x":true,"y":null},"z":1}]}"#
        );
    }

    #[test]
    fn strict_parse() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct T {
            a: u32,
            b: String,
        }
        let ok: T = from_canonical_slice(br#"{"a":1,"b":"x"}"#).unwrap();
        assert_eq!(
            ok,
            T {
                a: 1,
                b: "x".into()
            }
        );
        for bad in [
            &br#"{"b":"x","a":1}"#[..],
            br#"{"a":1, "b":"x"}"#,
            br#" {"a":1,"b":"x"}"#,
            br#"{"a":1,"b":"x"}
"#,
            br#"{"a":1,"a":1,"b":"x"}"#,
            br#"{"a":1,"b":"\u0078"}"#,
            br#"{"a":1,"b":"\/"}"#,
            br#"{"a":1.0,"b":"x"}"#,
            br#"{"a":1e0,"b":"x"}"#,
            br#"{"a":01,"b":"x"}"#,
            br#"{"a":-0,"b":"x"}"#,
            br#"{"a":1,"b":"x"#,
            b"",
            b"\xff",
        ] {
            assert!(
                from_canonical_slice::<T>(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Canonical but wrong shape.
        assert!(matches!(
            from_canonical_slice::<T>(br#"{"a":"1","b":"x"}"#),
            Err(CanonicalError::Deserialize(_))
        ));
    }

    #[test]
    fn to_canonical_vec_sorts_struct_fields() {
        #[derive(Serialize)]
        struct S {
            z: u8,
            a: &'static str,
        }
        assert_eq!(
            to_canonical_vec(&S { z: 1, a: "\u{1}" }).unwrap(),
            br#"{"a":"\u0001","z":1}"#
        );
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        assert!(matches!(
            to_canonical_vec(&bad),
            Err(CanonicalError::Serialize(_))
        ));
    }
}
