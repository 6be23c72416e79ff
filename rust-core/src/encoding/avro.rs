//! JSON → Avro binary: the body is read into an `apache_avro` value by the schema (the mapping is in
//! docs/design.md, "Avro"), and apache-avro writes the bytes. Errors name the field path (record
//! fields by name, `[i]` for array items, `[<key>]` for map entries: keys are client data) and the
//! type the schema expects there, with the JSON kind found, never a value.
//!
//! Two readers build the same value: `seed` reads the body's text straight by the schema (the fast
//! path), and `Reader` reads a parsed `serde_json::Value`; a body the fast path gives up on (every
//! error) is read again by `Reader`, whose texts are the errors.

use std::collections::HashMap;

use apache_avro::schema::{
    DecimalSchema, EnumSchema, FixedSchema, InnerDecimalSchema, Name, RecordSchema, ResolvedSchema, UnionSchema,
    UuidSchema,
};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Days, Decimal, Duration, Millis, Months, Schema};
use base64::Engine;
use serde_json::Value as Json;

use super::{explain, json_value};
use crate::error::{Error, Result};

mod seed;

/// Deepest nesting of records, arrays and maps in a value (a body, or a default, whose left-out fields
/// may take defaults that nest again). Below the parser's 128 levels because apache-avro's writer
/// recurses in large frames: about 60 levels fill a 2 MiB stack in a debug build.
const MAX_DEPTH: usize = 32;

/// Record field defaults as read: by record name and field index, the namespace read in and the value.
type Defaults = HashMap<(Name, usize), (Option<String>, Value)>;

/// Encodes JSON bodies as one Avro schema; build once per schema version, share freely.
#[derive(Debug)]
pub struct AvroEncoder {
    schema: Schema,
    /// Schemas the schema refers to by name (a Confluent registry's references), parsed with it.
    dependencies: Vec<Schema>,
    /// Every named type of the schema by full name, for `Ref`s (recursive types refer back by name).
    names: HashMap<Name, Schema>,
    /// Each record field's default read once (checked when the schema is compiled), by record name
    /// and field index, with the namespace it was read in. Boxed: `schema::Format` holds encoders by value.
    defaults: Box<Defaults>,
    /// Whether the schema refers to a named type by name (a `Ref`): only then does apache-avro's
    /// writer look names up, so only then are they resolved for a write.
    has_refs: bool,
}

/// Where a value comes from: the request body, or a field default of the schema (Avro's JSON
/// encoding: bytes and fixed as ISO-8859-1 strings, a union's default for its first branch).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Body,
    Default,
}

/// A reason a value does not fit, and where (the path as it was when it failed).
struct Misfit {
    path: String,
    reason: String,
}

type Fit<T> = std::result::Result<T, Misfit>;

impl AvroEncoder {
    /// Parses `text` as an Avro schema and checks every field default against its field's type.
    /// The error (a broken schema) says why, without the schema's name, which the caller adds.
    pub fn new(text: &str) -> std::result::Result<AvroEncoder, String> {
        Self::with_references(text, &[])
    }

    /// [`AvroEncoder::new`] for a schema that names types defined in `references` (each an Avro
    /// schema of a named type: a Confluent registry's schema references).
    pub fn with_references(text: &str, references: &[&str]) -> std::result::Result<AvroEncoder, String> {
        let (schema, dependencies) =
            Schema::parse_str_with_list(text, references).map_err(|e| format!("is not a valid Avro schema: {e}"))?;
        let names = ResolvedSchema::new_with_schemata(dependencies.iter().chain([&schema]).collect())
            .map_err(|e| format!("is not a valid Avro schema: {e}"))?
            .get_names()
            .iter()
            .map(|(name, s)| (name.clone(), (*s).clone()))
            .collect();
        let has_refs = refers_by_name(&schema);
        let mut encoder = AvroEncoder { schema, dependencies, names, defaults: Box::default(), has_refs };
        encoder.defaults = Box::new(encoder.check_schema()?);
        Ok(encoder)
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schemas it refers to by name (a Confluent registry's references), for the decoder.
    pub fn dependencies(&self) -> &[Schema] {
        &self.dependencies
    }

    /// Parses `json` and returns its Avro binary encoding (no framing). `allow_unknown_fields`
    /// drops object keys a record does not declare instead of refusing them.
    pub fn encode(&self, json: &str, allow_unknown_fields: bool) -> Result<Vec<u8>> {
        // The body's text read straight by the schema; anything that path gives up on (every error)
        // is read again by the general path, which decides and words the error.
        let value = match seed::read(self, json, allow_unknown_fields) {
            Some(value) => value,
            None => self.read_via_json(json, allow_unknown_fields)?,
        };
        self.write(&value, json.len()).map_err(|e| Error::internal(format!("Avro encoding failed: {e}")))
    }

    /// [`AvroEncoder::encode`] by the general path only (the body parsed into a `serde_json::Value`
    /// first): what the fast path is checked and benchmarked against.
    pub fn encode_via_json(&self, json: &str, allow_unknown_fields: bool) -> Result<Vec<u8>> {
        let value = self.read_via_json(json, allow_unknown_fields)?;
        self.write(&value, json.len()).map_err(|e| Error::internal(format!("Avro encoding failed: {e}")))
    }

    /// The general path: the body parsed (strictly) into a `serde_json::Value`, then read by the schema.
    fn read_via_json(&self, json: &str, allow_unknown_fields: bool) -> Result<Value> {
        let body = json_value::parse(json)?;
        let mut path = String::new();
        let reader = Reader { encoder: self, allow_unknown: allow_unknown_fields, source: Source::Body, depth: 0 };
        reader
            .read(&self.schema, None, &body, &mut path)
            .map_err(|m| Error::bad_request(format!("{}: {}", explain::place(&m.path), m.reason)))
    }

    /// The value of a left-out field: its default, read when the schema was compiled (read again
    /// only if the record is met in another namespace, which can change how names resolve).
    fn default_of(&self, r: &RecordSchema, index: usize, ns: Option<&str>) -> Fit<Value> {
        if let Some((read_in, value)) = self.defaults.get(&(r.name.clone(), index)) {
            if read_in.as_deref() == ns {
                return Ok(value.clone());
            }
        }
        let field = &r.fields[index];
        let default = field.default.as_ref().expect("a field with a default");
        let reader = Reader { encoder: self, allow_unknown: false, source: Source::Default, depth: 0 };
        reader.read(&field.schema, ns, default, &mut field.name.clone())
    }

    /// Writes a value read by the schema; it fits by construction, so apache-avro's validation pass is
    /// skipped (it would walk every value a second time). `hint`: the body's length, an upper bound
    /// of the output for most bodies, so the buffer is allocated once.
    /// A schema without `Ref`s is written with an empty names map: apache-avro's writer looks names
    /// up only for a `Ref`, and resolving them walks the schema and allocates every name on each call.
    fn write(&self, value: &Value, hint: usize) -> std::result::Result<Vec<u8>, apache_avro::Error> {
        let writer = if !self.has_refs {
            GenericDatumWriter::builder(&self.schema)
                .validate(false)
                .resolved_schemata(ResolvedSchema::new_with_schemata(Vec::new())?)
                .build()?
        } else if self.dependencies.is_empty() {
            GenericDatumWriter::builder(&self.schema).validate(false).build()?
        } else {
            GenericDatumWriter::builder(&self.schema)
                .validate(false)
                .schemata(self.dependencies.iter().chain([&self.schema]).collect())?
                .build()?
        };
        let mut out = Vec::with_capacity(hint.clamp(64, 1 << 16));
        writer.write_value_ref(&mut out, value)?;
        Ok(out)
    }

    /// Refuses what cannot be encoded (big-decimal) and field defaults that do not fit their field;
    /// returns the defaults read (see `defaults`).
    fn check_schema(&self) -> std::result::Result<Defaults, String> {
        let mut defaults = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<(&Schema, Option<String>)> = vec![(&self.schema, None)];
        while let Some((schema, ns)) = stack.pop() {
            match schema {
                Schema::BigDecimal => {
                    return Err("uses the big-decimal logical type, which topicgate does not encode".into())
                }
                Schema::Array(a) => stack.push((&a.items, ns)),
                Schema::Map(m) => stack.push((&m.types, ns)),
                Schema::Union(u) => stack.extend(u.variants().iter().map(|v| (v, ns.clone()))),
                Schema::Record(r) => {
                    if !seen.insert(r.name.clone()) {
                        continue;
                    }
                    let inner = r.name.namespace().map(str::to_owned).or(ns.clone());
                    for (index, field) in r.fields.iter().enumerate() {
                        if let Some(default) = &field.default {
                            let reader =
                                Reader { encoder: self, allow_unknown: false, source: Source::Default, depth: 0 };
                            let mut path = field.name.clone();
                            let value =
                                reader.read(&field.schema, inner.as_deref(), default, &mut path).map_err(|m| {
                                    format!(
                                        "the default of field `{}` of record `{}` does not fit its type ({})",
                                        field.name,
                                        r.name.fullname(None),
                                        m.reason
                                    )
                                })?;
                            defaults.insert((r.name.clone(), index), (inner.clone(), value));
                        }
                        stack.push((&field.schema, inner.clone()));
                    }
                }
                _ => {}
            }
        }
        Ok(defaults)
    }

    fn resolve<'a>(&'a self, name: &Name, ns: Option<&str>) -> Fit<&'a Schema> {
        let full = name.fully_qualified_name(ns);
        self.names.get(full.as_ref()).ok_or_else(|| Misfit {
            path: String::new(),
            reason: format!("schema refers to an undefined type `{}`", full.fullname(None)),
        })
    }
}

