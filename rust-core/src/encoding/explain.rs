//! The text of a `400` for a body the schema refuses, built from what topicgate knows itself: the
//! field path (resolved against the message descriptor), the type the schema expects there (from
//! the descriptor) and the JSON kind the body holds there (read from the body, never its value).
//! The parsers' own wording is used only for JSON syntax errors, whose texts are a fixed list in
//! serde_json that never holds input; a schema mismatch never shows the dependency's text, so a
//! change of wording there cannot make a message echo a value.
//!
//! Map keys are client data too: a path shows a map entry as `[<key>]`, never the key itself.
//! An unknown field is named by its key (`unrecognized field name 'x'`): it names what the client
//! sent, as a field name, and is not a value.

use std::fmt;

use prost_reflect::{Kind, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_path_to_error::{Path, Segment};

/// `"<place>: <reason> (line L, column C)"` for the error `e` that parsing `json` as `root` met at `path`.
pub(super) fn explain(
    root: &MessageDescriptor,
    json: &str,
    path: &Path,
    e: &serde_json::Error,
    allow_unknown: bool,
) -> String {
    let steps: Vec<Step> = path
        .iter()
        .map_while(|segment| match segment {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect();
    let resolved = resolve(root, json, &steps);
    let reason = match e.classify() {
        // serde_json's own syntax errors: a fixed list of texts ("EOF while parsing a string",
        // "expected `,` or `}`", "recursion limit exceeded", ...) that never hold input.
        Category::Syntax | Category::Eof | Category::Io => syntax_reason(e),
        Category::Data => match &resolved.expect {
            Some(expect) if resolved.complete => match probe(json, &steps) {
                Some(found) => mismatch(expect, &found, allow_unknown),
                None => format!("does not match the schema, expected {}", expect.describe()),
            },
            _ => "does not match the schema".to_owned(),
        },
    };
    format!("{}: {reason}{}", place(&resolved.path), position(e))
}

/// The error of text after the body's object (serde_json's "trailing characters").
pub(super) fn after_body(e: &serde_json::Error) -> String {
    match e.classify() {
        Category::Data => format!("body: does not match the schema{}", position(e)),
        _ => format!("body: {}{}", syntax_reason(e), position(e)),
    }
}

/// `body` for the root, else ``field `a.b[1]` ``.
pub(super) fn place(path: &str) -> String {
    match path {
        "" => "body".to_owned(),
        _ => format!("field `{path}`"),
    }
}

/// `" (line L, column C)"`.
pub(super) fn position(e: &serde_json::Error) -> String {
    format!(" (line {}, column {})", e.line(), e.column())
}

/// A syntax error's text without serde_json's " at line L column C" (the position is added apart).
pub(super) fn syntax_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// One step of a path through the body, as the parser took it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// What the schema expects at a place.
#[derive(Debug, Clone)]
enum Expect {
    /// One value of this kind (a singular field, a list element, a map value).
    One(Kind),
    /// A repeated field: a list of these.
    List(Kind),
    /// A map field: keys and values of these kinds.
    Map(Kind, Kind),
}

/// A path resolved against the descriptor.
struct Resolved {
    /// Field names (the schema's), list indexes and `[<key>]` for map entries.
    path: String,
    /// What is expected where the path ends (where resolution stopped, if not `complete`).
    expect: Option<Expect>,
    /// Whether every step was resolved.
    complete: bool,
}

fn resolve(root: &MessageDescriptor, json: &str, steps: &[Step]) -> Resolved {
    let mut path = String::new();
    let mut expect = Expect::One(Kind::Message(root.clone()));
    for (i, step) in steps.iter().enumerate() {
        let next = match (&expect, step) {
            (Expect::One(Kind::Message(m)), Step::Key(key)) => match m.full_name() {
                // Objects of any keys: a path shows the entry, not the key.
                "google.protobuf.Struct" | "google.protobuf.Value" => {
                    path.push_str("[<key>]");
                    Some(Expect::One(Kind::Message(well_known(m, "google.protobuf.Value"))))
                }
                "google.protobuf.Any" => {
                    let target = probe(json, &steps[..i]).and_then(|found| any_target(m, &found).ok());
                    match target {
                        Some(t) if is_well_known(&t) && key == "value" => {
                            push_name(&mut path, "value");
                            Some(Expect::One(Kind::Message(t)))
                        }
                        Some(t) if !is_well_known(&t) => field_step(&t, key, &mut path),
                        _ => None,
                    }
                }
                _ => field_step(m, key, &mut path),
            },
            (Expect::One(Kind::Message(m)), Step::Index(index))
                if matches!(m.full_name(), "google.protobuf.ListValue" | "google.protobuf.Value") =>
            {
                path.push_str(&format!("[{index}]"));
                Some(Expect::One(Kind::Message(well_known(m, "google.protobuf.Value"))))
            }
            (Expect::List(element), Step::Index(index)) => {
                path.push_str(&format!("[{index}]"));
                Some(Expect::One(element.clone()))
            }
            (Expect::Map(_, value), Step::Key(_)) => {
                path.push_str("[<key>]");
                Some(Expect::One(value.clone()))
            }
            _ => None,
        };
        match next {
            Some(next) => expect = next,
            None => return Resolved { path, expect: Some(expect), complete: false },
        }
    }
    Resolved { path, expect: Some(expect), complete: true }
}

/// A message of the same pool as `m`, by name (a well-known type it refers to).
fn well_known(m: &MessageDescriptor, name: &str) -> MessageDescriptor {
    m.parent_pool().get_message_by_name(name).unwrap_or_else(|| m.clone())
}

fn is_well_known(m: &MessageDescriptor) -> bool {
    m.package_name() == "google.protobuf"
}

fn push_name(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

/// The field `key` names in `m` (JSON name first, as prost-reflect looks it up), as what it expects.
fn field_step(m: &MessageDescriptor, key: &str, path: &mut String) -> Option<Expect> {
    let field = m.get_field_by_json_name(key).or_else(|| m.get_field_by_name(key))?;
    push_name(path, field.name());
    Some(if field.is_map() {
        let Kind::Message(entry) = field.kind() else { return None };
        Expect::Map(entry.map_entry_key_field().kind(), entry.map_entry_value_field().kind())
    } else if field.is_list() {
        Expect::List(field.kind())
    } else {
        Expect::One(field.kind())
    })
}

/// Why an `Any` object names no usable message, or the message it names.
fn any_target(any: &MessageDescriptor, found: &Found) -> Result<MessageDescriptor, &'static str> {
    let url = found.type_url.as_deref().ok_or("missing its `@type`")?;
    let (_, name) = url.rsplit_once('/').ok_or("unsupported `@type` URL: missing a '/' before the message name")?;
    any.parent_pool().get_message_by_name(name).ok_or("the message `@type` names was not found")
}

/// The reason for a value the schema refuses: `expect`ed at its place, `found` in the body.
fn mismatch(expect: &Expect, found: &Found, allow_unknown: bool) -> String {
    let kind = found.kind;
    if !expect.accepts(kind) {
        return format!("invalid type: {kind}, expected {}", expect.describe());
    }
    let specific = match expect {
        Expect::One(Kind::Message(m)) => object_reason(m, found, allow_unknown),
        Expect::Map(key, _) => found
            .entries
            .iter()
            .any(|(k, _)| !valid_map_key(key, k))
            .then(|| format!("invalid map key, expected {} ({})", describe_map_key(key), expect.type_name())),
        Expect::One(Kind::Enum(e)) if kind == JsonKind::String && e.full_name() != NULL_VALUE => {
            Some(format!("expected a value of enum `{}`, found an unrecognized enum value", e.full_name()))
        }
        _ => None,
    };
    specific.unwrap_or_else(|| format!("invalid value: {kind}, expected {}", expect.describe()))
}

/// What is wrong with an object given for message `m`, when it can be told: the first key that names
/// no field, the second member of one oneof, or what is wrong with an `Any`.
fn object_reason(m: &MessageDescriptor, found: &Found, allow_unknown: bool) -> Option<String> {
    let (m, skip) = match m.full_name() {
        "google.protobuf.Any" => match any_target(m, found) {
            Ok(target) if is_well_known(&target) => return None,
            Ok(target) => (target, Some("@type")),
            Err(why) => return Some(format!("{why}, expected {}", Expect::One(Kind::Message(m.clone())).describe())),
        },
        _ if is_well_known(m) => return None,
        _ => (m.clone(), None),
    };
    let mut oneofs_set = Vec::new();
    for (key, value) in found.entries.iter().filter(|(k, _)| Some(k.as_str()) != skip) {
        let Some(field) = m.get_field_by_json_name(key).or_else(|| m.get_field_by_name(key)) else {
            if allow_unknown {
                continue;
            }
            return Some(format!("unrecognized field name '{key}'"));
        };
        let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) else { continue };
        if *value == Some(JsonKind::Null) {
            continue;
        }
        if oneofs_set.contains(&oneof) {
            return Some(format!("more than one field of oneof `{}` is set, expected at most one", oneof.name()));
        }
        oneofs_set.push(oneof);
    }
    None
}

const NULL_VALUE: &str = "google.protobuf.NullValue";

impl Expect {
    /// Whether a JSON value of kind `kind` can be one of these (its value may still be wrong).
    fn accepts(&self, kind: JsonKind) -> bool {
        use JsonKind::*;
        match self {
            Expect::List(_) => kind == Array,
            Expect::Map(..) => kind == Object,
            Expect::One(k) => match k {
                Kind::String | Kind::Bytes => kind == String,
                Kind::Bool => kind == Bool,
                Kind::Enum(e) if e.full_name() == NULL_VALUE => matches!(kind, Null | String | Integer),
                Kind::Enum(_) => matches!(kind, String | Integer),
                Kind::Message(m) => match m.full_name() {
                    "google.protobuf.Value" => true,
                    "google.protobuf.ListValue" => kind == Array,
                    "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask" => {
                        kind == String
                    }
                    _ => match wrapped(m) {
                        Some(inner) => Expect::One(inner).accepts(kind),
                        None => kind == Object,
                    },
                },
                // Every number kind, as a JSON number or a string.
                _ => matches!(kind, Integer | Float | String),
            },
        }
    }

    /// What is expected, in words: "a string", "a list (repeated int32)", ….
    fn describe(&self) -> String {
        match self {
            Expect::One(kind) => describe_kind(kind),
            Expect::List(_) | Expect::Map(..) => {
                let shape = if matches!(self, Expect::List(_)) { "a list" } else { "an object" };
                format!("{shape} ({})", self.type_name())
            }
        }
    }

    /// The protobuf type: `repeated string`, `map<string, int32>`, `events.v1.Detail`.
    fn type_name(&self) -> String {
        match self {
            Expect::One(kind) => type_name(kind),
            Expect::List(kind) => format!("repeated {}", type_name(kind)),
            Expect::Map(key, value) => format!("map<{}, {}>", type_name(key), type_name(value)),
        }
    }
}

/// A wrapper type's wrapped kind (`Int64Value` → int64).
fn wrapped(m: &MessageDescriptor) -> Option<Kind> {
    let wrapper = is_well_known(m) && m.name().ends_with("Value") && !matches!(m.name(), "Value" | "ListValue");
    wrapper.then(|| m.get_field_by_name("value").map(|f| f.kind())).flatten()
}

fn type_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        scalar => format!("{scalar:?}").to_lowercase(),
    }
}

