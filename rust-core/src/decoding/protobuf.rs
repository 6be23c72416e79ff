//! Protobuf bytes → JSON under the proto3 JSON mapping (prost-reflect's), the mapping the
//! encoder reads: proto field names, int64 as strings, enums by name, defaults left out.

use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::Value;

/// Decodes `bytes` as the message `desc` and maps it to JSON.
pub fn to_json(desc: &MessageDescriptor, bytes: &[u8]) -> std::result::Result<Value, String> {
    let message = DynamicMessage::decode(desc.clone(), bytes)
        .map_err(|e| format!("value is not a valid {} Protobuf message: {e}", desc.full_name()))?;
    // Proto field names: what the example schemas' clients send (the encoder reads both).
    let options = SerializeOptions::new().use_proto_field_name(true);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| format!("value does not map to JSON: {e}"))
}
