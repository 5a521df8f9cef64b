//! Where the time of one training step goes on a GPU: throughput as the training loop runs it (steps
//! submitted back to back, one readback at the end), the host's share (recording + submit), the cost of
//! waiting after every step, and a kernel-by-kernel breakdown from GPU timestamps.
//!
//!     cargo run --release --example profile_step -- [--batch 128] [--steps 400] [--adapter TEXT]

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use wgtrain::backend::Backend;
use wgtrain::gpu::GpuBackend;
use wgtrain::nn::{Activations, DeviceData, PARAMS, SampleCnn, StepArgs};
use wgtrain::optim::{SgdGroup, SgdHyper};

struct Args {
    batch: usize,
    steps: usize,
    adapter: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args { batch: 128, steps: 400, adapter: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--batch" => a.batch = value()?.parse().context("--batch")?,
            "--steps" => a.steps = value()?.parse().context("--steps")?,
            "--adapter" => a.adapter = Some(value()?),
            other => bail!("unknown option {other}; expected --batch N, --steps N, --adapter TEXT"),
        }
    }
    if a.batch == 0 || a.steps == 0 {
        bail!("--batch and --steps must be positive");
    }
    Ok(a)
}

fn main() -> Result<()> {
    let a = args()?;
    let mut g = GpuBackend::new(a.adapter.as_deref(), true)?;
    println!("adapter: {}", wgtrain::gpu::describe(g.adapter_info()));
    let batches = 8;
    let images: Vec<f32> = (0..batches * a.batch * 784).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
    let labels: Vec<u32> = (0..(batches * a.batch) as u32).map(|i| i % 10).collect();
    let data = DeviceData::upload(&mut g, &images, &labels, "train")?;
    let mut model = SampleCnn::new(&mut g, &wgtrain::nn::init::pytorch_default(&PARAMS, 0))?;
    let mut act = Activations::new(&mut g, a.batch, true)?;
    let mut losses = g.zeros(&[256], "losses")?;
    // Reading any buffer waits for every earlier submit (one queue, in order).
    let sync = g.zeros(&[1], "sync")?;
    let mut step = 0usize;
    let mut one = |g: &mut GpuBackend, model: &mut SampleCnn<GpuBackend>| -> Result<()> {
        let mut sgd = SgdHyper::default();
        sgd.group[0] = SgdGroup { lr: 0.01, momentum: 0.9, init_momentum: u32::from(step == 0), ..Default::default() };
        let p = StepArgs { batch_offset: (step % batches) * a.batch, loss_slot: step % 256, sgd };
        step += 1;
        Ok(model.train_step(g, &mut act, &data, &mut losses, &p)?)
    };
    let t = Instant::now();
    one(&mut g, &mut model)?;
    g.read(&sync)?;
    println!("first step (builds pipelines): {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    for _ in 0..20 {
        one(&mut g, &mut model)?;
    }
    g.read(&sync)?;

    // As the training loop runs: submit back to back, read the losses once at the end.
    let (mut host, t) = (0.0, Instant::now());
    for _ in 0..a.steps {
        let h = Instant::now();
        one(&mut g, &mut model)?;
        host += h.elapsed().as_secs_f64();
    }
    g.read(&sync)?;
    let pipelined = t.elapsed().as_secs_f64() / a.steps as f64;
    // Waiting after every step (what a per-step loss readback would cost).
    let n_sync = (a.steps / 4).max(1);
    let t = Instant::now();
    for _ in 0..n_sync {
        one(&mut g, &mut model)?;
        g.read(&sync)?;
    }
    let synced = t.elapsed().as_secs_f64() / n_sync as f64;

    // Kernel by kernel, from timestamps written around every dispatch of 20 real steps.
    let profiled = 20;
    g.start_profiling()?;
    for _ in 0..profiled {
        one(&mut g, &mut model)?;
    }
    let times = g.take_profile()?;
    let mut by_label: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for t in &times {
        let e = by_label.entry(t.label.clone()).or_default();
        e.0 += t.nanos / profiled as f64;
        e.1 += 1;
    }
    let gpu_ns: f64 = by_label.values().map(|v| v.0).sum();
    let mut rows: Vec<_> = by_label.into_iter().collect();
    rows.sort_by(|x, y| y.1.0.total_cmp(&x.1.0));

    let ms = |s: f64| s * 1e3;
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
    println!("\n{:>9}  {:>6}  dispatch (kernel → output)", "µs/step", "share");
    for (label, (ns, count)) in rows {
        let per = count / profiled;
        let times = if per > 1 { format!(" ×{per}") } else { String::new() };
        println!("{:>9.1}  {:>5.1}%  {label}{times}", ns / 1e3, 100.0 * ns / gpu_ns);
    }
    Ok(())
}
