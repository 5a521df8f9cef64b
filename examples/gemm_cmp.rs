//! The CPU backend's blocked f32 GEMM against `matrixmultiply` on the sample CNN's product shapes (batch 64,
//! one image for the convolutions), one thread: GFLOP/s of the fastest of 300 runs each, interleaved so both
//! see the same load.
//!
//!     cargo run --release --example gemm_cmp

use std::time::Instant;

type Shape = (usize, usize, usize, (usize, usize), (usize, usize), &'static str);

fn main() {
    let shapes: [Shape; 4] = [
        (64, 288, 576, (288, 1), (576, 1), "conv2 forward"),
        (288, 64, 576, (1, 288), (576, 1), "conv2 input gradient"),
        (64, 576, 288, (576, 1), (1, 576), "conv2 weight gradient"),
        (64, 2304, 128, (2304, 1), (1, 2304), "fc1 forward"),
    ];
    for (m, k, n, a_s, b_s, name) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let (mut tm, mut ty) = (f64::MAX, f64::MAX);
        for _ in 0..300 {
            let t = Instant::now();
            // SAFETY: a, b, c hold m×k, k×n, m×n values at these strides.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    a_s.0 as isize,
                    a_s.1 as isize,
                    b.as_ptr(),
                    b_s.0 as isize,
                    b_s.1 as isize,
                    1.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                )
            }
            tm = tm.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            wgtrain::cpu::gemm::sgemm(m, k, n, &a, a_s, &b, b_s, 1.0, &mut c, (n, 1));
            ty = ty.min(t.elapsed().as_secs_f64());
        }
        let f = 2.0 * (m * k * n) as f64 / 1e9;
        println!("{name:<22} {m}×{k}×{n}: matrixmultiply {:.1} GFLOP/s, wgtrain gemm {:.1} GFLOP/s", f / tm, f / ty);
    }
}
