//! Record headers: (name, value) pairs as the C ABI passes them (`tg_header`), order and
//! duplicates kept; names are UTF-8 text, values any bytes.

use crate::config::Limits;
use crate::error::{Error, Result};

/// One record header: its name and its value's bytes.
pub type Header = (String, Vec<u8>);

/// Record headers in the order the client gave them.
pub type Headers = Vec<Header>;

/// Header number `i` (from 0) from its name and value bytes: the name must be UTF-8 (a 400 naming
/// the header otherwise); the value is kept as it is.
pub fn header(i: usize, name: &[u8], value: &[u8]) -> Result<Header> {
    let name = std::str::from_utf8(name).map_err(|e| {
        Error::bad_request(format!("headers: header #{} name: not valid UTF-8 (at byte {})", i + 1, e.valid_up_to()))
    })?;
    Ok((name.to_owned(), value.to_vec()))
}

/// Checks header count, names and total size against the limits.
pub fn check(headers: &[Header], limits: &Limits) -> Result<()> {
    if headers.len() > limits.max_headers {
        return Err(Error::too_large(format!(
            "headers: {} headers, the limit is {}",
            headers.len(),
            limits.max_headers
        )));
    }
    let mut total = 0usize;
    for (i, (name, value)) in headers.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::bad_request(format!("headers: header #{} has an empty name", i + 1)));
        }
        total += name.len() + value.len();
    }
    if total > limits.max_header_bytes {
        return Err(Error::too_large(format!(
            "headers: {total} bytes in names and values, the limit is {}",
            limits.max_header_bytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &[u8]) -> Header {
        (name.to_owned(), value.to_vec())
    }

    #[test]
    fn values_are_bytes_names_are_text() {
        assert_eq!(header(0, b"bin", &[0x00, 0xff, 0x80]).unwrap(), h("bin", &[0x00, 0xff, 0x80]));
        assert_eq!(header(0, b"e", b"").unwrap(), h("e", b""));
        let e = header(2, b"a\xffb", b"v").unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        assert_eq!(e.message, "headers: header #3 name: not valid UTF-8 (at byte 1)");
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits { max_headers: 2, max_header_bytes: 8, ..Limits::default() };
        let two = vec![h("a", b"b"), h("c", b"d")];
        check(&two, &limits).unwrap();
        let three = [two.clone(), vec![h("e", b"f")]].concat();
        assert_eq!(check(&three, &limits).unwrap_err().status, crate::Status::PayloadTooLarge);
        let big = vec![h("name", b"value")];
        assert_eq!(check(&big, &limits).unwrap_err().status, crate::Status::PayloadTooLarge);
        let empty = vec![h("", b"v")];
        let e = check(&empty, &limits).unwrap_err();
        assert!(e.status == crate::Status::BadRequest && e.message.contains("empty name"));
        // Binary values count by their bytes.
        check(&[h("b", &[0, 0xff, 0x80, 0, 0, 0, 0])], &limits).unwrap();
        assert!(check(&[h("b", &[0xff; 8])], &limits).is_err());
    }
}
