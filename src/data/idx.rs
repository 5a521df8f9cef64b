//! Validated reader for IDX files of unsigned bytes (the MNIST format), raw or gzipped.
//!
//! Format (all integers big-endian u32):
//! - magic `0x0000TTDD`: two zero bytes, element type `TT` (only `0x08` = u8 is accepted), number of
//!   dimensions `DD`;
//! - `DD` dimension sizes, the first being the item count;
//! - the data: exactly `∏ dims` bytes, row-major, nothing after it.
//!
//! Images are `0x00000803` (count, rows, cols), labels `0x00000801` (count).
//!
//! Gzip is detected by its magic bytes `1f 8b`, never by the file name (a raw IDX file starts with `00 00`).
//! Everything the header promises is checked *before* the data buffer is allocated, and the decompressor is
//! never asked for more than `expected + 1` bytes, so a decompression bomb costs at most what the header
//! (itself bounded by the deflate ratio, see [`MAX_DEFLATE_RATIO`]) says the file holds.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::{Error, Result};

/// Magic of an IDX file of u8 images: count × rows × cols.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of u8 labels: count.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Deflate cannot expand data by more than about 1032:1 (258-byte matches coded in 2 bits); a header that
/// promises more than this many bytes per compressed byte is truncated for sure, and saying so up front
/// avoids allocating what it promises.
pub const MAX_DEFLATE_RATIO: u64 = 1032;

/// Parse an IDX u8 image file (raw or gzipped) into `(pixels, rows, cols)`; `pixels` holds
/// `count·rows·cols` bytes, image after image, each row-major. Rows and cols must be non-zero; any size is
/// accepted here (the MNIST loader checks 28×28).
pub fn parse_images(bytes_or_gz: &[u8], name: &Path) -> Result<(Vec<u8>, usize, usize)> {
    let (dims, data) = parse_idx(bytes_or_gz, name, IMAGES_MAGIC, "an IDX u8 image file")?;
    let (rows, cols) = (dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(err(name, format!("images of {rows}×{cols} pixels: rows and cols must be non-zero")));
    }
    Ok((data, rows, cols))
}

/// Parse an IDX u8 label file (raw or gzipped). Any u8 is a class index: the number of classes comes from
/// the data ([`crate::data::Mnist::classes`]), so Fashion-MNIST, KMNIST or a 2-class subset load unchanged.
pub fn parse_labels(bytes_or_gz: &[u8], name: &Path) -> Result<Vec<u8>> {
    let (_, labels) = parse_idx(bytes_or_gz, name, LABELS_MAGIC, "an IDX u8 label file")?;
    Ok(labels)
}

fn err(name: &Path, msg: impl Into<String>) -> Error {
    Error::Data { path: name.to_path_buf(), msg: msg.into() }
}

/// Parse the header, check it against `want` and the file size, then read exactly the data it promises.
/// Returns the dimensions (count first) and the data.
fn parse_idx(bytes: &[u8], name: &Path, want: u32, what: &str) -> Result<(Vec<usize>, Vec<u8>)> {
    if bytes.is_empty() {
        return Err(err(name, format!("empty file, expected {what}")));
    }
    let gz = bytes.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read + '_> = if gz { Box::new(MultiGzDecoder::new(bytes)) } else { Box::new(bytes) };
    let gz_note = if gz { " (after gzip decompression)" } else { "" };
    let io_err = |e: std::io::Error| err(name, format!("gzip data is corrupt or truncated: {e}"));

    let magic = read_u32(&mut reader).map_err(&io_err)?;
    let magic = magic.ok_or_else(|| err(name, format!("too short for an IDX header{gz_note}, expected {what}")))?;
    if magic != want {
        return Err(err(name, format!("wrong magic 0x{magic:08x}, expected 0x{want:08x} ({what}){}", describe(magic))));
    }
    let ndims = (want & 0xff) as usize;
    let mut dims = Vec::with_capacity(ndims);
    for d in 0..ndims {
        let v = read_u32(&mut reader).map_err(&io_err)?.ok_or_else(|| {
            err(name, format!("truncated header{gz_note}: it ends before dimension {} of {ndims}", d + 1))
        })?;
        dims.push(v as usize);
    }
    let header_len = 4 + 4 * ndims as u64;
    let shape = describe_shape(&dims);
    // u32 dims: the product of three fits in u128; anything over u64 cannot be in a file anyway.
    let expected = dims.iter().fold(1u128, |acc, &d| acc * d as u128);
    let expected = u64::try_from(expected).unwrap_or(u64::MAX);
    let promise = format!("header says {shape} ({expected} bytes)");

    if !gz {
        let follow = bytes.len() as u64 - header_len;
        if follow < expected {
            return Err(err(name, format!("truncated: {promise} but only {follow} bytes follow")));
        }
        if follow > expected {
            return Err(err(name, format!("trailing bytes: {promise} but {follow} bytes follow")));
        }
    } else if expected > (bytes.len() as u64).saturating_mul(MAX_DEFLATE_RATIO) {
        return Err(err(
            name,
            format!("truncated: {promise} but a gzip file of {} bytes cannot hold that much", bytes.len()),
        ));
    }
    let expected = usize::try_from(expected).map_err(|_| err(name, format!("{promise}: too large for memory")))?;

    // Reserve what the header promises (capped, so a lying gzip header costs at most 256 MiB up front;
    // beyond that the buffer grows only as real data arrives).
    let mut data = Vec::new();
    data.try_reserve_exact(expected.min(1 << 28))
        .map_err(|_| err(name, format!("{promise}: cannot allocate that much")))?;
    (&mut reader).take(expected as u64).read_to_end(&mut data).map_err(&io_err)?;
    if data.len() < expected {
        return Err(err(name, format!("truncated: {promise} but only {} bytes follow{gz_note}", data.len())));
    }
    // Reading past the end also makes the gzip decoder check its CRC and length trailer.
    let mut extra = [0u8; 1];
    if reader.read(&mut extra).map_err(&io_err)? != 0 {
        return Err(err(name, format!("trailing bytes: {promise} but more bytes follow{gz_note}")));
    }
    log::debug!("{}: {shape}{}", name.display(), if gz { " (gzip)" } else { "" });
    Ok((dims, data))
}

/// Read one big-endian u32; `Ok(None)` if the input ends first.
fn read_u32(r: &mut dyn Read) -> std::io::Result<Option<u32>> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(None),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(u32::from_be_bytes(buf)))
}

/// "60000 images of 28×28" / "60000 labels" / "N items of a×b×…".
fn describe_shape(dims: &[usize]) -> String {
    match dims {
        [n] => format!("{n} labels"),
        [n, r, c] => format!("{n} images of {r}×{c}"),
        [n, rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|d| d.to_string()).collect();
            format!("{n} items of {}", rest.join("×"))
        }
        [] => "a scalar".into(),
    }
}

/// A hint for a wrong magic: what the file seems to be instead.
fn describe(magic: u32) -> String {
    let (zero, ty, nd) = (magic >> 16, (magic >> 8) & 0xff, magic & 0xff);
    match (magic, zero, ty) {
        (IMAGES_MAGIC, ..) => "; this is an image file".into(),
        (LABELS_MAGIC, ..) => "; this is a label file".into(),
        (_, 0, 0x08) => format!("; this is a {nd}-d IDX u8 file"),
        (_, 0, 0x09 | 0x0b..=0x0e) => {
            format!("; this is a {nd}-d IDX file of element type 0x{ty:02x}, not u8")
        }
        _ => "; not an IDX file".into(),
    }
}
