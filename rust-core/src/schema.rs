//! Compiling a schema version into what encodes a topic's bodies: a Protobuf message (`.proto`
//! text, compiled by protox), an Avro schema or a JSON Schema; the format comes with the text.

use std::path::PathBuf;

use prost_reflect::{DescriptorPool, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver};
use uuid::Uuid;

use crate::config::MessageType;
use crate::encoding::avro::AvroEncoder;
use crate::encoding::json_schema::JsonSchemaEncoder;
use crate::encoding::Encoder;
use crate::error::{Error, Result};
use crate::registry::{SchemaFormat, SchemaText};
use crate::wire;

/// A schema version compiled and ready to encode with.
#[derive(Debug)]
pub struct CompiledSchema {
    /// The format's encoder.
    pub format: Format,
    /// Glue's schema version id, if the registry has one.
    pub version_id: Option<Uuid>,
    /// Glue's version number, if the registry has one.
    pub version_number: Option<i64>,
    /// Hash of the source text and version id, to tell whether a refresh changed anything.
    pub fingerprint: u64,
    /// With a Confluent schema id: what Confluent's wire format puts before the encoded bytes
    /// (magic byte 0, the id big-endian, for Protobuf the message-index path).
    pub confluent_prefix: Option<Vec<u8>>,
}

/// A compiled schema of one of the formats.
#[derive(Debug)]
pub enum Format {
    /// A Protobuf message type.
    Protobuf {
        /// Encodes bodies as the message type they are parsed into.
        encoder: Encoder,
        /// Position of the message among all message types of the file, nested ones and map
        /// entries included, sorted by full name (Glue framing; AWS's rule).
        message_index: u32,
    },
    /// An Avro schema (any type at its root; usually a record).
    Avro(AvroEncoder),
    /// A JSON Schema.
    JsonSchema(JsonSchemaEncoder),
}

impl CompiledSchema {
    /// Encodes `json` in the schema's format (no framing); `400` naming the field if it does not fit.
    pub fn encode(&self, json: &str, allow_unknown_fields: bool) -> Result<Vec<u8>> {
        match &self.format {
            Format::Protobuf { encoder, .. } => encoder.encode(json, allow_unknown_fields),
            Format::Avro(avro) => avro.encode(json, allow_unknown_fields),
            // The schema decides what is allowed (`additionalProperties`).
            Format::JsonSchema(js) => js.encode(json),
        }
    }

    /// The Glue message index: Protobuf only (AWS writes none for Avro and JSON).
    pub fn message_index(&self) -> Option<u32> {
        match &self.format {
            Format::Protobuf { message_index, .. } => Some(*message_index),
            _ => None,
        }
    }

    /// The Protobuf message type, if this is a Protobuf schema.
    pub fn protobuf_message(&self) -> Option<&MessageDescriptor> {
        match &self.format {
            Format::Protobuf { encoder, .. } => Some(encoder.message()),
            _ => None,
        }
    }
}

/// Serves the registry's text under its file name, so what was fetched is exactly what is compiled.
struct FetchedFile {
    name: String,
    source: String,
}

impl FileResolver for FetchedFile {
    fn open_file(&self, name: &str) -> std::result::Result<File, protox::Error> {
        if name != self.name {
            return Err(protox::Error::file_not_found(name));
        }
        match descriptor_form(&self.source) {
            Some(mut descriptor) => {
                // Imports name files by the registry's reference names, whatever the descriptor says.
                descriptor.name = Some(name.to_owned());
                Ok(File::from_file_descriptor_proto(descriptor))
            }
            None => File::from_source(name, &self.source),
        }
    }
}

