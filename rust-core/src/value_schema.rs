//! A record's own choice of value schema (Confluent REST Proxy v3's value `type`, `schema_id`,
//! `subject`, `schema_version`), as the C ABI passes it: JSON text, parsed and checked here.

use serde::Deserialize;

use crate::config::SchemaVersion;
use crate::error::{Error, Result};
use crate::schema::{CompiledSchema, Format};

/// The schema format a record says its value has (v3's value `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ValueType {
    /// `AVRO`.
    #[serde(rename = "AVRO")]
    Avro,
    /// `JSONSCHEMA`.
    #[serde(rename = "JSONSCHEMA")]
    JsonSchema,
    /// `PROTOBUF`.
    #[serde(rename = "PROTOBUF")]
    Protobuf,
}

impl ValueType {
    /// The format of `schema`.
    pub fn of(schema: &CompiledSchema) -> ValueType {
        match schema.format {
            Format::Avro(_) => ValueType::Avro,
            Format::JsonSchema(_) => ValueType::JsonSchema,
            Format::Protobuf { .. } => ValueType::Protobuf,
        }
    }

    /// Its code in a completion (`completion::FORMAT_*`).
    pub fn code(self) -> u8 {
        match self {
            ValueType::Avro => crate::completion::FORMAT_AVRO,
            ValueType::JsonSchema => crate::completion::FORMAT_JSONSCHEMA,
            ValueType::Protobuf => crate::completion::FORMAT_PROTOBUF,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ValueType::Avro => "AVRO",
            ValueType::JsonSchema => "JSONSCHEMA",
            ValueType::Protobuf => "PROTOBUF",
        }
    }
}

/// Which schema encodes one record's value. Empty: the topic's configured schema.
///
/// `schema_id` selects a Confluent registry's schema by global id; else `subject` and/or
/// `version` select a subject's version (`subject` absent: the topic's configured subject;
/// `version` absent: its latest). Either way the value is framed in Confluent's wire format with
/// that schema's id. `format`, if given, must be the selected schema's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSchema {
    /// The format the value must have.
    pub format: Option<ValueType>,
    /// A Confluent global schema id.
    pub schema_id: Option<u32>,
    /// A subject of a Confluent registry.
    pub subject: Option<String>,
    /// A version number of the subject.
    pub version: Option<i64>,
}

impl ValueSchema {
    /// Parses the selector's JSON; `400` naming the field when it is not one.
    pub fn parse(text: &str) -> Result<ValueSchema> {
        let v: ValueSchema = serde_json::from_str(text)
            .map_err(|e| Error::bad_request(format!("value_schema: not a value schema selector ({e})")))?;
        if v.schema_id.is_some() && (v.version.is_some() || v.subject.is_some()) {
            return Err(Error::bad_request(
                "value_schema: schema_id selects one schema; give no subject or version with it",
            ));
        }
        if matches!(v.version, Some(n) if n < 1) {
            return Err(Error::bad_request("value_schema: version must be 1 or more"));
        }
        if matches!(v.subject.as_deref(), Some(s) if s.is_empty()) {
            return Err(Error::bad_request("value_schema: subject is empty"));
        }
        Ok(v)
    }

    /// Whether it selects a schema other than the topic's configured one (and so the framing).
    pub fn selects(&self) -> bool {
        self.schema_id.is_some() || self.subject.is_some() || self.version.is_some()
    }

    /// The version to look up for a subject selection.
    pub fn schema_version(&self) -> SchemaVersion {
        self.version.map_or(SchemaVersion::Latest, SchemaVersion::Number)
    }

    /// `400` when the record's `format` is not `schema`'s format.
    pub fn check_format(&self, schema: &CompiledSchema) -> Result<()> {
        let Some(wanted) = self.format else { return Ok(()) };
        let actual = ValueType::of(schema);
        if wanted != actual {
            return Err(Error::bad_request(format!(
                "value.type {} does not match the schema, which is {}",
                wanted.name(),
                actual.name()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_bad_ones_name_the_field() {
        let v = ValueSchema::parse(r#"{"format":"AVRO","schema_id":7}"#).unwrap();
        assert_eq!((v.format, v.schema_id, v.selects()), (Some(ValueType::Avro), Some(7), true));
        let v = ValueSchema::parse(r#"{"format":"PROTOBUF"}"#).unwrap();
        assert!(!v.selects());
        let v = ValueSchema::parse(r#"{"subject":"s","version":3}"#).unwrap();
        assert_eq!(v.schema_version(), SchemaVersion::Number(3));
        for (bad, says) in [
            (r#"{"schema_id":1,"version":2}"#, "schema_id"),
            (r#"{"version":0}"#, "version"),
            (r#"{"subject":""}"#, "subject"),
            (r#"{"format":"BINARY"}"#, "value_schema"),
            (r#"{"schema":"x"}"#, "value_schema"),
        ] {
            let e = ValueSchema::parse(bad).unwrap_err();
            assert_eq!(e.status, crate::Status::BadRequest, "{bad}");
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
    }
}
