//! JSON Schema: the body is validated (the `jsonschema` crate, compiled once per schema version) and
//! written as compact JSON. Every violation is named by its instance path (a JSON pointer) and
//! worded by the crate's masked messages, which put `value` where the instance would be shown.

use std::collections::BTreeMap;

use jsonschema::{Draft, Validator};
use serde_json::Value as Json;

use super::json_value;
use crate::error::{Error, Result};

/// Violations listed in one `400` at most (a large body can break a rule thousands of times).
const MAX_LISTED: usize = 10;

/// Validates JSON bodies against one JSON Schema; build once per schema version, share freely.
#[derive(Debug)]
pub struct JsonSchemaEncoder {
    validator: Validator,
}

impl JsonSchemaEncoder {
    /// Compiles `text`. Its `$schema` picks the draft (4, 6, 7, 2019-09, 2020-12); without one,
    /// `default_draft`. Remote `$ref`s are never fetched (no resolver is built in), so such a
    /// schema does not compile. The error says why, without the schema's name (the caller adds it).
    pub fn new(text: &str, default_draft: Draft) -> std::result::Result<JsonSchemaEncoder, String> {
        Self::with_references(text, default_draft, &BTreeMap::new())
    }

    /// [`JsonSchemaEncoder::new`] for a schema whose `$ref`s name other schemas: `references`
    /// (a Confluent registry's, by reference name) are served for a `$ref` to that name, relative
    /// or absolute; any other remote `$ref` still does not compile.
    pub fn with_references(
        text: &str,
        default_draft: Draft,
        references: &BTreeMap<String, String>,
    ) -> std::result::Result<JsonSchemaEncoder, String> {
        let schema: Json = serde_json::from_str(text)
            .map_err(|e| format!("is not valid JSON (line {}, column {})", e.line(), e.column()))?;
        let mut options = jsonschema::options();
        if !references.is_empty() {
            let mut parsed = BTreeMap::new();
            for (name, text) in references {
                let value: Json = serde_json::from_str(text).map_err(|e| {
                    format!("references `{name}`, which is not valid JSON (line {}, column {})", e.line(), e.column())
                })?;
                parsed.insert(name.clone(), value);
            }
            options = options.with_retriever(References(parsed));
        }
        if schema.get("$schema").is_none() {
            options = options.with_draft(default_draft);
        }
        let validator = options.build(&schema).map_err(|e| format!("is not a valid JSON Schema: {}", e.masked()))?;
        Ok(JsonSchemaEncoder { validator })
    }

    /// Validates `json` and returns it as compact JSON: the body's own text with the blanks
    /// between tokens removed (keys in the order sent, numbers and string escapes as sent).
    pub fn encode(&self, json: &str) -> Result<Vec<u8>> {
        let body = json_value::parse(json)?;
        // The yes/no check is the fast path; errors are collected only for a body that fails it.
        if self.validator.is_valid(&body) {
            return Ok(compact(json));
        }
        let errors = self.validator.iter_errors(&body);
        let mut listed = Vec::new();
        let mut total = 0;
        for e in errors {
            total += 1;
            if listed.len() < MAX_LISTED {
                let at = e.instance_path().as_str();
                let at = if at.is_empty() { "(root)" } else { at };
                listed.push(format!("at `{at}`: {}", e.masked()));
            }
        }
        let more = if total > listed.len() { format!("; and {} more", total - listed.len()) } else { String::new() };
        Err(Error::bad_request(format!("body: does not match the JSON Schema: {}{more}", listed.join("; "))))
    }
}

/// Serves a schema's references to the validator: by the reference's name, as an absolute URI or
/// relative to the schema's base (`json-schema:///` when it has no `$id`).
struct References(BTreeMap<String, Json>);