/// A Protobuf schema in a registry's descriptor form: a base64 `FileDescriptorProto`, as Confluent's
/// clients register it and as Apicurio's Confluent API stores it. `.proto` text (which has spaces
/// and `;`) never decodes as one.
fn descriptor_form(source: &str) -> Option<prost_types::FileDescriptorProto> {
    use base64::Engine;
    use prost::Message;
    let s = source.trim();
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == ';') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// Compiles `text` in its format. Protobuf: imports resolve against its directory, if any, and
/// Google's well-known types, and `message_type` picks the message; the other formats have no
/// message types, so a named one is refused.
pub fn compile(text: &SchemaText, message_type: &MessageType) -> Result<CompiledSchema> {
    let broken = |why: String| Error::internal(format!("schema {} {why}", describe(text)));
    let format = match text.format {
        SchemaFormat::Protobuf => compile_protobuf(text, message_type)?,
        other => {
            if let MessageType::Named(name) = message_type {
                return Err(Error::internal(format!(
                    "schema {} is {}, which has no message types, but schema.message_type names `{name}`; \
                     use \"first\" for routes that publish {} schemas",
                    describe(text),
                    other.name(),
                    other.name()
                )));
            }
            match other {
                SchemaFormat::Avro => {
                    let references: Vec<&str> = text.references.values().map(String::as_str).collect();
                    Format::Avro(AvroEncoder::with_references(&text.definition, &references).map_err(broken)?)
                }
                SchemaFormat::JsonSchema { default_draft } => Format::JsonSchema(
                    JsonSchemaEncoder::with_references(&text.definition, default_draft, &text.references)
                        .map_err(broken)?,
                ),
                SchemaFormat::Protobuf => unreachable!("handled above"),
            }
        }
    };
    let confluent_prefix = text.schema_id.map(|id| {
        let path = match &format {
            Format::Protobuf { encoder, .. } => Some(confluent_message_path(encoder.message())),
            _ => None,
        };
        wire::confluent_prefix(id, path.as_deref())
    });
    Ok(CompiledSchema {
        format,
        version_id: text.version_id,
        version_number: text.version_number,
        fingerprint: fingerprint(text),
        confluent_prefix,
    })
}

/// Confluent's message-index path of `message`: its position among its parent's nested types (map
/// entries included, in declaration order), from the file's top-level messages down.
fn confluent_message_path(message: &MessageDescriptor) -> Vec<i32> {
    let mut path = Vec::new();
    let mut at = message.clone();
    loop {
        let siblings: Vec<MessageDescriptor> = match at.parent_message() {
            Some(parent) => parent.child_messages().collect(),
            None => at.parent_file().messages().collect(),
        };
        let index = siblings.iter().position(|m| m.full_name() == at.full_name()).unwrap_or(0);
        path.push(i32::try_from(index).unwrap_or(i32::MAX));
        match at.parent_message() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    path.reverse();
    path
}

fn compile_protobuf(text: &SchemaText, message_type: &MessageType) -> Result<Format> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(FetchedFile { name: text.file_name.clone(), source: text.definition.clone() });
    for (name, source) in &text.references {
        resolver.add(FetchedFile { name: name.clone(), source: source.clone() });
    }
    if let Some(dir) = &text.import_dir {
        resolver.add(IncludeFileResolver::new(PathBuf::from(dir)));
    }
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler
        .open_file(&text.file_name)
        .map_err(|e| Error::internal(format!("schema {} does not compile: {e}", describe(text))))?;
    let pool = compiler.descriptor_pool();
    let (message, message_index) = select_message(&pool, &text.file_name, message_type)
        .map_err(|why| Error::internal(format!("schema {}: {why}", describe(text))))?;
    Ok(Format::Protobuf { encoder: Encoder::new(message), message_index })
}

/// Identifies a fetched version: same text and same version id means nothing to recompile.
pub fn fingerprint(text: &SchemaText) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&text.file_name, &text.definition, text.version_id, text.schema_id, &text.references).hash(&mut h);
    h.finish()
}

fn describe(text: &SchemaText) -> String {
    match text.version_number {
        Some(n) => format!("`{}` version {n}", text.file_name),
        None => format!("`{}`", text.file_name),
    }
}

