//! Each kernel family at the sample CNN's real layer shapes, on the CPU backend and every GPU adapter:
//! conv1/conv2 forward, backward-input and backward-weight; fc1/fc2 forward and both backward matmuls; both max-pools
//! forward/backward; what a sample-CNN step runs instead of conv2 + pools (`conv2d_relu_pool` and its backward)
//! and of fc2 + loss (`linear_softmax_xent`); softmax-CE; the SGD update of fc1's weights. Every timed iteration records the
//! op and then reads back a one-element tensor, which waits for all submitted GPU work.
//!
//! Throughput: compute-bound ops report `Throughput::Elements(FLOP)`, so criterion's "elem/s" is FLOP/s
//! ("Gelem/s" = GFLOP/s); memory-bound ops report `Throughput::Bytes` (bytes read + written once).
//! `WGTRAIN_BENCH_BATCH` (default 32: lavapipe is slow) sets the batch; `WGTRAIN_BENCH_ADAPTER=TEXT` keeps only
//! GPU adapters whose name or wgpu backend contains TEXT (`none`: CPU only).

use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime};
use wgtrain::backend::{Backend, ConvGeom, Head, PoolChain, PoolGeom};
use wgtrain::cpu::CpuBackend;
use wgtrain::gpu::{self, GpuBackend};
use wgtrain::optim::{SgdGroup, SgdHyper};

