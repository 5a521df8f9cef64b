//! MNIST IDX reader, `--data DIR` loader and the embedded subset.

use std::io::Write;
use std::path::Path;

use flate2::{Compression, write::GzEncoder};
use proptest::prelude::*;
use wgtrain::data::{self, Split, embedded, load_dir, parse_images, parse_labels};

fn images_idx(n: u32, rows: u32, cols: u32, fill: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x803u32, n, rows, cols] {
        b.extend(v.to_be_bytes());
    }
    b.extend((0..(n * rows * cols) as usize).map(fill));
    b
}

fn labels_idx(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(0x801u32.to_be_bytes());
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend(labels);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The error message (Display) of an expected failure.
fn err_msg<T: std::fmt::Debug>(r: wgtrain::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} should contain {p:?}");
    }
}

#[test]
fn round_trip_odd_sizes_raw_and_gz() {
    let name = Path::new("x.idx");
    for (n, rows, cols) in [(0, 1, 1), (1, 1, 1), (3, 5, 7), (7, 45, 65), (2, 28, 28)] {
        let raw = images_idx(n, rows, cols, |i| (i * 31 % 256) as u8);
        for bytes in [raw.clone(), gz(&raw)] {
            let (px, r, c) = parse_images(&bytes, name).unwrap();
            assert_eq!((r, c), (rows as usize, cols as usize));
            assert_eq!(px, raw[16..]);
        }
    }
    let labels: Vec<u8> = (0..1001).map(|i| (i * 7 % 10) as u8).collect();
    for bytes in [labels_idx(&labels), gz(&labels_idx(&labels))] {
        assert_eq!(parse_labels(&bytes, name).unwrap(), labels);
    }
}

#[test]
fn gzip_is_detected_by_magic_not_name() {
    let raw = images_idx(2, 3, 4, |i| i as u8);
    assert_eq!(parse_images(&gz(&raw), Path::new("plain-name")).unwrap().0, raw[16..]);
    assert_eq!(parse_images(&raw, Path::new("looks.gz")).unwrap().0, raw[16..]);
}

#[test]
fn wrong_magic_names_both_values() {
    let labels = labels_idx(&[1, 2, 3]);
    let msg = err_msg(parse_images(&labels, Path::new("data/train-images-idx3-ubyte.gz")));
    assert_contains(
        &msg,
        &["data/train-images-idx3-ubyte.gz", "wrong magic 0x00000801, expected 0x00000803 (an IDX u8 image file)"],
    );
    let msg = err_msg(parse_labels(&images_idx(1, 2, 2, |_| 0), Path::new("l")));
    assert_contains(&msg, &["wrong magic 0x00000803, expected 0x00000801"]);
    let msg = err_msg(parse_labels(b"GIF89a\0\0\0\0", Path::new("l")));
    assert_contains(&msg, &["wrong magic", "not an IDX file"]);
}

#[test]
fn truncated_and_trailing_bytes() {
    let name = Path::new("data/train-images-idx3-ubyte.gz");
    let full = images_idx(3, 28, 28, |i| i as u8);
    let short = &full[..16 + 1000];
    let expect = "truncated: header says 3 images of 28×28 (2352 bytes) but only 1000 bytes follow";
    assert_contains(&err_msg(parse_images(short, name)), &["data/train-images-idx3-ubyte.gz: ", expect]);
    assert_contains(&err_msg(parse_images(&gz(short), name)), &[expect]);

    let mut long = full.clone();
    long.push(0);
    assert_contains(&err_msg(parse_images(&long, name)), &["trailing bytes", "2352 bytes", "2353 bytes follow"]);
    assert_contains(&err_msg(parse_images(&gz(&long), name)), &["trailing bytes", "2352 bytes"]);

    // Header cut inside the dimensions.
    assert_contains(&err_msg(parse_images(&full[..10], name)), &["truncated header"]);
    assert_contains(&err_msg(parse_labels(&[0, 0, 8], name)), &["too short for an IDX header"]);
}

#[test]
fn empty_file() {
    let msg = err_msg(parse_labels(&[], Path::new("empty-labels")));
    assert_contains(&msg, &["empty-labels", "empty file"]);
    assert_contains(&err_msg(parse_images(&[], Path::new("e"))), &["empty file"]);
}

#[test]
fn zero_sized_images_are_rejected() {
    let msg = err_msg(parse_images(&images_idx(5, 0, 28, |_| 0), Path::new("z")));
    assert_contains(&msg, &["0×28", "non-zero"]);
}

