//! stdout and stderr: a closed pipe ends quietly (status 0), a full stream is an error (status 1), never a
//! panic (status 101), in every subcommand (`lr-find | head -3` and a sweep into a full stdout once panicked);
//! `schedule … | head` stops at once; `sweep -q` prints no progress.

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

const SCHEDULE: [&str; 5] = ["schedule", "--schedule", r#"{"kind":"step","step_size":2}"#, "--steps", "50"];
const COMPARE: [&str; 7] = ["compare", "--backends", "cpu", "--limit-train", "64", "--steps", "2"];
const LR_FIND: [&str; 9] = ["lr-find", "--backend", "cpu", "--limit-train", "64", "--steps", "8", "--batch-size", "8"];
const SWEEP: [&str; 11] = [
    "sweep",
    "--backend",
    "cpu",
    "--limit-train",
    "64",
    "--steps",
    "2",
    "--no-eval",
    "--grid",
    r#"{"lr": [0.01, 0.1]}"#,
    "-q",
];

/// One quick invocation of each subcommand (plus `--help`, which clap prints).
fn every_subcommand(weights: &str) -> Vec<Vec<&str>> {
    vec![
        quick_args(&["--save-weights", weights]),
        SCHEDULE.to_vec(),
        COMPARE.to_vec(),
        LR_FIND.to_vec(),
        SWEEP.to_vec(),
        vec!["devices"],
        vec!["train", "--help"],
    ]
}

fn wait_quietly(child: Child) -> std::process::Output {
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    for args in every_subcommand(s(&w)) {
        let mut child = bin().args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // the reader goes away before anything is written
        let out = wait_quietly(child);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("error"), "{args:?}: {err}");
    }
    assert!(w.is_file(), "the run is saved before its summary line is printed");
}

#[test]
fn a_full_stdout_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let full = char_device(dir.path(), "full", 1, 7);
    let w = dir.path().join("w.safetensors");
    for args in every_subcommand(s(&w)) {
        let out = bin().args(&args).stdout(File::options().write(true).open(&full).unwrap()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if args != ["train", "--help"] {
            assert!(err.contains("stdout") && err.contains("No space left"), "{args:?}: {err}");
        }
    }
    assert!(w.is_file(), "a full stdout does not lose the trained weights");
}

#[test]
fn a_failing_stderr_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let full = char_device(dir.path(), "full", 1, 7);
    let to_full = || File::options().write(true).open(&full).unwrap();
    // The error path itself: the message cannot be written, the exit status still says "bad usage".
    let out = bin().args(quick_args(&["--batch-size", "0"])).stderr(to_full()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A run whose progress lines cannot be written finishes and saves, then reports failure by status.
    let w = dir.path().join("w.safetensors");
    let out = bin().args(quick_args(&["--save-weights", s(&w)])).stderr(to_full()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(w.is_file() && String::from_utf8_lossy(&out.stdout).contains("trained 2 steps"));
    // A closed stderr (nobody reading the progress) is not an error.
    let mut child = bin().args(quick_args(&[])).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stderr.take());
    let out = wait_quietly(child);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("trained 2 steps"));
}

#[test]
fn schedule_into_head_stops_promptly() {
    let mut child = bin()
        .args(["schedule", "--schedule", r#"{"kind":"step","step_size":1000}"#, "--steps", "1000000000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "step,lr,momentum");
    assert!(lines.next().unwrap().unwrap().starts_with("0,"));
    drop(lines); // `head -2` exits
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("schedule kept running for 20 s after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_quiet_sweep_prints_its_table_and_no_progress() {
    let out = bin().args(SWEEP).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("rank") && stdout.lines().count() == 3, "{stdout}");
    assert!(!stderr.contains("[1/2]"), "-q still printed progress: {stderr}");
}
