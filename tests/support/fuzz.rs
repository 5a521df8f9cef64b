//! A small seeded fuzzer for parsers, run inside `cargo test`: random inputs and mutations of valid ones
//! (bit flips, interesting integers at random offsets, truncation, growth, chunk moves, splices), each fed to a
//! check that must return a clean error or succeed, never panic.
//!
//! To cover a new parser, write a `check(&[u8]) -> Result<(), wgtrain::Error>` and call [`fuzz`] with a few
//! valid inputs as seeds; [`fuzz_json`] adds structure-aware mutations for JSON formats.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Outcome counts of one fuzz run.
#[derive(Debug, Default)]
pub struct Stats {
    pub ok: usize,
    pub errors: usize,
}

/// `cargo test` runs the fixed seeds. To search further, set `WGTRAIN_FUZZ_SEED=N` (another seed) and/or
/// `WGTRAIN_FUZZ_SCALE=K` (K times the iterations); a failure prints the input that caused it.
fn explore(iterations: usize, seed: u64) -> (usize, u64) {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let scale = env("WGTRAIN_FUZZ_SCALE").unwrap_or(1).max(1) as usize;
    (iterations * scale, env("WGTRAIN_FUZZ_SEED").map_or(seed, |s| s ^ seed))
}

/// Values that break size arithmetic: zero, one, sign bits, all ones, and near the limits.
const INTERESTING_U32: [u32; 9] = [0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff_ffff, 0x8000_0000, u32::MAX];

pub fn random_bytes(rng: &mut ChaCha8Rng, max_len: usize) -> Vec<u8> {
    let n = rng.random_range(0..=max_len);
    (0..n).map(|_| rng.random::<u8>()).collect()
}

