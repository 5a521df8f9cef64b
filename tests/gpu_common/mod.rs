//! Shared by the GPU test files: get a GPU backend (software adapters allowed: CI runs on lavapipe) or
//! skip loudly; with `WGTRAIN_REQUIRE_GPU=1` (set by CI) a missing adapter fails the test instead.
#![allow(dead_code)]

use wgtrain::gpu::GpuBackend;

/// `Some(backend)`, or `None` after a loud message when no adapter exists and the env does not require one.
pub fn gpu_or_skip(test: &str) -> Option<GpuBackend> {
    let filter = std::env::var("WGTRAIN_TEST_ADAPTER").ok();
    match GpuBackend::new(filter.as_deref(), true) {
        Ok(g) => Some(g),
        Err(e) => {
            if std::env::var("WGTRAIN_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("{test}: WGTRAIN_REQUIRE_GPU=1 but no GPU adapter: {e}");
            }
            eprintln!(
                "\n*** SKIPPING GPU TEST {test}: no GPU adapter ({e}). Set WGTRAIN_REQUIRE_GPU=1 to make this a failure. ***\n"
            );
            None
        }
    }
}

/// Deterministic pseudo-random values in [-1, 1) (xorshift; tests need no statistical quality).
pub fn rand_vec(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `--backend gpu`, plus `--adapter` from `WGTRAIN_TEST_ADAPTER`: the arguments that replay a golden trajectory
/// on the GPU (None, after a loud message, when there is no adapter and none is required).
pub fn gpu_backend_args(test: &str) -> Option<Vec<String>> {
    gpu_or_skip(test)?;
    let mut args = vec!["--backend".to_string(), "gpu".to_string()];
    if let Ok(a) = std::env::var("WGTRAIN_TEST_ADAPTER") {
        args.extend(["--adapter".to_string(), a]);
    }
    Some(args)
}