/// The chosen message and its Glue message index.
///
/// The index is AWS Glue's (its serializer's `MessageIndexFinder`): every message type of the file,
/// top-level and nested at any depth, *map entry types included* (`map<K,V> f` declares a nested
/// `FEntry` message, and AWS counts it like any other), sorted by full name; the index is the
/// chosen message's position in that list. Imported files' messages are not counted. Full names
/// are ASCII, so byte order here is Java's `String` order there.
fn select_message(
    pool: &DescriptorPool,
    file_name: &str,
    wanted: &MessageType,
) -> std::result::Result<(MessageDescriptor, u32), String> {
    let file = pool.get_file_by_name(file_name).ok_or("compiled file missing from its pool")?;
    let message = match wanted {
        MessageType::First => file.messages().next().ok_or("declares no message")?,
        // A map's entry type is synthetic: not a message a route can name, though it has an index.
        MessageType::Named(name) => file
            .messages()
            .flat_map(with_nested)
            .find(|m| m.full_name() == name && !m.is_map_entry())
            .ok_or_else(|| format!("declares no message `{name}`"))?,
    };
    let mut names: Vec<String> = file.messages().flat_map(with_nested).map(|m| m.full_name().to_owned()).collect();
    names.sort();
    let index = names.iter().position(|n| n == message.full_name()).expect("message is in its own file");
    Ok((message, index as u32))
}

/// A message and, depth first, every message type nested in it, map entry types included.
fn with_nested(m: MessageDescriptor) -> Vec<MessageDescriptor> {
    let mut out = vec![m.clone()];
    for child in m.child_messages() {
        out.extend(with_nested(child));
    }
    out
}

