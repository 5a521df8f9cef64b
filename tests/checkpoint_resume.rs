//! Checkpoints and exact resume on the CPU backend (issue 11): a run interrupted at any step — by `--steps` or
//! by `kill -9` — and resumed has the same metrics file and the same final weights, bit for bit, as the run
//! that was never interrupted; old checkpoints are pruned; nothing half-written is ever picked.

mod ckpt_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ckpt_common::{MODEL, checkpoints, metrics_of, wgtrain};
use rand::{RngExt, SeedableRng};

/// SGD with momentum, OneCycle cycling the momentum, two parameter groups, shuffling, 8 steps per epoch,
/// test evaluation after every epoch (so the metrics file has eval lines to keep or drop).
fn sgd_onecycle() -> Vec<String> {
    let v = [
        "--backend",
        "cpu",
        "--model",
        MODEL,
        "--limit-train",
        "256",
        "--batch-size",
        "32",
        "--limit-test",
        "100",
        "--seed",
        "7",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--momentum",
        "0.9",
        "--weight-decay",
        "0.001",
        "--param-groups",
        r#"[{"params":["*.bias"],"weight_decay":0,"lr":0.02}]"#,
        "--schedule",
        r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":30}"#,
    ];
    v.iter().map(|s| s.to_string()).collect()
}

/// AdamW (amsgrad, so all three state names) with cosine annealing and two parameter groups, shuffling.
fn adamw_cosine() -> Vec<String> {
    let v = [
        "--backend",
        "cpu",
        "--model",
        MODEL,
        "--limit-train",
        "640",
        "--batch-size",
        "32",
        "--no-eval",
        "--seed",
        "3",
        "--optimizer",
        "adamw",
        "--lr",
        "0.003",
        "--amsgrad",
        "--betas",
        "0.85,0.99",
        "--param-groups",
        r#"[{"params":["conv*"],"lr":0.001,"weight_decay":0}]"#,
        "--schedule",
        r#"{"kind":"cosine_annealing","t_max":60,"eta_min":0.0001}"#,
    ];
    v.iter().map(|s| s.to_string()).collect()
}