#[test]
fn any_label_is_a_class_and_classes_come_from_the_data() {
    assert_eq!(parse_labels(&labels_idx(&[0, 9, 10, 3]), Path::new("labels")).unwrap(), vec![0, 9, 10, 3]);
    let dir = tempfile::tempdir().unwrap();
    let mut files = mnist_files(4, 2);
    files[1].1 = labels_idx(&[0, 1, 2, 11]);
    write_dir(dir.path(), &files);
    assert_eq!(load_dir(dir.path()).unwrap().classes(), 12);
}

#[test]
fn corrupt_gzip() {
    let raw = images_idx(4, 28, 28, |i| (i % 200) as u8);
    let good = gz(&raw);
    // A flipped byte in the deflate stream, and one in the CRC trailer: both must be caught.
    for at in [good.len() / 2, good.len() - 6] {
        let mut bad = good.clone();
        bad[at] ^= 0x55;
        let msg = err_msg(parse_images(&bad, Path::new("c.gz")));
        assert!(msg.starts_with("c.gz: "), "{msg}");
        assert!(msg.contains("gzip data is corrupt") || msg.contains("truncated") || msg.contains("trailing"), "{msg}");
    }
    // The gzip magic followed by garbage.
    assert_contains(
        &err_msg(parse_images(&[0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8], Path::new("g"))),
        &["gzip data is corrupt"],
    );
    // Cut off before the trailer.
    assert_contains(&err_msg(parse_images(&good[..good.len() - 4], Path::new("g"))), &["gzip data is corrupt"]);
}

#[test]
fn decompression_bomb_is_bounded_by_the_header() {
    // The header promises one 28×28 image but the stream inflates to 64 MiB of zeros.
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(&images_idx(1, 28, 28, |_| 0)).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert_contains(&err_msg(parse_images(&bomb, Path::new("bomb.gz"))), &["trailing bytes"]);

    // A tiny gzip whose header promises 4e9 × 65535 × 65535 bytes: rejected before allocating anything.
    let lie = gz(&[0, 0, 8, 3, 0xee, 0x6b, 0x28, 0, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff]);
    assert_contains(&err_msg(parse_images(&lie, Path::new("lie.gz"))), &["truncated", "cannot hold that much"]);
}

fn write_dir(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn mnist_files(n_train: u32, n_test: u32) -> Vec<(&'static str, Vec<u8>)> {
    let labels = |n: u32| -> Vec<u8> { (0..n).map(|i| (i % 10) as u8).collect() };
    vec![
        ("train-images-idx3-ubyte", images_idx(n_train, 28, 28, |i| i as u8)),
        ("train-labels-idx1-ubyte.gz", gz(&labels_idx(&labels(n_train)))),
        ("t10k-images-idx3-ubyte.gz", gz(&images_idx(n_test, 28, 28, |i| (i / 3) as u8))),
        ("t10k-labels-idx1-ubyte", labels_idx(&labels(n_test))),
    ]
}

#[test]
fn load_dir_mixed_raw_and_gz() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &mnist_files(13, 5));
    let m = load_dir(dir.path()).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (13, 5));
    assert_eq!((m.train.rows, m.train.cols, m.train.image_size()), (28, 28, 784));
    assert_eq!(m.train.pixels.len(), 13 * 784);
    assert_eq!(m.test.labels, [0, 1, 2, 3, 4]);
    assert_eq!(m.source, dir.path().display().to_string());
}

#[test]
fn load_dir_missing_file_lists_what_it_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = mnist_files(3, 3);
    files.remove(3);
    write_dir(dir.path(), &files);
    let msg = err_msg(load_dir(dir.path()));
    assert_contains(&msg, &["missing", "t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"]);
    assert!(!msg.contains("train-images"), "{msg}");

    let msg = err_msg(load_dir(&dir.path().join("nope")));
    assert_contains(&msg, &["nope", "not a directory"]);
}

#[test]
fn load_dir_count_mismatch_and_wrong_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = mnist_files(10, 4);
    files[1].1 = labels_idx(&[1; 9]);
    files[1].0 = "train-labels-idx1-ubyte";
    write_dir(dir.path(), &files);
    let msg = err_msg(load_dir(dir.path()));
    assert_contains(&msg, &["train-labels-idx1-ubyte", "9 labels", "10 images"]);

    let dir = tempfile::tempdir().unwrap();
    let mut files = mnist_files(2, 2);
    files[0].1 = images_idx(2, 27, 28, |_| 0);
    write_dir(dir.path(), &files);
    assert_contains(
        &err_msg(load_dir(dir.path())),
        &["t10k-images-idx3-ubyte", "28×28", "train-images-idx3-ubyte", "27×28"],
    );

    // Any size loads when both splits agree (Fashion-MNIST, KMNIST, or 32×32 data).
    let dir = tempfile::tempdir().unwrap();
    let mut files = mnist_files(2, 2);
    files[0].1 = images_idx(2, 32, 30, |_| 0);
    files[2].1 = images_idx(2, 32, 30, |_| 0);
    write_dir(dir.path(), &files);
    assert_eq!(load_dir(dir.path()).unwrap().image_shape(), [1, 32, 30]);
}

