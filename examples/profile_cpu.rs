//! Where a CPU-backend training step's time goes: the sample CNN's step as the training loop runs it, then each
//! op of that step timed on its own at the same shapes (fastest of `--reps` runs), largest first. Compare with
//! `scripts/pytorch_profile.py` (the same step under `torch.profiler`).
//!
//!     cargo run --release --example profile_cpu -- [--batch 64] [--steps 200] [--reps 50]

use std::time::Instant;

use anyhow::{Context, Result, bail};
use wgtrain::backend::{Backend, ConvGeom, PoolGeom};
use wgtrain::cpu::{CpuBackend, CpuTensor};
use wgtrain::nn::PARAMS;
use wgtrain::optim::{OptimConfig, SgdGroup, SgdHyper};
use wgtrain::schedule::Group;
use wgtrain::train::{HostSplit, Images, Session};

struct Args {
    batch: usize,
    steps: usize,
    reps: usize,
}

fn args() -> Result<Args> {
    let mut a = Args { batch: 64, steps: 200, reps: 50 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("usage: profile_cpu [--batch N] [--steps N] [--reps N]");
            std::process::exit(0);
        }
        let mut value = || -> Result<usize> {
            it.next().with_context(|| format!("{flag} needs a value"))?.parse().context("a positive integer")
        };
        match flag.as_str() {
            "--batch" => a.batch = value()?,
            "--steps" => a.steps = value()?,
            "--reps" => a.reps = value()?,
            other => bail!("unknown option {other}; expected --batch N, --steps N, --reps N"),
        }
    }
    if a.batch == 0 || a.steps == 0 || a.reps == 0 {
        bail!("--batch, --steps and --reps must be positive");
    }
    Ok(a)
}

fn filled(b: &mut CpuBackend, shape: &[usize], seed: u32) -> Result<CpuTensor> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect();
    Ok(b.tensor(&v, shape, "profile")?)
}

/// Fastest wall time of `op` over `reps` runs, in µs (the least disturbed by other work on shared cores).
fn min_us(reps: usize, op: &mut dyn FnMut() -> wgtrain::Result<()>) -> Result<f64> {
    op()?;
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            op().map(|()| s.elapsed().as_secs_f64() * 1e6)
        })
        .collect::<wgtrain::Result<_>>()?;
    t.sort_by(f64::total_cmp);
    Ok(t[0])
}

