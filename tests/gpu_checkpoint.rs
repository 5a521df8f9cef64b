//! Exact resume on one GPU adapter (lavapipe in CI): a run stopped by `--steps` inside an epoch and resumed
//! across the epoch boundary ends with the same metrics and weights, bit for bit, as the run never stopped.
//! Kept short: lavapipe is slow.

mod ckpt_common;
mod gpu_common;

use ckpt_common::{MODEL, checkpoints, metrics_of, wgtrain};

#[test]
fn gpu_resume_is_bit_identical_on_one_adapter() {
    let Some(g) = gpu_common::gpu_or_skip("gpu_resume_is_bit_identical_on_one_adapter") else { return };
    // The binary picks the same adapter the test found (WGTRAIN_TEST_ADAPTER or the best one).
    let adapter = g.adapter_info().name.clone();
    drop(g);
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let base: Vec<String> = [
        "--backend",
        "gpu",
        "--adapter",
        &adapter,
        "--model",
        MODEL,
        "--limit-train",
        "128",
        "--batch-size",
        "32",
        "--no-eval",
        "--optimizer",
        "adamw",
        "--param-groups",
        r#"[{"params":["*.bias"],"weight_decay":0}]"#,
        "--schedule",
        r#"{"kind":"cosine_annealing","t_max":6}"#,
    ]
    .map(String::from)
    .to_vec();
    let out = wgtrain(&base, &["--steps", "6", "--metrics", &p("ref.jsonl"), "--save-weights", &p("ref.st")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ck, m, w) = (p("ck"), p("m.jsonl"), p("w.st"));
    let out = wgtrain(&base, &["--steps", "3", "--checkpoint-dir", &ck, "--metrics", &m, "--save-weights", &w]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = wgtrain(&[], &["train", "--backend", "gpu", "--adapter", &adapter, "--resume", &ck, "--steps", "6"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(checkpoints(std::path::Path::new(&ck)), vec![3, 4, 6]);
    assert_eq!(metrics_of(&m), metrics_of(p("ref.jsonl")));
    assert!(std::fs::read(&w).unwrap() == std::fs::read(p("ref.st")).unwrap(), "final weights differ");
}
