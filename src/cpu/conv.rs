//! 3×3 valid convolution, stride 1 (cross-correlation, as `torch.nn.Conv2d`), by im2col + GEMM per image.
//!
//! im2col row `c·9 + u·3 + v`, column `i·Wo + j` holds `x[c, i+u, j+v]`, so the weight [K, C·9] is already the
//! left GEMM operand in PyTorch's layout and the output [K, Ho·Wo] is the image's NCHW slab.

use super::real::Real;

/// Spatial sizes of one convolution: input C×H×W, output K×(H−2)×(W−2).
#[derive(Clone, Copy, Debug)]
pub struct ConvDims {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
}

impl ConvDims {
    pub fn ho(&self) -> usize {
        self.h - 2
    }
    pub fn wo(&self) -> usize {
        self.w - 2
    }
    fn cols(&self) -> usize {
        self.ho() * self.wo()
    }
}

fn im2col<T: Real>(d: &ConvDims, x: &[T], cols: &mut [T]) {
    let (ho, wo) = (d.ho(), d.wo());
    for c in 0..d.c {
        for u in 0..3 {
            for v in 0..3 {
                let row = &mut cols[(c * 9 + u * 3 + v) * ho * wo..][..ho * wo];
                for i in 0..ho {
                    let src = &x[c * d.h * d.w + (i + u) * d.w + v..][..wo];
                    row[i * wo..][..wo].copy_from_slice(src);
                }
            }
        }
    }
}

fn col2im_add<T: Real>(d: &ConvDims, cols: &[T], dx: &mut [T]) {
    let (ho, wo) = (d.ho(), d.wo());
    for c in 0..d.c {
        for u in 0..3 {
            for v in 0..3 {
                let row = &cols[(c * 9 + u * 3 + v) * ho * wo..][..ho * wo];
                for i in 0..ho {
                    let dst = &mut dx[c * d.h * d.w + (i + u) * d.w + v..][..wo];
                    for (o, &g) in dst.iter_mut().zip(&row[i * wo..][..wo]) {
                        *o += g;
                    }
                }
            }
        }
    }
}

/// The batch is split into this many contiguous chunks, each on its own thread: the per-image GEMMs are too
/// small for the GEMM crate's own threading to pay off. A fixed count (not the machine's core count) keeps the
/// order of the weight-gradient sums, and so every result bit, the same on every machine.
pub const BATCH_CHUNKS: usize = 4;

fn chunk_len(n: usize, chunks: usize) -> usize {
    n.div_ceil(chunks.max(1)).max(1)
}

/// Run `f(sub_dims, x_chunk, y_chunk)` over batch chunks in parallel (`x`/`y` hold `xs`/`ys` values per image).
fn par_images<T: Real>(
    d: &ConvDims,
    x: &[T],
    xs: usize,
    y: &mut [T],
    ys: usize,
    f: impl Fn(&ConvDims, &[T], &mut [T]) + Sync,
) {
    let per = chunk_len(d.n, BATCH_CHUNKS);
    std::thread::scope(|s| {
        for (xc, yc) in x.chunks(per * xs).zip(y.chunks_mut(per * ys)) {
            let sub = ConvDims { n: xc.len() / xs, ..*d };
            let f = &f;
            s.spawn(move || f(&sub, xc, yc));
        }
    });
}

/// y[n,k,i,j] = b[k] + Σ_{c,u,v} w[k,c,u,v]·x[n,c,i+u,j+v].
pub fn forward<T: Real>(d: &ConvDims, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    par_images(d, x, d.c * d.h * d.w, y, d.k * d.cols(), |d, x, y| forward_serial(d, x, w, b, y));
}

/// dx[n,c,h,w] = Σ_{k,u,v} w[k,c,u,v]·dy[n,k,h−u,w−v]: dcols = wᵀ·dy, then col2im.
pub fn backward_input<T: Real>(d: &ConvDims, dy: &[T], w: &[T], dx: &mut [T]) {
    par_images(d, dy, d.k * d.cols(), dx, d.c * d.h * d.w, |d, dy, dx| backward_input_serial(d, dy, w, dx));
}

