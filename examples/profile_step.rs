//! Where the time of one training step goes on a GPU: throughput as the training loop runs it (steps
//! submitted back to back, one readback at the end), the host's share (recording + submit), the cost of
//! waiting after every step, a breakdown by kernel family and by dispatch from GPU timestamps, the
//! achieved FLOP/s of each GEMM-shaped dispatch, and how long it takes from opening the device to the first
//! step's loss being back on the host ("first step ready").
//!
//!     cargo run --release --example profile_step -- [--batch 128] [--steps 400] [--adapter TEXT] [--noop]
//!
//! `--noop` runs on wgpu's no-op adapter, where nothing executes: what is left is the host's share of a step
//! (recording, wgpu's validation and tracking, the submit), measurable on any machine — a CPU rasterizer would
//! otherwise compete for the cores. Kernel times and results are meaningless there and are not printed.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use wgtrain::backend::Backend;
use wgtrain::gpu::GpuBackend;
use wgtrain::nn::PARAMS;
use wgtrain::optim::OptimConfig;
use wgtrain::schedule::Group;
use wgtrain::train::{HostSplit, Images, Session};

struct Args {
    batch: usize,
    steps: usize,
    adapter: Option<String>,
    noop: bool,
}

fn args() -> Result<Args> {
    let mut a = Args { batch: 128, steps: 400, adapter: None, noop: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("usage: profile_step [--batch N] [--steps N] [--adapter TEXT] [--noop]");
            std::process::exit(0);
        }
        if flag == "--noop" {
            a.noop = true;
            continue;
        }
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--batch" => a.batch = value()?.parse().context("--batch")?,
            "--steps" => a.steps = value()?.parse().context("--steps")?,
            "--adapter" => a.adapter = Some(value()?),
            other => bail!("unknown option {other}; expected --batch N, --steps N, --adapter TEXT, --noop"),
        }
    }
    if a.batch == 0 || a.steps == 0 {
        bail!("--batch and --steps must be positive");
    }
    Ok(a)
}