/// One random mutation of `input` (`other` is a second seed for splicing).
pub fn mutate_once(rng: &mut ChaCha8Rng, input: &mut Vec<u8>, other: &[u8]) {
    let len = input.len();
    let at = |rng: &mut ChaCha8Rng, n: usize| if n == 0 { 0 } else { rng.random_range(0..n) };
    match rng.random_range(0..9) {
        0 if len > 0 => {
            let i = at(rng, len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = at(rng, len);
            input[i] = [0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'-'][rng.random_range(0..7)];
        }
        // An interesting u32, big- (IDX) or little-endian (safetensors), usually in the header.
        2 if len >= 4 => {
            let v = INTERESTING_U32[rng.random_range(0..INTERESTING_U32.len())];
            let i = at(rng, (len - 3).min(32));
            let b = if rng.random() { v.to_be_bytes() } else { v.to_le_bytes() };
            input[i..i + 4].copy_from_slice(&b);
        }
        3 => input.truncate(at(rng, len + 1)),
        4 => input.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
        5 if len > 1 => {
            let (a, b) = (at(rng, len), at(rng, len));
            input.drain(a.min(b)..a.max(b));
        }
        6 if len > 1 => {
            let (a, b) = (at(rng, len), at(rng, len));
            let chunk = input[a.min(b)..a.max(b)].to_vec();
            let i = at(rng, len);
            input.splice(i..i, chunk);
        }
        7 if !other.is_empty() => {
            let cut = at(rng, len + 1);
            let from = at(rng, other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        // An 8-byte little-endian length (safetensors' header size) set to something interesting.
        _ if len >= 8 => {
            let v = [0u64, 1, 7, u64::MAX, 1 << 40, len as u64, len as u64 - 7][rng.random_range(0..7)];
            input[..8].copy_from_slice(&v.to_le_bytes());
        }
        _ => input.push(rng.random()),
    }
}

/// Run `check` on `iterations` inputs derived from `seeds` with a fixed `seed`. Panics (failing the test)
/// if `check` panics or returns an error that is not clean (empty message, or not exit status 2: bad input).
/// Every unmutated seed must pass, so the harness is known to reach the success path too.
pub fn fuzz(
    name: &str,
    seeds: &[Vec<u8>],
    iterations: usize,
    seed: u64,
    check: impl Fn(&[u8]) -> Result<(), wgtrain::Error>,
) -> Stats {
    let (iterations, seed) = explore(iterations, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (i, s) in seeds.iter().enumerate() {
        if let Err(e) = check(s) {
            panic!("{name}: seed {i} should parse: {e}");
        }
    }
    let inputs = (0..iterations).map(|i| {
        if i % 8 == 0 {
            random_bytes(&mut rng, 256)
        } else {
            let mut v = seeds[rng.random_range(0..seeds.len())].clone();
            let other = &seeds[rng.random_range(0..seeds.len())];
            for _ in 0..rng.random_range(1..=4) {
                mutate_once(&mut rng, &mut v, other);
            }
            v
        }
    });
    run_all(name, inputs, &check)
}

/// [`fuzz`] for JSON formats: half the inputs are byte mutations, half are structural mutations of the
/// parsed seeds (a value replaced by an extreme number, another type, or a removed field).
pub fn fuzz_json(
    name: &str,
    seeds: &[&str],
    iterations: usize,
    seed: u64,
    check: impl Fn(&[u8]) -> Result<(), wgtrain::Error>,
) -> Stats {
    let (iterations, seed) = explore(iterations, seed);
    let bytes: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut stats = fuzz(name, &bytes, iterations / 2, seed, &check);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9);
    let values: Vec<Value> = seeds.iter().map(|s| serde_json::from_str(s).expect("seed is JSON")).collect();
    let inputs = (0..iterations - iterations / 2).map(|_| {
        let mut v = values[rng.random_range(0..values.len())].clone();
        for _ in 0..rng.random_range(1..=3) {
            mutate_json(&mut rng, &mut v);
        }
        v.to_string().into_bytes()
    });
    let more = run_all(name, inputs, &check);
    stats.ok += more.ok;
    stats.errors += more.errors;
    stats
}

fn extreme_value(rng: &mut ChaCha8Rng) -> Value {
    let pick = rng.random_range(0..12);
    match pick {
        0 => Value::from(0),
        1 => Value::from(-1),
        2 => Value::from(u64::MAX),
        3 => Value::from(i64::MIN),
        4 => serde_json::json!(1e308),
        5 => serde_json::json!(-1e-308),
        6 => serde_json::json!(0.5),
        7 => Value::Null,
        8 => Value::from("cos"),
        9 => serde_json::json!([]),
        10 => serde_json::json!({}),
        _ => Value::from(true),
    }
}

/// Replace, remove or add one node somewhere in `v`.
fn mutate_json(rng: &mut ChaCha8Rng, v: &mut Value) {
    match v {
        Value::Object(map) if !map.is_empty() && rng.random_range(0..4) != 0 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let k = &keys[rng.random_range(0..keys.len())];
            match rng.random_range(0..5) {
                0 => {
                    map.remove(k);
                }
                1 => {
                    map.insert(format!("{k}_x"), extreme_value(rng));
                }
                _ => mutate_json(rng, map.get_mut(k).expect("key exists")),
            }
        }
        Value::Array(items) if !items.is_empty() && rng.random_range(0..4) != 0 => {
            let i = rng.random_range(0..items.len());
            match rng.random_range(0..4) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let copy = items[i].clone();
                    items.push(copy);
                }
                _ => mutate_json(rng, &mut items[i]),
            }
        }
        _ => *v = extreme_value(rng),
    }
}

fn run_all(
    name: &str,
    inputs: impl Iterator<Item = Vec<u8>>,
    check: &impl Fn(&[u8]) -> Result<(), wgtrain::Error>,
) -> Stats {
    let mut stats = Stats::default();
    for (i, input) in inputs.enumerate() {
        let shown = String::from_utf8_lossy(&input[..input.len().min(160)]).into_owned();
        match catch_unwind(AssertUnwindSafe(|| check(&input))) {
            Err(_) => panic!("{name}: input {i} panicked ({} bytes): {shown:?}", input.len()),
            Ok(Ok(())) => stats.ok += 1,
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(!msg.trim().is_empty(), "{name}: input {i}: empty error message");
                assert_eq!(e.exit_code(), 2, "{name}: input {i}: {msg} should be a bad-input error: {shown:?}");
                stats.errors += 1;
            }
        }
    }
    stats
}
