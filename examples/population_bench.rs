//! Trials per hour with population training (`sweep --parallel P`): the sample CNN at batch 128, P members
//! (SGD, each its own lr) trained in one step, for P = 1, 2, 4, 8, 16. Prints ms per population step, dispatches
//! per step (GPU), and trials per hour where a trial is `--trial-steps` optimizer steps (default 468: one MNIST
//! epoch at batch 128).
//!
//!     cargo run --release --example population_bench -- [--backend cpu|gpu] [--steps 20] [--members 1,2,4,8,16]
//!         [--batch 128] [--trial-steps 468] [--adapter TEXT]
//!
//! On a software adapter (lavapipe) the figures only show the machinery works, not speed.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use wgtrain::backend::Backend;
use wgtrain::cpu::CpuBackend;
use wgtrain::gpu::GpuBackend;
use wgtrain::optim::OptimConfig;
use wgtrain::schedule::Group;
use wgtrain::train::population::Population;
use wgtrain::train::{HostSplit, Images, LOSS_RING};

struct Args {
    gpu: bool,
    steps: usize,
    members: Vec<usize>,
    batch: usize,
    trial_steps: usize,
    adapter: Option<String>,
}

fn args() -> Result<Args> {
    let mut a =
        Args { gpu: true, steps: 20, members: vec![1, 2, 4, 8, 16], batch: 128, trial_steps: 468, adapter: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!(
                "usage: population_bench [--backend cpu|gpu] [--steps N] [--members P,P,…] [--batch N] [--trial-steps N] [--adapter TEXT]"
            );
            std::process::exit(0);
        }
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--backend" => {
                a.gpu = match value()?.as_str() {
                    "gpu" => true,
                    "cpu" => false,
                    other => bail!("--backend takes cpu or gpu, not {other}"),
                }
            }
            "--steps" => a.steps = value()?.parse().context("--steps")?,
            "--batch" => a.batch = value()?.parse().context("--batch")?,
            "--trial-steps" => a.trial_steps = value()?.parse().context("--trial-steps")?,
            "--adapter" => a.adapter = Some(value()?),
            "--members" => {
                a.members =
                    value()?.split(',').map(|p| p.trim().parse()).collect::<Result<_, _>>().context("--members")?
            }
            other => bail!(
                "unknown option {other}; expected --backend cpu|gpu, --steps N, --members P,P,…, --batch N, \
                 --trial-steps N, --adapter TEXT"
            ),
        }
    }
    if a.batch == 0 || a.steps == 0 || a.trial_steps == 0 || a.members.contains(&0) {
        bail!("--batch, --steps, --trial-steps and every member count must be positive");
    }
    Ok(a)
}

/// Counts the dispatches of one population step, where the backend can (GPU timestamps).
type CountDispatches<'a, B> = &'a mut dyn FnMut(&mut B, &mut Population<B>) -> Result<Option<usize>>;

/// One member count's figures.
struct Row {
    members: usize,
    ms_per_step: f64,
    dispatches: Option<usize>,
}

/// Time `a.steps` population steps of `p` members (after one warm-up step that builds pipelines), waiting for
/// the device at the end. `dispatches` profiles one more step where the backend can.
fn measure<B: Backend>(b: &mut B, a: &Args, p: usize, dispatches: CountDispatches<'_, B>) -> Result<Row> {
    let batches = 8;
    let images: Vec<f32> = (0..batches * a.batch * 784).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
    let labels: Vec<u32> = (0..(batches * a.batch) as u32).map(|i| i % 10).collect();
    let split = HostSplit { images: Images::Values(images), labels, shape: [1, 28, 28] };
    let arch = wgtrain::nn::sample_cnn();
    let weights = wgtrain::nn::init::pytorch_default(&arch.param_shapes(), 0);
    let optims = vec![OptimConfig::sgd(0.01, 0.9); p];
    let mut pop = Population::new(b, &arch, &weights, &optims, &split, a.batch)?;
    // Distinct learning rates, as a sweep's members have.
    let groups: Vec<[Group; 1]> = (0..p).map(|m| [Group::sgd(0.001 * (m + 1) as f64, 0.9)]).collect();
    let member_groups: Vec<Option<&[Group]>> = groups.iter().map(|g| Some(&g[..])).collect();
    // Reading any tensor waits for every earlier submit (one queue, in order).
    let sync = b.zeros(&[1], "sync")?;
    pop.step(b, &member_groups, 0, 0)?;
    b.read(&sync)?;
    let t = Instant::now();
    for s in 0..a.steps {
        pop.step(b, &member_groups, (s % batches) * a.batch, (s + 1) % LOSS_RING)?;
    }
    b.read(&sync)?;
    let ms_per_step = t.elapsed().as_secs_f64() * 1e3 / a.steps as f64;
    Ok(Row { members: p, ms_per_step, dispatches: dispatches(b, &mut pop)? })
}

fn main() -> Result<()> {
    let a = args()?;
    let mut rows = Vec::new();
    let device = if a.gpu {
        let mut name = String::new();
        let mut profile = |g: &mut GpuBackend, pop: &mut Population<GpuBackend>| -> Result<Option<usize>> {
            if g.start_profiling().is_err() {
                return Ok(None);
            }
            let groups: Vec<[Group; 1]> = (0..pop.len()).map(|_| [Group::sgd(0.01, 0.9)]).collect();
            let member_groups: Vec<Option<&[Group]>> = groups.iter().map(|g| Some(&g[..])).collect();
            pop.step(g, &member_groups, 0, 0)?;
            Ok(Some(g.take_profile()?.len()))
        };
        for &p in &a.members {
            // A fresh device per row: profiling, once started, would time (and slow) every later row's steps.
            let mut g = GpuBackend::new(a.adapter.as_deref(), true)?;
            name = wgtrain::gpu::describe(g.adapter_info());
            rows.push(measure(&mut g, &a, p, &mut profile)?);
        }
        name
    } else {
        let mut c = CpuBackend::new();
        for &p in &a.members {
            rows.push(measure(&mut c, &a, p, &mut |_, _| Ok(None))?);
        }
        "cpu".to_string()
    };
    println!("device: {device}; sample CNN, batch {}, {} timed steps per row", a.batch, a.steps);
    println!("a trial = {} steps; speedup = trials/hour relative to P = {}", a.trial_steps, rows[0].members);
    println!("{:>3}  {:>12}  {:>14}  {:>12}  {:>8}", "P", "ms/step", "dispatches", "trials/hour", "speedup");
    let base = rows[0].members as f64 / rows[0].ms_per_step;
    for r in &rows {
        let trials_per_hour = r.members as f64 * 3.6e6 / (r.ms_per_step * a.trial_steps as f64);
        let dispatches = r.dispatches.map_or("-".to_string(), |d| d.to_string());
        let speedup = (r.members as f64 / r.ms_per_step) / base;
        println!(
            "{:>3}  {:>12.1}  {:>14}  {:>12.1}  {:>7.2}×",
            r.members, r.ms_per_step, dispatches, trials_per_hour, speedup
        );
    }
    Ok(())
}