fn main() -> Result<()> {
    let a = args()?;
    let setup = Instant::now();
    let mut g = if a.noop { GpuBackend::noop()? } else { GpuBackend::new(a.adapter.as_deref(), true)? };
    println!("adapter: {}", wgtrain::gpu::describe(g.adapter_info()));
    let batches = 8;
    let images: Vec<f32> = (0..batches * a.batch * 784).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
    let labels: Vec<u32> = (0..(batches * a.batch) as u32).map(|i| i % 10).collect();
    let split = HostSplit { images: Images::Values(images), labels, shape: [1, 28, 28] };
    let weights = wgtrain::nn::init::pytorch_default(&PARAMS, 0);
    let (arch, optim) = (wgtrain::nn::sample_cnn(), OptimConfig::sgd(0.01, 0.9));
    // Session::new also builds every pipeline (in parallel, through the driver's pipeline cache).
    let mut session = Session::new(&mut g, &arch, &weights, &optim, &split, a.batch)?;
    let setup_s = setup.elapsed().as_secs_f64();
    let groups = [Group::sgd(0.01, 0.9)];
    // Reading any buffer waits for every earlier submit (one queue, in order).
    let sync = g.zeros(&[1], "sync")?;
    let mut step = 0usize;
    let mut one = |g: &mut GpuBackend, session: &mut Session<GpuBackend>| -> Result<()> {
        let offset = (step % batches) * a.batch;
        step += 1;
        Ok(session.step(g, &groups, offset, step % 256)?)
    };
    let t = Instant::now();
    one(&mut g, &mut session)?;
    let first_loss = g.read(&session.losses)?[1]; // `one` used slot 1
    println!(
        "first step ready: {:.1} ms from opening the device to the first loss read back ({first_loss:.4}): \
         setup (device, uploads, pipelines) {:.1} ms, first step {:.1} ms",
        setup.elapsed().as_secs_f64() * 1e3,
        setup_s * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
    for _ in 0..20 {
        one(&mut g, &mut session)?;
    }
    g.read(&sync)?;

    // As the training loop runs: submit back to back, read the losses once at the end.
    let (mut host, t) = (0.0, Instant::now());
    for _ in 0..a.steps {
        let h = Instant::now();
        one(&mut g, &mut session)?;
        host += h.elapsed().as_secs_f64();
    }
    g.read(&sync)?;
    let pipelined = t.elapsed().as_secs_f64() / a.steps as f64;
    // Waiting after every step (what a per-step loss readback would cost).
    let n_sync = (a.steps / 4).max(1);
    let t = Instant::now();
    for _ in 0..n_sync {
        one(&mut g, &mut session)?;
        g.read(&sync)?;
    }
    let synced = t.elapsed().as_secs_f64() / n_sync as f64;
    let ms = |s: f64| s * 1e3;
    if a.noop {
        println!(
            "no-op adapter, batch {}: host recording + submit {:.1} µs/step",
            a.batch,
            1e3 * ms(host / a.steps as f64)
        );
        println!("  with a wait after every step: {:.1} µs/step", 1e3 * ms(synced));
        return Ok(());
    }

    // Kernel by kernel, from timestamps written around every dispatch of 20 real steps.
    let profiled = 20;
    g.start_profiling()?;
    for _ in 0..profiled {
        one(&mut g, &mut session)?;
    }
    let times = g.take_profile()?;
    let mut by_label: BTreeMap<String, (f64, usize, f64)> = BTreeMap::new();
    let mut by_family: BTreeMap<String, f64> = BTreeMap::new();
    for t in &times {
        let e = by_label.entry(t.label.clone()).or_default();
        e.0 += t.nanos / profiled as f64;
        e.1 += 1;
        e.2 += t.flops / profiled as f64;
        // The family is what the label starts with: `Conv2d/Forward+Relu → act.conv2` → `Conv2d`.
        let family = t.label.split(['/', ' ', '+', '[']).next().unwrap_or("?").to_string();
        *by_family.entry(family).or_default() += t.nanos / profiled as f64;
    }
    let gpu_ns: f64 = by_label.values().map(|v| v.0).sum();
    let mut rows: Vec<_> = by_label.into_iter().collect();
    rows.sort_by(|x, y| y.1.0.total_cmp(&x.1.0));

    let per_epoch = 60_000 / a.batch;
    println!("batch {}: {} dispatches per step", a.batch, times.len() / profiled);
    println!(
        "pipelined (as in training): {:.3} ms/step, {:.0} images/s, {:.2} s per 60k-image epoch ({per_epoch} steps)",
        ms(pipelined),
        a.batch as f64 / pipelined,
        pipelined * per_epoch as f64
    );
    println!("  host recording + submit: {:.3} ms/step", ms(host / a.steps as f64));
    println!("  sum of kernel times (timestamps): {:.3} ms/step", gpu_ns / 1e6);
    println!("waiting after every step: {:.3} ms/step ({:.0} images/s)", ms(synced), a.batch as f64 / synced);
    let mut families: Vec<_> = by_family.into_iter().collect();
    families.sort_by(|x, y| y.1.total_cmp(&x.1));
    println!("\n{:>9}  {:>6}  kernel family", "µs/step", "share");
    for (family, ns) in families {
        println!("{:>9.1}  {:>5.1}%  {family}", ns / 1e3, 100.0 * ns / gpu_ns);
    }
    println!("\n{:>9}  {:>6}  {:>9}  dispatch (kernel → output)", "µs/step", "share", "GFLOP/s");
    for (label, (ns, count, flops)) in rows {
        let per = count / profiled;
        let times = if per > 1 { format!(" ×{per}") } else { String::new() };
        // FLOPs are noted by the GEMM-shaped kernels only (conv2d, matmul; a split-K reduction has none).
        let rate = if flops > 0.0 { format!("{:.2}", flops / ns) } else { "-".into() };
        println!("{:>9.1}  {:>5.1}%  {rate:>9}  {label}{times}", ns / 1e3, 100.0 * ns / gpu_ns);
    }
    Ok(())
}
