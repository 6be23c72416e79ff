//! Avro binary → JSON, the inverse of `encoding::avro`'s mapping, so a record written through
//! topicgate reads back as the JSON sent: bytes and fixed as base64, a `["null", T]` union bare,
//! another union as `{"<branch>": value}`, decimals as decimal strings, logical types as counts.

use apache_avro::schema::{Schema, SchemaKind};
use apache_avro::types::Value as Avro;
use base64::Engine;
use serde_json::{Map, Number, Value};

use crate::encoding::avro::AvroEncoder;

/// Decodes `bytes` as one datum of `schema`'s schema and maps it to JSON.
pub fn to_json(schema: &AvroEncoder, bytes: &[u8]) -> std::result::Result<Value, String> {
    let mut reader = bytes;
    let value = apache_avro::reader::datum::GenericDatumReader::builder(schema.schema())
        .writer_schemata(schema.dependencies().iter().collect())
        .and_then(|b| b.build())
        .and_then(|r| r.read_value(&mut reader))
        .map_err(|e| format!("value is not valid Avro binary of the topic's schema: {e}"))?;
    if !reader.is_empty() {
        return Err(format!("value has {} bytes after its Avro datum", reader.len()));
    }
    Ok(map(value, Some(schema.schema())))
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn number(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        // As the encoder reads them.
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// The name the encoder reads a union branch by.
fn branch_name(s: &Schema) -> String {
    if let Some(n) = s.name() {
        return n.fullname(None);
    }
    match s {
        Schema::Uuid(_) => "string".into(),
        Schema::Date | Schema::TimeMillis => "int".into(),
        Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "long".into(),
        other => format!("{:?}", SchemaKind::from(other)).to_lowercase(),
    }
}

/// `value` as JSON; `schema` (when known: not behind a named reference) names union branches
/// and gives decimals their scale.
fn map(value: Avro, schema: Option<&Schema>) -> Value {
    match value {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => Value::Bool(b),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => Value::from(i),
        Avro::Long(i)
        | Avro::TimeMicros(i)
        | Avro::TimestampMillis(i)
        | Avro::TimestampMicros(i)
        | Avro::TimestampNanos(i)
        | Avro::LocalTimestampMillis(i)
        | Avro::LocalTimestampMicros(i)
        | Avro::LocalTimestampNanos(i) => Value::from(i),
        Avro::Float(f) => number(f64::from(f)),
        Avro::Double(f) => number(f),
        Avro::Bytes(b) | Avro::Fixed(_, b) => b64(&b),
        Avro::String(s) | Avro::Enum(_, s) => Value::String(s),
        Avro::Uuid(u) => Value::String(u.to_string()),
        Avro::BigDecimal(d) => Value::String(d.to_string()),
        Avro::Decimal(d) => {
            let scale = match schema {
                Some(Schema::Decimal(ds)) => ds.scale,
                _ => 0,
            };
            match Vec::<u8>::try_from(&d).ok().and_then(|b| unscaled(&b)) {
                Some(n) => Value::String(with_scale(&n.to_string(), scale)),
                // Past 38 digits (the encoder writes none): the two's complement bytes.
                None => Vec::<u8>::try_from(&d).map(|b| b64(&b)).unwrap_or(Value::Null),
            }
        }
        Avro::Duration(d) => serde_json::json!({
            "months": u32::from(d.months()),
            "days": u32::from(d.days()),
            "millis": u32::from(d.millis()),
        }),
        Avro::Array(items) => {
            let item_schema = match schema {
                Some(Schema::Array(a)) => Some(a.items.as_ref()),
                _ => None,
            };
            Value::Array(items.into_iter().map(|v| map(v, item_schema)).collect())
        }
        Avro::Map(entries) => {
            let value_schema = match schema {
                Some(Schema::Map(m)) => Some(m.types.as_ref()),
                _ => None,
            };
            let mut keys: Vec<_> = entries.into_iter().collect();
            // A HashMap has no order; sorted keys make answers repeatable.
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(keys.into_iter().map(|(k, v)| (k, map(v, value_schema))).collect())
        }
        Avro::Record(fields) => {
            let field_schemas = match schema {
                Some(Schema::Record(r)) => Some(&r.fields),
                _ => None,
            };
            let mut out = Map::new();
            for (i, (name, v)) in fields.into_iter().enumerate() {
                let fs = field_schemas.and_then(|f| f.get(i)).map(|f| &f.schema);
                out.insert(name, map(v, fs));
            }
            Value::Object(out)
        }
        Avro::Union(index, inner) => {
            let variants = match schema {
                Some(Schema::Union(u)) => Some(u.variants()),
                _ => None,
            };
            let branch = variants.and_then(|v| v.get(index as usize));
            let nullable_pair = variants.is_some_and(|v| v.len() == 2 && v.iter().any(|s| matches!(s, Schema::Null)));
            let json = map(*inner, branch);
            match (branch, json) {
                (_, Value::Null) => Value::Null,
                (Some(_), json) if nullable_pair => json,
                (Some(b), json) => {
                    let mut m = Map::new();
                    m.insert(branch_name(b), json);
                    Value::Object(m)
                }
                // The union's schema is behind a reference: the branch cannot be named.
                (None, json) => json,
            }
        }
    }
}

/// Big-endian two's complement bytes as an integer, when they fit 128 bits.
fn unscaled(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(buf))
}

/// A decimal string of an unscaled integer's digits at `scale`.
fn with_scale(digits: &str, scale: usize) -> String {
    if scale == 0 {
        return digits.to_owned();
    }
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", digits),
    };
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(with_scale("-1250", 2), "-12.50");
        assert_eq!(with_scale("5", 3), "0.005");
        assert_eq!(with_scale("7", 0), "7");
    }

    #[test]
    fn a_record_encoded_from_json_reads_back_as_that_json() {
        let enc = AvroEncoder::new(include_str!("../../../krakend/schemas/MyAvroTopic.avsc")).unwrap();
        let body = r#"{"sample_message":"hi","event_id":42,"amount":1.5,"urgent":true,"tags":["a","b"],"source":{"system":"s","instance":3},"attributes":{"k":"v"},"level":"LEVEL_HIGH"}"#;
        let bytes = enc.encode(body, false).unwrap();
        let back = to_json(&enc, &bytes).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(body).unwrap());
        let err = to_json(&enc, &[0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.contains("not valid Avro"), "{err}");
    }

    #[test]
    fn unions_are_named_as_the_encoder_reads_them() {
        let schema = r#"{"type":"record","name":"R","fields":[{"name":"u","type":["null","int","string"]}]}"#;
        let enc = AvroEncoder::new(schema).unwrap();
        let bytes = enc.encode(r#"{"u":{"string":"x"}}"#, false).unwrap();
        assert_eq!(to_json(&enc, &bytes).unwrap(), serde_json::json!({"u": {"string": "x"}}));
    }
}