impl jsonschema::Retrieve for References {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> std::result::Result<Json, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let relative = uri.strip_prefix("json-schema:///").unwrap_or(uri);
        self.0
            .get(uri)
            .or_else(|| self.0.get(relative))
            .cloned()
            .ok_or_else(|| format!("`{uri}` is not one of the schema's references").into())
    }
}

/// `json` (valid JSON) without the blanks between tokens; strings are copied as they are.
pub(crate) fn compact(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in json.as_bytes() {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.push(b);
            in_string = b == b'"';
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder(schema: &str) -> JsonSchemaEncoder {
        JsonSchemaEncoder::new(schema, Draft::Draft202012).unwrap()
    }

    #[test]
    fn valid_bodies_are_written_compact_in_the_order_sent() {
        let e = encoder(r#"{"type":"object"}"#);
        let body = "{ \"z\" : 1,\n \"a\" : \"x y\\\" \\\\\", \"n\": [ 1.50 , 2 ] }";
        assert_eq!(e.encode(body).unwrap(), br#"{"z":1,"a":"x y\" \\","n":[1.50,2]}"#.to_vec());
    }

    #[test]
    fn each_violation_names_its_instance_path_and_no_value() {
        let e = encoder(
            r##"{"type":"object","required":["sample_message"],"additionalProperties":false,
               "properties":{"sample_message":{"type":"string","pattern":"^[a-z]+$"},
                             "level":{"enum":["LOW","HIGH"]},
                             "source":{"$ref":"#/$defs/source"}},
               "$defs":{"source":{"type":"object","properties":{"instance":{"type":"integer"}}}}}"##,
        );
        e.encode(r#"{"sample_message":"hello","level":"LOW","source":{"instance":3}}"#).unwrap();
        let err = e.encode(r#"{"level":"SECRET1","source":{"instance":"SECRET2"},"extra":1}"#).unwrap_err();
        assert_eq!(err.status, crate::Status::BadRequest);
        let m = &err.message;
        assert!(m.contains("at `(root)`") && m.contains("sample_message"), "{m}");
        assert!(m.contains("at `/level`"), "{m}");
        assert!(m.contains("at `/source/instance`"), "{m}");
        assert!(m.contains("extra"), "{m}");
        assert!(!m.contains("SECRET"), "{m}");
        let err = e.encode(r#"{"sample_message":"NOT lower"}"#).unwrap_err();
        assert!(err.message.contains("at `/sample_message`") && !err.message.contains("NOT lower"), "{}", err.message);
    }

    #[test]
    fn drafts_and_broken_schemas() {
        // Draft 4's boolean exclusiveMaximum; without `$schema`, the registry's default draft.
        let d4 = JsonSchemaEncoder::new(r#"{"maximum":3,"exclusiveMaximum":true}"#, Draft::Draft4).unwrap();
        assert!(d4.encode("3").is_err() && d4.encode("2").is_ok());
        let d7 = JsonSchemaEncoder::new(
            r#"{"$schema":"http://json-schema.org/draft-07/schema#","exclusiveMaximum":3}"#,
            Draft::Draft4,
        )
        .unwrap();
        assert!(d7.encode("3").is_err() && d7.encode("2").is_ok());
        assert!(JsonSchemaEncoder::new("{", Draft::Draft7).unwrap_err().contains("not valid JSON"));
        assert!(JsonSchemaEncoder::new(r#"{"type":12}"#, Draft::Draft7)
            .unwrap_err()
            .contains("not a valid JSON Schema"));
        let remote = JsonSchemaEncoder::new(r#"{"$ref":"http://127.0.0.1:9/x.json"}"#, Draft::Draft7);
        assert!(remote.is_err());
    }

    #[test]
    fn many_violations_are_capped() {
        let e = encoder(r#"{"type":"array","items":{"type":"string"}}"#);
        let body = format!("[{}]", vec!["1"; 50].join(","));
        let m = e.encode(&body).unwrap_err().message;
        assert!(m.contains("at `/0`") && m.contains("and 40 more"), "{m}");
    }
}
