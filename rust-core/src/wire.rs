//! Value wire formats: the encoded bytes as they are, or AWS Glue SerDe framing so Glue
//! deserializers can read them (Protobuf, Avro and JSON alike).

use std::io::Write;

use flate2::write::ZlibEncoder;
use uuid::Uuid;

use crate::config::GlueCompression;

/// Glue SerDe header version byte.
pub const GLUE_HEADER_VERSION: u8 = 0x03;
/// Glue compression byte: none.
pub const GLUE_COMPRESSION_NONE: u8 = 0x00;
/// Glue compression byte: zlib.
pub const GLUE_COMPRESSION_ZLIB: u8 = 0x05;

/// Confluent's magic byte, first of every Confluent-framed value.
const CONFLUENT_MAGIC: u8 = 0x00;

/// How to frame an encoded message.
#[derive(Debug, Clone, Copy)]
pub enum Framing<'a> {
    /// The encoded bytes as they are.
    Raw,
    /// `0x03`, compression byte, 16-byte schema version UUID, then (compressed or not) the
    /// payload: for Protobuf the message index as an unsigned varint followed by the Protobuf
    /// bytes; for Avro the Avro binary; for JSON the JSON text.
    Glue {
        /// The schema version the bytes were encoded with.
        schema_version_id: Uuid,
        /// Protobuf only: position of the message type among all message types of the file,
        /// nested ones and map entries included, sorted by full name (AWS's rule; see
        /// `schema::select_message`). `None` for Avro and JSON, whose payload has no index.
        message_index: Option<u32>,
        /// Compression of everything after the UUID.
        compression: GlueCompression,
    },
    /// Confluent's wire format: `prefix` (from [`confluent_prefix`], made once per schema
    /// version), then the encoded bytes.
    Confluent {
        /// Magic byte, schema id and (Protobuf) message-index path.
        prefix: &'a [u8],
    },
}

/// What Confluent's serializers put before the encoded bytes: magic byte 0, the schema id (4
/// bytes, big-endian), and for Protobuf the message's index path as zigzag varints, its length
/// first, where the common path `[0]` (the file's first message) is the single byte 0.
pub fn confluent_prefix(schema_id: u32, message_path: Option<&[i32]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    out.push(CONFLUENT_MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    let zigzag = |n: i32| u64::from(((n << 1) ^ (n >> 31)) as u32);
    match message_path {
        None => {}
        Some([0]) => out.push(0),
        Some(path) => {
            prost::encoding::encode_varint(zigzag(i32::try_from(path.len()).unwrap_or(i32::MAX)), &mut out);
            for &i in path {
                prost::encoding::encode_varint(zigzag(i), &mut out);
            }
        }
    }
    out
}

impl Framing<'_> {
    /// Frames `message` (already encoded in the schema's format) into a record value.
    pub fn frame(&self, message: Vec<u8>) -> Vec<u8> {
        match *self {
            Framing::Raw => message,
            Framing::Confluent { prefix } => {
                let mut out = Vec::with_capacity(prefix.len() + message.len());
                out.extend_from_slice(prefix);
                out.extend_from_slice(&message);
                out
            }
            Framing::Glue { schema_version_id, message_index, compression } => {
                let body = match message_index {
                    Some(index) => {
                        let mut body = Vec::with_capacity(message.len() + 5);
                        prost::encoding::encode_varint(u64::from(index), &mut body);
                        body.extend_from_slice(&message);
                        body
                    }
                    None => message,
                };
                let (compression_byte, body) = match compression {
                    GlueCompression::None => (GLUE_COMPRESSION_NONE, body),
                    GlueCompression::Zlib => (GLUE_COMPRESSION_ZLIB, zlib(&body)),
                };
                let mut out = Vec::with_capacity(18 + body.len());
                out.push(GLUE_HEADER_VERSION);
                out.push(compression_byte);
                out.extend_from_slice(schema_version_id.as_bytes());
                out.extend_from_slice(&body);
                out
            }
        }
    }
}