fn describe_kind(kind: &Kind) -> String {
    const INTEGER: &str = "as a number or a decimal string";
    const FLOAT: &str = "as a number, a numeric string, `NaN`, `Infinity` or `-Infinity`";
    match kind {
        Kind::String => "a string".to_owned(),
        Kind::Bytes => "a base64-encoded string".to_owned(),
        Kind::Bool => "a boolean".to_owned(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => format!("a 32-bit signed integer, {INTEGER}"),
        Kind::Uint32 | Kind::Fixed32 => format!("a 32-bit unsigned integer, {INTEGER}"),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => format!("a 64-bit signed integer, {INTEGER}"),
        Kind::Uint64 | Kind::Fixed64 => format!("a 64-bit unsigned integer, {INTEGER}"),
        Kind::Float => format!("a 32-bit floating point number, {FLOAT}"),
        Kind::Double => format!("a 64-bit floating point number, {FLOAT}"),
        Kind::Enum(e) if e.full_name() == NULL_VALUE => "null".to_owned(),
        Kind::Enum(e) => format!("a value name or number of enum `{}`", e.full_name()),
        Kind::Message(m) => {
            let name = m.full_name();
            let what = match name {
                "google.protobuf.Timestamp" => "an RFC 3339 timestamp string".to_owned(),
                "google.protobuf.Duration" => "a duration string in seconds, such as `1.5s`".to_owned(),
                "google.protobuf.FieldMask" => "a field mask string".to_owned(),
                "google.protobuf.Struct" => "an object".to_owned(),
                "google.protobuf.ListValue" => "a list".to_owned(),
                "google.protobuf.Value" => "any JSON value".to_owned(),
                "google.protobuf.Empty" => "an empty object".to_owned(),
                "google.protobuf.Any" => "an object whose `@type` names a message type".to_owned(),
                _ => match wrapped(m) {
                    Some(inner) => describe_kind(&inner),
                    None => return format!("an object (message `{name}`)"),
                },
            };
            format!("{what} ({name})")
        }
    }
}

fn describe_map_key(kind: &Kind) -> &'static str {
    match kind {
        Kind::Bool => "`true` or `false`",
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => "a 32-bit signed integer as a decimal string",
        Kind::Uint32 | Kind::Fixed32 => "a 32-bit unsigned integer as a decimal string",
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => "a 64-bit signed integer as a decimal string",
        Kind::Uint64 | Kind::Fixed64 => "a 64-bit unsigned integer as a decimal string",
        _ => "a string",
    }
}

