//! The direct writer: parses JSON with serde and writes Protobuf bytes as it goes, with no
//! intermediate message tree. It handles the common cases itself and gives up ("falls back")
//! on anything unusual, so that prost-reflect decides; the two agree on every body the writer
//! accepts (checked against each other by the unit tests and the fuzz target).

use std::collections::HashSet;
use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{alphabet, Engine};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::plan::{FieldPlan, Plan, Scalar, Shape, ValueType};

/// Why the writer stopped.
pub(super) enum Stop {
    /// A field or map key appeared twice in one object; the text names the field.
    Duplicate(String),
    /// Anything else (bad JSON, a type mismatch, an unusual value): prost-reflect decides.
    FallBack,
}

/// Writes `json` as the plan's root message.
pub(super) fn write(
    plan: &Plan,
    json: &str,
    allow_unknown: bool,
    options: &DeserializeOptions,
) -> Result<Vec<u8>, Stop> {
    let mut w =
        Writer { plan, options, allow_unknown, out: Vec::with_capacity(json.len()), path: Vec::new(), duplicate: None };
    let mut de = serde_json::Deserializer::from_str(json);
    let written = de.deserialize_map(MessageVisitor { w: &mut w, message: 0 }).and_then(|()| de.end());
    match (written, w.duplicate) {
        (Ok(()), _) => Ok(w.out),
        (Err(_), Some(path)) => Err(Stop::Duplicate(path)),
        (Err(_), None) => Err(Stop::FallBack),
    }
}

struct Writer<'p> {
    plan: &'p Plan,
    options: &'p DeserializeOptions,
    allow_unknown: bool,
    out: Vec<u8>,
    /// Where the writer is, to name a duplicate field.
    path: Vec<Step>,
    duplicate: Option<String>,
}

#[derive(Clone, Copy)]
enum Step {
    Field { message: usize, field: usize },
    Index(usize),
}

impl Writer<'_> {
    fn describe_path(&self) -> String {
        let mut s = String::new();
        for step in &self.path {
            match *step {
                Step::Field { message, field } => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(&self.plan.messages[message].fields[field].name);
                }
                Step::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// Writes a tag and a one-byte length placeholder; returns where the body starts.
    fn begin_len(&mut self, tag: Option<u32>) -> usize {
        if let Some(number) = tag {
            encode_key(number, WireType::LengthDelimited, &mut self.out);
        }
        self.out.push(0);
        self.out.len()
    }

    /// Fills in the length of the body that began at `start`, widening the placeholder if needed.
    fn end_len(&mut self, start: usize) {
        let len = self.out.len() - start;
        if len < 0x80 {
            self.out[start - 1] = len as u8;
        } else {
            let mut varint = Vec::with_capacity(10);
            encode_varint(len as u64, &mut varint);
            self.out.splice(start - 1..start, varint);
        }
    }

    fn put(&mut self, tag: Option<u32>, wire: Wire<'_>) {
        let out = &mut self.out;
        match wire {
            Wire::Varint(v) => {
                if let Some(n) = tag {
                    encode_key(n, WireType::Varint, out);
                }
                encode_varint(v, out);
            }
            Wire::Fixed32(v) => {
                if let Some(n) = tag {
                    encode_key(n, WireType::ThirtyTwoBit, out);
                }
                out.extend_from_slice(&v.to_le_bytes());
            }
            Wire::Fixed64(v) => {
                if let Some(n) = tag {
                    encode_key(n, WireType::SixtyFourBit, out);
                }
                out.extend_from_slice(&v.to_le_bytes());
            }
            Wire::Len(bytes) => {
                if let Some(n) = tag {
                    encode_key(n, WireType::LengthDelimited, out);
                }
                encode_varint(bytes.len() as u64, out);
                out.extend_from_slice(bytes);
            }
        }
    }

    /// Encodes a message prost-reflect parsed (a well-known type) as a length-delimited value.
    fn put_message(&mut self, tag: Option<u32>, message: &DynamicMessage) {
        if let Some(n) = tag {
            encode_key(n, WireType::LengthDelimited, &mut self.out);
        }
        let len = message.encoded_len();
        self.out.reserve(len + encoded_len_varint(len as u64));
        encode_varint(len as u64, &mut self.out);
        message.encode_raw(&mut self.out);
    }
}

/// One value in wire form.
enum Wire<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Len(&'a [u8]),
}

/// An error that only means "stop": its text is never shown (prost-reflect's is).
fn stop<E: de::Error>() -> E {
    E::custom("fall back")
}

// ---- messages ----------------------------------------------------------------------------------

/// Writes the fields of a JSON object as the body of message `message`.
struct MessageVisitor<'w, 'p> {
    w: &'w mut Writer<'p>,
    message: usize,
}

impl<'de> Visitor<'de> for MessageVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let plan = self.w.plan;
        let message = &plan.messages[self.message];
        let mut seen = Seen::new(message.fields.len());
        let mut oneofs_set = 0u64;
        while let Some(key) = map.next_key_seed(KeySeed(message))? {
            let Some(index) = key else {
                if !self.w.allow_unknown {
                    return Err(stop());
                }
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let field = &message.fields[index];
            self.w.path.push(Step::Field { message: self.message, field: index });
            if seen.insert(index) {
                self.w.duplicate = Some(format!("field `{}`:", self.w.describe_path()));
                return Err(stop());
            }
            let before = self.w.out.len();
            map.next_value_seed(FieldSeed { w: self.w, field })?;
            if let Some(oneof) = field.oneof {
                if self.w.out.len() > before {
                    // Two members of one oneof: prost-reflect's error names the oneof.
                    if oneofs_set & (1 << oneof) != 0 {
                        return Err(stop());
                    }
                    oneofs_set |= 1 << oneof;
                }
            }
            self.w.path.pop();
        }
        Ok(())
    }
}

