//! Helpers shared by the CLI tests: the real binary, quick CPU runs, device nodes in a temp dir.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod fuzz;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgtrain"));
    // Deterministic console: no terminal detection surprises, no driver logging.
    c.env_remove("RUST_LOG");
    c
}

pub fn wgtrain(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

/// A fast training run on the CPU: 64 images, 2 steps, no evaluation, plus `extra`.
pub fn quick_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["train", "--backend", "cpu", "--limit-train", "64", "--steps", "2", "--no-eval"];
    v.extend_from_slice(extra);
    v
}

#[track_caller]
pub fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "stderr should mention {needle:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[track_caller]
pub fn assert_ok(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A character device node like `/dev/null` (1,3) or `/dev/full` (1,7), made with `mknod` inside `dir`
/// (the tests run as root): the real `/dev` is never touched.
pub fn char_device(dir: &Path, name: &str, major: u32, minor: u32) -> PathBuf {
    let p = dir.join(name);
    let st = Command::new("mknod").arg(&p).args(["c", &major.to_string(), &minor.to_string()]).status().unwrap();
    assert!(st.success(), "mknod {} failed (these tests need root)", p.display());
    p
}

pub fn is_char_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).unwrap().file_type().is_char_device()
}

/// `path` as &str (temp paths are UTF-8 here).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Lines of a metrics file, parsed.
pub fn metrics_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
