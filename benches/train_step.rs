//! One training step of the sample CNN at batch 128 on every backend present: the CPU backend and each GPU
//! adapter wgpu finds (software ones included, marked as such). The timed region ends with a readback of the
//! loss buffer, so it includes waiting for the GPU. Reported as images/s (Throughput::Elements(128)).
//!
//! `WGTRAIN_BENCH_ADAPTER=TEXT` keeps only GPU adapters whose name contains TEXT (`none`: CPU only);
//! `WGTRAIN_BENCH_SKIP_CPU=1` drops the CPU row.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgtrain::backend::Backend;
use wgtrain::cpu::CpuBackend;
use wgtrain::gpu::{self, GpuBackend};
use wgtrain::nn::PARAMS;
use wgtrain::optim::OptimConfig;
use wgtrain::train::{HostSplit, Images, Session};

const BATCH: usize = 128;
const IMAGES: usize = 4 * BATCH;
/// Multiply-adds of one step ×2: forward, backward-input and backward-weight of every conv/linear layer.
const FLOP_PER_IMAGE: f64 = 3.0 * 2.0 * (32.0 * 9.0 * 676.0 + 64.0 * 288.0 * 576.0 + 2304.0 * 128.0 + 1280.0);

fn bench_backend<B: Backend>(c: &mut Criterion, id: &str, b: &mut B) {
    let weights = wgtrain::nn::init::pytorch_default(&PARAMS, 0);
    let mut s: u32 = 1;
    let images: Vec<f32> = (0..IMAGES * 784)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect();
    let labels: Vec<u32> = (0..IMAGES as u32).map(|i| i % 10).collect();
    let split = HostSplit { images: Images::Values(images), labels, shape: [1, 28, 28] };
    let optim = OptimConfig::sgd(0.01, 0.9);
    let arch = wgtrain::nn::sample_cnn();
    let groups = [wgtrain::schedule::Group::sgd(0.01, 0.9)];
    let mut session = match Session::new(b, &arch, &weights, &optim, &split, BATCH) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipping {id}: {e}");
            return;
        }
    };
    let mut step = 0usize;
    let mut one = |b: &mut B| {
        session.step(b, &groups, (step % 4) * BATCH, step % 256).expect("train step");
        b.read(&session.losses).expect("readback"); // waits for the GPU inside the timed region
        step += 1;
    };
    // Warm-up outside criterion: the first step builds pipelines and bind groups.
    let t = std::time::Instant::now();
    one(b);
    let first = t.elapsed();
    let t = std::time::Instant::now();
    one(b);
    let second = t.elapsed().as_secs_f64();
    eprintln!(
        "{id}: first step {:.1} ms (pipelines), then {:.1} ms ≈ {:.0} images/s, {:.2} GFLOP/s",
        first.as_secs_f64() * 1e3,
        second * 1e3,
        BATCH as f64 / second,
        FLOP_PER_IMAGE * BATCH as f64 / second / 1e9
    );
    let mut g = c.benchmark_group("train_step_batch128");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    // Slow software adapters: keep the run short; criterion still takes its 10 samples.
    g.warm_up_time(Duration::from_millis(if second > 0.5 { 1 } else { 1000 }));
    g.measurement_time(Duration::from_secs_f64((second * 12.0).clamp(3.0, 120.0)));
    g.bench_function(id, |bench| bench.iter(|| one(b)));
    g.finish();
}

fn benches(c: &mut Criterion) {
    if std::env::var("WGTRAIN_BENCH_SKIP_CPU").is_err() {
        bench_backend(c, "cpu", &mut CpuBackend::new());
    }
    let filter = std::env::var("WGTRAIN_BENCH_ADAPTER").ok();
    for info in gpu::list_adapters() {
        if filter.as_deref().is_some_and(|f| !info.name.to_lowercase().contains(&f.to_lowercase())) {
            continue;
        }
        let id =
            format!("{} ({:?}){}", info.name, info.backend, if gpu::is_software(&info) { " [software]" } else { "" });
        match GpuBackend::with_adapter(&info) {
            Ok(mut g) => bench_backend(c, &id, &mut g),
            Err(e) => eprintln!("skipping {id}: {e}"),
        }
    }
}

criterion_group! {
    name = train_step;
    // No plots: they need system fonts that headless CI machines lack (criterion panics without them).
    config = Criterion::default().without_plots();
    targets = benches
}
criterion_main!(train_step);