/// zlib stream at zlib's default level (6), as `new java.util.zip.Deflater()` in AWS's serializer.
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut enc = ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 16), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    enc.write_all(data).expect("zlib into Vec");
    enc.finish().expect("zlib into Vec")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const ID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    #[test]
    fn confluent_prefixes_match_confluents_serializers() {
        // Avro and JSON Schema: magic byte and id only.
        assert_eq!(confluent_prefix(258, None), [0, 0, 0, 1, 2]);
        // Protobuf, the first message: one byte 0 stands for the path [0].
        assert_eq!(confluent_prefix(7, Some(&[0])), [0, 0, 0, 0, 7, 0]);
        // The second top-level message: length 1, index 1, both zigzag (2, 2).
        assert_eq!(confluent_prefix(7, Some(&[1])), [0, 0, 0, 0, 7, 2, 2]);
        // A nested message [0, 2]: length 2 (4), then 0 and 2 (0, 4).
        assert_eq!(confluent_prefix(7, Some(&[0, 2])), [0, 0, 0, 0, 7, 4, 0, 4]);
        // Index 64 zigzags to 128: a two-byte varint.
        assert_eq!(confluent_prefix(1, Some(&[64])), [0, 0, 0, 0, 1, 2, 0x80, 0x01]);
        let f = Framing::Confluent { prefix: &[0, 0, 0, 0, 7] };
        assert_eq!(f.frame(vec![0xaa]), [0, 0, 0, 0, 7, 0xaa]);
    }

    #[test]
    fn raw_is_identity() {
        assert_eq!(Framing::Raw.frame(vec![8, 1]), vec![8, 1]);
    }

    #[test]
    fn glue_uncompressed_matches_hand_built_bytes() {
        let f = Framing::Glue {
            schema_version_id: ID.parse().unwrap(),
            message_index: Some(300),
            compression: GlueCompression::None,
        };
        // 300 = 0b1_0010_1100 -> varint bytes 0xAC 0x02.
        let expected: Vec<u8> = [
            &[0x03, 0x00][..],
            &[0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0],
            &[0xac, 0x02],
            &[0x0a, 0x02, b'h', b'i'],
        ]
        .concat();
        assert_eq!(f.frame(vec![0x0a, 0x02, b'h', b'i']), expected);
    }

    #[test]
    fn glue_zlib_compresses_index_and_message() {
        let f = Framing::Glue {
            schema_version_id: ID.parse().unwrap(),
            message_index: Some(2),
            compression: GlueCompression::Zlib,
        };
        let out = f.frame(vec![0x08, 0x96, 0x01]);
        assert_eq!(&out[..2], &[0x03, 0x05]);
        assert_eq!(&out[2..18], Uuid::parse_str(ID).unwrap().as_bytes());
        let mut plain = Vec::new();
        flate2::read::ZlibDecoder::new(&out[18..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, vec![0x02, 0x08, 0x96, 0x01]);
    }

    #[test]
    fn glue_without_message_index_frames_avro_and_json_payloads_as_they_are() {
        let framing =
            |compression| Framing::Glue { schema_version_id: ID.parse().unwrap(), message_index: None, compression };
        let out = framing(GlueCompression::None).frame(vec![0x0a, 0x68, 0x69]);
        assert_eq!(out.len(), 18 + 3);
        assert_eq!(
            (&out[..2], &out[2..18], &out[18..]),
            (&[0x03, 0x00][..], Uuid::parse_str(ID).unwrap().as_bytes().as_slice(), &[0x0a, 0x68, 0x69][..])
        );
        let out = framing(GlueCompression::Zlib).frame(b"{\"a\":1}".to_vec());
        assert_eq!(&out[..2], &[0x03, 0x05]);
        let mut plain = Vec::new();
        flate2::read::ZlibDecoder::new(&out[18..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, b"{\"a\":1}");
    }

    /// `field` as a length-delimited Protobuf field.
    fn bytes_field(field: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![field << 3 | 2];
        prost::encoding::encode_varint(value.len() as u64, &mut out);
        out.extend_from_slice(value);
        out
    }

    /// A `gc.v1.Order` of the schema (id, labels map, items, address): 114 bytes of
    /// Protobuf with repeated keys and SKU prefixes, the kind of small record zlib shrinks.
    fn small_order() -> Vec<u8> {
        let label =
            |k: &str, v: &str| bytes_field(2, &[bytes_field(1, k.as_bytes()), bytes_field(2, v.as_bytes())].concat());
        let item = |sku: &str, qty: u8| bytes_field(3, &[bytes_field(1, sku.as_bytes()), vec![0x10, qty]].concat());
        [
            bytes_field(1, b"ord-77791"),
            label("coupon", "WELCOME"),
            label("customer", "cust-ec244f"),
            label("region", "us-east-1"),
            item("sku-82462", 1),
            item("sku-43265", 5),
            bytes_field(4, &bytes_field(1, b"Lyon")),
        ]
        .concat()
    }

    /// A record that compresses well: a text field of a few repeated words, `len` bytes in all.
    fn repetitive_message(len: usize) -> Vec<u8> {
        let words = ["warehouse-eu-west-1 ", "sku-0001 ", "status=shipped ", "carrier=dhl "];
        let text: String = words.iter().cycle().flat_map(|w| w.chars()).take(len - 2).collect();
        bytes_field(1, text.as_bytes())
    }

    #[test]
    fn glue_zlib_shrinks_small_compressible_records() {
        let framing =
            |compression| Framing::Glue { schema_version_id: ID.parse().unwrap(), message_index: Some(0), compression };
        let order = small_order();
        assert_eq!(order.len(), 114);
        for message in [order, repetitive_message(100), repetitive_message(130), repetitive_message(200)] {
            let len = message.len();
            let zipped = framing(GlueCompression::Zlib).frame(message.clone());
            let unzipped = framing(GlueCompression::None).frame(message);
            // A stored block (BTYPE 00) is the input plus 5 bytes of block header; zlib (as
            // java.util.zip.Deflater in AWS's serializer) codes these with fixed Huffman codes.
            let btype = (zipped[20] >> 1) & 0b11;
            assert_ne!(btype, 0b00, "{len}-byte message: stored block, record of {} bytes", zipped.len());
            assert!(
                zipped.len() < unzipped.len(),
                "{len}-byte message: zlib record of {} bytes, uncompressed {}",
                zipped.len(),
                unzipped.len()
            );
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&zipped[18..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, unzipped[18..]);
        }
    }
}
