//! safetensors weights with PyTorch `state_dict` names.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use wgtrain::nn::weights::{load, load_any, save};

const FIXTURE: &str = "tests/fixtures/weights/public_sgd_momentum.init.safetensors";

/// The sample CNN's tensors, as in the CLI contract.
const CNN: [(&str, &[usize]); 8] = [
    ("conv1.weight", &[32, 1, 3, 3]),
    ("conv1.bias", &[32]),
    ("conv2.weight", &[64, 32, 3, 3]),
    ("conv2.bias", &[64]),
    ("fc1.weight", &[128, 2304]),
    ("fc1.bias", &[128]),
    ("fc2.weight", &[10, 128]),
    ("fc2.bias", &[10]),
];

fn err_msg<T: std::fmt::Debug>(r: wgtrain::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} should contain {p:?}");
    }
}

/// A safetensors file written by hand (header JSON + raw bytes), independent of `save`.
fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header.as_bytes());
    b.extend(data);
    b
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn save_load_round_trip_odd_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.safetensors");
    let a: Vec<f32> = (0..45 * 65).map(|i| (i as f32 * 0.37).sin() * 1e-3).collect();
    let b = vec![f32::MIN_POSITIVE, -0.0, 1.5e38, -7.0];
    let c = vec![42.0f32];
    save(&p, &[("z.weight", &[45, 65], &a), ("a.bias", &[4], &b), ("scalar", &[], &c)]).unwrap();
    let got = load(&p, &[("z.weight", &[45, 65]), ("a.bias", &[4]), ("scalar", &[])]).unwrap();
    assert_eq!(got.len(), 3);
    for (g, want) in got.iter().zip([&a, &b, &c]) {
        let (g, w): (Vec<u32>, Vec<u32>) =
            (g.iter().map(|v| v.to_bits()).collect(), want.iter().map(|v| v.to_bits()).collect());
        assert_eq!(g, w);
    }
    // Order follows `expected`, not the file.
    let got = load(&p, &[("scalar", &[]), ("a.bias", &[4]), ("z.weight", &[45, 65])]).unwrap();
    assert_eq!(got[0], c);
    let any = load_any(&p).unwrap();
    assert_eq!(any["a.bias"], (vec![4], b.iter().map(|&v| v as f64).collect::<Vec<_>>()));
}

#[test]
fn save_rejects_shape_data_mismatch_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.safetensors");
    assert_contains(&err_msg(save(&p, &[("x", &[2, 3], &[0.0; 5])])), &["x: shape [2,3]", "5 values"]);
    assert_contains(&err_msg(save(&p, &[("x", &[1], &[0.0]), ("x", &[1], &[1.0])])), &["x given twice"]);
    assert!(!p.exists());
}

#[test]
fn golden_init_loads() {
    let w = load(Path::new(FIXTURE), &CNN).unwrap();
    for ((name, shape), values) in CNN.iter().zip(&w) {
        assert_eq!(values.len(), shape.iter().product::<usize>(), "{name}");
        // PyTorch-default init is kaiming-uniform-like: bounded by 1/sqrt(fan_in), and not all zero.
        let fan_in: usize = if shape.len() > 1 { shape[1..].iter().product() } else { 0 };
        if fan_in > 0 {
            let bound = 1.0 / (fan_in as f32).sqrt();
            assert!(values.iter().all(|v| v.abs() <= bound * 1.0001), "{name}");
        }
        assert!(values.iter().any(|&v| v != 0.0), "{name}");
    }
    let any = load_any(Path::new(FIXTURE)).unwrap();
    assert_eq!(any.len(), 8);
    assert_eq!(any["fc2.bias"].1, w[7].iter().map(|&v| v as f64).collect::<Vec<_>>());
}

#[test]
fn save_then_reload_golden_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let w = load(Path::new(FIXTURE), &CNN).unwrap();
    let p = dir.path().join("again.safetensors");
    let tensors: Vec<(&str, &[usize], &[f32])> = CNN.iter().zip(&w).map(|(&(n, s), v)| (n, s, v.as_slice())).collect();
    save(&p, &tensors).unwrap();
    assert_eq!(load(&p, &CNN).unwrap(), w);
}

#[test]
fn missing_and_extra_tensors_are_listed() {
    let mut expected = CNN.to_vec();
    expected.retain(|(n, _)| !n.starts_with("fc2"));
    expected.push(("fc3.weight", &[10, 10]));
    let msg = err_msg(load(Path::new(FIXTURE), &expected));
    assert_contains(&msg, &[FIXTURE, "missing tensors: fc3.weight", "unexpected tensors: fc2.bias, fc2.weight"]);
}

