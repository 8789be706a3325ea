//! The IDX format of (Fashion-)MNIST, plain or gzip-compressed.
//!
//! A file is a 4-byte magic `0x00 0x00 <type> <rank>` (type `0x08` = unsigned bytes), `rank`
//! big-endian `u32` dimensions, then the values row-major.

use std::io::Read;
use std::path::Path;

use crate::ZooError;

/// An unsigned-byte IDX array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions (`[n, 28, 28]` for images, `[n]` for labels).
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<u8>,
}

/// Largest decompressed IDX file accepted (Fashion-MNIST's largest is 47 MB).
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// Read an IDX file (gzip-compressed when its name ends in `.gz` or it starts with the gzip
/// magic), checking the header against the file's length.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, ZooError> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|e| ZooError::io(path, e))?;
    let corrupt = |why: String| ZooError::Corrupt {
        path: path.display().to_string(),
        why,
    };
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| corrupt(format!("bad gzip stream: {e}")))?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(corrupt(format!(
                "decompresses to more than {MAX_IDX_BYTES} bytes (a gzip bomb, not a dataset)"
            )));
        }
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(corrupt)
}

/// Parse IDX bytes.
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (bad magic number)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "IDX element type 0x{:02x} is not unsigned bytes (0x08)",
            bytes[2]
        ));
    }
    let rank = bytes[3] as usize;
    if rank == 0 || bytes.len() < 4 + 4 * rank {
        return Err(format!("IDX header of rank {rank} is truncated"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
    let body = &bytes[4 + 4 * rank..];
    match expected {
        Some(n) if n == body.len() => Ok(IdxArray {
            dims,
            data: body.to_vec(),
        }),
        Some(n) => Err(format!(
            "header says {dims:?} = {n} values but the file holds {}",
            body.len()
        )),
        None => Err(format!("header dimensions {dims:?} overflow")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend(d.to_be_bytes());
        }
        b.extend(body);
        b
    }

    #[test]
    fn parses_a_well_formed_array() {
        let a = parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_corrupted_headers() {
        let cases: [(Vec<u8>, &str); 5] = [
            (vec![1, 2, 3], "bad magic"),
            (
                vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
                "not unsigned bytes",
            ),
            (vec![0, 0, 8, 3, 0, 0, 0, 1], "truncated"),
            (idx(&[2, 3], &[1, 2, 3]), "holds 3"),
            (idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "overflow"),
        ];
        for (bytes, needle) in cases {
            let err = parse_idx(&bytes).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
