//! How long until the first training step's loss is on the host: device open → session set up (uploads) → one
//! step → loss read back. By default the first step notes its dispatches and builds the pipelines they need
//! together, on several threads, when the step is submitted (only the pipelines the model uses). `--lazy`
//! builds each pipeline where it is first dispatched instead, one after another; `--up-front` builds every
//! pipeline (all the shaders implement) before the step; `--build-only` times building every pipeline and
//! nothing else. Set `WGTRAIN_PIPELINE_CACHE=off` to measure a cold start (no pipeline cache file from an
//! earlier run).
//!
//!     cargo run --release --example first_step_ready -- [--lazy | --up-front | --build-only] [--batch N] [--adapter TEXT]

use std::time::Instant;

use anyhow::{Context, Result, bail};
use wgtrain::backend::Backend;
use wgtrain::gpu::GpuBackend;
use wgtrain::nn::PARAMS;
use wgtrain::optim::OptimConfig;
use wgtrain::schedule::Group;
use wgtrain::train::{HostSplit, Images, Session};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Deferred,
    Lazy,
    UpFront,
    BuildOnly,
}

fn main() -> Result<()> {
    let (mut mode, mut batch, mut adapter) = (Mode::Deferred, 8usize, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("usage: first_step_ready [--lazy | --up-front | --build-only] [--batch N] [--adapter TEXT]");
            std::process::exit(0);
        }
        match flag.as_str() {
            "--lazy" => mode = Mode::Lazy,
            "--up-front" => mode = Mode::UpFront,
            "--build-only" => mode = Mode::BuildOnly,
            "--batch" => batch = it.next().context("--batch needs a value")?.parse().context("--batch")?,
            "--adapter" => adapter = Some(it.next().context("--adapter needs a value")?),
            other => {
                bail!("unknown option {other}; expected --lazy, --up-front, --build-only, --batch N, --adapter TEXT")
            }
        }
    }
    let t0 = Instant::now();
    let mut g = GpuBackend::new(adapter.as_deref(), true)?;
    let open = t0.elapsed().as_secs_f64();
    println!("adapter: {}", wgtrain::gpu::describe(g.adapter_info()));
    if mode == Mode::BuildOnly {
        let t = Instant::now();
        let n = g.build_all_pipelines()?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        println!("built {n} pipelines in {:.3} s on {threads} threads", t.elapsed().as_secs_f64());
        return Ok(());
    }
    let images: Vec<f32> = (0..batch * 784).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let split = HostSplit { images: Images::Values(images), labels, shape: [1, 28, 28] };
    let weights = wgtrain::nn::init::pytorch_default(&PARAMS, 0);
    let (arch, optim) = (wgtrain::nn::sample_cnn(), OptimConfig::sgd(0.01, 0.9));
    let mut s = Session::new(&mut g, &arch, &weights, &optim, &split, batch)?;
    match mode {
        Mode::Lazy => g.set_defer_builds(false),
        Mode::UpFront => {
            g.build_all_pipelines()?;
        }
        Mode::Deferred | Mode::BuildOnly => {}
    }
    let setup = t0.elapsed().as_secs_f64();
    let groups = [Group::sgd(0.01, 0.9)];
    s.step(&mut g, &groups, 0, 0)?;
    let loss = g.read(&s.losses)?[0];
    let ready = t0.elapsed().as_secs_f64();
    let t = Instant::now();
    s.step(&mut g, &groups, 0, 1)?;
    g.read(&s.losses)?;
    let second = t.elapsed().as_secs_f64();
    println!(
        "{}: first step ready {ready:.3} s (open {open:.3} s, setup {setup:.3} s, first loss {loss:.5}); \
         second step {second:.3} s",
        match mode {
            Mode::Lazy => "each pipeline at its first dispatch",
            Mode::UpFront => "every pipeline up front",
            _ => "the step's pipelines together, deferred",
        }
    );
    Ok(())
}
