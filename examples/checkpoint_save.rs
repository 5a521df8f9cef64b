//! What saving a checkpoint of the sample CNN costs on the CPU backend: read back the weights and the optimizer
//! state, serialize, write three files into a temporary directory, fsync them and the directory, rename, prune.
//! Prints the median and the range over `--saves` saves, for SGD with momentum (one state set) and AdamW with
//! amsgrad (three state sets).
//!
//!     cargo run --release --example checkpoint_save -- [--saves 30] [--dir DIR]
//!
//! `--dir` picks the file system (default: a temporary directory); the fsyncs make it the main cost.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use wgtrain::cpu::CpuBackend;
use wgtrain::nn::{ModelSpec, PARAMS};
use wgtrain::optim::{OptimConfig, OptimizerKind};
use wgtrain::schedule::{Group, Scheduler};
use wgtrain::train::checkpoint::{Checkpointer, RunInfo};
use wgtrain::train::{HostSplit, Images, LoopState, Session, Shuffler};

fn main() -> Result<()> {
    let (mut saves, mut dir) = (30usize, None::<PathBuf>);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("usage: checkpoint_save [--saves N] [--dir DIR]");
            std::process::exit(0);
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--saves" => saves = value.parse().context("--saves")?,
            "--dir" => dir = Some(value.into()),
            other => bail!("unknown option {other}; expected --saves N, --dir DIR"),
        }
    }
    let tmp = tempfile::tempdir_in(dir.unwrap_or_else(std::env::temp_dir))?;
    let mut b = CpuBackend::new();
    let batch = 64;
    let images: Vec<f32> = (0..batch * 784).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
    let split = HostSplit {
        images: Images::Values(images),
        labels: (0..batch as u32).map(|i| i % 10).collect(),
        shape: [1, 28, 28],
    };
    let weights = wgtrain::nn::init::pytorch_default(&PARAMS, 0);
    let arch = wgtrain::nn::sample_cnn();
    let bytes: usize = PARAMS.iter().map(|(_, s)| s.iter().product::<usize>() * 4).sum();
    println!("sample CNN: {} parameters, {:.2} MB of f32 weights", bytes / 4, bytes as f64 / 1e6);

    let mut adamw = OptimConfig::sgd(0.001, 0.0);
    adamw.kind = OptimizerKind::AdamW;
    adamw.amsgrad = true;
    for (name, optim, group) in [
        ("sgd (momentum_buffer)", OptimConfig::sgd(0.01, 0.9), Group::sgd(0.01, 0.9)),
        ("adamw amsgrad (exp_avg, exp_avg_sq, max_exp_avg_sq)", adamw, Group::adam(0.001, (0.9, 0.999))),
    ] {
        let mut session = Session::new(&mut b, &arch, &weights, &optim, &split, batch)?;
        session.step(&mut b, std::slice::from_ref(&group), 0, 0)?;
        let info = RunInfo {
            options: serde_json::json!({}),
            model: ModelSpec::preset("sample-cnn", 10).context("preset")?,
            params: PARAMS.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect(),
            steps_per_epoch: 1,
            backend: "cpu".into(),
        };
        let out = tmp.path().join(optim.kind.name());
        let mut ckpt = Checkpointer::new(&out, None, 3, info, false)?;
        let scheduler = Scheduler::fixed_groups(vec![group]);
        let shuffler = Shuffler::new(0, 60_000);
        for step in 1..=saves {
            ckpt.save(&mut b, &session, &scheduler, &LoopState::new(step, (0.0, 0), 1.0, &shuffler))?;
        }
        let mut ms: Vec<f64> = ckpt.save_secs.iter().map(|s| s * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "{name}: median {:.1} ms per checkpoint (min {:.1}, max {:.1}) over {saves} saves",
            ms[ms.len() / 2],
            ms[0],
            ms[ms.len() - 1]
        );
    }
    Ok(())
}
