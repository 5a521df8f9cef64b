//! Shared by the checkpoint tests: a small conv model (fast on the CPU and on lavapipe) and helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// conv 3×3 (4 channels) → ReLU → maxpool 2 → flatten → linear: both op kinds, four parameters.
pub const MODEL: &str = r#"{"layers":[{"type":"conv2d","name":"conv","out_channels":4,"kernel_size":3},{"type":"relu"},{"type":"max_pool2d","kernel_size":2},{"type":"flatten"},{"type":"linear","name":"fc","out_features":10}]}"#;

/// `wgtrain train BASE… EXTRA…` (or `wgtrain EXTRA…` when `base` is empty).
pub fn wgtrain(base: &[String], extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgtrain"));
    if !base.is_empty() {
        cmd.arg("train").args(base);
    }
    cmd.args(extra).output().unwrap()
}

/// The steps of the complete checkpoints in `dir`, oldest first.
pub fn checkpoints(dir: &Path) -> Vec<usize> {
    let mut v: Vec<usize> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_prefix("step-").and_then(|n| n.parse().ok()))
        .collect();
    v.sort();
    v
}

/// A metrics file as the run's content: every line but the `run` line, without its wall-clock `time`.
pub fn metrics_of(path: impl AsRef<std::path::Path>) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["event"] == "run" {
            continue;
        }
        v.as_object_mut().unwrap().remove("time");
        out += &v.to_string();
        out.push('\n');
    }
    out
}
