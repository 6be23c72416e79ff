//! Value wire formats: plain Protobuf, or AWS Glue SerDe framing so Glue deserializers can read it.

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

/// How to frame an encoded message.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// The Protobuf bytes as they are.
    Raw,
    /// `0x03`, compression byte, 16-byte schema version UUID, then (compressed or not)
    /// the message index as an unsigned varint followed by the Protobuf bytes.
    Glue {
        /// The schema version the bytes were encoded with.
        schema_version_id: Uuid,
        /// Position of the message type among all messages of the file, sorted by full name.
        message_index: u32,
        /// Compression of everything after the UUID.
        compression: GlueCompression,
    },
}

impl Framing {
    /// Frames `message` (already-encoded Protobuf) into a record value.
    pub fn frame(&self, message: Vec<u8>) -> Vec<u8> {
        match *self {
            Framing::Raw => message,
            Framing::Glue { schema_version_id, message_index, compression } => {
                let mut body = Vec::with_capacity(message.len() + 5);
                prost::encoding::encode_varint(u64::from(message_index), &mut body);
                body.extend_from_slice(&message);
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
    fn raw_is_identity() {
        assert_eq!(Framing::Raw.frame(vec![8, 1]), vec![8, 1]);
    }

    #[test]
    fn glue_uncompressed_matches_hand_built_bytes() {
        let f = Framing::Glue {
            schema_version_id: ID.parse().unwrap(),
            message_index: 300,
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
            message_index: 2,
            compression: GlueCompression::Zlib,
        };
        let out = f.frame(vec![0x08, 0x96, 0x01]);
        assert_eq!(&out[..2], &[0x03, 0x05]);
        assert_eq!(&out[2..18], Uuid::parse_str(ID).unwrap().as_bytes());
        let mut plain = Vec::new();
        flate2::read::ZlibDecoder::new(&out[18..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, vec![0x02, 0x08, 0x96, 0x01]);
    }
}