fn batch() -> usize {
    std::env::var("WGTRAIN_BENCH_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}

fn filled<B: Backend>(b: &mut B, shape: &[usize], seed: u32) -> B::Tensor {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect();
    b.tensor(&v, shape, "bench").expect("allocate bench tensor")
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Time `op` (recorded then waited for through a one-element readback).
fn time<B: Backend>(
    g: &mut Group,
    name: &str,
    work: Throughput,
    b: &mut B,
    sync: &B::Tensor,
    op: &mut dyn FnMut(&mut B),
) {
    op(b); // warm-up: builds pipelines and bind groups
    b.read(sync).expect("sync");
    let t = std::time::Instant::now();
    op(b);
    b.read(sync).expect("sync");
    let once = t.elapsed().as_secs_f64();
    g.throughput(work);
    g.warm_up_time(Duration::from_millis(if once > 0.2 { 1 } else { 300 }));
    g.measurement_time(Duration::from_secs_f64((once * 12.0).clamp(1.0, 30.0)));
    g.bench_function(name, |bench| {
        bench.iter(|| {
            op(b);
            b.read(sync).expect("sync");
        })
    });
}

fn conv_layer<B: Backend>(g: &mut Group, layer: &str, b: &mut B, sync: &B::Tensor, [n, c, h, k]: [usize; 4]) {
    let x = filled(b, &[n, c, h, h], 1);
    let w = filled(b, &[k, c, 3, 3], 2);
    let bias = filled(b, &[k], 3);
    let mut y = filled(b, &[n, k, h - 2, h - 2], 4);
    let dy = filled(b, &[n, k, h - 2, h - 2], 5);
    let mut dx = filled(b, &[n, c, h, h], 6);
    let (mut dw, mut db) = (filled(b, &[k, c, 3, 3], 7), filled(b, &[k], 8));
    let flop = Throughput::Elements((2 * n * k * c * 9 * (h - 2) * (h - 2)) as u64);
    time(g, &format!("{layer}.forward"), flop.clone(), b, sync, &mut |b| {
        b.conv2d(&x, &w, &bias, ConvGeom::UNIT, &mut y).unwrap()
    });
    time(g, &format!("{layer}.backward_input"), flop.clone(), b, sync, &mut |b| {
        b.conv2d_backward_input(&dy, &w, ConvGeom::UNIT, &mut dx).unwrap()
    });
    time(g, &format!("{layer}.backward_weight"), flop, b, sync, &mut |b| {
        b.conv2d_backward_weight(&x, &dy, ConvGeom::UNIT, &mut dw, &mut db).unwrap()
    });
}

fn linear_layer<B: Backend>(g: &mut Group, layer: &str, b: &mut B, sync: &B::Tensor, [n, i, o]: [usize; 3]) {
    let x = filled(b, &[n, i], 1);
    let w = filled(b, &[o, i], 2);
    let bias = filled(b, &[o], 3);
    let (mut y, dy) = (filled(b, &[n, o], 4), filled(b, &[n, o], 5));
    let mut dx = filled(b, &[n, i], 6);
    let (mut dw, mut db) = (filled(b, &[o, i], 7), filled(b, &[o], 8));
    let flop = Throughput::Elements((2 * n * i * o) as u64);
    time(g, &format!("{layer}.forward"), flop.clone(), b, sync, &mut |b| b.linear(&x, &w, &bias, &mut y).unwrap());
    time(g, &format!("{layer}.backward_input"), flop.clone(), b, sync, &mut |b| {
        b.linear_backward_input(&dy, &w, &mut dx).unwrap()
    });
    time(g, &format!("{layer}.backward_weight"), flop, b, sync, &mut |b| {
        b.linear_backward_weight(&x, &dy, &mut dw, &mut db).unwrap()
    });
}

fn bench_backend<B: Backend>(c: &mut Criterion, id: &str, b: &mut B) {
    let n = batch();
    let sync = b.zeros(&[1], "sync").expect("sync tensor");
    let mut g = c.benchmark_group(format!("kernels_batch{n}/{id}"));
    g.sample_size(10);
    conv_layer(&mut g, "conv1", b, &sync, [n, 1, 28, 32]);
    conv_layer(&mut g, "conv2", b, &sync, [n, 32, 26, 64]);
    linear_layer(&mut g, "fc1", b, &sync, [n, 2304, 128]);
    linear_layer(&mut g, "fc2", b, &sync, [n, 128, 10]);
    for (name, c, h) in [("pool1", 64, 24), ("pool2", 64, 12)] {
        let x = filled(b, &[n, c, h, h], 1);
        let (mut y, dy) = (filled(b, &[n, c, h / 2, h / 2], 2), filled(b, &[n, c, h / 2, h / 2], 3));
        let mut dx = filled(b, &[n, c, h, h], 4);
        let bytes = (4 * n * c * h * h * 5 / 4) as u64;
        time(&mut g, &format!("{name}.forward"), Throughput::Bytes(bytes), b, &sync, &mut |b| {
            b.max_pool2d(&x, PoolGeom::TWO, &mut y).unwrap()
        });
        time(&mut g, &format!("{name}.backward"), Throughput::Bytes(bytes + bytes / 5 * 4), b, &sync, &mut |b| {
            b.max_pool2d_backward(&x, &dy, PoolGeom::TWO, &mut dx).unwrap()
        });
    }
    // conv2 with its ReLU and both pools fused (the sample CNN's step), and that fusion's backward gather.
    {
        let (x, w, bias) = (filled(b, &[n, 32, 26, 26], 1), filled(b, &[64, 32, 3, 3], 2), filled(b, &[64], 3));
        let (mut y, mut arg, dy) =
            (filled(b, &[n, 64, 6, 6], 4), filled(b, &[n, 64, 6, 6], 5), filled(b, &[n, 64, 6, 6], 6));
        let mut dx = filled(b, &[n, 64, 24, 24], 7);
        let pools = PoolChain { inner: 2, outer: 2 };
        let flop = Throughput::Elements((2 * n * 64 * 32 * 9 * 24 * 24) as u64);
        time(&mut g, "conv2_pool.forward", flop, b, &sync, &mut |b| {
            b.conv2d_relu_pool(&x, &w, &bias, ConvGeom::UNIT, pools, &mut y, &mut arg).unwrap()
        });
        let bytes = (4 * n * 64 * (24 * 24 + 3 * 6 * 6)) as u64;
        time(&mut g, "conv2_pool.backward", Throughput::Bytes(bytes), b, &sync, &mut |b| {
            b.conv2d_relu_pool_backward(&y, &arg, &dy, pools, &mut dx).unwrap()
        });
    }
    // fc2 + softmax cross-entropy + fc2's backward as one op (two dispatches on the GPU).
    {
        let (x, labels) = (filled(b, &[n, 128], 1), b.indices(&(0..n as u32).map(|i| i % 10).collect::<Vec<_>>(), "y"));
        let labels = labels.unwrap();
        let names = ["fc2.weight".to_string(), "fc2.bias".to_string()];
        let params = b.zeros_packed(&[vec![10, 128], vec![10]], &names).unwrap();
        let grad_names = ["fc2.weight.grad".to_string(), "fc2.bias.grad".to_string()];
        let mut grads = b.zeros_packed(&[vec![10, 128], vec![10]], &grad_names).unwrap();
        let (mut logits, mut dlogits, mut losses) =
            (filled(b, &[n, 10], 2), filled(b, &[n, 10], 3), filled(b, &[4], 4));
        let mut dx = filled(b, &[n, 128], 5);
        let flop = Throughput::Elements((3 * 2 * n * 128 * 10) as u64);
        time(&mut g, "head", flop, b, &sync, &mut |b| {
            let [dw, db] = grads.get_disjoint_mut([0, 1]).unwrap();
            let head = Head {
                x: &x,
                w: &params[0],
                b: &params[1],
                labels: &labels,
                relu_input: true,
                logits: &mut logits,
                dlogits: &mut dlogits,
                losses: &mut losses,
                slot: 0,
                dw,
                db,
                dx: Some(&mut dx),
            };
            b.linear_softmax_xent(head).unwrap()
        });
    }
    let logits = filled(b, &[n, 10], 1);
    let labels = b.indices(&(0..n as u32).map(|i| i % 10).collect::<Vec<_>>(), "labels").unwrap();
    let (mut dlogits, mut losses) = (filled(b, &[n, 10], 2), filled(b, &[4], 3));
    time(&mut g, "softmax_xent", Throughput::Bytes((4 * n * 10 * 2 + 4 * n) as u64), b, &sync, &mut |b| {
        b.softmax_xent(&logits, &labels, &mut dlogits, &mut losses, 0).unwrap();
    });
    // The multi-tensor update over a one-tensor packed set (fc1's weights), momentum on.
    let shape = vec![128, 2304];
    let packed = |b: &mut B, name: &str, seed: u32| {
        let mut t = b.zeros_packed(std::slice::from_ref(&shape), &[name.to_string()]).unwrap();
        let f = filled(b, &shape, seed);
        let v = b.read(&f).unwrap();
        b.write(&mut t[0], &v).unwrap();
        t
    };
    let (mut p, grad, mut buf) = (packed(b, "p", 1), packed(b, "grad", 2), packed(b, "buf", 3));
    let mut sgd = SgdHyper::default();
    sgd.group[0] = SgdGroup { lr: 1e-3, momentum: 0.9, ..Default::default() };
    let mut hyper = b.uniform(std::mem::size_of::<SgdHyper>(), "hyper").unwrap();
    b.write_uniform(&mut hyper, bytemuck::bytes_of(&sgd)).unwrap();
    let norms = b.zeros(&[1], "norms").unwrap();
    time(&mut g, "sgd.fc1_weight", Throughput::Bytes((4 * 128 * 2304 * 5) as u64), b, &sync, &mut |b| {
        b.sgd_update(&mut p, &grad, &mut buf, &[0], &hyper, &norms).unwrap();
    });
    g.finish();
}

fn all_backends(c: &mut Criterion) {
    let filter = std::env::var("WGTRAIN_BENCH_ADAPTER").ok();
    bench_backend(c, "cpu", &mut CpuBackend::new());
    if filter.as_deref() == Some("none") {
        return;
    }
    for info in gpu::list_adapters() {
        let full = format!("{} {:?}", info.name, info.backend).to_lowercase();
        if filter.as_ref().is_some_and(|f| !full.contains(&f.to_lowercase())) {
            continue;
        }
        let id = format!("{} ({:?})", info.name, info.backend).replace(['/', ' ', '(', ')', ','], "_");
        match GpuBackend::with_adapter(&info) {
            Ok(mut b) => bench_backend(c, &id, &mut b),
            Err(e) => eprintln!("skipping {id}: {e}"),
        }
    }
}

criterion_group! {
    name = benches;
    // Criterion's own charts need a system font that plotters (built with ab_glyph only) does not have.
    config = Criterion::default().without_plots();
    targets = all_backends
}
criterion_main!(benches);