/// Whether `key` is a valid JSON map key for a map with keys of `kind`.
fn valid_map_key(kind: &Kind, key: &str) -> bool {
    match kind {
        Kind::Bool => matches!(key, "true" | "false"),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => key.parse::<i32>().is_ok(),
        Kind::Uint32 | Kind::Fixed32 => key.parse::<u32>().is_ok(),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => key.parse::<i64>().is_ok(),
        Kind::Uint64 | Kind::Fixed64 => key.parse::<u64>().is_ok(),
        _ => true,
    }
}

// ---- what the body holds at a path --------------------------------------------------------------

/// The kind of a JSON value, in serde's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    Null,
    Bool,
    Integer,
    Float,
    String,
    Array,
    Object,
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "boolean",
            JsonKind::Integer => "integer",
            JsonKind::Float => "floating point",
            JsonKind::String => "string",
            JsonKind::Array => "sequence",
            JsonKind::Object => "map",
        })
    }
}

/// The value at a path: its kind and, for an object, its keys in order with their values' kinds
/// (`None` where the body ends or breaks first) and its `@type` string, if any (to resolve an `Any`).
#[derive(Debug)]
struct Found {
    kind: JsonKind,
    entries: Vec<(String, Option<JsonKind>)>,
    type_url: Option<String>,
}

