//! The direct writer against prost-reflect: on every body the writer accepts, both must give
//! the same message. Bodies come from a fixed list of edge cases and from a seeded generator
//! that walks the descriptor and mixes valid values with wrong types, nulls, out-of-range
//! numbers, numbers as strings, unknown and duplicate keys.

use prost_reflect::{DeserializeOptions, DynamicMessage, Kind, MessageDescriptor};

use super::plan::Plan;
use super::writer::{self, Stop};
use crate::schema::compile_for_test;

const PROTO: &str = r#"
    syntax = "proto3";
    package d;
    import "google/protobuf/timestamp.proto";
    import "google/protobuf/duration.proto";
    import "google/protobuf/struct.proto";
    import "google/protobuf/wrappers.proto";
    message All {
      double f_double = 1; float f_float = 2; int32 f_int32 = 3; int64 f_int64 = 4;
      uint32 f_uint32 = 5; uint64 f_uint64 = 6; sint32 f_sint32 = 7; sint64 f_sint64 = 8;
      fixed32 f_fixed32 = 9; fixed64 f_fixed64 = 10; sfixed32 f_sfixed32 = 11; sfixed64 f_sfixed64 = 12;
      bool f_bool = 13; string f_string = 14; bytes f_bytes = 15; Color f_enum = 16; All child = 17;
      repeated int32 r_int32 = 18; repeated string r_string = 19; repeated All r_child = 20;
      repeated Color r_enum = 21; repeated double r_double = 22; repeated sint64 r_sint64 = 23;
      repeated bytes r_bytes = 24; repeated uint64 r_uint64 = 42 [packed = false];
      map<string, int32> m_str_int = 25; map<int64, string> m_int_str = 26; map<bool, All> m_bool_child = 27;
      map<uint32, Color> m_enum = 28; map<sint32, google.protobuf.Timestamp> m_ts = 29;
      oneof choice { string o_string = 30; int32 o_int = 31; All o_child = 32; }
      optional int32 opt_int = 33; optional string opt_string = 34;
      google.protobuf.Timestamp ts = 35; google.protobuf.Duration dur = 36; google.protobuf.Struct st = 37;
      google.protobuf.Value val = 38; google.protobuf.Int64Value w_int64 = 39;
      google.protobuf.StringValue w_string = 40; repeated google.protobuf.Value r_val = 41;
    }
    enum Color { COLOR_UNSPECIFIED = 0; RED = 1; GREEN = 2; }
"#;

fn all() -> MessageDescriptor {
    compile_for_test(PROTO).get_message_by_name("d.All").unwrap()
}

/// Outcome of one body: `Some(true)` the writer's bytes equal prost-reflect's message,
/// `None` the writer fell back. Panics on any disagreement.
fn agree(desc: &MessageDescriptor, plan: &Plan, json: &str, allow_unknown: bool) -> Option<bool> {
    let options = DeserializeOptions::new().deny_unknown_fields(!allow_unknown);
    let direct = writer::write(plan, json, allow_unknown, &options);
    let mut de = serde_json::Deserializer::from_str(json);
    let dynamic =
        DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &options).and_then(|m| de.end().map(|()| m));
    match direct {
        Ok(bytes) => {
            let expected =
                dynamic.unwrap_or_else(|e| panic!("writer accepted what prost-reflect refuses ({e}): {json}"));
            let got = DynamicMessage::decode(desc.clone(), bytes.as_slice())
                .unwrap_or_else(|e| panic!("writer wrote bytes that do not decode ({e}): {json}"));
            // Compared through their canonical JSON: prost-reflect's own PartialEq recurses
            // without end on a set-but-empty map field.
            let canonical = |m: &DynamicMessage| serde_json::to_value(m).unwrap();
            assert_eq!(canonical(&got), canonical(&expected), "different message for {json}");
            Some(true)
        }
        Err(Stop::Duplicate(_)) => Some(false),
        Err(Stop::FallBack) => None,
    }
}

