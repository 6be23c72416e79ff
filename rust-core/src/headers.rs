//! Record headers: parsed from a JSON object of string to string, order and duplicates kept.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};

use crate::config::Limits;
use crate::error::{Error, Result};

/// Record headers in the order the client gave them.
pub type Headers = Vec<(String, String)>;

/// Parses `{"k":"v",...}`; empty or blank text means no headers.
pub fn parse_json(text: &str) -> Result<Headers> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let headers = de
        .deserialize_map(OrderedPairs)
        .and_then(|h| de.end().map(|_| h))
        .map_err(|e| Error::bad_request(format!("headers: must be a JSON object of string values ({e})")))?;
    Ok(headers)
}

/// Checks header count, names and total size against the limits.
pub fn check(headers: &[(String, String)], limits: &Limits) -> Result<()> {
    if headers.len() > limits.max_headers {
        return Err(Error::too_large(format!(
            "headers: {} headers, the limit is {}",
            headers.len(),
            limits.max_headers
        )));
    }
    let mut total = 0usize;
    for (i, (name, value)) in headers.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::bad_request(format!("headers: header #{} has an empty name", i + 1)));
        }
        total += name.len() + value.len();
    }
    if total > limits.max_header_bytes {
        return Err(Error::too_large(format!(
            "headers: {total} bytes in names and values, the limit is {}",
            limits.max_header_bytes
        )));
    }
    Ok(())
}

struct OrderedPairs;

impl<'de> Visitor<'de> for OrderedPairs {
    type Value = Headers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Headers, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some((k, v)) = map.next_entry::<String, String>()? {
            out.push((k, v));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_duplicates_and_any_characters() {
        let h = parse_json(r#"{"my_key":"myvalue","b":"x-y.z/ w","my_key":"2"}"#).unwrap();
        assert_eq!(
            h,
            vec![
                ("my_key".to_owned(), "myvalue".to_owned()),
                ("b".to_owned(), "x-y.z/ w".to_owned()),
                ("my_key".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn empty_means_none() {
        assert!(parse_json("").unwrap().is_empty());
        assert!(parse_json("{}").unwrap().is_empty());
    }

    #[test]
    fn rejects_non_string_values_and_non_objects() {
        for bad in [r#"{"a":1}"#, r#"["a"]"#, r#"{"a":"b"} x"#, "{", r#"{"a":null}"#] {
            let e = parse_json(bad).unwrap_err();
            assert_eq!(e.status, crate::Status::BadRequest, "{bad}");
            assert!(e.message.starts_with("headers:"), "{}", e.message);
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits { max_headers: 2, max_header_bytes: 8, ..Limits::default() };
        let two = vec![("a".to_owned(), "b".to_owned()), ("c".to_owned(), "d".to_owned())];
        check(&two, &limits).unwrap();
        let three = [two.clone(), vec![("e".to_owned(), "f".to_owned())]].concat();
        assert_eq!(check(&three, &limits).unwrap_err().status, crate::Status::PayloadTooLarge);
        let big = vec![("name".to_owned(), "value".to_owned())];
        assert_eq!(check(&big, &limits).unwrap_err().status, crate::Status::PayloadTooLarge);
        let empty = vec![(String::new(), "v".to_owned())];
        let e = check(&empty, &limits).unwrap_err();
        assert!(e.status == crate::Status::BadRequest && e.message.contains("empty name"));
    }
}