/// Reads `json` along `steps` and describes the value there; `None` if the body has none there.
/// What comes after the value is not read; a body that breaks inside an object keeps the keys before.
fn probe(json: &str, steps: &[Step]) -> Option<Found> {
    let mut found = None;
    let mut de = serde_json::Deserializer::from_str(json);
    let _ = Walk { steps, found: &mut found }.deserialize(&mut de);
    found
}

/// The error that ends a walk once the value is found (or not there); never shown.
fn done<E: de::Error>() -> E {
    E::custom("probe done")
}

struct Walk<'a> {
    steps: &'a [Step],
    found: &'a mut Option<Found>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.steps.first() {
            None => d.deserialize_any(Probe { found: self.found }),
            Some(Step::Key(_)) => d.deserialize_map(self),
            Some(Step::Index(_)) => d.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the path's next step")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Step::Key(wanted), rest)) = self.steps.split_first() else { return Err(done()) };
        while let Some(key) = map.next_key::<String>()? {
            if key == *wanted {
                map.next_value_seed(Walk { steps: rest, found: self.found })?;
                return Err(done());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(done())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Step::Index(index), rest)) = self.steps.split_first() else { return Err(done()) };
        for _ in 0..*index {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(done());
            }
        }
        seq.next_element_seed(Walk { steps: rest, found: self.found })?;
        Err(done())
    }
}

/// Describes the value it is given into `found`.
struct Probe<'a> {
    found: &'a mut Option<Found>,
}

impl Probe<'_> {
    fn set<E>(self, kind: JsonKind) -> Result<(), E> {
        *self.found = Some(Found { kind, entries: Vec::new(), type_url: None });
        Ok(())
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.set(JsonKind::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.set(JsonKind::Bool)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.set(JsonKind::Integer)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.set(JsonKind::Integer)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.set(JsonKind::Float)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.set(JsonKind::String)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        // Its elements are not needed: the walk ends here.
        self.set(JsonKind::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let found = self.found.insert(Found { kind: JsonKind::Object, entries: Vec::new(), type_url: None });
        while let Some(key) = map.next_key::<String>()? {
            found.entries.push((key, None));
            let is_type = key_is_type(&found.entries);
            let (kind, text) = map.next_value_seed(KindOf { keep_text: is_type })?;
            found.entries.last_mut().expect("just pushed").1 = Some(kind);
            if is_type {
                found.type_url = text;
            }
        }
        Ok(())
    }
}

fn key_is_type(entries: &[(String, Option<JsonKind>)]) -> bool {
    entries.last().is_some_and(|(key, _)| key == "@type")
}

/// A value's kind, and its text if it is a string and `keep_text` (only for an `Any`'s `@type`).
struct KindOf {
    keep_text: bool,
}

impl<'de> DeserializeSeed<'de> for KindOf {
    type Value = (JsonKind, Option<String>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KindOf {
    type Value = (JsonKind, Option<String>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((JsonKind::Null, None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok((JsonKind::Bool, None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok((JsonKind::Integer, None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok((JsonKind::Integer, None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok((JsonKind::Float, None))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((JsonKind::String, self.keep_text.then(|| v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok((JsonKind::Array, None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok((JsonKind::Object, None))
    }
}