/// Compiles a standalone `.proto` text into a pool (unit tests of other modules).
#[cfg(test)]
pub fn compile_for_test(source: &str) -> DescriptorPool {
    let text = SchemaText {
        file_name: "test.proto".into(),
        definition: source.into(),
        version_id: None,
        version_number: None,
        import_dir: None,
        schema_id: None,
        references: Default::default(),
        format: SchemaFormat::Protobuf,
    };
    compile(&text, &MessageType::First).unwrap().protobuf_message().unwrap().parent_pool().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(src: &str) -> SchemaText {
        SchemaText {
            file_name: "T.proto".into(),
            definition: src.into(),
            version_id: None,
            version_number: Some(7),
            import_dir: None,
            schema_id: None,
            references: Default::default(),
            format: SchemaFormat::Protobuf,
        }
    }

    #[test]
    fn the_confluent_prefix_carries_the_message_path() {
        // Declaration order: p.Zeta [0], p.Beta [1], p.Alpha [2], p.Zeta.Alpha [0, 0].
        for (name, path) in [("p.Zeta", vec![0u8]), ("p.Beta", vec![2, 2]), ("p.Zeta.Alpha", vec![4, 0, 0])] {
            let t = SchemaText { schema_id: Some(9), ..text(NESTED) };
            let s = compile(&t, &MessageType::Named(name.into())).unwrap();
            assert_eq!(s.confluent_prefix.unwrap(), [vec![0, 0, 0, 0, 9], path].concat(), "{name}");
        }
        assert!(compile(&text(NESTED), &MessageType::First).unwrap().confluent_prefix.is_none());
    }

    #[test]
    fn a_schema_in_descriptor_form_compiles_like_its_text() {
        use base64::Engine;
        use prost::Message;
        let pool = compile_for_test(NESTED);
        let file = pool.files().find(|f| f.name() == "test.proto").unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(file.file_descriptor_proto().encode_to_vec());
        let beta = MessageType::Named("p.Beta".into());
        let from_descriptor = compile(&text(&b64), &beta).unwrap();
        let from_text = compile(&text(NESTED), &beta).unwrap();
        assert_eq!(
            from_descriptor.encode(r#"{"b":5}"#, false).unwrap(),
            from_text.encode(r#"{"b":5}"#, false).unwrap()
        );
    }

    const NESTED: &str = r#"
        syntax = "proto3";
        package p;
        message Zeta { message Alpha { int32 a = 1; } Alpha a = 1; map<string,int32> m = 2; }
        message Beta { int32 b = 1; }
        message Alpha { int32 a = 1; }
    "#;

    #[test]
    fn first_top_level_message_is_the_default() {
        let s = compile(&text(NESTED), &MessageType::First).unwrap();
        assert_eq!(s.protobuf_message().unwrap().full_name(), "p.Zeta");
        // Sorted full names: p.Alpha, p.Beta, p.Zeta, p.Zeta.Alpha, p.Zeta.MEntry (the map entry sorts last).
        assert_eq!(s.message_index(), Some(2));
        assert_eq!(s.version_number, Some(7));
    }

    #[test]
    fn named_messages_and_their_indexes() {
        for (name, index) in [("p.Alpha", 0), ("p.Beta", 1), ("p.Zeta.Alpha", 3)] {
            let s = compile(&text(NESTED), &MessageType::Named(name.into())).unwrap();
            assert_eq!((s.protobuf_message().unwrap().full_name(), s.message_index().unwrap()), (name, index));
        }
        let e = compile(&text(NESTED), &MessageType::Named("p.Nope".into())).unwrap_err();
        assert!(e.message.contains("no message `p.Nope`") && e.message.contains("version 7"), "{}", e.message);
    }

    /// The issue's file: AWS's serializer writes Order 0, Order.Address 1, Order.Item 2,
    /// Order.LabelsEntry 3, Shipment 4. A map entry that sorts before the chosen message counts.
    const GC: &str = r#"
        syntax = "proto3";
        package gc.v1;
        message Order {
          string id = 1;
          map<string, string> labels = 2;
          message Item { string sku = 1; int32 qty = 2; }
          message Address { string city = 1; }
          repeated Item items = 3;
          Address ship_to = 4;
        }
        message Shipment { string order_id = 1; string carrier = 2; }
    "#;

    #[test]
    fn map_entries_count_in_the_glue_index_as_aws_counts_them() {
        for (name, index) in
            [("gc.v1.Order", 0), ("gc.v1.Order.Address", 1), ("gc.v1.Order.Item", 2), ("gc.v1.Shipment", 4)]
        {
            let s = compile(&text(GC), &MessageType::Named(name.into())).unwrap();
            assert_eq!((s.protobuf_message().unwrap().full_name(), s.message_index().unwrap()), (name, index));
        }
        assert_eq!(compile(&text(GC), &MessageType::First).unwrap().message_index(), Some(0));
        // Nested maps count too, at any depth, and a message after them moves up by each.
        let deep = r#"syntax = "proto3"; package d;
            message A { message B { map<int32, string> m = 1; } map<string, B> n = 1; }
            message C {}"#;
        // d.A 0, d.A.B 1, d.A.B.MEntry 2, d.A.NEntry 3, d.C 4.
        let s = compile(&text(deep), &MessageType::Named("d.C".into())).unwrap();
        assert_eq!(s.message_index(), Some(4));
        // The entry type has an index but is no message to publish.
        let e = compile(&text(GC), &MessageType::Named("gc.v1.Order.LabelsEntry".into())).unwrap_err();
        assert!(e.message.contains("no message `gc.v1.Order.LabelsEntry`"), "{}", e.message);
    }

    #[test]
    fn well_known_types_are_importable() {
        let src = r#"syntax = "proto3"; import "google/protobuf/timestamp.proto"; message E { google.protobuf.Timestamp at = 1; }"#;
        assert_eq!(compile(&text(src), &MessageType::First).unwrap().protobuf_message().unwrap().full_name(), "E");
    }

    #[test]
    fn broken_schemas_are_internal_errors_that_say_why() {
        let e = compile(&text("syntax = \"proto3\"; message {"), &MessageType::First).unwrap_err();
        assert_eq!(e.status, crate::Status::InternalError);
        assert!(e.message.contains("does not compile"), "{}", e.message);
        let e = compile(&text("syntax = \"proto3\"; enum E { A = 0; }"), &MessageType::First).unwrap_err();
        assert!(e.message.contains("declares no message"), "{}", e.message);
        let e = compile(&text("syntax = \"proto3\"; import \"other.proto\"; message M {}"), &MessageType::First)
            .unwrap_err();
        assert!(e.message.contains("does not compile"), "{}", e.message);
    }
}