fn main() -> Result<()> {
    let a = args()?;
    let n = a.batch;
    let mut b = CpuBackend::new();

    // The step as the training loop runs it.
    let batches = 8;
    let images: Vec<f32> = (0..batches * n * 784).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
    let labels: Vec<u32> = (0..(batches * n) as u32).map(|i| i % 10).collect();
    let split = HostSplit { images: Images::Values(images), labels, shape: [1, 28, 28] };
    let weights = wgtrain::nn::init::pytorch_default(&PARAMS, 0);
    let (arch, optim) = (wgtrain::nn::sample_cnn(), OptimConfig::sgd(0.05, 0.9));
    let mut session = Session::new(&mut b, &arch, &weights, &optim, &split, n)?;
    let groups = [Group::sgd(0.05, 0.9)];
    for s in 0..10 {
        session.step(&mut b, &groups, (s % batches) * n, s % 256)?;
    }
    let t = Instant::now();
    for s in 0..a.steps {
        session.step(&mut b, &groups, (s % batches) * n, s % 256)?;
    }
    let step = t.elapsed().as_secs_f64() / a.steps as f64;
    println!(
        "batch {n}: {:.2} ms/step, {:.0} images/s ({} steps, {} threads)",
        step * 1e3,
        n as f64 / step,
        a.steps,
        rayon::current_num_threads()
    );

    // Each op of the step alone, at the sample CNN's shapes.
    let (u, two) = (ConvGeom::UNIT, PoolGeom::TWO);
    let x = filled(&mut b, &[n, 1, 28, 28], 1)?;
    let w1 = filled(&mut b, &[32, 1, 3, 3], 2)?;
    let b1 = filled(&mut b, &[32], 3)?;
    let w2 = filled(&mut b, &[64, 32, 3, 3], 4)?;
    let b2 = filled(&mut b, &[64], 5)?;
    let wf1 = filled(&mut b, &[128, 2304], 6)?;
    let bf1 = filled(&mut b, &[128], 7)?;
    let wf2 = filled(&mut b, &[10, 128], 8)?;
    let bf2 = filled(&mut b, &[10], 9)?;
    let mut a1 = b.zeros(&[n, 32, 26, 26], "a1")?;
    let mut a2 = b.zeros(&[n, 64, 24, 24], "a2")?;
    let mut p1 = b.zeros(&[n, 64, 12, 12], "p1")?;
    let mut p2 = b.zeros(&[n, 64, 6, 6], "p2")?;
    let mut h = b.zeros(&[n, 128], "h")?;
    let mut z = b.zeros(&[n, 10], "z")?;
    b.conv2d_relu(&x, &w1, &b1, u, &mut a1)?;
    b.conv2d_relu(&a1, &w2, &b2, u, &mut a2)?;
    b.max_pool2d(&a2, two, &mut p1)?;
    b.max_pool2d(&p1, two, &mut p2)?;
    b.linear_relu(&p2, &wf1, &bf1, &mut h)?;
    b.linear(&h, &wf2, &bf2, &mut z)?;
    let y = b.indices(&(0..n as u32).map(|i| i % 10).collect::<Vec<_>>(), "y")?;
    let (mut dz, mut losses) = (b.zeros(&[n, 10], "dz")?, b.zeros(&[1], "loss")?);
    let (mut dh, mut dp2, mut dp1) =
        (b.zeros(&[n, 128], "dh")?, b.zeros(&[n, 64, 6, 6], "dp2")?, b.zeros(&[n, 64, 12, 12], "dp1")?);
    let (mut da2, mut da1) = (b.zeros(&[n, 64, 24, 24], "da2")?, b.zeros(&[n, 32, 26, 26], "da1")?);
    let shapes: Vec<Vec<usize>> = vec![
        vec![32, 1, 3, 3],
        vec![32],
        vec![64, 32, 3, 3],
        vec![64],
        vec![128, 2304],
        vec![128],
        vec![10, 128],
        vec![10],
    ];
    let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let mut params = b.zeros_packed(&shapes, &names)?;
    let mut grads = b.zeros_packed(&shapes, &names)?;
    let mut bufs = b.zeros_packed(&shapes, &names)?;
    let mut norms = b.zeros(&[1], "norms")?;
    let mut hyper = SgdHyper::default();
    hyper.group[0] = SgdGroup { lr: 0.05, momentum: 0.9, ..Default::default() };
    let hyper_u = bytemuck::bytes_of(&hyper).to_vec();
    b.softmax_xent(&z, &y, &mut dz, &mut losses, 0)?;

    let r = a.reps;
    let mut rows: Vec<(&str, f64)> = Vec::new();
    let mut t = |name: &'static str, op: &mut dyn FnMut() -> wgtrain::Result<()>| -> Result<()> {
        rows.push((name, min_us(r, op)?));
        Ok(())
    };
    let mut b2_ = CpuBackend::new();
    let bk = &mut b2_;
    t("conv1 forward + ReLU", &mut || bk.conv2d_relu(&x, &w1, &b1, u, &mut a1))?;
    t("conv2 forward + ReLU", &mut || bk.conv2d_relu(&a1, &w2, &b2, u, &mut a2))?;
    t("pool1 forward", &mut || bk.max_pool2d(&a2, two, &mut p1))?;
    t("pool2 forward", &mut || bk.max_pool2d(&p1, two, &mut p2))?;
    t("fc1 forward + ReLU", &mut || bk.linear_relu(&p2, &wf1, &bf1, &mut h))?;
    t("fc2 forward", &mut || bk.linear(&h, &wf2, &bf2, &mut z))?;
    t("softmax-CE", &mut || bk.softmax_xent(&z, &y, &mut dz, &mut losses, 0))?;
    let (gw, gb) = grads.split_at_mut(7);
    t("fc2 backward weight", &mut || bk.linear_backward_weight(&h, &dz, &mut gw[6], &mut gb[0]))?;
    t("fc2 backward input + ReLU mask", &mut || bk.linear_backward_input_relu(&dz, &wf2, &h, &mut dh))?;
    let (gw, gb) = grads.split_at_mut(5);
    t("fc1 backward weight", &mut || bk.linear_backward_weight(&p2, &dh, &mut gw[4], &mut gb[0]))?;
    t("fc1 backward input", &mut || bk.linear_backward_input(&dh, &wf1, &mut dp2))?;
    t("pool2 backward", &mut || bk.max_pool2d_backward(&p1, &dp2, two, &mut dp1))?;
    t("pool1 backward + ReLU mask", &mut || bk.max_pool2d_backward_relu(&a2, &dp1, two, &mut da2))?;
    let (gw, gb) = grads.split_at_mut(3);
    t("conv2 backward weight", &mut || bk.conv2d_backward_weight(&a1, &da2, u, &mut gw[2], &mut gb[0]))?;
    t("conv2 backward input + ReLU mask", &mut || bk.conv2d_backward_input_relu(&da2, &w2, &a1, u, &mut da1))?;
    let (gw, gb) = grads.split_at_mut(1);
    t("conv1 backward weight", &mut || bk.conv2d_backward_weight(&x, &da1, u, &mut gw[0], &mut gb[0]))?;
    t("grad norm", &mut || bk.grad_norm(&grads, &mut norms, 0))?;
    t("SGD update (8 tensors)", &mut || bk.sgd_update(&mut params, &grads, &mut bufs, &[0; 8], &hyper_u, &norms))?;

    let total: f64 = rows.iter().map(|r| r.1).sum();
    println!("\nops alone (fastest of {r}): {:.2} ms in all; the step above: {:.2} ms", total / 1e3, step * 1e3);
    println!("{:>9}  {:>6}  op", "µs", "share");
    rows.sort_by(|x, y| y.1.total_cmp(&x.1));
    for (name, us) in rows {
        println!("{us:>9.1}  {:>5.1}%  {name}", 100.0 * us / total);
    }
    Ok(())
}
