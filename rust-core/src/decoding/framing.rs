//! Which framing a record value has, told from its bytes and the topic's schema (the inverse of
//! `wire`): Confluent's (magic byte 0 and the schema id) when the schema came from a Confluent
//! registry, Glue's (header byte 3, compression byte, version UUID) when from Glue, else raw.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::ZlibDecoder;
use uuid::Uuid;

use crate::schema::CompiledSchema;
use crate::wire::{GLUE_COMPRESSION_NONE, GLUE_COMPRESSION_ZLIB, GLUE_HEADER_VERSION};

/// The most a zlib-compressed Glue payload may inflate to (a bound against zlib bombs).
const MAX_INFLATED: u64 = 16 << 20;

/// What the framing of a value says.
pub enum Payload<'a> {
    /// The payload (framing removed, inflated), written with the schema given.
    Bytes(Cow<'a, [u8]>),
    /// Confluent-framed with another schema id: decode with that schema.
    OtherConfluentId(u32),
    /// Glue-framed with another schema version: decode with that version.
    OtherGlueVersion(Uuid),
}

/// The payload of `bytes` (framing removed, inflated), checked against `schema`: a Glue version
/// other than the schema's is [`Payload::OtherGlueVersion`], a Confluent id other than the
/// schema's is [`Payload::OtherConfluentId`], and a Protobuf message index must be
/// the schema's message type.
pub fn payload<'a>(bytes: &'a [u8], schema: &CompiledSchema) -> std::result::Result<Payload<'a>, String> {
    if let Some(prefix) = &schema.confluent_prefix {
        // A Protobuf or JSON value never begins with 0; an Avro one may, so a topic of a Confluent
        // registry whose Avro records are raw is read as Confluent-framed (documented).
        if bytes.first() == Some(&0) && bytes.len() >= 5 {
            if let Some(rest) = bytes.strip_prefix(prefix.as_slice()) {
                return Ok(Payload::Bytes(Cow::Borrowed(rest)));
            }
            let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
            let mine = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
            return match id == mine {
                true => Err(format!(
                    "value's Confluent message-index path is not the route's message type (schema id {id})"
                )),
                false => Ok(Payload::OtherConfluentId(id)),
            };
        }
        return Ok(Payload::Bytes(Cow::Borrowed(bytes)));
    }
    if let Some(version_id) = schema.version_id {
        if bytes.len() >= 18
            && bytes[0] == GLUE_HEADER_VERSION
            && matches!(bytes[1], GLUE_COMPRESSION_NONE | GLUE_COMPRESSION_ZLIB)
        {
            let written = Uuid::from_slice(&bytes[2..18]).map_err(|e| e.to_string())?;
            if written != version_id {
                return Ok(Payload::OtherGlueVersion(written));
            }
            let body: Cow<'a, [u8]> = match bytes[1] {
                GLUE_COMPRESSION_ZLIB => {
                    let mut out = Vec::new();
                    ZlibDecoder::new(&bytes[18..])
                        .take(MAX_INFLATED + 1)
                        .read_to_end(&mut out)
                        .map_err(|e| format!("value's zlib payload does not inflate: {e}"))?;
                    if out.len() as u64 > MAX_INFLATED {
                        return Err(format!("value's zlib payload inflates past {MAX_INFLATED} bytes"));
                    }
                    Cow::Owned(out)
                }
                _ => Cow::Borrowed(&bytes[18..]),
            };
            return match schema.message_index() {
                None => Ok(Payload::Bytes(body)),
                Some(index) => strip_index(body, index).map(Payload::Bytes),
            };
        }
    }
    Ok(Payload::Bytes(Cow::Borrowed(bytes)))
}

/// Removes Glue's Protobuf message index, which must be `index`.
fn strip_index(body: Cow<'_, [u8]>, index: u32) -> std::result::Result<Cow<'_, [u8]>, String> {
    let mut rest: &[u8] = &body;
    let written =
        prost::encoding::decode_varint(&mut rest).map_err(|_| "value's Glue message index is not a varint")?;
    if written != u64::from(index) {
        return Err(format!("value's Glue message index is {written}, the topic's message type is {index}"));
    }
    let skip = body.len() - rest.len();
    Ok(match body {
        Cow::Borrowed(b) => Cow::Borrowed(&b[skip..]),
        Cow::Owned(mut v) => {
            v.drain(..skip);
            Cow::Owned(v)
        }
    })
}