#[test]
fn edge_cases_agree() {
    let desc = all();
    let plan = Plan::build(&desc).expect("a proto3 message is planned");
    // (body, whether the writer must handle it itself)
    let cases: &[(&str, bool)] = &[
        (r#"{}"#, true),
        (r#"{"fDouble":1.5,"fFloat":-2.25,"fInt32":-7,"fInt64":"-9007199254740993","fUint32":4294967295}"#, true),
        (r#"{"f_uint64":"18446744073709551615","fSint32":-2147483648,"fSint64":"-9223372036854775808"}"#, true),
        (r#"{"fFixed32":4294967295,"fFixed64":"18446744073709551615","fSfixed32":-1,"fSfixed64":"-1"}"#, true),
        (r#"{"fBool":true,"fString":"h\u00e9llo \"q\" \n","fBytes":"YWJj","fEnum":"GREEN"}"#, true),
        (r#"{"fBytes":"YWJjZA","fEnum":2,"fInt32":0,"fString":"","fBool":false,"fDouble":-0.0}"#, true),
        (r#"{"child":{"child":{"fString":"deep"}},"rChild":[{},{"fInt32":1}]}"#, true),
        (r#"{"rInt32":[1,-1,0,2147483647],"rString":["a","",""],"rEnum":["RED",0,2],"rDouble":[0,1.5,-3]}"#, true),
        (r#"{"rSint64":["-5",5],"rBytes":["","AA=="],"rUint64":[0,1,"18446744073709551615"],"rInt32":[]}"#, true),
        (
            r#"{"mStrInt":{"a":1,"":0,"z":-3},"mIntStr":{"-5":"x","0":""},"mBoolChild":{"true":{},"false":{"fInt32":3}}}"#,
            true,
        ),
        (r#"{"mEnum":{"7":"RED","0":0},"mTs":{"-1":"1970-01-01T00:00:01Z"}}"#, true),
        (r#"{"oString":""}"#, true),
        (r#"{"oChild":{}}"#, true),
        (r#"{"oInt":0,"optInt":0,"optString":""}"#, true),
        (r#"{"oInt":null,"oString":"x"}"#, true),
        (r#"{"ts":"2024-02-29T12:00:00.5Z","dur":"1.5s","st":{"a":[1,"b",null,{"c":true}]},"val":null}"#, true),
        (r#"{"val":{"x":1},"wInt64":"42","wString":"","rVal":[1,null,"s",[true]]}"#, true),
        (r#"{"wInt64":null,"ts":null,"child":null,"rInt32":null,"mStrInt":null,"fString":null}"#, true),
        // The writer gives these to prost-reflect, which decides.
        (r#"{"fInt32":1.0}"#, false),
        (r#"{"fInt32":"1e2"}"#, false),
        (r#"{"fInt32":"+5"}"#, false),
        (r#"{"fInt32":"007"}"#, false),
        (r#"{"fInt32":2147483648}"#, false),
        (r#"{"fUint32":-1}"#, false),
        (r#"{"fFloat":1e39}"#, false),
        (r#"{"fDouble":"NaN"}"#, false),
        (r#"{"fDouble":"Infinity"}"#, false),
        (r#"{"fBytes":"-_8"}"#, false),
        (r#"{"fBytes":"!!"}"#, false),
        (r#"{"fEnum":"PURPLE"}"#, false),
        (r#"{"fEnum":99}"#, false),
        (r#"{"fBool":"true"}"#, false),
        (r#"{"fString":1}"#, false),
        (r#"{"child":"x"}"#, false),
        (r#"{"rInt32":[1,null]}"#, false),
        (r#"{"rInt32":1}"#, false),
        (r#"{"mStrInt":{"a":null}}"#, false),
        (r#"{"mIntStr":{"x":"y"}}"#, false),
        (r#"{"mBoolChild":{"yes":{}}}"#, false),
        (r#"{"oString":"a","oInt":1}"#, false),
        (r#"{"unknown":1}"#, false),
        (r#"{"fInt32":1} x"#, false),
        (r#"{"fInt32":1"#, false),
    ];
    for (json, handled) in cases {
        let outcome = agree(&desc, &plan, json, false);
        assert_eq!(outcome == Some(true), *handled, "writer handled {json}: {outcome:?}");
    }
}

#[test]
fn generated_bodies_agree() {
    let desc = all();
    let plan = Plan::build(&desc).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut handled, mut duplicates, mut fell_back) = (0, 0, 0);
    for _ in 0..20_000 {
        let mut json = String::new();
        message(&mut rng, &desc, 0, &mut json);
        let allow_unknown = rng.below(4) == 0;
        match agree(&desc, &plan, &json, allow_unknown) {
            Some(true) => handled += 1,
            Some(false) => duplicates += 1,
            None => fell_back += 1,
        }
    }
    // The generator must exercise every outcome, or the test proves little.
    eprintln!("writer handled {handled}, duplicates {duplicates}, fell back {fell_back}");
    assert!(handled > 5000 && duplicates > 250 && fell_back > 1000, "{handled} {duplicates} {fell_back}");
}

#[test]
fn proto2_and_well_known_roots_are_left_to_prost_reflect() {
    let pool = compile_for_test("syntax = \"proto2\"; message P { optional int32 a = 1 [default = 5]; }");
    assert!(Plan::build(&pool.get_message_by_name("P").unwrap()).is_none());
    let ts = all().parent_pool().get_message_by_name("google.protobuf.Timestamp").unwrap();
    assert!(Plan::build(&ts).is_none());
}

/// xorshift64*: a fixed sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn message(rng: &mut Rng, desc: &MessageDescriptor, depth: u32, out: &mut String) {
    out.push('{');
    let fields: Vec<_> = desc.fields().collect();
    let count = match depth {
        0..=2 => rng.below(6),
        3 => rng.below(2),
        _ => 0,
    };
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        if rng.below(40) == 0 {
            out.push_str("\"noSuchField\":{\"x\":[1]}");
            continue;
        }
        let f = &fields[rng.below(fields.len() as u64) as usize];
        let name = if rng.below(3) == 0 { f.name() } else { f.json_name() };
        out.push_str(&serde_json::to_string(name).unwrap());
        out.push(':');
        if rng.below(25) == 0 {
            out.push_str("null");
        } else if f.is_map() {
            let Kind::Message(entry) = f.kind() else { unreachable!() };
            out.push('{');
            for j in 0..rng.below(3) {
                if j > 0 {
                    out.push(',');
                }
                let key = scalar_json(rng, &entry.map_entry_key_field().kind());
                // Map keys are strings in JSON.
                let key = if key.starts_with('"') { key } else { serde_json::to_string(&key).unwrap() };
                out.push_str(&key);
                out.push(':');
                value(rng, &entry.map_entry_value_field().kind(), depth, out);
            }
            out.push('}');
        } else if f.is_list() {
            out.push('[');
            for j in 0..rng.below(4) {
                if j > 0 {
                    out.push(',');
                }
                value(rng, &f.kind(), depth, out);
            }
            out.push(']');
        } else {
            value(rng, &f.kind(), depth, out);
        }
    }
    out.push('}');
}

fn value(rng: &mut Rng, kind: &Kind, depth: u32, out: &mut String) {
    match kind {
        Kind::Message(m) if m.package_name() == "google.protobuf" => out.push_str(rng.pick(&[
            "\"1970-01-01T00:00:01Z\"",
            "\"2s\"",
            "{\"k\":[1,\"x\",null]}",
            "null",
            "7",
            "\"s\"",
            "[1,{}]",
            "\"x\"",
        ])),
        Kind::Message(m) if rng.below(15) != 0 => message(rng, m, depth + 1, out),
        _ => out.push_str(&scalar_json(rng, kind)),
    }
}

/// A JSON value for a scalar or enum: mostly right, sometimes wrong in one of many ways.
fn scalar_json(rng: &mut Rng, kind: &Kind) -> String {
    if rng.below(12) == 0 {
        return rng
            .pick(&["1.0", "1e2", "\"+5\"", "\"007\"", "-0.0", "\"NaN\"", "true", "{}", "[]", "\"\"", "-1", "1e39"])
            .to_owned();
    }
    let int = |rng: &mut Rng| -> i128 {
        match rng.below(6) {
            0 => 0,
            1 => rng.below(300) as i128 - 150,
            2 => i64::MAX as i128 + rng.below(3) as i128 - 1,
            3 => i64::MIN as i128 + rng.below(3) as i128 - 1,
            4 => u32::MAX as i128 + rng.below(3) as i128 - 1,
            _ => u64::MAX as i128 - rng.below(2) as i128,
        }
    };
    match kind {
        Kind::Bool => rng.pick(&["true", "false"]).to_owned(),
        Kind::String => serde_json::to_string(rng.pick(&["", "hello", "é\u{1F600}\"\\\n", "\u{0}"])).unwrap(),
        Kind::Bytes => rng.pick(&["\"\"", "\"YWJj\"", "\"YWJjZA\"", "\"YWJjZA==\"", "\"-_8\"", "\"!\""]).to_owned(),
        Kind::Enum(_) => {
            rng.pick(&["\"RED\"", "\"GREEN\"", "\"COLOR_UNSPECIFIED\"", "0", "2", "\"NOPE\"", "9"]).to_owned()
        }
        Kind::Double | Kind::Float => rng.pick(&["0", "1.5", "-2.75", "3", "1e300", "-1e-300", "\"1.5\""]).to_owned(),
        _ => {
            let n = int(rng);
            if rng.below(2) == 0 {
                format!("\"{n}\"")
            } else {
                n.to_string()
            }
        }
    }
}