/// Whether `schema` refers to a named type by name anywhere (without a `Ref` it cannot recurse).
fn refers_by_name(schema: &Schema) -> bool {
    match schema {
        Schema::Ref { .. } => true,
        Schema::Array(a) => refers_by_name(&a.items),
        Schema::Map(m) => refers_by_name(&m.types),
        Schema::Union(u) => u.variants().iter().any(refers_by_name),
        Schema::Record(r) => r.fields.iter().any(|f| refers_by_name(&f.schema)),
        _ => false,
    }
}

/// One read of a JSON value into an Avro value.
#[derive(Clone, Copy)]
struct Reader<'a> {
    encoder: &'a AvroEncoder,
    allow_unknown: bool,
    source: Source,
    depth: usize,
}

impl Reader<'_> {
    /// Reads `json` as `schema` (`ns`: the enclosing namespace); `path` is the field path so far.
    /// Only the nesting types recurse here; scalars are read in `scalar`, out of line, so that each
    /// level of a deeply nested body costs little stack.
    fn read(&self, schema: &Schema, ns: Option<&str>, json: &Json, path: &mut String) -> Fit<Value> {
        let deeper = Reader { depth: self.depth + 1, ..*self };
        if deeper.depth > MAX_DEPTH && matches!(schema, Schema::Array(_) | Schema::Map(_) | Schema::Record(_)) {
            return Err(Misfit {
                path: path.clone(),
                reason: format!("nests deeper than {MAX_DEPTH} records, arrays and maps, the most topicgate encodes"),
            });
        }
        match schema {
            Schema::Ref { name } => match self.encoder.resolve(name, ns) {
                Ok(target) => self.read(target, ns, json, path),
                Err(m) => Err(Misfit { path: path.clone(), reason: m.reason }),
            },
            Schema::Array(a) => match json {
                Json::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let len = path.len();
                        push_index(path, i);
                        out.push(deeper.read(&a.items, ns, item, path)?);
                        path.truncate(len);
                    }
                    Ok(Value::Array(out))
                }
                _ => Err(mismatch(path, json, "an array")),
            },
            Schema::Map(m) => match json {
                Json::Object(entries) => {
                    let mut out = HashMap::with_capacity(entries.len());
                    for (key, item) in entries {
                        let len = path.len();
                        path.push_str("[<key>]");
                        out.insert(key.clone(), deeper.read(&m.types, ns, item, path)?);
                        path.truncate(len);
                    }
                    Ok(Value::Map(out))
                }
                _ => Err(mismatch(path, json, "an object (an Avro map)")),
            },
            Schema::Record(r) => deeper.record(r, ns, json, path),
            Schema::Union(u) => self.union(u, ns, json, path),
            _ => self.scalar(schema, json).map_err(|reason| Misfit { path: path.clone(), reason }),
        }
    }

    /// Reads a value of a type that holds no other type.
    #[inline(never)]
    fn scalar(&self, schema: &Schema, json: &Json) -> std::result::Result<Value, String> {
        let mismatch = |expected: &str| format!("invalid type: {}, expected {expected}", kind(json));
        Ok(match schema {
            Schema::Null => match json {
                Json::Null => Value::Null,
                _ => return Err(mismatch("null")),
            },
            Schema::Boolean => match json {
                Json::Bool(b) => Value::Boolean(*b),
                _ => return Err(mismatch("a boolean")),
            },
            Schema::Int => Value::Int(int(json)?),
            Schema::Long => Value::Long(long(json, "an Avro long (64-bit integer, as a number or a decimal string)")?),
            Schema::Float => Value::Float(double(json, "a float")? as f32),
            Schema::Double => Value::Double(double(json, "a double")?),
            Schema::String => match json {
                Json::String(s) => Value::String(s.clone()),
                _ => return Err(mismatch("a string")),
            },
            Schema::Bytes => Value::Bytes(self.bytes(json, None)?),
            Schema::Fixed(FixedSchema { size, .. }) => Value::Fixed(*size, self.bytes(json, Some(*size))?),
            Schema::Enum(EnumSchema { symbols, .. }) => match json {
                Json::String(s) => match symbols.iter().position(|sym| sym == s) {
                    Some(i) => Value::Enum(i as u32, s.clone()),
                    None => {
                        return Err(format!(
                            "invalid value: not a symbol of the enum, expected one of {}",
                            symbols.join(", ")
                        ))
                    }
                },
                _ => return Err(mismatch("an enum symbol (a string)")),
            },
            Schema::Decimal(d) => Value::Decimal(self.decimal(d, json)?),
            Schema::BigDecimal => return Err("big-decimal is not supported".into()),
            Schema::Uuid(_) => match json {
                Json::String(s) => Value::Uuid(
                    apache_avro::Uuid::try_parse(s)
                        .map_err(|_| "invalid value: string, expected a UUID (8-4-4-4-12 hex digits)".to_owned())?,
                ),
                _ => return Err(mismatch("a UUID string")),
            },
            Schema::Date => Value::Date(time::date(json)?),
            Schema::TimeMillis => Value::TimeMillis(time::time_of_day(json, 1_000)? as i32),
            Schema::TimeMicros => Value::TimeMicros(time::time_of_day(json, 1_000_000)?),
            Schema::TimestampMillis => Value::TimestampMillis(time::timestamp(json, 1_000, true)?),
            Schema::TimestampMicros => Value::TimestampMicros(time::timestamp(json, 1_000_000, true)?),
            Schema::TimestampNanos => Value::TimestampNanos(time::timestamp(json, 1_000_000_000, true)?),
            Schema::LocalTimestampMillis => Value::LocalTimestampMillis(time::timestamp(json, 1_000, false)?),
            Schema::LocalTimestampMicros => Value::LocalTimestampMicros(time::timestamp(json, 1_000_000, false)?),
            Schema::LocalTimestampNanos => Value::LocalTimestampNanos(time::timestamp(json, 1_000_000_000, false)?),
            Schema::Duration(_) => Value::Duration(duration(json)?),
            Schema::Ref { .. } | Schema::Array(_) | Schema::Map(_) | Schema::Record(_) | Schema::Union(_) => {
                unreachable!("nesting types are read in `read`")
            }
        })
    }

    fn record(&self, r: &RecordSchema, ns: Option<&str>, json: &Json, path: &mut String) -> Fit<Value> {
        let Json::Object(entries) = json else {
            return Err(Misfit {
                path: path.clone(),
                reason: format!("invalid type: {}, expected an object (record `{}`)", kind(json), r.name.name()),
            });
        };
        let inner = r.name.namespace().or(ns);
        let deeper = *self;
        let mut values: Vec<Option<Value>> = vec![None; r.fields.len()];
        for (key, item) in entries {
            let Some(&i) = r.lookup.get(key) else {
                if self.allow_unknown {
                    continue;
                }
                return Err(Misfit { path: path.clone(), reason: format!("unrecognized field name '{key}'") });
            };
            let len = path.len();
            push_field(path, &r.fields[i].name);
            values[i] = Some(deeper.read(&r.fields[i].schema, inner, item, path)?);
            path.truncate(len);
        }
        let mut out = Vec::with_capacity(r.fields.len());
        for (field, value) in r.fields.iter().zip(values) {
            let value = match (value, &field.default) {
                (Some(v), _) => v,
                (None, Some(default)) => {
                    let from_schema = Reader { source: Source::Default, allow_unknown: false, depth: 0, ..deeper };
                    let len = path.len();
                    push_field(path, &field.name);
                    let v = from_schema.read(&field.schema, inner, default, path)?;
                    path.truncate(len);
                    v
                }
                (None, None) => {
                    let mut at = path.clone();
                    push_field(&mut at, &field.name);
                    return Err(Misfit { path: at, reason: "missing required field (it has no default)".into() });
                }
            };
            out.push((field.name.clone(), value));
        }
        Ok(Value::Record(out))
    }

    fn union(&self, u: &UnionSchema, ns: Option<&str>, json: &Json, path: &mut String) -> Fit<Value> {
        let variants = u.variants();
        let null_at = variants.iter().position(|v| matches!(v, Schema::Null));
        if let (Json::Null, Some(i)) = (json, null_at) {
            return Ok(Value::Union(i as u32, Box::new(Value::Null)));
        }
        if self.source == Source::Default {
            // Avro: a union's default is a value of its first branch.
            let v = self.read(&variants[0], ns, json, path)?;
            return Ok(Value::Union(0, Box::new(v)));
        }
        // Avro's JSON encoding: `{"<branch type name>": value}`.
        if let Json::Object(entries) = json {
            if entries.len() == 1 {
                let (key, inner) = entries.iter().next().expect("one entry");
                if let Some(i) = variants.iter().position(|v| self.branch_names(v, ns).iter().any(|n| n == key)) {
                    let v = self.read(&variants[i], ns, inner, path)?;
                    return Ok(Value::Union(i as u32, Box::new(v)));
                }
            }
        }
        // The common optional field `["null", T]`: a bare value is a T.
        if let (Some(null_at), 2) = (null_at, variants.len()) {
            let i = 1 - null_at;
            let v = self.read(&variants[i], ns, json, path)?;
            return Ok(Value::Union(i as u32, Box::new(v)));
        }
        let names: Vec<String> = variants.iter().filter_map(|v| self.branch_names(v, ns).into_iter().next()).collect();
        Err(Misfit {
            path: path.clone(),
            reason: format!(
                "invalid type: {}, expected a union value: {}an object with one key naming the branch, one of {}",
                kind(json),
                if null_at.is_some() { "null or " } else { "" },
                names.join(", ")
            ),
        })
    }

    /// The names a union branch goes by in Avro's JSON encoding: the type name of its underlying
    /// type (`"long"` for a timestamp, the fixed's name for a fixed decimal), full name first, then
    /// the short name of a named type.
    fn branch_names(&self, schema: &Schema, ns: Option<&str>) -> Vec<String> {
        let named = |n: &Name| vec![n.fully_qualified_name(ns).fullname(None), n.name().to_owned()];
        match schema {
            Schema::Ref { name } => match self.encoder.resolve(name, ns) {
                Ok(target) => self.branch_names(target, ns),
                Err(_) => named(name),
            },
            Schema::Record(RecordSchema { name, .. })
            | Schema::Enum(EnumSchema { name, .. })
            | Schema::Fixed(FixedSchema { name, .. }) => named(name),
            Schema::Decimal(DecimalSchema { inner: InnerDecimalSchema::Fixed(f), .. })
            | Schema::Uuid(UuidSchema::Fixed(f))
            | Schema::Duration(f) => named(&f.name),
            Schema::Null => vec!["null".into()],
            Schema::Boolean => vec!["boolean".into()],
            Schema::Int | Schema::Date | Schema::TimeMillis => vec!["int".into()],
            Schema::Float => vec!["float".into()],
            Schema::Double => vec!["double".into()],
            Schema::String | Schema::Uuid(UuidSchema::String) => vec!["string".into()],
            Schema::Bytes | Schema::Decimal(_) | Schema::BigDecimal | Schema::Uuid(UuidSchema::Bytes) => {
                vec!["bytes".into()]
            }
            Schema::Array(_) => vec!["array".into()],
            Schema::Map(_) => vec!["map".into()],
            Schema::Union(_) => vec![],
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => vec!["long".into()],
        }
    }

    /// Bytes: base64 (standard or URL-safe alphabet, padding optional) in a body, ISO-8859-1
    /// code points in a schema default (Avro's own JSON encoding). `size`: a fixed's exact length.
    fn bytes(&self, json: &Json, size: Option<usize>) -> std::result::Result<Vec<u8>, String> {
        let Json::String(s) = json else {
            return Err(format!("invalid type: {}, expected {}", kind(json), bytes_expected(self.source)));
        };
        let bytes = match self.source {
            Source::Body => decode_base64(s)
                .ok_or_else(|| format!("invalid value: string, expected {}", bytes_expected(self.source)))?,
            Source::Default => s
                .chars()
                .map(|c| {
                    u8::try_from(u32::from(c)).map_err(|_| "a default's bytes must be code points 0-255".to_owned())
                })
                .collect::<std::result::Result<_, _>>()?,
        };
        match size {
            Some(n) if bytes.len() != n => {
                Err(format!("invalid value: {} bytes, expected exactly {n} (fixed)", bytes.len()))
            }
            _ => Ok(bytes),
        }
    }

    fn decimal(&self, d: &DecimalSchema, json: &Json) -> std::result::Result<Decimal, String> {
        if self.source == Source::Default {
            // A default is the unscaled two's-complement bytes, as ISO-8859-1 text.
            let size = match &d.inner {
                InnerDecimalSchema::Fixed(f) => Some(f.size),
                InnerDecimalSchema::Bytes => None,
            };
            return Ok(Decimal::from(self.bytes(json, size)?));
        }
        let unscaled = decimal::unscaled(json, d.precision, d.scale)?;
        let bytes = decimal::twos_complement(unscaled);
        if let InnerDecimalSchema::Fixed(f) = &d.inner {
            if bytes.len() > f.size {
                return Err(format!("invalid value: decimal overflow, does not fit the {}-byte fixed", f.size));
            }
        }
        Ok(Decimal::from(bytes))
    }
}