#[test]
fn embedded_subset_loads_and_is_balanced() {
    let m = embedded().unwrap();
    assert_eq!((m.train.len(), m.test.len()), (10_000, 2_000));
    assert_eq!(m.source, "embedded (10000 train / 2000 test)");
    for s in [&m.train, &m.test] {
        assert_eq!((s.rows, s.cols), (28, 28));
        assert_eq!(s.pixels.len(), s.len() * 784);
        let mut hist = [0usize; 10];
        for &l in &s.labels {
            hist[l as usize] += 1;
        }
        for (digit, &count) in hist.iter().enumerate() {
            assert!(count * 20 >= s.len(), "digit {digit}: {count} of {} (< 5%)", s.len());
        }
        // Real images: mostly background, some full ink.
        let zeros = s.pixels.iter().filter(|&&p| p == 0).count();
        assert!(zeros > s.pixels.len() / 2 && s.pixels.contains(&255));
    }
    // The first labels of the MNIST training and test files.
    assert_eq!(m.train.labels[..8], [5, 0, 4, 1, 9, 2, 1, 3]);
    assert_eq!(m.test.labels[..8], [7, 2, 1, 0, 4, 1, 4, 9]);
}

#[test]
fn normalized_matches_the_f32_formula() {
    let s = Split { pixels: vec![0, 255, 128, 1], labels: vec![3], rows: 2, cols: 2 };
    let f = |p: u8| ((p as f32 / 255.0) - 0.1307f32) / 0.3081f32;
    let n = s.normalized();
    for (i, &p) in s.pixels.iter().enumerate() {
        assert_eq!(n[i].to_bits(), f(p).to_bits(), "pixel {p}");
    }
    // The values PyTorch's float32 transform gives for 0 and 255.
    assert_eq!(n[0], -0.42421296f32);
    assert_eq!(n[1], 2.8214867f32);
    assert_eq!(s.labels_u32(), [3u32]);
    assert_eq!(data::normalize_pixel(255).to_bits(), f(255).to_bits());
}

#[test]
fn take_and_split_off_last() {
    let s = Split { pixels: (0..10u8).collect(), labels: vec![0, 1, 2, 3, 4], rows: 1, cols: 2 };
    let t = s.take(2);
    assert_eq!((t.labels.as_slice(), t.pixels.as_slice()), (&[0, 1][..], &[0, 1, 2, 3][..]));
    assert_eq!(s.take(99), s);
    let (a, b) = s.split_off_last(2);
    assert_eq!((a.labels.as_slice(), b.labels.as_slice()), (&[0, 1, 2][..], &[3, 4][..]));
    assert_eq!(b.pixels, [6, 7, 8, 9]);
    let (a, b) = s.split_off_last(9);
    assert!(a.is_empty() && b == s);
    let (a, b) = s.split_off_last(0);
    assert!(a == s && b.is_empty() && b.image_size() == 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), gzip in any::<bool>()) {
        let bytes = if gzip { gz(&bytes) } else { bytes };
        let _ = parse_images(&bytes, Path::new("r"));
        let _ = parse_labels(&bytes, Path::new("r"));
    }

    #[test]
    fn plausible_headers_never_panic(dims in proptest::collection::vec(any::<u32>(), 0..4), tail in 0usize..40, magic in 0usize..3) {
        let mut b = [0x803u32, 0x801, 0x80d][magic].to_be_bytes().to_vec();
        for d in dims { b.extend(d.to_be_bytes()); }
        b.extend(std::iter::repeat_n(1u8, tail));
        for bytes in [b.clone(), gz(&b)] {
            let _ = parse_images(&bytes, Path::new("h"));
            let _ = parse_labels(&bytes, Path::new("h"));
        }
    }

    #[test]
    fn every_truncation_is_an_error(cut_frac in 0.0f64..1.0, gzip in any::<bool>()) {
        let raw = images_idx(3, 5, 7, |i| (i * 13) as u8);
        let full = if gzip { gz(&raw) } else { raw };
        let cut = (full.len() as f64 * cut_frac) as usize;
        prop_assert!(parse_images(&full[..cut], Path::new("t")).is_err());
        prop_assert!(parse_images(&full, Path::new("t")).is_ok());
    }
}
