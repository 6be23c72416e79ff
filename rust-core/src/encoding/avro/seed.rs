//! The fast path of [`AvroEncoder::encode`]: the body's JSON text read straight into an
//! `apache_avro` value by the schema, one serde `DeserializeSeed` per schema node, with no
//! `serde_json::Value` tree in between (issue #23: that tree and its conversion were most of the
//! encode's time). It only succeeds with the value the general path (`Reader` over a parsed
//! `serde_json::Value`) builds for the same body; on any error, and on the rare forms it leaves to
//! the general path, it gives up, and the caller re-runs the general path, which also words every
//! error (so the error texts and their order, syntax before fit, stay the general path's).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use apache_avro::schema::{RecordSchema, Schema, UnionSchema};
use apache_avro::types::Value;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

use super::{AvroEncoder, Reader, Source, MAX_DEPTH};
use crate::encoding::json_value::Strict;

/// Reads `json` as the encoder's schema; `None` when the general path must decide (and word the error).
pub(super) fn read(encoder: &AvroEncoder, json: &str, allow_unknown: bool) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_str(json);
    let node = Node { encoder, allow_unknown, schema: &encoder.schema, ns: None, depth: 0 };
    let value = node.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// The error that sends a body to the general path; its text is never shown.
fn give_up<E: de::Error>() -> E {
    E::custom("left to the general path")
}

/// One schema node to read a JSON value as (`ns`: the enclosing namespace, `depth`: as `Reader`'s).
#[derive(Clone, Copy)]
struct Node<'a> {
    encoder: &'a AvroEncoder,
    allow_unknown: bool,
    schema: &'a Schema,
    ns: Option<&'a str>,
    depth: usize,
}