#[test]
fn wrong_shape() {
    let mut expected = CNN.to_vec();
    expected[0].1 = &[32, 1, 5, 5];
    let msg = err_msg(load(Path::new(FIXTURE), &expected));
    assert_contains(&msg, &["conv1.weight has shape [32,1,3,3], expected [32,1,5,5]"]);
}

#[test]
fn wrong_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "f64.safetensors",
        &raw_file(
            r#"{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#,
            &[1.5f64.to_le_bytes(), (-2.0f64).to_le_bytes()].concat(),
        ),
    );
    assert_contains(&err_msg(load(&p, &[("w", &[2])])), &["f64.safetensors", "w is F64, expected F32"]);
    // load_any reads F64 files as they are.
    assert_eq!(load_any(&p).unwrap()["w"], (vec![2], vec![1.5, -2.0]));

    let p = write(
        dir.path(),
        "i32.safetensors",
        &raw_file(r#"{"w":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#, &[0, 0, 0, 0]),
    );
    assert_contains(&err_msg(load_any(&p)), &["w is I32, expected F32 or F64"]);
}

#[test]
fn non_finite_values_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nan.safetensors");
    save(&p, &[("w", &[3], &[0.0, f32::NAN, 1.0])]).unwrap();
    assert_contains(&err_msg(load(&p, &[("w", &[3])])), &["w holds a non-finite value NaN at flat index 1"]);
}

#[test]
fn garbage_truncated_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "garbage.safetensors", b"this is not a safetensors file at all");
    assert_contains(&err_msg(load(&p, &CNN)), &["garbage.safetensors", "not a valid safetensors file"]);

    let good = std::fs::read(FIXTURE).unwrap();
    for cut in [0, 4, 8, 100, good.len() / 2, good.len() - 1] {
        let p = write(dir.path(), "cut.safetensors", &good[..cut]);
        assert_contains(&err_msg(load(&p, &CNN)), &["cut.safetensors", "not a valid safetensors file"]);
        assert!(load_any(&p).is_err());
    }
    let mut long = good.clone();
    long.push(0);
    let p = write(dir.path(), "long.safetensors", &long);
    assert_contains(&err_msg(load(&p, &CNN)), &["not a valid safetensors file"]);

    assert_contains(&err_msg(load(&dir.path().join("absent.safetensors"), &CNN)), &["absent.safetensors"]);
}

#[test]
fn huge_offsets_are_an_error_not_a_panic() {
    // Offsets that tile correctly but sum to nearly usize::MAX, far beyond the file.
    let big = (1u64 << 61) - 1;
    let mut header = String::from("{");
    for i in 0..8u64 {
        let (s, e) = (i * big, (i + 1) * big);
        header += &format!(r#""t{i}":{{"dtype":"U8","shape":[{big}],"data_offsets":[{s},{e}]}},"#);
    }
    header.pop();
    header.push('}');
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "huge.safetensors", &raw_file(&header, &[]));
    assert_contains(&err_msg(load_any(&p)), &["huge.safetensors", "not a valid safetensors file", "beyond"]);
}

#[test]
fn failed_save_keeps_the_earlier_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/w.safetensors");
    assert_contains(&err_msg(save(&missing, &[("w", &[1], &[1.0])])), &["no/such/dir/w.safetensors"]);

    let p = dir.path().join("w.safetensors");
    save(&p, &[("w", &[2], &[1.0, 2.0])]).unwrap();
    let before = std::fs::read(&p).unwrap();
    // Invalid input fails before anything is written...
    assert!(save(&p, &[("w", &[3], &[1.0, 2.0])]).is_err());
    // ...and a write that fails (the target is now a non-empty directory) leaves nothing half-done.
    let blocked = dir.path().join("blocked");
    std::fs::create_dir_all(blocked.join("x")).unwrap();
    assert!(save(&blocked, &[("w", &[1], &[1.0])]).is_err());
    assert_eq!(std::fs::read(&p).unwrap(), before);
    assert_eq!(load(&p, &[("w", &[2])]).unwrap(), [vec![1.0, 2.0]]);
    let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["blocked", "w.safetensors"], "temporary files left behind");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_and_mutated_files_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..80),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "r.safetensors", &bytes);
        let _ = load(&p, &[("w", &[2])]);
        let _ = load_any(&p);
        // A valid small file with a few bytes changed and cut somewhere.
        let mut good = raw_file(r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8]);
        for (i, v) in flips { let i = i.index(good.len()); good[i] = v; }
        let good = &good[..cut.index(good.len() + 1)];
        let p = write(dir.path(), "m.safetensors", good);
        let _ = load(&p, &[("w", &[2])]);
        let _ = load_any(&p);
    }
}