/// A record or union mismatch: the JSON kind found and what was expected.
fn mismatch(path: &str, json: &Json, expected: &str) -> Misfit {
    Misfit { path: path.to_owned(), reason: format!("invalid type: {}, expected {expected}", kind(json)) }
}

/// `[i]` after a path.
fn push_index(path: &mut String, i: usize) {
    use std::fmt::Write;
    let _ = write!(path, "[{i}]");
}

/// `.name` after a path (or `name` at the root).
fn push_field(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

fn bytes_expected(source: Source) -> &'static str {
    match source {
        Source::Body => "base64-encoded bytes (a string)",
        Source::Default => "bytes as an ISO-8859-1 string",
    }
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(s).ok())
}

/// The JSON kind of a value, as errors name it (never the value).
pub(super) fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_f64() => "floating point number",
        Json::Number(_) => "integer",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn int(json: &Json) -> std::result::Result<i32, String> {
    const EXPECTED: &str = "an Avro int (32-bit integer)";
    let wide = long(json, EXPECTED)?;
    i32::try_from(wide).map_err(|_| format!("invalid value: integer out of range, expected {EXPECTED}"))
}

/// An integer from a JSON integer or a string of one (large longs lose precision as JSON numbers in
/// many clients, as Protobuf's int64 mapping allows for too).
fn long(json: &Json, expected: &str) -> std::result::Result<i64, String> {
    match json {
        Json::Number(n) => match n.as_i64() {
            Some(v) => Ok(v),
            None if n.is_u64() => Err(format!("invalid value: integer out of range, expected {expected}")),
            None => Err(format!("invalid type: floating point number, expected {expected}")),
        },
        Json::String(s) => s.parse::<i64>().map_err(|_| format!("invalid value: string, expected {expected}")),
        _ => Err(format!("invalid type: {}, expected {expected}", kind(json))),
    }
}

