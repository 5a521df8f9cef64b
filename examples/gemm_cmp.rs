//! The CPU backend's blocked f32 GEMM, each micro-kernel this CPU has (AVX-512, AVX2), against `matrixmultiply`
//! on the sample CNN's product shapes (batch 64, one image for the convolutions), one thread: GFLOP/s of the
//! fastest of 300 runs each, interleaved so all see the same load.
//!
//!     cargo run --release --example gemm_cmp

use std::time::Instant;

use wgtrain::cpu::gemm::{self, Isa};

type Shape = (usize, usize, usize, (usize, usize), (usize, usize), &'static str);

fn main() {
    let shapes: [Shape; 4] = [
        (64, 288, 576, (288, 1), (576, 1), "conv2 forward"),
        (288, 64, 576, (1, 288), (576, 1), "conv2 input gradient"),
        (64, 576, 288, (576, 1), (1, 576), "conv2 weight gradient"),
        (64, 2304, 128, (2304, 1), (1, 2304), "fc1 forward"),
    ];
    // None: matrixmultiply (the path without AVX2).
    let mut kernels = vec![None];
    kernels.extend([Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.available()).map(Some));
    for (m, k, n, a_s, b_s, name) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let mut best = vec![f64::MAX; kernels.len()];
        for _ in 0..300 {
            for (t, &isa) in best.iter_mut().zip(&kernels) {
                let s = Instant::now();
                gemm::sgemm_on(isa, m, k, n, &a, a_s, &b, b_s, 1.0, &mut c, (n, 1));
                *t = t.min(s.elapsed().as_secs_f64());
            }
        }
        let f = 2.0 * (m * k * n) as f64 / 1e9;
        let figures: Vec<String> = kernels
            .iter()
            .zip(&best)
            .map(|(isa, t)| {
                let label = isa.map_or("matrixmultiply".to_string(), |i| format!("{i:?}"));
                format!("{label} {:.1}", f / t)
            })
            .collect();
        println!("{name:<22} {m}×{k}×{n} GFLOP/s: {}", figures.join(", "));
    }
}
