//! A message descriptor flattened into tables the direct writer walks: fields by index, no
//! lookups by name per value, and the decision up front of what the writer may handle itself.

use std::collections::HashMap;

use prost_reflect::{Cardinality, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, Syntax};

/// Every message reachable from a root, each planned once; `messages[0]` is the root.
#[derive(Debug)]
pub(super) struct Plan {
    pub messages: Vec<MessagePlan>,
}

/// One message type's fields.
#[derive(Debug)]
pub(super) struct MessagePlan {
    pub fields: Vec<FieldPlan>,
    /// JSON names, then proto names, to field index; only for messages with many fields,
    /// where a hash beats comparing a handful of short strings.
    by_name: Option<HashMap<Box<str>, usize>>,
}

/// One field, with everything needed to write it.
#[derive(Debug)]
pub(super) struct FieldPlan {
    pub name: Box<str>,
    json_name: Box<str>,
    pub number: u32,
    pub shape: Shape,
    /// Explicit presence (messages, oneof members, proto3 `optional`): a default value is written.
    pub presence: bool,
    /// Index of the real (non-synthetic) oneof this field belongs to.
    pub oneof: Option<u32>,
}

/// Singular, repeated or map.
#[derive(Debug)]
pub(super) enum Shape {
    Single(ValueType),
    List { element: ValueType, packed: bool },
    Map { key: Scalar, value: ValueType },
}

/// What one value is.
#[derive(Debug)]
pub(super) enum ValueType {
    Scalar(Scalar),
    Enum(EnumDescriptor),
    /// A planned message: index into `Plan::messages`.
    Message(usize),
    /// A well-known type with its own JSON mapping (Timestamp, Struct, wrappers, ...):
    /// parsed by prost-reflect and encoded in place.
    Delegated(MessageDescriptor),
}

/// Protobuf scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
}

/// Most oneofs one message may have for the writer's bit set.
const MAX_ONEOFS: usize = 64;
/// Above this many fields a message gets a hash index.
const LINEAR_LOOKUP_MAX: usize = 12;

impl Plan {
    /// Plans `root` and everything it reaches, or `None` when the writer must leave the whole
    /// message to prost-reflect: a well-known type at the root, proto2 (closed enums, groups,
    /// defaults, extensions), or more oneofs than the writer tracks.
    pub fn build(root: &MessageDescriptor) -> Option<Plan> {
        if is_well_known(root) {
            return None;
        }
        let mut plan = Plan { messages: Vec::new() };
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut pending = vec![root.clone()];
        index.insert(root.full_name().to_owned(), 0);
        plan.messages.push(MessagePlan { fields: Vec::new(), by_name: None });
        while let Some(message) = pending.pop() {
            if message.parent_file().syntax() != Syntax::Proto3 || message.oneofs().count() > MAX_ONEOFS {
                return None;
            }
            let mut oneofs = HashMap::new();
            for oneof in message.oneofs().filter(|o| !o.is_synthetic()) {
                let next = oneofs.len() as u32;
                oneofs.insert(oneof.full_name().to_owned(), next);
            }
            let mut fields = Vec::new();
            for field in message.fields() {
                let mut value_type = |desc: &FieldDescriptor| -> Option<ValueType> {
                    Some(match desc.kind() {
                        Kind::Message(m) if is_well_known(&m) => ValueType::Delegated(m),
                        Kind::Message(m) => {
                            let next = index.len();
                            let i = *index.entry(m.full_name().to_owned()).or_insert_with(|| {
                                pending.push(m.clone());
                                next
                            });
                            if i == next {
                                plan.messages.push(MessagePlan { fields: Vec::new(), by_name: None });
                            }
                            ValueType::Message(i)
                        }
                        Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue" => return None,
                        Kind::Enum(e) => ValueType::Enum(e),
                        kind => ValueType::Scalar(scalar(&kind)?),
                    })
                };
                if field.is_group() {
                    return None;
                }
                let shape = if field.is_map() {
                    let Kind::Message(entry) = field.kind() else { return None };
                    let key = scalar(&entry.map_entry_key_field().kind())?;
                    Shape::Map { key, value: value_type(&entry.map_entry_value_field())? }
                } else if field.cardinality() == Cardinality::Repeated {
                    Shape::List { element: value_type(&field)?, packed: field.is_packed() }
                } else {
                    Shape::Single(value_type(&field)?)
                };
                let oneof = field.containing_oneof().and_then(|o| oneofs.get(o.full_name()).copied());
                fields.push(FieldPlan {
                    name: field.name().into(),
                    json_name: field.json_name().into(),
                    number: field.number(),
                    shape,
                    presence: field.supports_presence(),
                    oneof,
                });
            }
            let by_name = (fields.len() > LINEAR_LOOKUP_MAX).then(|| {
                let mut map = HashMap::new();
                // Proto names first so JSON names win, as prost-reflect looks JSON names up first.
                for (i, f) in fields.iter().enumerate() {
                    map.insert(f.name.clone(), i);
                }
                for (i, f) in fields.iter().enumerate() {
                    map.insert(f.json_name.clone(), i);
                }
                map
            });
            let i = index[message.full_name()];
            plan.messages[i] = MessagePlan { fields, by_name };
        }
        Some(plan)
    }
}

impl MessagePlan {
    /// The field a JSON key names: its JSON name, else its proto name.
    pub fn field(&self, key: &str) -> Option<usize> {
        match &self.by_name {
            Some(map) => map.get(key).copied(),
            None => self
                .fields
                .iter()
                .position(|f| &*f.json_name == key)
                .or_else(|| self.fields.iter().position(|f| &*f.name == key)),
        }
    }
}

/// Types under `google.protobuf` have special JSON mappings; prost-reflect implements them.
fn is_well_known(m: &MessageDescriptor) -> bool {
    m.package_name() == "google.protobuf"
}

fn scalar(kind: &Kind) -> Option<Scalar> {
    Some(match kind {
        Kind::Double => Scalar::Double,
        Kind::Float => Scalar::Float,
        Kind::Int32 => Scalar::Int32,
        Kind::Int64 => Scalar::Int64,
        Kind::Uint32 => Scalar::Uint32,
        Kind::Uint64 => Scalar::Uint64,
        Kind::Sint32 => Scalar::Sint32,
        Kind::Sint64 => Scalar::Sint64,
        Kind::Fixed32 => Scalar::Fixed32,
        Kind::Fixed64 => Scalar::Fixed64,
        Kind::Sfixed32 => Scalar::Sfixed32,
        Kind::Sfixed64 => Scalar::Sfixed64,
        Kind::Bool => Scalar::Bool,
        Kind::String => Scalar::String,
        Kind::Bytes => Scalar::Bytes,
        Kind::Message(_) | Kind::Enum(_) => return None,
    })
}