fn double(json: &Json, what: &str) -> std::result::Result<f64, String> {
    match json {
        Json::Number(n) => Ok(n.as_f64().expect("serde_json numbers are f64-convertible")),
        Json::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(format!(
                "invalid value: string, expected {what} (a number, \"NaN\", \"Infinity\" or \"-Infinity\")"
            )),
        },
        _ => Err(format!("invalid type: {}, expected {what}", kind(json))),
    }
}

/// `{"months": m, "days": d, "millis": ms}`, each 0 to 4294967295.
fn duration(json: &Json) -> std::result::Result<Duration, String> {
    const EXPECTED: &str = "an object {\"months\", \"days\", \"millis\"} of unsigned 32-bit integers";
    let Json::Object(o) = json else {
        return Err(format!("invalid type: {}, expected {EXPECTED}", kind(json)));
    };
    if o.keys().any(|k| !matches!(k.as_str(), "months" | "days" | "millis")) {
        return Err(format!("invalid value: unknown key, expected {EXPECTED}"));
    }
    let part = |k: &str| -> std::result::Result<u32, String> {
        match o.get(k) {
            None => Ok(0),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("invalid value: `{k}`, expected {EXPECTED}")),
        }
    };
    Ok(Duration::new(Months::new(part("months")?), Days::new(part("days")?), Millis::new(part("millis")?)))
}

/// Decimal text → unscaled integer at the schema's scale.
mod decimal {
    use serde_json::Value as Json;

    /// The unscaled value of a decimal given as a JSON number or string (`"-12.50"`, `"1e3"`) at
    /// `scale`: more fractional digits than the scale (unless zeros), or more significant digits
    /// than `precision`, are refused.
    pub(super) fn unscaled(json: &Json, precision: usize, scale: usize) -> std::result::Result<i128, String> {
        const EXPECTED: &str = "a decimal (a number or a decimal string)";
        let text = match json {
            Json::Number(n) => n.to_string(),
            Json::String(s) => s.clone(),
            _ => return Err(format!("invalid type: {}, expected {EXPECTED}", super::kind(json))),
        };
        let bad = || format!("invalid value: {}, expected {EXPECTED}", super::kind(json));
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text.strip_prefix('+').unwrap_or(&text)),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().map_err(|_| bad())?),
            None => (rest, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac_part.is_empty()
            || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        // digits × 10^(exponent − fraction length) = value; shift to the schema's scale.
        let mut digits: String = format!("{int_part}{frac_part}");
        let shift = i64::from(exponent) - frac_part.len() as i64 + scale as i64;
        if shift < 0 {
            let drop = (-shift) as usize;
            let keep = digits.len().saturating_sub(drop);
            if digits[keep..].bytes().any(|b| b != b'0') {
                return Err(format!("invalid value: more decimal places than the schema's scale ({scale})"));
            }
            digits.truncate(keep);
        }
        let significant = digits.trim_start_matches('0');
        let count = significant.len() + if shift > 0 && !significant.is_empty() { shift as usize } else { 0 };
        if count > precision {
            return Err(format!(
                "invalid value: decimal overflow, more than the schema's precision of {precision} digits"
            ));
        }
        if count > 38 {
            return Err("invalid value: decimal overflow, more than 38 digits (the most topicgate encodes)".into());
        }
        let mut value: i128 = if significant.is_empty() { 0 } else { significant.parse().map_err(|_| bad())? };
        if shift > 0 && value != 0 {
            value *= 10i128.pow(shift as u32);
        }
        Ok(if negative { -value } else { value })
    }

    /// Big-endian two's complement in the fewest bytes (Java's `BigInteger.toByteArray`, which
    /// Avro's own `DecimalConversion` writes).
    pub(super) fn twos_complement(v: i128) -> Vec<u8> {
        let bytes = v.to_be_bytes();
        let mut start = 0;
        while start < 15 {
            let (b, next) = (bytes[start], bytes[start + 1]);
            let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
            if !redundant {
                break;
            }
            start += 1;
        }
        bytes[start..].to_vec()
    }
}

/// Dates and times: a JSON integer in the logical type's own unit, or ISO 8601 text.
mod time {
    use serde_json::Value as Json;

    /// Days since 1970-01-01: an integer, or `"YYYY-MM-DD"`.
    pub(super) fn date(json: &Json) -> std::result::Result<i32, String> {
        const EXPECTED: &str = "a date (days since 1970-01-01, or \"YYYY-MM-DD\")";
        match json {
            Json::String(s) => {
                let days = parse_date(s).ok_or_else(|| format!("invalid value: string, expected {EXPECTED}"))?;
                i32::try_from(days).map_err(|_| format!("invalid value: out of range, expected {EXPECTED}"))
            }
            _ => super::int(json).map_err(|_| format!("invalid type: {}, expected {EXPECTED}", super::kind(json))),
        }
    }

