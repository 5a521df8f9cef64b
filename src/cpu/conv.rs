//! k×k convolution with stride and zero padding (cross-correlation, as `torch.nn.Conv2d`), by im2col + GEMM
//! per image.
//!
//! im2col row `c·k² + u·k + v`, column `i·Wo + j` holds `x[c, i·s−p+u, j·s−p+v]` (0 outside the image), so the
//! weight [K, C·k²] is already the left GEMM operand in PyTorch's layout and the output [K, Ho·Wo] is the
//! image's NCHW slab. For the sample CNN's 3×3, stride 1, no padding this is exactly the matrix (and so the
//! summation order) of the original 3×3-only code: its results are bit-identical.

use rayon::prelude::*;

use super::fast;
use super::real::Real;

/// Sizes of one convolution: input N×C×H×W, weight K×C×ks×ks, stride, zero padding.
#[derive(Clone, Copy, Debug)]
pub struct ConvDims {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    /// Kernel edge (the weight is [K, C, ks, ks]).
    pub ks: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvDims {
    /// 3×3, stride 1, no padding.
    pub fn unit(n: usize, c: usize, h: usize, w: usize, k: usize) -> Self {
        ConvDims { n, c, h, w, k, ks: 3, stride: 1, pad: 0 }
    }
    /// Output height (callers check the kernel fits: H + 2p ≥ ks, stride ≥ 1).
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.pad - self.ks) / self.stride + 1
    }
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.pad - self.ks) / self.stride + 1
    }
    /// Rows of the im2col matrix: C·k².
    fn rows(&self) -> usize {
        self.c * self.ks * self.ks
    }
    fn cols(&self) -> usize {
        self.ho() * self.wo()
    }
    /// The output positions `o` (along one axis of `out` outputs) whose input coordinate o·s − p + u lies in
    /// [0, size): a contiguous range, since the coordinate grows with o.
    fn valid(&self, u: usize, size: usize, out: usize) -> std::ops::Range<usize> {
        // o·s + u ≥ p  ⇔  o ≥ ⌈(p − u)/s⌉;  o·s + u − p < size  ⇔  o < ⌈(size + p − u)/s⌉.
        let lo = self.pad.saturating_sub(u).div_ceil(self.stride);
        let hi = (size + self.pad).saturating_sub(u).div_ceil(self.stride).min(out);
        lo.min(hi)..hi
    }
}

/// Visit every in-image (row, column) pair of the im2col matrix as `f(row slice start, x offset, len)` runs:
/// for im2col row (c,u,v) and output row i, the output columns j in `valid` read x[c, i·s−p+u, j·s−p+v].
fn for_each_run(d: &ConvDims, mut f: impl FnMut(usize, usize, usize)) {
    let (ho, wo, ks, s) = (d.ho(), d.wo(), d.ks, d.stride);
    for c in 0..d.c {
        for u in 0..ks {
            for v in 0..ks {
                let row = ((c * ks + u) * ks + v) * ho * wo;
                let js = d.valid(v, d.w, wo);
                if js.is_empty() {
                    continue;
                }
                for i in d.valid(u, d.h, ho) {
                    let (hh, ww) = (i * s + u - d.pad, js.start * s + v - d.pad);
                    f(row + i * wo + js.start, c * d.h * d.w + hh * d.w + ww, js.len());
                }
            }
        }
    }
}

fn im2col<T: Real>(d: &ConvDims, x: &[T], cols: &mut [T]) {
    if d.pad > 0 {
        cols.fill(T::ZERO); // the padding's entries stay 0
    }
    let s = d.stride;
    for_each_run(d, |dst, src, len| {
        let out = &mut cols[dst..][..len];
        if s == 1 {
            out.copy_from_slice(&x[src..][..len]);
        } else {
            for (o, &v) in out.iter_mut().zip(x[src..].iter().step_by(s)) {
                *o = v;
            }
        }
    });
}

/// dx += col2im(cols): each column entry goes back to the input element it was read from (padding dropped).
fn col2im_add<T: Real>(d: &ConvDims, cols: &[T], dx: &mut [T]) {
    let s = d.stride;
    for_each_run(d, |src, dst, len| {
        for (o, &g) in dx[dst..].iter_mut().step_by(s).zip(&cols[src..][..len]) {
            *o += g;
        }
    });
}

/// The weight gradient sums the batch in this many contiguous chunks (each chunk's images in order, then the
/// chunks' partial sums in chunk order). A fixed count, not the machine's core count or the pool's scheduling,
/// keeps the order of those sums, and so every result bit, the same on every machine and every run.
pub const BATCH_CHUNKS: usize = 4;

fn chunk_len(n: usize, chunks: usize) -> usize {
    n.div_ceil(chunks.max(1)).max(1)
}

/// y[n,k,i,j] = b[k] + Σ_{c,u,v} w[k,c,u,v]·x[n,c,i·s−p+u,j·s−p+v]. Images run in parallel (each image's
/// result depends on that image alone, so the split changes nothing).
pub fn forward<T: Real>(d: &ConvDims, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    forward_act(d, x, w, b, y, false)
}