/// Which fields of one object were seen.
enum Seen {
    Small(u64),
    Large(Vec<bool>),
}

impl Seen {
    fn new(fields: usize) -> Seen {
        if fields <= 64 {
            Seen::Small(0)
        } else {
            Seen::Large(vec![false; fields])
        }
    }

    /// Marks `i` seen; true if it already was.
    fn insert(&mut self, i: usize) -> bool {
        match self {
            Seen::Small(bits) => std::mem::replace(bits, *bits | (1 << i)) & (1 << i) != 0,
            Seen::Large(v) => std::mem::replace(&mut v[i], true),
        }
    }
}

/// Resolves a key to a field index (`None`: unknown) without allocating.
struct KeySeed<'p>(&'p super::plan::MessagePlan);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.field(key))
    }
}

// ---- fields ------------------------------------------------------------------------------------

/// Writes one field's value (singular, list or map).
struct FieldSeed<'w, 'p> {
    w: &'w mut Writer<'p>,
    field: &'p FieldPlan,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let f = self.field;
        match &f.shape {
            Shape::Single(value) => {
                let ctx = Ctx { tag: Some(f.number), skip_default: !f.presence, field: true };
                ValueSeed { w: self.w, value, ctx }.deserialize(d)
            }
            Shape::List { element, packed } => {
                d.deserialize_any(ListVisitor { w: self.w, f, element, packed: *packed })
            }
            Shape::Map { key, value } => {
                d.deserialize_any(MapVisitor { w: self.w, number: f.number, key: *key, value })
            }
        }
    }
}

/// Where a value goes.
#[derive(Clone, Copy)]
struct Ctx {
    /// `None` inside a packed run.
    tag: Option<u32>,
    /// Leave a default scalar out, as prost does for fields without presence and map entries.
    skip_default: bool,
    /// A singular field: null means absent. In lists and maps null is left to prost-reflect.
    field: bool,
}

struct ListVisitor<'w, 'p> {
    w: &'w mut Writer<'p>,
    f: &'p FieldPlan,
    element: &'p ValueType,
    packed: bool,
}