/// dw[k,c,u,v] = Σ_{n,i,j} dy[n,k,i,j]·x[n,c,i+u,j+v] (= dy·colsᵀ summed over n), db[k] = Σ_{n,i,j} dy[n,k,i,j].
/// Each of [`BATCH_CHUNKS`] chunks sums its own images; the partial sums are then added in chunk order.
pub fn backward_weight<T: Real>(d: &ConvDims, x: &[T], dy: &[T], dw: &mut [T], db: &mut [T]) {
    backward_weight_chunked(d, x, dy, dw, db, BATCH_CHUNKS)
}

/// [`backward_weight`] with the batch in `chunks` chunks: the only op whose result depends on the chunking
/// (through the order of its sums), so other counts give other, equally valid float32 results.
pub fn backward_weight_chunked<T: Real>(d: &ConvDims, x: &[T], dy: &[T], dw: &mut [T], db: &mut [T], chunks: usize) {
    let per = chunk_len(d.n, chunks);
    let (xs, ys) = (d.c * d.h * d.w, d.k * d.cols());
    let parts: Vec<(Vec<T>, Vec<T>)> = std::thread::scope(|s| {
        let handles: Vec<_> = x
            .chunks(per * xs)
            .zip(dy.chunks(per * ys))
            .map(|(xc, dyc)| {
                let sub = ConvDims { n: xc.len() / xs, ..*d };
                s.spawn(move || {
                    let (mut pw, mut pb) = (vec![T::ZERO; d.k * d.c * 9], vec![T::ZERO; d.k]);
                    backward_weight_serial(&sub, xc, dyc, &mut pw, &mut pb);
                    (pw, pb)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    dw.fill(T::ZERO);
    db.fill(T::ZERO);
    for (pw, pb) in parts {
        for (o, v) in dw.iter_mut().zip(pw) {
            *o += v;
        }
        for (o, v) in db.iter_mut().zip(pb) {
            *o += v;
        }
    }
}

fn forward_serial<T: Real>(d: &ConvDims, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    let (kc9, hw, ohw) = (d.c * 9, d.c * d.h * d.w, d.k * d.cols());
    let mut cols = vec![T::ZERO; kc9 * d.cols()];
    for n in 0..d.n {
        im2col(d, &x[n * hw..][..hw], &mut cols);
        let yn = &mut y[n * ohw..][..ohw];
        for (k, row) in yn.chunks_mut(d.cols()).enumerate() {
            row.fill(b[k]);
        }
        T::gemm(d.k, kc9, d.cols(), w, (kc9, 1), &cols, (d.cols(), 1), T::ONE, yn, (d.cols(), 1));
    }
}

fn backward_input_serial<T: Real>(d: &ConvDims, dy: &[T], w: &[T], dx: &mut [T]) {
    let (kc9, hw, ohw) = (d.c * 9, d.c * d.h * d.w, d.k * d.cols());
    let mut dcols = vec![T::ZERO; kc9 * d.cols()];
    dx.fill(T::ZERO);
    for n in 0..d.n {
        T::gemm(
            kc9,
            d.k,
            d.cols(),
            w,
            (1, kc9),
            &dy[n * ohw..][..ohw],
            (d.cols(), 1),
            T::ZERO,
            &mut dcols,
            (d.cols(), 1),
        );
        col2im_add(d, &dcols, &mut dx[n * hw..][..hw]);
    }
}

fn backward_weight_serial<T: Real>(d: &ConvDims, x: &[T], dy: &[T], dw: &mut [T], db: &mut [T]) {
    let (kc9, hw, ohw) = (d.c * 9, d.c * d.h * d.w, d.k * d.cols());
    let mut cols = vec![T::ZERO; kc9 * d.cols()];
    dw.fill(T::ZERO);
    db.fill(T::ZERO);
    for n in 0..d.n {
        im2col(d, &x[n * hw..][..hw], &mut cols);
        let dyn_ = &dy[n * ohw..][..ohw];
        T::gemm(d.k, d.cols(), kc9, dyn_, (d.cols(), 1), &cols, (1, d.cols()), T::ONE, dw, (kc9, 1));
        for (k, row) in dyn_.chunks(d.cols()).enumerate() {
            let mut s = T::ZERO;
            for &g in row {
                s += g;
            }
            db[k] += s;
        }
    }
}
