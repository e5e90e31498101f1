//! Structs are read only from JSON objects, at every depth; everything else
//! reads as serde_json reads it.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;

use locus_platform::strict::{from_slice, Object};
use serde::Deserialize;

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inner {
    id: String,
    #[serde(default)]
    n: Option<u32>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Outer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    items: Vec<Inner>,
    #[serde(default)]
    maybe: Option<Inner>,
    #[serde(default)]
    kind: Option<Kind>,
    #[serde(default)]
    by_name: BTreeMap<String, Inner>,
    #[serde(default)]
    pair: Option<(u8, Inner)>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Kind {
    Plain,
    Wrapped(Inner),
    Shaped { id: String },
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Tagged {
    One { id: String },
}

fn refused<T: std::fmt::Debug + for<'a> Deserialize<'a>>(json: &str) -> String {
    let error = from_slice::<T>(json.as_bytes()).unwrap_err().to_string();
    // serde_json itself takes these: the refusal is strict's doing.
    assert!(
        serde_json::from_str::<T>(json).is_ok(),
        "serde_json refuses {json} too"
    );
    error
}

#[test]
fn a_struct_is_never_read_from_an_array() {
    // Top level: an empty array would be a request with every field defaulted.
    let error = refused::<Outer>("[]");
    assert!(error.contains("invalid type: sequence"), "{error}");
    refused::<Outer>(r#"["token"]"#);
    // In a field, an element, an option, a map value, a tuple, an enum variant.
    refused::<Outer>(r#"{"items": [["a", 1]]}"#);
    refused::<Outer>(r#"{"maybe": ["a"]}"#);
    refused::<Outer>(r#"{"by_name": {"x": ["a"]}}"#);
    refused::<Outer>(r#"{"pair": [1, ["a"]]}"#);
    refused::<Outer>(r#"{"kind": {"wrapped": ["a"]}}"#);
    refused::<Outer>(r#"{"kind": {"shaped": ["a"]}}"#);
}

#[test]
fn objects_read_as_before() {
    let json = r#"{"token": "t", "items": [{"id": "a", "n": 1}, {"id": "b"}],
        "maybe": {"id": "c"}, "kind": {"shaped": {"id": "d"}}, "by_name": {"x": {"id": "e"}},
        "pair": [7, {"id": "f"}]}"#;
    let strict: Outer = from_slice(json.as_bytes()).unwrap();
    assert_eq!(strict, serde_json::from_str::<Outer>(json).unwrap());
    assert_eq!(
        strict.items[0],
        Inner {
            id: "a".into(),
            n: Some(1)
        }
    );
    assert_eq!(strict.pair.as_ref().unwrap().0, 7);
    for kind in [
        r#""plain""#,
        r#"{"wrapped": {"id": "x"}}"#,
        r#"{"shaped": {"id": "y"}}"#,
    ] {
        let json = format!(r#"{{"kind": {kind}}}"#);
        assert_eq!(
            from_slice::<Outer>(json.as_bytes()).unwrap(),
            serde_json::from_str::<Outer>(&json).unwrap()
        );
    }
    // Internally tagged enums buffer their content and still read.
    let tagged: Tagged = from_slice(br#"{"type": "one", "id": "z"}"#).unwrap();
    assert_eq!(tagged, Tagged::One { id: "z".into() });
    // Plain values and sequences of them are untouched.
    assert_eq!(from_slice::<Vec<u32>>(b"[1, 2]").unwrap(), vec![1, 2]);
    assert_eq!(from_slice::<Option<String>>(b"null").unwrap(), None);
}

#[test]
fn unknown_duplicate_and_trailing_input_are_still_refused() {
    let unknown = from_slice::<Outer>(br#"{"name": "x"}"#)
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown field"), "{unknown}");
    let duplicate = from_slice::<Outer>(br#"{"token": "a", "token": "b"}"#)
        .unwrap_err()
        .to_string();
    assert!(duplicate.contains("duplicate field"), "{duplicate}");
    assert!(from_slice::<Outer>(br#"{} {}"#).is_err());
    assert!(from_slice::<Inner>(br#"{"id": "a", "n": 4294967296}"#).is_err());
    assert!(from_slice::<Inner>(br#"{"id": "a", "n": -1}"#).is_err());
}

#[test]
fn object_wraps_any_deserializer() {
    let value = serde_json::json!({"id": "a"});
    let Object(inner) = serde_json::from_value::<Object<Inner>>(value).unwrap();
    assert_eq!(inner.id, "a");
    assert!(serde_json::from_value::<Object<Inner>>(serde_json::json!(["a"])).is_err());
    assert!(serde_json::from_value::<Inner>(serde_json::json!(["a"])).is_ok());
}