impl<'de> Visitor<'de> for ListVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // prost-reflect turns a null list of google.protobuf.Value into one null value.
        match self.element {
            ValueType::Delegated(m) if m.full_name() == "google.protobuf.Value" => Err(stop()),
            _ => Ok(()),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let number = self.f.number;
        // prost-reflect says packed only for numeric, bool and enum elements.
        let packed = self.packed;
        let before = self.w.out.len();
        let start = packed.then(|| self.w.begin_len(Some(number)));
        let ctx = Ctx { tag: if packed { None } else { Some(number) }, skip_default: false, field: false };
        let mut i = 0;
        loop {
            self.w.path.push(Step::Index(i));
            let more = seq.next_element_seed(ValueSeed { w: self.w, value: self.element, ctx })?;
            self.w.path.pop();
            if more.is_none() {
                break;
            }
            i += 1;
        }
        match start {
            Some(_) if i == 0 => self.w.out.truncate(before),
            Some(start) => self.w.end_len(start),
            None => {}
        }
        Ok(())
    }
}

struct MapVisitor<'w, 'p> {
    w: &'w mut Writer<'p>,
    number: u32,
    key: Scalar,
    value: &'p ValueType,
}

impl<'de> Visitor<'de> for MapVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Entries as prost writes them: key (1) and value (2), each left out when default.
        let mut keys = SeenKeys::default();
        loop {
            let before = self.w.out.len();
            let start = self.w.begin_len(Some(self.number));
            let key = MapKeySeed { w: self.w, key: self.key };
            if map.next_key_seed(key)?.is_none() {
                self.w.out.truncate(before);
                return Ok(());
            }
            if !keys.insert(&self.w.out[start..]) {
                self.w.duplicate = Some(format!("field `{}`: a map key", self.w.describe_path()));
                return Err(stop());
            }
            let ctx = Ctx { tag: Some(2), skip_default: true, field: false };
            map.next_value_seed(ValueSeed { w: self.w, value: self.value, ctx })?;
            self.w.end_len(start);
        }
    }
}

/// The (encoded) keys of one map so far, to refuse a repeated one. Compared in place while few:
/// most maps are small, and a hash set per map (a hash and an allocation per key) was ~7% of a
/// batch's CPU. Beyond `LINEAR_MAX` keys they are hashed, so a huge map stays linear in time.
#[derive(Default)]
struct SeenKeys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    hashed: Option<HashSet<Vec<u8>>>,
}

impl SeenKeys {
    const LINEAR_MAX: usize = 32;

    /// Adds `key`; false when it was already there.
    fn insert(&mut self, key: &[u8]) -> bool {
        if let Some(set) = &mut self.hashed {
            return set.insert(key.to_vec());
        }
        let mut start = 0;
        for &end in &self.ends {
            if &self.bytes[start..end] == key {
                return false;
            }
            start = end;
        }
        if self.ends.len() < Self::LINEAR_MAX {
            self.bytes.extend_from_slice(key);
            self.ends.push(self.bytes.len());
            return true;
        }
        let mut set = HashSet::with_capacity(2 * Self::LINEAR_MAX);
        let mut start = 0;
        for &end in &self.ends {
            set.insert(self.bytes[start..end].to_vec());
            start = end;
        }
        set.insert(key.to_vec());
        self.hashed = Some(set);
        true
    }
}

/// Writes a map key (field 1 of the entry) from its JSON string form.
struct MapKeySeed<'w, 'p> {
    w: &'w mut Writer<'p>,
    key: Scalar,
}

impl<'de> DeserializeSeed<'de> for MapKeySeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MapKeySeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        let (wire, is_default) = match self.key {
            Scalar::String => (Wire::Len(key.as_bytes()), key.is_empty()),
            Scalar::Bool => match key {
                "true" => (Wire::Varint(1), false),
                "false" => (Wire::Varint(0), true),
                _ => return Err(stop()),
            },
            s => {
                let n = plain_integer(key).ok_or_else(stop)?;
                (integer_wire(s, n).ok_or_else(stop)?, n == 0)
            }
        };
        if !is_default {
            self.w.put(Some(1), wire);
        }
        Ok(())
    }
}