    /// Time of day in `1/per_second` units: an integer, or `"HH:MM:SS[.fraction]"`.
    pub(super) fn time_of_day(json: &Json, per_second: i64) -> std::result::Result<i64, String> {
        let expected = format!("a time of day ({}, or \"HH:MM:SS[.fraction]\")", unit_name(per_second));
        let v = match json {
            Json::String(s) => {
                parse_time(s, per_second).ok_or_else(|| format!("invalid value: string, expected {expected}"))?
            }
            _ => super::long(json, &expected)?,
        };
        if !(0..86_400 * per_second).contains(&v) {
            return Err(format!("invalid value: out of range, expected {expected}"));
        }
        Ok(v)
    }

    /// Instant in `1/per_second` units since the epoch: an integer, or RFC 3339 text; `zoned`
    /// timestamps need an offset (`Z`, `+02:00`), local ones must have none.
    pub(super) fn timestamp(json: &Json, per_second: i64, zoned: bool) -> std::result::Result<i64, String> {
        let text_form =
            if zoned { "RFC 3339 text with an offset" } else { "\"YYYY-MM-DDTHH:MM:SS[.fraction]\" without an offset" };
        let expected = format!("a timestamp ({} since 1970-01-01, or {text_form})", unit_name(per_second));
        match json {
            Json::String(s) => parse_timestamp(s, per_second, zoned)
                .ok_or_else(|| format!("invalid value: string, expected {expected}")),
            _ => super::long(json, &expected),
        }
    }

