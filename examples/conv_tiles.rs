//! Every conv tile on each of the sample CNN's five conv products, side by side on one adapter: GPU time per
//! dispatch (median of `--reps`, from timestamps inside the pass) and achieved GFLOP/s, with the tile the
//! launcher picks from the shape marked `*`. Every tile computes the same bits (`tests/gpu_tiles.rs`), so this is
//! purely a speed question, and the figures are what the pick rule (`pick_tile` in `src/gpu/ops/conv.rs`)
//! should be checked against on a real GPU.
//!
//!     cargo run --release --example conv_tiles -- [--batch 128] [--reps 20] [--adapter TEXT]

use anyhow::{Context, Result, bail};
use wgtrain::backend::{Backend, ConvGeom};
use wgtrain::gpu::GpuBackend;
use wgtrain::gpu::kernels::Tile;

const TILES: [Tile; 5] = [Tile::Narrow, Tile::M32, Tile::Square64, Tile::M64, Tile::Square128];

struct Args {
    batch: usize,
    reps: usize,
    adapter: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args { batch: 128, reps: 20, adapter: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("usage: conv_tiles [--batch N] [--reps N] [--adapter TEXT]");
            std::process::exit(0);
        }
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--batch" => a.batch = value()?.parse().context("--batch")?,
            "--reps" => a.reps = value()?.parse().context("--reps")?,
            "--adapter" => a.adapter = Some(value()?),
            other => bail!("unknown option {other}; expected --batch N, --reps N, --adapter TEXT"),
        }
    }
    if a.batch == 0 || a.reps == 0 {
        bail!("--batch and --reps must be positive");
    }
    Ok(a)
}

/// One of the sample CNN's conv products: `c` input and `k` output channels on an `h`×`h` input, 3×3.
#[derive(Clone, Copy)]
enum Op {
    Forward,
    BackwardInput,
    BackwardWeight,
}

struct Tensors {
    x: <GpuBackend as Backend>::Tensor,
    w: <GpuBackend as Backend>::Tensor,
    b: <GpuBackend as Backend>::Tensor,
    y: <GpuBackend as Backend>::Tensor,
    dy: <GpuBackend as Backend>::Tensor,
    dx: <GpuBackend as Backend>::Tensor,
    /// dw and db as views of one set, as a model's gradients are (so the bias rides the GEMM).
    grads: Vec<<GpuBackend as Backend>::Tensor>,
}

fn tensors(g: &mut GpuBackend, n: usize, c: usize, h: usize, k: usize) -> Result<Tensors> {
    let o = h - 2;
    let fill = |len: usize| (0..len).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect::<Vec<f32>>();
    let names = ["dw".to_string(), "db".to_string()];
    Ok(Tensors {
        x: g.tensor(&fill(n * c * h * h), &[n, c, h, h], "x")?,
        w: g.tensor(&fill(k * c * 9), &[k, c, 3, 3], "w")?,
        b: g.tensor(&fill(k), &[k], "b")?,
        y: g.zeros(&[n, k, o, o], "y")?,
        dy: g.tensor(&fill(n * k * o * o), &[n, k, o, o], "dy")?,
        dx: g.zeros(&[n, c, h, h], "dx")?,
        grads: g.zeros_packed(&[vec![k, c, 3, 3], vec![k]], &names)?,
    })
}

fn run(g: &mut GpuBackend, t: &mut Tensors, op: Op) -> Result<()> {
    let geom = ConvGeom::UNIT;
    match op {
        Op::Forward => g.conv2d_relu(&t.x, &t.w, &t.b, geom, &mut t.y)?,
        Op::BackwardInput => g.conv2d_backward_input_relu(&t.dy, &t.w, &t.x, geom, &mut t.dx)?,
        Op::BackwardWeight => {
            let [dw, db] = t.grads.get_disjoint_mut([0, 1]).expect("two views");
            g.conv2d_backward_weight(&t.x, &t.dy, geom, dw, db)?
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = args()?;
    let mut g = GpuBackend::new(a.adapter.as_deref(), true)?;
    println!("adapter: {}", wgtrain::gpu::describe(g.adapter_info()));
    g.start_profiling().context("this adapter has no timestamp queries inside passes")?;
    let n = a.batch;
    // (name, c, h, k, op): conv1 is 1→32 channels on 28×28, conv2 32→64 on 26×26.
    let products = [
        ("conv1 forward", 1, 28, 32, Op::Forward),
        ("conv1 weight gradient", 1, 28, 32, Op::BackwardWeight),
        ("conv2 forward", 32, 26, 64, Op::Forward),
        ("conv2 backward-input", 32, 26, 64, Op::BackwardInput),
        ("conv2 weight gradient", 32, 26, 64, Op::BackwardWeight),
    ];
    println!("batch {n}, median of {} runs per tile; * = the tile picked from the shape", a.reps);
    for (name, c, h, k, op) in products {
        let mut t = tensors(&mut g, n, c, h, k)?;
        g.set_conv_tile(None);
        run(&mut g, &mut t, op)?;
        let picked = g.take_profile()?.first().map(|d| d.label.clone()).unwrap_or_default();
        println!("{name} (picked: {picked})");
        for tile in TILES {
            g.set_conv_tile(Some(tile));
            run(&mut g, &mut t, op)?; // builds the pipeline; not timed
            g.take_profile()?;
            for _ in 0..a.reps {
                run(&mut g, &mut t, op)?;
            }
            let profile = g.take_profile()?;
            // A split product is the GEMM then its reduction: time both, per run.
            let per_run = profile.len() / a.reps;
            let mut runs: Vec<(f64, f64)> = profile
                .chunks(per_run.max(1))
                .map(|c| (c.iter().map(|d| d.nanos).sum(), c.iter().map(|d| d.flops).sum()))
                .collect();
            runs.sort_by(|x, y| x.0.total_cmp(&y.0));
            let (nanos, flops) = runs[runs.len() / 2];
            let (bm, bn) = tile.shape();
            let mark = if picked.contains(&format!("[{tile:?}]")) || (tile == Tile::Square64 && !picked.contains('[')) {
                "*"
            } else {
                " "
            };
            println!("  {mark} {bm:>3}×{bn:<3} {:>10.1} µs {:>10.1} GFLOP/s", nanos / 1e3, flops / nanos);
        }
    }
    Ok(())
}