// ---- values ------------------------------------------------------------------------------------

/// Writes one value of `value`'s type.
struct ValueSeed<'w, 'p> {
    w: &'w mut Writer<'p>,
    value: &'p ValueType,
    ctx: Ctx,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.value {
            ValueType::Delegated(desc) => match self.ctx {
                // prost-reflect's own rule for a null field: absent, except google.protobuf.Value.
                Ctx { tag: Some(number), field: true, .. } => {
                    d.deserialize_option(DelegatedField { w: self.w, desc, number })
                }
                Ctx { tag, .. } => {
                    let message = DynamicMessage::deserialize_with_options(desc.clone(), d, self.w.options)?;
                    self.w.put_message(tag, &message);
                    Ok(())
                }
            },
            _ => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.ctx.field {
            Ok(())
        } else {
            Err(stop())
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match self.value {
            ValueType::Scalar(Scalar::Bool) => self.emit(Wire::Varint(v as u64), !v),
            _ => Err(stop()),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(i128::from(v), v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(i128::from(v), v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        match self.value {
            ValueType::Scalar(Scalar::Double) => self.emit(Wire::Fixed64(v.to_bits()), v == 0.0),
            ValueType::Scalar(Scalar::Float) => self.float(v),
            _ => Err(stop()),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match self.value {
            ValueType::Scalar(Scalar::String) => self.emit(Wire::Len(v.as_bytes()), v.is_empty()),
            ValueType::Scalar(Scalar::Bytes) => {
                let bytes = BASE64.decode(v).map_err(|_| stop())?;
                self.emit(Wire::Len(&bytes), bytes.is_empty())
            }
            ValueType::Enum(e) => {
                let n = e.get_value_by_name(v).ok_or_else(stop)?.number();
                self.emit(Wire::Varint(n as i64 as u64), n == 0)
            }
            // Numbers as strings: only plain decimal integers here; "NaN", "1e3" and the like
            // go to prost-reflect.
            ValueType::Scalar(s) if !matches!(s, Scalar::Bool | Scalar::Double | Scalar::Float) => {
                let n = plain_integer(v).ok_or_else(stop)?;
                self.emit(integer_wire(*s, n).ok_or_else(stop)?, n == 0)
            }
            _ => Err(stop()),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let ValueType::Message(message) = self.value else {
            return Err(stop());
        };
        let start = self.w.begin_len(self.ctx.tag);
        MessageVisitor { w: &mut *self.w, message: *message }.visit_map(map)?;
        self.w.end_len(start);
        Ok(())
    }
}

impl ValueSeed<'_, '_> {
    fn number<E: de::Error>(self, n: i128, as_float: f64) -> Result<(), E> {
        match self.value {
            ValueType::Scalar(Scalar::Double) => self.emit(Wire::Fixed64(as_float.to_bits()), n == 0),
            ValueType::Scalar(Scalar::Float) => self.float(as_float),
            ValueType::Scalar(s) => self.emit(integer_wire(*s, n).ok_or_else(stop)?, n == 0),
            ValueType::Enum(e) => {
                let n = i32::try_from(n).map_err(|_| stop())?;
                e.get_value(n).ok_or_else(stop)?;
                self.emit(Wire::Varint(n as i64 as u64), n == 0)
            }
            _ => Err(stop()),
        }
    }

    fn float<E: de::Error>(self, v: f64) -> Result<(), E> {
        // prost-reflect's range check, to the letter.
        if v < f32::MIN as f64 || v > f32::MAX as f64 {
            return Err(stop());
        }
        let v = v as f32;
        self.emit(Wire::Fixed32(v.to_bits()), v == 0.0)
    }

    /// Writes `wire` unless it is a field's default value without presence (proto3 leaves those out).
    fn emit<E: de::Error>(self, wire: Wire<'_>, is_default: bool) -> Result<(), E> {
        if !(is_default && self.ctx.skip_default) {
            self.w.put(self.ctx.tag, wire);
        }
        Ok(())
    }
}

/// A singular well-known-type field, handed to prost-reflect.
struct DelegatedField<'w, 'p> {
    w: &'w mut Writer<'p>,
    desc: &'p MessageDescriptor,
    number: u32,
}

impl<'de> Visitor<'de> for DelegatedField<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        if self.desc.full_name() == "google.protobuf.Value" {
            // Value { null_value: NULL_VALUE }: field 1, varint 0.
            self.w.put(Some(self.number), Wire::Len(&[0x08, 0x00]));
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let message = DynamicMessage::deserialize_with_options(self.desc.clone(), d, self.w.options)?;
        self.w.put_message(Some(self.number), &message);
        Ok(())
    }
}

// ---- scalars -----------------------------------------------------------------------------------

/// prost-reflect's base64: standard alphabet first (URL-safe is left to it), padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `-?(0|[1-9][0-9]*)`, at most 20 digits: a subset of what every integer parser accepts.
fn plain_integer(s: &str) -> Option<i128> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let plain = !digits.is_empty()
        && digits.len() <= 20
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if plain {
        s.parse().ok()
    } else {
        None
    }
}

/// The wire form of integer `n` as scalar type `s`, or `None` when out of range.
fn integer_wire(s: Scalar, n: i128) -> Option<Wire<'static>> {
    Some(match s {
        Scalar::Int32 => Wire::Varint(i32::try_from(n).ok()? as i64 as u64),
        Scalar::Int64 => Wire::Varint(i64::try_from(n).ok()? as u64),
        Scalar::Uint32 => Wire::Varint(u64::from(u32::try_from(n).ok()?)),
        Scalar::Uint64 => Wire::Varint(u64::try_from(n).ok()?),
        Scalar::Sint32 => {
            let v = i32::try_from(n).ok()?;
            Wire::Varint(u64::from(((v << 1) ^ (v >> 31)) as u32))
        }
        Scalar::Sint64 => {
            let v = i64::try_from(n).ok()?;
            Wire::Varint(((v << 1) ^ (v >> 63)) as u64)
        }
        Scalar::Fixed32 => Wire::Fixed32(u32::try_from(n).ok()?),
        Scalar::Fixed64 => Wire::Fixed64(u64::try_from(n).ok()?),
        Scalar::Sfixed32 => Wire::Fixed32(i32::try_from(n).ok()? as u32),
        Scalar::Sfixed64 => Wire::Fixed64(i64::try_from(n).ok()? as u64),
        Scalar::Double | Scalar::Float | Scalar::Bool | Scalar::String | Scalar::Bytes => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::SeenKeys;

    #[test]
    fn seen_keys_refuses_a_repeat_below_and_beyond_the_linear_limit() {
        for n in [1, SeenKeys::LINEAR_MAX - 1, SeenKeys::LINEAR_MAX, SeenKeys::LINEAR_MAX + 1, 500] {
            let mut keys = SeenKeys::default();
            let key = |i: usize| format!("k{i}").into_bytes();
            for i in 0..n {
                assert!(keys.insert(&key(i)), "n {n}: key {i} is new");
            }
            for i in [0, n / 2, n - 1] {
                assert!(!keys.insert(&key(i)), "n {n}: key {i} is a repeat");
            }
            assert!(keys.insert(&key(n)), "n {n}: key {n} is new");
            assert!(!keys.insert(&key(n)), "n {n}: key {n} is now a repeat");
            // "k1" is a prefix of "k10": in place, whole keys are compared, not prefixes.
            assert!(!keys.insert(b"k1") || n < 2);
        }
    }
}