/// [`forward`], then y = max(y, 0) if `relu` (NaN kept), image by image while its output is in cache.
/// f32 at stride 1 without padding takes [`super::fast`]'s path (the same bits).
pub fn forward_act<T: Real>(d: &ConvDims, x: &[T], w: &[T], b: &[T], y: &mut [T], relu: bool) {
    let (xs, ys) = (d.c * d.h * d.w, d.k * d.cols());
    if xs == 0 || ys == 0 {
        forward_serial(d, x, w, b, y);
        if relu {
            super::dense::relu_in_place(y);
        }
        return;
    }
    if let (true, Some(x), Some(w), Some(b), Some(y)) =
        (fast::applies(d), T::as_f32(x), T::as_f32(w), T::as_f32(b), T::as_f32_mut(y))
    {
        y[..d.n * ys].par_chunks_mut(ys).zip(x[..d.n * xs].par_chunks(xs)).for_each(|(yn, xn)| {
            fast::forward_image(d, xn, w, b, yn, relu);
        });
        return;
    }
    let scratch = d.rows() * d.cols();
    y[..d.n * ys].par_chunks_mut(ys).zip(x[..d.n * xs].par_chunks(xs)).for_each_init(
        || vec![T::ZERO; scratch],
        |cols, (yn, xn)| {
            forward_image(d, xn, w, b, yn, cols);
            if relu {
                super::dense::relu_in_place(yn);
            }
        },
    );
}

/// dx[n,c,h,w] = Σ w[k,c,u,v]·dy[n,k,i,j] over i·s−p+u = h, j·s−p+v = w: dcols = wᵀ·dy, then col2im.
/// Images run in parallel.
pub fn backward_input<T: Real>(d: &ConvDims, dy: &[T], w: &[T], dx: &mut [T]) {
    backward_input_masked(d, dy, w, dx, None)
}

/// [`backward_input`], then dx = 0 where `mask` (shaped like dx) is not > 0, image by image. f32 at stride 1
/// without padding takes [`super::fast`]'s path (col2im in the GEMM epilogue: the sums in another order).
pub fn backward_input_masked<T: Real>(d: &ConvDims, dy: &[T], w: &[T], dx: &mut [T], mask: Option<&[T]>) {
    let (xs, ys) = (d.c * d.h * d.w, d.k * d.cols());
    if xs == 0 || ys == 0 {
        backward_input_serial(d, dy, w, dx);
        if let Some(m) = mask {
            super::dense::mask_in_place(m, dx);
        }
        return;
    }
    let mask_at = |n: usize| mask.map(|m| &m[n * xs..][..xs]);
    if let (true, Some(dy), Some(w), Some(dx)) = (fast::applies(d), T::as_f32(dy), T::as_f32(w), T::as_f32_mut(dx)) {
        let mask32 = |n: usize| mask_at(n).map(|m| T::as_f32(m).expect("f32 like dx"));
        dx[..d.n * xs]
            .par_chunks_mut(xs)
            .zip(dy[..d.n * ys].par_chunks(ys))
            .enumerate()
            .for_each(|(n, (dxn, dyn_))| fast::backward_input_image(d, dyn_, w, dxn, mask32(n)));
        return;
    }
    let scratch = d.rows() * d.cols();
    dx[..d.n * xs].par_chunks_mut(xs).zip(dy[..d.n * ys].par_chunks(ys)).enumerate().for_each_init(
        || vec![T::ZERO; scratch],
        |dcols, (n, (dxn, dyn_))| {
            backward_input_image(d, dyn_, w, dxn, dcols);
            if let Some(m) = mask_at(n) {
                super::dense::mask_in_place(m, dxn);
            }
        },
    );
}

/// dw[k,c,u,v] = Σ_{n,i,j} dy[n,k,i,j]·x[n,c,i·s−p+u,j·s−p+v] (= dy·colsᵀ summed over n),
/// db[k] = Σ_{n,i,j} dy[n,k,i,j]. Each of [`BATCH_CHUNKS`] chunks sums its own images; the partial sums are
/// then added in chunk order.
pub fn backward_weight<T: Real>(d: &ConvDims, x: &[T], dy: &[T], dw: &mut [T], db: &mut [T]) {
    backward_weight_chunked(d, x, dy, dw, db, BATCH_CHUNKS)
}