/// Run to `steps` without interruption; (metrics text, final weights bytes).
fn reference(base: &[String], steps: usize, dir: &Path) -> (String, Vec<u8>) {
    let (m, w) = (dir.join("ref.jsonl"), dir.join("ref.safetensors"));
    let out = wgtrain(base, &["--steps", &steps.to_string(), "--metrics", s(&m), "--save-weights", s(&w)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (metrics_of(m), std::fs::read(w).unwrap())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn steps_interruptions_resume_bit_for_bit_sgd_onecycle() {
    let dir = tempfile::tempdir().unwrap();
    let base = sgd_onecycle();
    let (ref_metrics, ref_weights) = reference(&base, 30, dir.path());
    let (ck, m, w) = (dir.path().join("ck"), dir.path().join("m.jsonl"), dir.path().join("w.safetensors"));
    // Stops inside an epoch (5, 13), exactly at an epoch's end (16) and one step after it (17); every run
    // checkpoints every 3 steps (the resumed ones by the saved option), after each epoch and at its end.
    let first = ["--steps", "5", "--checkpoint-dir", s(&ck), "--checkpoint-every", "3"];
    let out = wgtrain(&base, &[&first[..], &["--metrics", s(&m), "--save-weights", s(&w)]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for steps in ["13", "16", "17", "30"] {
        let out = wgtrain(&[], &["train", "--backend", "cpu", "--resume", s(&ck), "--steps", steps]);
        assert!(out.status.success(), "resume to {steps}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(checkpoints(&ck).last().copied(), Some(steps.parse().unwrap()), "the run's end is checkpointed");
    }
    assert_eq!(metrics_of(&m), ref_metrics, "metrics file (steps and eval lines)");
    assert!(std::fs::read(&w).unwrap() == ref_weights, "final weights differ from the uninterrupted run");
    // --keep-checkpoints defaults to 3.
    assert_eq!(checkpoints(&ck), vec![24, 27, 30]);
}

#[test]
fn epochs_extend_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    let base: Vec<String> = sgd_onecycle().into_iter().take(14).collect(); // model, data, seed; SGD lr 0.01
    let (ref_metrics, ref_weights) = {
        let (m, w) = (dir.path().join("ref.jsonl"), dir.path().join("ref.safetensors"));
        let out = wgtrain(&base, &["--epochs", "3", "--metrics", s(&m), "--save-weights", s(&w)]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (metrics_of(m), std::fs::read(w).unwrap())
    };
    let (ck, m, w) = (dir.path().join("ck"), dir.path().join("m.jsonl"), dir.path().join("w.safetensors"));
    let out =
        wgtrain(&base, &["--epochs", "1", "--checkpoint-dir", s(&ck), "--metrics", s(&m), "--save-weights", s(&w)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        wgtrain(&[], &["train", "--backend", "cpu", "--resume", s(&ck), "--epochs", "3", "--keep-checkpoints", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(metrics_of(&m), ref_metrics);
    assert!(std::fs::read(&w).unwrap() == ref_weights);
    assert_eq!(checkpoints(&ck), vec![24]);
}

/// Start the run (or resume it when a checkpoint exists), SIGKILL it after a seeded random delay, again and
/// again; then let it finish. Every resumed run cuts the metrics file back to its checkpoint.
#[test]
fn kill_9_at_random_moments_resumes_bit_for_bit_adamw_cosine() {
    let dir = tempfile::tempdir().unwrap();
    let base = adamw_cosine();
    let steps = 60; // 20 steps per epoch: two epoch boundaries
    let t0 = Instant::now();
    let (ref_metrics, ref_weights) = reference(&base, steps, dir.path());
    let full = t0.elapsed();
    let (ck, m, w) = (dir.path().join("ck"), dir.path().join("m.jsonl"), dir.path().join("w.safetensors"));
    let fresh: Vec<String> = [
        &["train".to_string()][..],
        &base[..],
        &["--steps", "60", "--checkpoint-dir", s(&ck), "--checkpoint-every", "4", "--keep-checkpoints", "2"]
            .map(String::from),
        &["--metrics", s(&m), "--save-weights", s(&w)].map(String::from),
    ]
    .concat();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (mut kills, mut resumed_kills, mut finished) = (0, 0, false);
    for attempt in 0..40 {
        let resuming = ck.is_dir() && !checkpoints(&ck).is_empty();
        let args: Vec<String> = if resuming {
            ["train", "--backend", "cpu", "--resume", s(&ck)].map(String::from).to_vec()
        } else {
            fresh.clone()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // After 12 kills, let it run to the end.
        let delay = if kills < 12 { full.mul_f64(rng.random_range(0.02..0.4)) } else { Duration::from_secs(3600) };
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if start.elapsed() >= delay {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        match status {
            Some(st) => {
                let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
                assert!(st.success(), "attempt {attempt}: {err}");
                finished = true;
                break;
            }
            None => {
                // Where it was killed: the newest checkpoint then (the metrics file may be ahead of it).
                eprintln!("kill {kills} after {delay:?}: checkpoints {:?}", ck.is_dir().then(|| checkpoints(&ck)));
                kills += 1;
                resumed_kills += usize::from(resuming);
            }
        }
    }
    assert!(finished, "the run never finished");
    assert!(resumed_kills >= 3, "too few kills hit resumed runs ({resumed_kills} of {kills}): the test proved little");
    let got = metrics_of(&m);
    assert_eq!(got.lines().count(), ref_metrics.lines().count(), "no step twice, none missing");
    assert_eq!(got, ref_metrics, "metrics after {kills} kills");
    assert!(std::fs::read(&w).unwrap() == ref_weights, "final weights after {kills} kills");
    assert!(checkpoints(&ck).len() <= 2);
    let leftovers: Vec<_> = std::fs::read_dir(&ck).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(leftovers.iter().all(|n| n.to_string_lossy().starts_with("step-")), "{leftovers:?}");
}