    fn unit_name(per_second: i64) -> &'static str {
        match per_second {
            1_000 => "milliseconds",
            1_000_000 => "microseconds",
            _ => "nanoseconds",
        }
    }

    fn digits(s: &str) -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }

    /// Days since the epoch of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    fn parse_date(s: &str) -> Option<i64> {
        let (y, rest) = s.split_at_checked(4)?;
        let (y, m, d) = (digits(y)?, digits(rest.strip_prefix('-')?.get(..2)?)?, digits(rest.get(4..)?)?);
        if rest.len() != 6 || rest.as_bytes()[3] != b'-' || !(1..=12).contains(&m) {
            return None;
        }
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        if d < 1 || d > month_days[(m - 1) as usize] {
            return None;
        }
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(era * 146_097 + doe - 719_468)
    }

    /// `HH:MM:SS[.fraction]` in `1/per_second` units (a fraction finer than the unit is refused).
    fn parse_time(s: &str, per_second: i64) -> Option<i64> {
        let b = s.as_bytes();
        if b.len() < 8 || b[2] != b':' || b[5] != b':' {
            return None;
        }
        let (h, m, sec) = (digits(&s[0..2])?, digits(&s[3..5])?, digits(&s[6..8])?);
        if h > 23 || m > 59 || sec > 59 {
            return None;
        }
        let fraction = match &s[8..] {
            "" => 0,
            f => {
                let f = f.strip_prefix('.')?;
                let width = per_second.ilog10() as usize;
                if f.is_empty() || f.len() > width {
                    return None;
                }
                digits(f)? * 10i64.pow((width - f.len()) as u32)
            }
        };
        Some(((h * 60 + m) * 60 + sec) * per_second + fraction)
    }

    fn parse_timestamp(s: &str, per_second: i64, zoned: bool) -> Option<i64> {
        let (date, rest) = s.split_once(['T', 't', ' '])?;
        let days = parse_date(date)?;
        let (time, offset_seconds) = if zoned {
            if let Some(t) = rest.strip_suffix(['Z', 'z']) {
                (t, 0)
            } else {
                let i = rest.rfind(['+', '-'])?;
                let (t, off) = rest.split_at(i);
                let sign = if off.starts_with('-') { -1 } else { 1 };
                let off = &off[1..];
                if off.len() != 5 || off.as_bytes()[2] != b':' {
                    return None;
                }
                let (oh, om) = (digits(&off[..2])?, digits(&off[3..])?);
                if oh > 23 || om > 59 {
                    return None;
                }
                (t, sign * (oh * 3600 + om * 60))
            }
        } else {
            (rest, 0)
        };
        let in_day = parse_time(time, per_second)?;
        days.checked_mul(86_400)?.checked_sub(offset_seconds)?.checked_mul(per_second)?.checked_add(in_day)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn dates_and_times() {
            assert_eq!(parse_date("1970-01-01"), Some(0));
            assert_eq!(parse_date("2000-03-01"), Some(11_017));
            assert_eq!(parse_date("1969-12-31"), Some(-1));
            assert_eq!(parse_date("2023-02-29"), None);
            assert_eq!(parse_date("2024-02-29"), Some(19_782));
            assert_eq!(parse_time("01:02:03.5", 1_000), Some(3_723_500));
            assert_eq!(parse_time("01:02:03.1234", 1_000), None);
            assert_eq!(parse_timestamp("1970-01-01T00:00:01Z", 1_000, true), Some(1_000));
            assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00", 1_000, true), Some(0));
            assert_eq!(parse_timestamp("1970-01-01T00:00:00-00:30", 1_000_000, true), Some(1_800_000_000));
            assert_eq!(parse_timestamp("1970-01-01T00:00:00", 1_000, true), None);
            assert_eq!(
                parse_timestamp("1970-01-02T00:00:00.000000001", 1_000_000_000, false),
                Some(86_400_000_000_001)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &str = r#"{"type":"record","name":"Event","namespace":"t","fields":[
        {"name":"n","type":"null"},
        {"name":"b","type":"boolean"},
        {"name":"i","type":"int"},
        {"name":"l","type":"long"},
        {"name":"f","type":"float"},
        {"name":"d","type":"double"},
        {"name":"by","type":"bytes"},
        {"name":"s","type":"string"},
        {"name":"fx","type":{"type":"fixed","name":"Four","size":4}},
        {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
        {"name":"arr","type":{"type":"array","items":"int"}},
        {"name":"m","type":{"type":"map","values":"string"}},
        {"name":"inner","type":{"type":"record","name":"Inner","fields":[{"name":"name","type":"string"}]}},
        {"name":"opt","type":["null","string"],"default":null},
        {"name":"u","type":["null","int","string","Inner"],"default":null},
        {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}},
        {"name":"decf","type":{"type":"fixed","name":"D8","size":8,"logicalType":"decimal","precision":10,"scale":3}},
        {"name":"id","type":{"type":"string","logicalType":"uuid"}},
        {"name":"day","type":{"type":"int","logicalType":"date"}},
        {"name":"tms","type":{"type":"int","logicalType":"time-millis"}},
        {"name":"tus","type":{"type":"long","logicalType":"time-micros"}},
        {"name":"tsms","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"tsus","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"tsns","type":{"type":"long","logicalType":"timestamp-nanos"}},
        {"name":"lts","type":{"type":"long","logicalType":"local-timestamp-millis"}},
        {"name":"dur","type":{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}},
        {"name":"withdef","type":"int","default":7},
        {"name":"defrec","type":"Inner","default":{"name":"dflt"}},
        {"name":"defbytes","type":"bytes","default":"\u00ffA"}
    ]}"#;

    const BODY: &str = r#"{"n":null,"b":true,"i":-3,"l":"9007199254740993","f":1.5,"d":"NaN","by":"AAEC",
        "s":"héllo","fx":"AQIDBA==","e":"GREEN","arr":[1,2,3],"m":{"k":"v"},"inner":{"name":"x"},
        "opt":"bare","u":{"t.Inner":{"name":"y"}},"dec":"-12.5","decf":123.456,
        "id":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0","day":"1970-01-03","tms":"00:00:01.5","tus":2,
        "tsms":"1970-01-01T00:00:01Z","tsus":5,"tsns":"1970-01-01T00:00:00.000000007Z",
        "lts":"1970-01-01T00:00:02","dur":{"months":1,"days":2,"millis":3}}"#;

    /// Decodes `bytes` with apache-avro's own reader.
    fn decode(encoder: &AvroEncoder, bytes: &[u8]) -> Value {
        #[allow(deprecated)]
        apache_avro::from_avro_datum(encoder.schema(), &mut &bytes[..], None).unwrap()
    }

    fn fields(v: Value) -> HashMap<String, Value> {
        match v {
            Value::Record(f) => f.into_iter().collect(),
            other => panic!("not a record: {other:?}"),
        }
    }

    #[test]
    fn every_type_reads_back_as_sent() {
        let enc = AvroEncoder::new(ALL).unwrap();
        let bytes = enc.encode(BODY, false).unwrap();
        let f = fields(decode(&enc, &bytes));
        let inner = |name: &str| Value::Record(vec![("name".into(), Value::String(name.into()))]);
        let expect: Vec<(&str, Value)> = vec![
            ("n", Value::Null),
            ("b", Value::Boolean(true)),
            ("i", Value::Int(-3)),
            ("l", Value::Long(9_007_199_254_740_993)),
            ("f", Value::Float(1.5)),
            ("by", Value::Bytes(vec![0, 1, 2])),
            ("s", Value::String("héllo".into())),
            ("fx", Value::Fixed(4, vec![1, 2, 3, 4])),
            ("e", Value::Enum(1, "GREEN".into())),
            ("arr", Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)])),
            ("m", Value::Map([("k".to_owned(), Value::String("v".into()))].into())),
            ("inner", inner("x")),
            ("opt", Value::Union(1, Box::new(Value::String("bare".into())))),
            ("u", Value::Union(3, Box::new(inner("y")))),
            ("dec", Value::Decimal(Decimal::from(vec![0xfb, 0x1e]))), // -1250
            ("decf", Value::Decimal(Decimal::from(vec![0, 0, 0, 0, 0, 0x01, 0xe2, 0x40]))), // 123456
            ("id", Value::Uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".parse().unwrap())),
            ("day", Value::Date(2)),
            ("tms", Value::TimeMillis(1_500)),
            ("tus", Value::TimeMicros(2)),
            ("tsms", Value::TimestampMillis(1_000)),
            ("tsus", Value::TimestampMicros(5)),
            ("tsns", Value::TimestampNanos(7)),
            ("lts", Value::LocalTimestampMillis(2_000)),
            ("dur", Value::Duration(Duration::new(Months::new(1), Days::new(2), Millis::new(3)))),
            ("withdef", Value::Int(7)),
            ("defrec", inner("dflt")),
            ("defbytes", Value::Bytes(vec![0xff, b'A'])),
        ];
        for (name, want) in expect {
            assert_eq!(f[name], want, "field {name}");
        }
        assert!(matches!(f["d"], Value::Double(d) if d.is_nan()));
    }

    #[test]
    fn bytes_are_avros_own_for_a_small_record() {
        let enc = AvroEncoder::new(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"s","type":"string"},
                {"name":"o","type":["null","int"]}]}"#,
        )
        .unwrap();
        // zigzag(-2) = 3; "hi" = len zigzag(2)=4, 'h', 'i'; union branch 1 (zigzag 2), int 5 (zigzag 10).
        assert_eq!(enc.encode(r#"{"a":-2,"s":"hi","o":5}"#, false).unwrap(), vec![3, 4, b'h', b'i', 2, 10]);
        assert_eq!(enc.encode(r#"{"a":-2,"s":"hi","o":{"int":5}}"#, false).unwrap(), vec![3, 4, b'h', b'i', 2, 10]);
        assert_eq!(enc.encode(r#"{"a":-2,"s":"hi","o":null}"#, false).unwrap(), vec![3, 4, b'h', b'i', 0]);
        // Unknown fields are dropped only when allowed.
        assert!(enc.encode(r#"{"a":0,"s":"","o":null,"x":1}"#, true).is_ok());
    }

    fn refused(schema: &str, body: &str) -> String {
        let e = AvroEncoder::new(schema).unwrap().encode(body, false).unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest, "{}", e.message);
        assert!(!e.message.contains("SECRET"), "{}", e.message);
        e.message
    }

    #[test]
    fn bad_input_is_a_400_naming_the_field_and_no_value() {
        let cases = [
            (r#"{"i":"SECRET"}"#, "field `i`: invalid value: string, expected an Avro int (32-bit integer)"),
            (r#"{"i":1.5}"#, "field `i`: invalid type: floating point number, expected an Avro int"),
            (r#"{"i":3000000000}"#, "field `i`: invalid value: integer out of range, expected an Avro int"),
            (r#"{"s":5}"#, "field `s`: invalid type: integer, expected a string"),
            (r#"{"zz":1}"#, "body: unrecognized field name 'zz'"),
            (r#"{"inner":{"name":"a","zz":1}}"#, "field `inner`: unrecognized field name 'zz'"),
            (r#"{"inner":{}}"#, "field `inner.name`: missing required field (it has no default)"),
            (r#"{"e":"SECRET"}"#, "field `e`: invalid value: not a symbol of the enum, expected one of RED, GREEN"),
            (r#"{"dec":"10000.00"}"#, "field `dec`: invalid value: decimal overflow, more than the schema's precision of 6"),
            (r#"{"dec":"1.001"}"#, "field `dec`: invalid value: more decimal places than the schema's scale (2)"),
            (r#"{"arr":[1,"SECRET"]}"#, "field `arr[1]`: invalid value: string, expected an Avro int"),
            (r#"{"m":{"SECRET":1}}"#, "field `m[<key>]`: invalid type: integer, expected a string"),
            (r#"{"u":"SECRET"}"#, "field `u`: invalid type: string, expected a union value: null or an object with one key naming the branch, one of null, int, string, t.Inner"),
            (r#"{"u":{"int":"SECRET"}}"#, "field `u`: invalid value: string, expected an Avro int"),
            (r#"{"fx":"AQI="}"#, "field `fx`: invalid value: 2 bytes, expected exactly 4 (fixed)"),
            (r#"{"by":"SECRET!"}"#, "field `by`: invalid value: string, expected base64-encoded bytes"),
            (r#"{"id":"SECRET"}"#, "field `id`: invalid value: string, expected a UUID"),
            (r#"{"day":"2023-02-30"}"#, "field `day`: invalid value: string, expected a date"),
            (r#"{"tsms":"1970-01-01T00:00:00"}"#, "field `tsms`: invalid value: string, expected a timestamp"),
            (r#"{"tms":86400000}"#, "field `tms`: invalid value: out of range, expected a time of day"),
            (r#"[1]"#, "body: invalid type: array, expected an object (record `Event`)"),
        ];
        let full: serde_json::Map<String, Json> = serde_json::from_str(BODY).unwrap();
        for (patch, want) in cases {
            // The valid body with one field replaced, so each error is the only one.
            let body = match serde_json::from_str::<Json>(patch).unwrap() {
                Json::Object(p) if p.len() == 1 => {
                    let mut b = full.clone();
                    b.extend(p);
                    Json::Object(b).to_string()
                }
                _ => patch.to_owned(),
            };
            let m = refused(ALL, &body);
            assert!(m.starts_with(want), "{patch}: {m}");
        }
        // Missing required at the root, and a missing field that has a default is fine.
        let mut b = full.clone();
        b.remove("s");
        assert_eq!(refused(ALL, &Json::Object(b).to_string()), "field `s`: missing required field (it has no default)");
        let mut b = full.clone();
        b.remove("opt");
        AvroEncoder::new(ALL).unwrap().encode(&Json::Object(b).to_string(), false).unwrap();
    }

    #[test]
    fn fixed_decimal_overflow_and_negative_bytes() {
        let schema = r#"{"type":"fixed","name":"D2","size":2,"logicalType":"decimal","precision":5,"scale":0}"#;
        let enc = AvroEncoder::new(schema).unwrap();
        assert_eq!(enc.encode("-1", false).unwrap(), vec![0xff, 0xff]);
        assert_eq!(enc.encode("32767", false).unwrap(), vec![0x7f, 0xff]);
        assert!(refused(schema, "32768").contains("does not fit the 2-byte fixed"));
        assert_eq!(decimal::twos_complement(-128), vec![0x80]);
        assert_eq!(decimal::twos_complement(128), vec![0x00, 0x80]);
        assert_eq!(decimal::twos_complement(0), vec![0x00]);
        assert_eq!(decimal::unscaled(&Json::from("1.5e2"), 5, 1), Ok(1500));
        assert_eq!(decimal::unscaled(&Json::from("0.10"), 3, 1), Ok(1));
    }

    /// A schema without a `Ref` is written with no names resolved; with or without, the bytes are
    /// those of apache-avro's own writer (names resolved, values validated) for the same value.
    #[test]
    fn writes_match_apache_avros_resolving_writer() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let example = std::fs::read_to_string(root.join("krakend/schemas/MyAvroTopic.avsc")).unwrap();
        let payload = std::fs::read_to_string(root.join("bench/payload.json")).unwrap();
        let no_refs = r#"{"type":"record","name":"F","namespace":"n","fields":[
            {"name":"decf","type":{"type":"fixed","name":"D8","size":8,"logicalType":"decimal","precision":10,"scale":3}},
            {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}},
            {"name":"dur","type":{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}},
            {"name":"id","type":{"type":"string","logicalType":"uuid"}},
            {"name":"u","type":["null",{"type":"record","name":"I","namespace":"o","fields":[{"name":"x","type":"int"}]}]},
            {"name":"a","type":{"type":"array","items":{"type":"map","values":{"type":"enum","name":"E","symbols":["A","B"]}}}}]}"#;
        let no_refs_body = r#"{"decf":"-1.5","dec":2.25,"dur":{"months":1},"id":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "u":{"o.I":{"x":3}},"a":[{"k":"B","l":"A"},{}]}"#;
        let node_body = r#"{"v":1,"next":{"v":2,"kids":[{"v":3}]}}"#;
        for (schema, body, has_refs) in [
            (example.as_str(), payload.trim_end(), false),
            (no_refs, no_refs_body, false),
            (ALL, BODY, true),
            (NODE, node_body, true),
        ] {
            let enc = AvroEncoder::new(schema).unwrap();
            assert_eq!(enc.has_refs, has_refs, "{body}");
            let value = seed::read(&enc, body, false).expect(body);
            let mut want = Vec::new();
            GenericDatumWriter::builder(&enc.schema).build().unwrap().write_value_ref(&mut want, &value).unwrap();
            assert_eq!(enc.write(&value, 0).unwrap(), want, "{body}");
        }
    }

    const NODE: &str = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},
        {"name":"next","type":["null","Node"],"default":null},
        {"name":"kids","type":{"type":"array","items":"Node"},"default":[]}]}"#;

    #[test]
    fn recursive_schemas_compile_and_nesting_is_bounded() {
        let enc = AvroEncoder::new(NODE).unwrap();
        let nested = |depth: usize| {
            let mut body = r#"{"v":0}"#.to_owned();
            for i in 0..depth {
                body = format!(r#"{{"v":{i},"next":{body}}}"#);
            }
            body
        };
        let bytes = enc.encode(&nested(20), false).unwrap();
        let mut depth = 0;
        // apache-avro's reader recurses in large frames: give it room.
        let mut node = std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn_scoped(s, || decode(&enc, &bytes))
                .unwrap()
                .join()
                .unwrap()
        });
        while let Some(Value::Union(1, next)) = fields(node.clone()).remove("next") {
            depth += 1;
            node = *next;
        }
        assert_eq!(depth, 20);
        // 32 records deep encodes (on a test thread's 2 MiB stack, in a debug build too); deeper is a 400.
        enc.encode(&nested(31), false).unwrap();
        let e = enc.encode(&nested(32), false).unwrap_err();
        assert!(
            e.message.ends_with("nests deeper than 32 records, arrays and maps, the most topicgate encodes"),
            "{}",
            e.message
        );
        assert!(e.message.starts_with("field `next.next.next"), "{}", e.message);
        // The parser's limit of 128 nested values comes first for deeper bodies.
        let e = enc.encode(&nested(200), false).unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        assert!(e.message.contains("recursion limit exceeded"), "{}", e.message);
    }

    #[test]
    fn broken_schemas_say_why() {
        assert!(AvroEncoder::new("{").unwrap_err().contains("not a valid Avro schema"));
        assert!(AvroEncoder::new(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"Nope"}]}"#)
            .unwrap_err()
            .contains("not a valid Avro schema"));
        let e = AvroEncoder::new(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}"#)
            .unwrap_err();
        assert!(e.contains("not a valid Avro schema") || e.contains("default of field `a`"), "{e}");
    }

    /// Text of a value that two equal values share: map entries sorted (a `HashMap`'s order is not
    /// the value's), floats by their bits (so a NaN equals itself).
    fn canon(v: &Value) -> String {
        match v {
            Value::Map(m) => {
                let mut entries: Vec<_> = m.iter().map(|(k, v)| format!("{k:?}:{}", canon(v))).collect();
                entries.sort();
                format!("map{{{}}}", entries.join(","))
            }
            Value::Record(fields) => {
                let fields: Vec<_> = fields.iter().map(|(k, v)| format!("{k}={}", canon(v))).collect();
                format!("record{{{}}}", fields.join(","))
            }
            Value::Array(items) => format!("[{}]", items.iter().map(canon).collect::<Vec<_>>().join(",")),
            Value::Union(i, v) => format!("union{i}({})", canon(v)),
            Value::Double(d) => format!("double:{:x}", d.to_bits()),
            Value::Float(f) => format!("float:{:x}", f.to_bits()),
            other => format!("{other:?}"),
        }
    }

    /// The fast path (`seed`) never takes a body the general path refuses, and takes it as the same
    /// value; `encode` and `encode_via_json` give the same bytes (the same value where a map of
    /// several entries makes the bytes depend on `HashMap` order) or the same error.
    /// Returns whether the fast path took the body.
    fn agree(enc: &AvroEncoder, body: &str, allow_unknown: bool) -> bool {
        let fast = seed::read(enc, body, allow_unknown);
        match (&fast, enc.read_via_json(body, allow_unknown)) {
            (Some(f), Ok(g)) => assert_eq!(canon(f), canon(&g), "{body}"),
            (Some(_), Err(e)) => panic!("the fast path took what the general path refuses ({}): {body}", e.message),
            (None, _) => {}
        }
        match (enc.encode(body, allow_unknown), enc.encode_via_json(body, allow_unknown)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), Ok(b)) => assert_eq!(canon(&decode(enc, &a)), canon(&decode(enc, &b)), "{body}"),
            (Err(a), Err(b)) => assert_eq!((a.status, a.message), (b.status, b.message), "{body}"),
            (a, b) => panic!("encode {a:?} but encode_via_json {b:?}: {body}"),
        }
        fast.is_some()
    }

    #[test]
    fn fast_path_and_general_path_agree() {
        let enc = AvroEncoder::new(ALL).unwrap();
        assert!(agree(&enc, BODY, false), "the fast path gave up on the all-types body");
        let full: serde_json::Map<String, Json> = serde_json::from_str(BODY).unwrap();
        // Every field replaced by each of these values (good, wrong, edge), left out, or doubled.
        let pool = [
            "null",
            "true",
            "false",
            "0",
            "-3",
            "7",
            "3000000000",
            "18446744073709551615",
            "-9223372036854775808",
            "1.5",
            "1e40",
            "-0.0",
            "\"\"",
            "\"x\"",
            "\"5\"",
            "\"-12.5\"",
            "\"NaN\"",
            "\"Infinity\"",
            "\"AAEC\"",
            "\"AQIDBA==\"",
            "\"GREEN\"",
            "\"1970-01-03\"",
            "\"00:00:01.5\"",
            "\"1970-01-01T00:00:01Z\"",
            "\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\"",
            "\"h\\u00e9\\\"\"",
            "[]",
            "[1,2]",
            "[1,\"x\"]",
            "{}",
            r#"{"name":"z"}"#,
            r#"{"name":"z","name":"z"}"#,
            r#"{"k":"v","k2":"w"}"#,
            r#"{"k":"v","k":"w"}"#,
            r#"{"int":5}"#,
            r#"{"string":"s"}"#,
            r#"{"null":null}"#,
            r#"{"t.Inner":{"name":"y"}}"#,
            r#"{"Inner":{"name":"y"}}"#,
            r#"{"int":5,"string":"s"}"#,
            r#"{"months":1,"days":2,"millis":3}"#,
            r#"{"months":1,"zz":2}"#,
        ];
        let mut taken = 0;
        for name in full.keys() {
            for v in pool {
                let mut b = full.clone();
                b.insert(name.clone(), serde_json::from_str(v).unwrap_or(Json::Null));
                let text = Json::Object(b).to_string();
                taken += usize::from(agree(&enc, &text, false));
                // The raw text too (a repeated key survives only in text).
                let raw = BODY.replacen(&format!("\"{name}\":"), &format!("\"{name}\":{v},\"{name}_\":"), 1);
                agree(&enc, &raw, false);
                agree(&enc, &raw, true);
            }
            let mut b = full.clone();
            b.remove(name);
            taken += usize::from(agree(&enc, &Json::Object(b).to_string(), false));
            let doubled = BODY.replacen(&format!("\"{name}\":"), &format!("\"{name}\":null,\"{name}\":"), 1);
            assert!(!agree(&enc, &doubled, false) && enc.encode(&doubled, false).is_err(), "{doubled}");
        }
        assert!(taken > 100, "the fast path took only {taken} bodies");
        // Unknown keys: refused, or dropped when allowed (still parsed strictly, repeats refused).
        for extra in [r#""zz":1"#, r#""zz":{"a":1,"a":2}"#, r#""zz":1,"zz":2"#, r#""zz":[{"q":null}]"#] {
            let body = format!("{{{extra},{}", &BODY.trim_start()[1..]);
            agree(&enc, &body, false);
            agree(&enc, &body, true);
        }
        // Whole bodies that are not a record, or not JSON.
        for body in
            ["", "  ", "nul", "null", "[1]", "\"x\"", "{", "{}", "{} x", &format!("{BODY} x"), "{\"\\u0073\":\"x\"}"]
        {
            assert!(!agree(&enc, body, false), "{body}");
        }

        // A union whose record has fields named like its branches: wrapped, bare, ambiguous.
        let w = AvroEncoder::new(
            r#"{"type":"record","name":"W","fields":[{"name":"o","type":["null",{"type":"record","name":"R",
                "fields":[{"name":"R","type":"int","default":0},{"name":"null","type":["null","int"],"default":null}]}]}]}"#,
        )
        .unwrap();
        for o in [
            r#"{"R":{"R":1}}"#,
            r#"{"R":1}"#,
            r#"{"R":1,"null":2}"#,
            r#"{"null":2,"R":1}"#,
            r#"{"null":null}"#,
            r#"{"null":5}"#,
            "{}",
            "null",
            "5",
            r#"{"R":{"R":1},"R":{"R":1}}"#,
            r#"{"R":{}}"#,
        ] {
            agree(&w, &format!(r#"{{"o":{o}}}"#), false);
        }
        // Recursion, and the nesting bound on both paths.
        let node = AvroEncoder::new(NODE).unwrap();
        // The innermost record's kid is 3 levels below it: 29 wraps nest 32 deep, the most encoded.
        for depth in [0, 5, 29, 30, 31, 200] {
            let mut body = r#"{"v":0,"kids":[{"v":1}]}"#.to_owned();
            for i in 0..depth {
                body = format!(r#"{{"v":{i},"next":{body}}}"#);
            }
            assert_eq!(agree(&node, &body, false), depth <= 29, "depth {depth}");
            assert_eq!(node.encode(&body, false).is_ok(), depth <= 29, "depth {depth}");
        }
        // Issue #23's 1 KB payload through the example schema, whole and with fields left out.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let example =
            AvroEncoder::new(&std::fs::read_to_string(root.join("krakend/schemas/MyAvroTopic.avsc")).unwrap()).unwrap();
        let payload = std::fs::read_to_string(root.join("bench/payload.json")).unwrap();
        assert!(agree(&example, payload.trim_end(), false), "the fast path gave up on the 1 KB payload");
        let full: serde_json::Map<String, Json> = serde_json::from_str(&payload).unwrap();
        for name in full.keys() {
            let mut b = full.clone();
            b.remove(name);
            assert_eq!(agree(&example, &Json::Object(b).to_string(), false), name != "sample_message", "{name}");
        }
        assert!(agree(
            &example,
            r#"{"sample_message":"m","source":{"topicgate.example.Source":{"instance":"3"}}}"#,
            false
        ));
        assert!(agree(&example, r#"{"sample_message":"m","source":{"Source":{}},"level":"LEVEL_LOW"}"#, false));
    }

    #[test]
    fn megabyte_strings_encode_and_bad_ones_are_refused_without_echo() {
        let enc = AvroEncoder::new(
            r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"},{"name":"b","type":"bytes"}]}"#,
        )
        .unwrap();
        let big = "x".repeat(1 << 20);
        let bytes = enc.encode(&format!(r#"{{"s":"{big}","b":""}}"#), false).unwrap();
        // The length 2^20 is a 4-byte zigzag varint.
        assert_eq!(bytes.len(), 4 + (1 << 20) + 1);
        let e = enc.encode(&format!(r#"{{"s":"","b":"{big}!"}}"#), false).unwrap_err();
        assert!(e.message.len() < 200, "{}", e.message.len());
    }
}