impl<'a> Node<'a> {
    /// Follows named references, and refuses nesting past `MAX_DEPTH` as `Reader::read` does.
    fn enter<E: de::Error>(mut self) -> Result<Node<'a>, E> {
        while let Schema::Ref { name } = self.schema {
            self.schema = self.encoder.resolve(name, self.ns).map_err(|_| give_up())?;
        }
        if self.depth + 1 > MAX_DEPTH && matches!(self.schema, Schema::Array(_) | Schema::Map(_) | Schema::Record(_)) {
            return Err(give_up());
        }
        Ok(self)
    }

    /// This node at `schema`, one level deeper (a record's field, an array's item, a map's value).
    fn child(self, schema: &'a Schema, ns: Option<&'a str>) -> Node<'a> {
        Node { schema, ns, depth: self.depth + 1, ..self }
    }

    /// The general path's reader at this node, for what is read from a small `serde_json::Value`.
    fn reader(self) -> Reader<'a> {
        Reader { encoder: self.encoder, allow_unknown: self.allow_unknown, source: Source::Body, depth: self.depth }
    }

    /// A value of a type that holds no other type, by the general path's own rules (logical types,
    /// bytes, fixed, enums, durations, and every mismatch).
    fn scalar<E: de::Error>(self, json: Json) -> Result<Value, E> {
        match self.schema {
            Schema::Array(_) | Schema::Map(_) | Schema::Record(_) | Schema::Union(_) | Schema::Ref { .. } => {
                Err(give_up())
            }
            schema => self.reader().scalar(schema, &json).map_err(|_| give_up()),
        }
    }

    /// A bare (unwrapped) value in a `["null", T]` union is a T; any other union needs the
    /// `{"<branch>": value}` form, which only `visit_map` sees.
    fn bare<E: de::Error>(self, read: impl FnOnce(Node<'a>) -> Result<Value, E>) -> Result<Value, E> {
        let Schema::Union(u) = self.schema else { return Err(give_up()) };
        let variants = u.variants();
        let Some(null_at) = variants.iter().position(|v| matches!(v, Schema::Null)) else { return Err(give_up()) };
        if variants.len() != 2 {
            return Err(give_up());
        }
        let i = 1 - null_at;
        let inner = Node { schema: &variants[i], ..self }.enter()?;
        Ok(Value::Union(i as u32, Box::new(read(inner)?)))
    }

    /// An object read into a record or a map (`first`: its first key, already read).
    fn object<'de, A: MapAccess<'de>>(self, first: Option<Cow<'de, str>>, map: A) -> Result<Value, A::Error> {
        match self.schema {
            Schema::Record(r) => self.record(r, first, map),
            Schema::Map(m) => {
                let child = self.child(&m.types, self.ns);
                let mut map = map;
                // serde_json gives no size hint: room for 16 entries without a rehash (a map of a
                // typical event's attributes; growing from 8 allocated and rehashed it once more).
                let mut out = HashMap::with_capacity(map.size_hint().unwrap_or(16));
                let mut next = first;
                while let Some(key) = next {
                    let value = map.next_value_seed(child)?;
                    if out.insert(key.into_owned(), value).is_some() {
                        return Err(give_up()); // a repeated key
                    }
                    next = map.next_key_seed(Key)?;
                }
                Ok(Value::Map(out))
            }
            _ => Err(give_up()),
        }
    }

    fn record<'de, A: MapAccess<'de>>(
        self,
        r: &'a RecordSchema,
        first: Option<Cow<'de, str>>,
        mut map: A,
    ) -> Result<Value, A::Error> {
        let inner = r.name.namespace().or(self.ns);
        let n = r.fields.len();
        // Keys in the schema's order (the usual body) go straight into `out`; from the first key out
        // of order on, values are kept by field index in `by_index` instead.
        let mut out: Vec<(String, Value)> = Vec::with_capacity(n);
        let mut by_index: Option<Vec<Option<Value>>> = None;
        // Keys dropped by `allow_unknown`: a repeated one is refused like any repeated key.
        let mut unknown: Vec<Cow<'de, str>> = Vec::new();
        let mut next = first;
        while let Some(key) = next {
            match (r.lookup.get(key.as_ref()), &mut by_index) {
                (Some(&i), None) if i == out.len() => {
                    let value = map.next_value_seed(self.child(&r.fields[i].schema, inner))?;
                    out.push((r.fields[i].name.clone(), value));
                }
                (Some(&i), None) if i < out.len() => return Err(give_up()), // a repeated key
                (Some(&i), slots) => {
                    let slots = slots.get_or_insert_with(|| {
                        let mut slots: Vec<Option<Value>> = Vec::with_capacity(n);
                        slots.extend(out.drain(..).map(|(_, v)| Some(v)));
                        slots.resize_with(n, || None);
                        slots
                    });
                    if slots[i].is_some() {
                        return Err(give_up()); // a repeated key
                    }
                    slots[i] = Some(map.next_value_seed(self.child(&r.fields[i].schema, inner))?);
                }
                (None, _) => {
                    if !self.allow_unknown || unknown.contains(&key) {
                        return Err(give_up());
                    }
                    map.next_value_seed(Strict)?; // still parsed strictly, as the general path does
                    unknown.push(key);
                }
            }
            next = map.next_key_seed(Key)?;
        }
        // Left-out fields take their defaults; one without a default is the general path's error.
        let read = out.len();
        let mut slots = by_index.map(Vec::into_iter);
        for (i, field) in r.fields.iter().enumerate() {
            let value = match slots.as_mut().and_then(|s| s.next()).flatten() {
                Some(v) => v,
                None if slots.is_none() && i < read => continue, // already in `out`
                None if field.default.is_some() => self.encoder.default_of(r, i, inner).map_err(|_| give_up())?,
                None => return Err(give_up()),
            };
            out.push((field.name.clone(), value));
        }
        Ok(Value::Record(out))
    }

    /// An object where a union is expected: `{"<branch>": value}` (exactly one key naming a
    /// branch), else a bare record or map of a `["null", T]` union.
    fn union_object<'de, A: MapAccess<'de>>(self, u: &'a UnionSchema, mut map: A) -> Result<Value, A::Error> {
        let variants = u.variants();
        let first = map.next_key_seed(Key)?;
        if let Some(key) = &first {
            let reader = self.reader();
            if let Some(i) = variants.iter().position(|v| reader.branch_names(v, self.ns).iter().any(|n| n == key)) {
                let value = map.next_value_seed(Node { schema: &variants[i], ..self })?;
                // More keys: the general path reads it as a bare T instead.
                if map.next_key_seed(Key)?.is_some() {
                    return Err(give_up());
                }
                return Ok(Value::Union(i as u32, Box::new(value)));
            }
        }
        self.bare(|t| t.object(first, map))
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let node = self.enter()?;
        d.deserialize_any(node)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value of the Avro schema")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        match self.schema {
            Schema::Null => Ok(Value::Null),
            Schema::Union(u) => match u.variants().iter().position(|v| matches!(v, Schema::Null)) {
                Some(i) => Ok(Value::Union(i as u32, Box::new(Value::Null))),
                None => Err(give_up()),
            },
            _ => self.scalar(Json::Null),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.schema {
            Schema::Boolean => Ok(Value::Boolean(v)),
            Schema::Union(_) => self.bare(|t| t.visit_bool(v)),
            _ => self.scalar(Json::Bool(v)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match self.schema {
            Schema::Int => i32::try_from(v).map(Value::Int).map_err(|_| give_up()),
            Schema::Long => Ok(Value::Long(v)),
            Schema::Double => Ok(Value::Double(v as f64)),
            Schema::Float => Ok(Value::Float(v as f64 as f32)),
            Schema::Union(_) => self.bare(|t| t.visit_i64(v)),
            _ => self.scalar(Json::from(v)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match self.schema {
            Schema::Int | Schema::Long => match i64::try_from(v) {
                Ok(v) => self.visit_i64(v),
                Err(_) => Err(give_up()),
            },
            Schema::Double => Ok(Value::Double(v as f64)),
            Schema::Float => Ok(Value::Float(v as f64 as f32)),
            Schema::Union(_) => self.bare(|t| t.visit_u64(v)),
            _ => self.scalar(Json::from(v)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.schema {
            Schema::Double => Ok(Value::Double(v)),
            Schema::Float => Ok(Value::Float(v as f32)),
            Schema::Union(_) => self.bare(|t| t.visit_f64(v)),
            // As `json_value::Strict` builds it (serde_json never hands a non-finite number).
            _ => self.scalar(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.schema {
            Schema::String => Ok(Value::String(v.to_owned())),
            Schema::Long => v.parse::<i64>().map(Value::Long).map_err(|_| give_up()),
            Schema::Int => match v.parse::<i64>().map(i32::try_from) {
                Ok(Ok(v)) => Ok(Value::Int(v)),
                _ => Err(give_up()),
            },
            Schema::Double | Schema::Float => {
                let d = match v {
                    "NaN" => f64::NAN,
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    _ => return Err(give_up()),
                };
                Ok(if matches!(self.schema, Schema::Float) { Value::Float(d as f32) } else { Value::Double(d) })
            }
            Schema::Enum(e) => match e.symbols.iter().position(|s| s == v) {
                Some(i) => Ok(Value::Enum(i as u32, v.to_owned())),
                None => Err(give_up()),
            },
            Schema::Union(_) => self.bare(|t| t.visit_str(v)),
            _ => self.scalar(Json::String(v.to_owned())),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        match self.schema {
            Schema::String => Ok(Value::String(v)),
            _ => self.visit_str(&v),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        match self.schema {
            Schema::Array(a) => {
                let child = self.child(&a.items, self.ns);
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(8));
                while let Some(item) = seq.next_element_seed(child)? {
                    out.push(item);
                }
                Ok(Value::Array(out))
            }
            Schema::Union(_) => self.bare(|t| t.visit_seq(seq)),
            _ => Err(give_up()), // no other type takes an array
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        match self.schema {
            Schema::Union(u) => self.union_object(u, map),
            Schema::Record(_) | Schema::Map(_) => {
                let first = map.next_key_seed(Key)?;
                self.object(first, map)
            }
            Schema::Array(_) | Schema::Ref { .. } => Err(give_up()),
            // A duration, or a mismatch the general path words.
            _ => {
                let json = Strict.visit_map(map)?;
                self.scalar(json)
            }
        }
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}
