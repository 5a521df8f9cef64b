//! How long until the first training step's loss is on the host: device open → session set up (uploads, and
//! every pipeline built up front by `Backend::prepare`) → one step → loss read back. `--lazy` sets the session
//! up without `prepare`, so each pipeline is built at its first dispatch inside the step (as before pipelines
//! were built up front); `--build-only` times building every pipeline and nothing else. Set
//! `WGTRAIN_PIPELINE_CACHE=off` to measure a cold start (no pipeline cache file from an earlier run).
//!
//!     cargo run --release --example first_step_ready -- [--lazy | --build-only] [--batch N] [--adapter TEXT]

use std::time::Instant;

use anyhow::{Context, Result, bail};
use wgtrain::backend::Backend;
use wgtrain::gpu::GpuBackend;
use wgtrain::nn::{Model, PARAMS};
use wgtrain::optim::{OptimConfig, Optimizer};
use wgtrain::schedule::Group;
use wgtrain::train::{DeviceData, HostSplit, Images, LOSS_RING, Session};

fn main() -> Result<()> {
    let (mut lazy, mut build_only, mut batch, mut adapter) = (false, false, 8usize, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("usage: first_step_ready [--lazy] [--build-only] [--batch N] [--adapter TEXT]");
            std::process::exit(0);
        }
        match flag.as_str() {
            "--lazy" => lazy = true,
            "--build-only" => build_only = true,
            "--batch" => batch = it.next().context("--batch needs a value")?.parse().context("--batch")?,
            "--adapter" => adapter = Some(it.next().context("--adapter needs a value")?),
            other => bail!("unknown option {other}; expected --lazy, --build-only, --batch N, --adapter TEXT"),
        }
    }
    let t0 = Instant::now();
    let mut g = GpuBackend::new(adapter.as_deref(), true)?;
    let open = t0.elapsed().as_secs_f64();
    println!("adapter: {}", wgtrain::gpu::describe(g.adapter_info()));
    if build_only {
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
    let mut s = if lazy {
        // Session::new without its last call, Backend::prepare.
        let b = &mut g;
        let data = DeviceData::upload(b, &split, "train")?;
        let model = Model::new(b, &arch, &weights)?;
        let groups = optim.groups(&model.names())?;
        let optimizer = Optimizer::new(b, &optim, groups, &model.names(), &model.shapes())?;
        let act = model.activations(b, batch, true)?;
        let losses = b.zeros(&[LOSS_RING], "losses")?;
        let norms = b.zeros(&[LOSS_RING], "grad_norms")?;
        Session { model, optimizer, act, data, losses, norms }
    } else {
        let s = Session::new(&mut g, &arch, &weights, &optim, &split, batch)?;
        // `prepare` leaves a software adapter lazy; build everything here so both adapters are timed alike.
        g.build_all_pipelines()?;
        s
    };
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
        if lazy { "lazy pipelines" } else { "pipelines built up front" }
    );
    Ok(())
}