/// [`backward_weight`] with the batch in `chunks` chunks: the only op whose result depends on the chunking
/// (through the order of its sums), so other counts give other, equally valid float32 results. The chunks run
/// in parallel; which thread runs which does not matter.
pub fn backward_weight_chunked<T: Real>(d: &ConvDims, x: &[T], dy: &[T], dw: &mut [T], db: &mut [T], chunks: usize) {
    let per = chunk_len(d.n, chunks);
    let (xs, ys) = (d.c * d.h * d.w, d.k * d.cols());
    dw.fill(T::ZERO);
    db.fill(T::ZERO);
    if xs == 0 || ys == 0 || d.n == 0 {
        return;
    }
    let parts: Vec<(Vec<T>, Vec<T>)> = x[..d.n * xs]
        .par_chunks(per * xs)
        .zip(dy[..d.n * ys].par_chunks(per * ys))
        .map(|(xc, dyc)| {
            let sub = ConvDims { n: xc.len() / xs, ..*d };
            let (mut pw, mut pb) = (vec![T::ZERO; d.k * d.rows()], vec![T::ZERO; d.k]);
            backward_weight_serial(&sub, xc, dyc, &mut pw, &mut pb);
            (pw, pb)
        })
        .collect();
    for (pw, pb) in parts {
        for (o, v) in dw.iter_mut().zip(pw) {
            *o += v;
        }
        for (o, v) in db.iter_mut().zip(pb) {
            *o += v;
        }
    }
}

/// One image of [`forward`]; `cols` is scratch of C·k² × Ho·Wo values.
fn forward_image<T: Real>(d: &ConvDims, x: &[T], w: &[T], b: &[T], y: &mut [T], cols: &mut [T]) {
    let (rows, n) = (d.rows(), d.cols());
    im2col(d, x, cols);
    for (k, row) in y.chunks_mut(n).enumerate() {
        row.fill(b[k]);
    }
    T::gemm(d.k, rows, n, w, (rows, 1), cols, (n, 1), T::ONE, y, (n, 1));
}

/// One image of [`backward_input`]; `dcols` is scratch of C·k² × Ho·Wo values.
fn backward_input_image<T: Real>(d: &ConvDims, dy: &[T], w: &[T], dx: &mut [T], dcols: &mut [T]) {
    let (rows, n) = (d.rows(), d.cols());
    T::gemm(rows, d.k, n, w, (1, rows), dy, (n, 1), T::ZERO, dcols, (n, 1));
    dx.fill(T::ZERO);
    col2im_add(d, dcols, dx);
}

/// The plain formulation of [`forward`]: im2col then one GEMM per image, on the calling thread (also the path
/// for zero-sized shapes). The fast paths are tested against it.
pub fn forward_serial<T: Real>(d: &ConvDims, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    let (hw, ohw) = (d.c * d.h * d.w, d.k * d.cols());
    let mut cols = vec![T::ZERO; d.rows() * d.cols()];
    for n in 0..d.n {
        forward_image(d, &x[n * hw..][..hw], w, b, &mut y[n * ohw..][..ohw], &mut cols);
    }
}

/// The plain formulation of [`backward_input`]: dcols = wᵀ·dy, then col2im, image after image.
pub fn backward_input_serial<T: Real>(d: &ConvDims, dy: &[T], w: &[T], dx: &mut [T]) {
    let (hw, ohw) = (d.c * d.h * d.w, d.k * d.cols());
    let mut dcols = vec![T::ZERO; d.rows() * d.cols()];
    dx.fill(T::ZERO);
    for n in 0..d.n {
        backward_input_image(d, &dy[n * ohw..][..ohw], w, &mut dx[n * hw..][..hw], &mut dcols);
    }
}

/// One chunk of [`backward_weight_chunked`]: its images' sums in order, on the calling thread.
fn backward_weight_serial<T: Real>(d: &ConvDims, x: &[T], dy: &[T], dw: &mut [T], db: &mut [T]) {
    let (hw, ohw) = (d.c * d.h * d.w, d.k * d.cols());
    dw.fill(T::ZERO);
    db.fill(T::ZERO);
    if let (true, Some(x), Some(dy)) = (fast::applies(d), T::as_f32(x), T::as_f32(dy))
        && let (Some(dw), Some(db)) = (T::as_f32_mut(dw), T::as_f32_mut(db))
    {
        for n in 0..d.n {
            fast::backward_weight_image(d, &x[n * hw..][..hw], &dy[n * ohw..][..ohw], dw, db);
        }
        return;
    }
    backward_weight_plain(d, x, dy, dw, db);
}

/// The plain formulation of one chunk of [`backward_weight`]: per image im2col then dw += dy·colsᵀ (GEMM),
/// db += Σ dy; dw and db are not cleared.
pub fn backward_weight_plain<T: Real>(d: &ConvDims, x: &[T], dy: &[T], dw: &mut [T], db: &mut [T]) {
    let (rows, hw, ohw) = (d.rows(), d.c * d.h * d.w, d.k * d.cols());
    let mut cols = vec![T::ZERO; rows * d.cols()];
    for n in 0..d.n {
        im2col(d, &x[n * hw..][..hw], &mut cols);
        let dyn_ = &dy[n * ohw..][..ohw];
        T::gemm(d.k, d.cols(), rows, dyn_, (d.cols(), 1), &cols, (1, d.cols()), T::ONE, dw, (rows, 1));
        for (k, row) in dyn_.chunks(d.cols()).enumerate() {
            let mut s = T::ZERO;
            for &g in row {
                s += g;
            }
            db[k] += s;
        }
    }
}
