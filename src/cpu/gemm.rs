//! The f32 matrix product of the CPU backend: `c = a·b + beta·c` over strided row-major operands.
//!
//! [`naive`] is the definition (one dot product per output element, k ascending). [`sgemm`] computes the same
//! sums blocked the BLIS way on x86-64 (packed 6×k panels of `a`, k×16 panels of `b`, k in blocks of at most
//! [`KC`]); elsewhere it calls `matrixmultiply`. Each output element is still one dot product in k order — fused
//! multiply-adds within a k-block, the blocks' sums added to `c` in order — so the result depends on the shapes
//! only, never on threads or on where a tile falls; its distance from [`naive`] is float32 rounding, bounded by
//! the usual k·ε·Σ|a·b| (tests/cpu_fast.rs).
//!
//! Two micro-kernels run the blocked product, chosen once per process ([`isa`]): AVX-512F where the CPU has it
//! (`super::gemm_avx512`: 12×32 register tiles, two `a` panels times two `b` panels in 24 of the 32 zmm
//! registers), else AVX2+FMA (`super::gemm_avx2`: 6×16 tiles in 12 ymm registers). Both run the same packed
//! panels, the same k-blocks and the same fused multiply-adds per element in the same order, and hand the 6×16
//! tiles to the epilogue in the same sequence, so they give the same bits (tests/cpu_fast.rs compares them);
//! AVX-512 only does more of them per instruction. `WGTRAIN_CPU_ISA=avx2` forces the AVX2 kernel (to measure it on an
//! AVX-512 machine); `avx512` or unset picks the best the CPU has.

use std::cell::RefCell;

/// Rows of the register tile.
pub const MR: usize = 6;
/// Columns of the register tile (two 8-lane vectors).
pub const NR: usize = 16;
/// Most depth of one k-block: a 6×KC panel of `a` and a KC×16 panel of `b` (30 KB) stay in L1 together.
pub const KC: usize = 320;
/// Rows of `a` packed per block (in L2).
pub(super) const MC: usize = 168;
/// Columns of `b` packed per block.
pub(super) const NC: usize = 2048;

/// The definition: `c[i,j] = Σ_p a[i,p]·b[p,j] + beta·c[i,j]` (p ascending; with beta = 0, `c` is not read).
/// Strides are (row, column).
#[allow(clippy::too_many_arguments)]
pub fn naive(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_s: (usize, usize),
    b: &[f32],
    b_s: (usize, usize),
    beta: f32,
    c: &mut [f32],
    c_s: (usize, usize),
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f32;
            for p in 0..k {
                s += a[i * a_s.0 + p * a_s.1] * b[p * b_s.0 + j * b_s.1];
            }
            let o = &mut c[i * c_s.0 + j * c_s.1];
            *o = if beta == 0.0 { s } else { beta * *o + s };
        }
    }
}

/// `c = a·b + beta·c` (with beta = 0, `c` is not read), on the kernel of [`isa`]. The caller guarantees every
/// strided access lies inside the slices (as [`super::real`] checks).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_s: (usize, usize),
    b: &[f32],
    b_s: (usize, usize),
    beta: f32,
    c: &mut [f32],
    c_s: (usize, usize),
) {
    sgemm_on(isa(), m, k, n, a, a_s, b, b_s, beta, c, c_s)
}

/// [`sgemm`] on a given kernel: `Some(isa)` the blocked product on that instruction set (panics unless
/// [`Isa::available`]), `None` `matrixmultiply` (what runs without AVX2). For tests and benchmarks that compare
/// the paths on one machine.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_on(
    isa: Option<Isa>,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_s: (usize, usize),
    b: &[f32],
    b_s: (usize, usize),
    beta: f32,
    c: &mut [f32],
    c_s: (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    if let Some(isa) = isa {
        return blocked_strided(isa, m, k, n, a, a_s, b, b_s, beta, c, c_s);
    }
    // SAFETY: the caller proved every strided access lies inside the slices; c does not alias a or b.
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
            beta,
            c.as_mut_ptr(),
            c_s.0 as isize,
            c_s.1 as isize,
        );
    }
}

thread_local! {
    /// Packing buffers of this thread (the pool's threads live for the process: no allocation per call).
    pub(super) static PACK: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `c ← beta·c + t` for one element, the one update rule of every tile (beta 0: c is not read).
#[inline(always)]
fn update(c: &mut f32, t: f32, beta: f32) {
    *c = if beta == 0.0 {
        t
    } else if beta == 1.0 {
        *c + t
    } else {
        beta * *c + t
    };
}

/// The k-blocks of a product of depth k: as few as fit [`KC`], of equal size (the last one possibly shorter).
/// A function of k alone, so the order of every sum is fixed by the shapes.
pub fn k_blocks(k: usize) -> impl Iterator<Item = (usize, usize)> {
    let per = k.div_ceil(k.div_ceil(KC).max(1)).max(1);
    (0..k).step_by(per).map(move |p0| (p0, per.min(k - p0)))
}

/// One finished register tile: rows [i, i+rows) × columns [j, j+cols) of the product's k-block [p0, p0+kc);
/// `first`/`last`: whether this is the first/last k-block. `t[r][q]` holds Σ a[i+r, p]·b[p, j+q] over the block.
pub struct Tile<'a> {
    pub i: usize,
    pub rows: usize,
    pub j: usize,
    pub cols: usize,
    pub first: bool,
    pub last: bool,
    pub t: &'a [[f32; NR]; MR],
}

/// An instruction set the blocked product has a micro-kernel for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F: 12×32 register tiles (`super::gemm_avx512`).
    Avx512,
    /// AVX2 and FMA: 6×16 register tiles.
    Avx2,
}

impl Isa {
    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                // The AVX-512 driver still packs b with the AVX2 transposes (`transpose_runs`).
                Isa::Avx512 => has!("avx512f") && has!("avx2") && has!("fma"),
                Isa::Avx2 => has!("avx2") && has!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }

    /// The kernel for `request` (the value of `WGTRAIN_CPU_ISA`, if set) on this CPU: the best available
    /// unless `avx2` is asked for; `None` without AVX2 and FMA. A request the CPU cannot run, or an unknown
    /// value, falls back to the best available with a warning (a benchmark should not silently measure
    /// something else, nor a training run fail over a tuning knob).
    pub fn choose(request: Option<&str>) -> Option<Isa> {
        let best = [Isa::Avx512, Isa::Avx2].into_iter().find(|i| i.available());
        let wanted = match request.map(|r| r.trim().to_ascii_lowercase()) {
            None => return best,
            Some(r) if r.is_empty() || r == "auto" => return best,
            Some(r) if r == "avx512" => Isa::Avx512,
            Some(r) if r == "avx2" => Isa::Avx2,
            Some(r) => {
                log::warn!("{ISA_ENV}={r:?} is not one of avx512, avx2, auto; using {best:?}");
                return best;
            }
        };
        if wanted.available() {
            Some(wanted)
        } else {
            log::warn!("{ISA_ENV} asks for {wanted:?}, which this CPU lacks; using {best:?}");
            best
        }
    }
}

/// The environment variable that can force the AVX2 kernel on an AVX-512 CPU (see [`Isa::choose`]).
pub const ISA_ENV: &str = "WGTRAIN_CPU_ISA";

/// The kernel of [`blocked`] and [`sgemm`] in this process: [`Isa::choose`] of `WGTRAIN_CPU_ISA`, decided on
/// the first call and kept (feature detection and the variable are read once, not per product).
pub fn isa() -> Option<Isa> {
    static CHOICE: std::sync::OnceLock<Option<Isa>> = std::sync::OnceLock::new();
    *CHOICE.get_or_init(|| Isa::choose(std::env::var(ISA_ENV).ok().as_deref()))
}

/// Whether [`blocked`] can run here (x86-64 with AVX2 and FMA, at least).
pub fn fast_available() -> bool {
    isa().is_some()
}

/// The blocked product with caller-supplied operands and epilogue: `pack_a(i, rows, p0, kc, panel)` writes
/// a[i.., p0..] as `panel[p·MR + r]` (r < rows ≤ MR, p < kc), `pack_b(p0, kc, j, cols, panel)` writes
/// b[p0.., j..] as `panel[p·NR + q]` (q < cols ≤ NR); the rest of each panel is zero. `store` receives every
/// tile of every k-block, k-blocks in order ([`k_blocks`]), so an element's sum is the blocks' tiles added in
/// order; within a k-block, column panel by column panel, each one's row panels in order (the same sequence on
/// every kernel). Runs on [`isa`]; panics unless [`fast_available`].
pub fn blocked(
    m: usize,
    k: usize,
    n: usize,
    pack_a: impl Fn(usize, usize, usize, usize, &mut [f32]),
    pack_b: impl Fn(usize, usize, usize, usize, &mut [f32]),
    store: impl FnMut(&Tile),
) {
    let isa = isa().expect("the blocked GEMM needs AVX2 and FMA");
    blocked_on(isa, m, k, n, pack_a, pack_b, store)
}

/// [`blocked`] on a given kernel; panics unless `isa` is [`Isa::available`].
pub fn blocked_on(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    pack_a: impl Fn(usize, usize, usize, usize, &mut [f32]),
    pack_b: impl Fn(usize, usize, usize, usize, &mut [f32]),
    store: impl FnMut(&Tile),
) {
    assert!(isa.available(), "this CPU cannot run the {isa:?} GEMM kernel");
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: the CPU has AVX-512F, AVX2 and FMA (asserted above).
        Isa::Avx512 => unsafe { super::gemm_avx512::blocked(m, k, n, pack_a, pack_b, store) },
        // SAFETY: the CPU has AVX2 and FMA (asserted above).
        Isa::Avx2 => unsafe { super::gemm_avx2::blocked(m, k, n, pack_a, pack_b, store) },
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (m, k, n, pack_a, pack_b, store);
}

/// Resize `buf` to the panels of `len` rows/columns (`width` per panel, depth kc) and fill each by
/// `pack(panel index, live width, panel)`, zeroing a partial panel first.
pub(super) fn fill_panels(
    buf: &mut Vec<f32>,
    len: usize,
    width: usize,
    kc: usize,
    pack: impl Fn(usize, usize, &mut [f32]),
) {
    let panels = len.div_ceil(width);
    buf.resize(panels * kc * width, 0.0);
    for (t, panel) in buf[..panels * kc * width].chunks_exact_mut(kc * width).enumerate() {
        let live = width.min(len - t * width);
        if live < width {
            panel.fill(0.0);
        }
        pack(t, live, panel);
    }
    buf.truncate(panels * kc * width);
}

/// Rows [i, i+rows) × depth [p0, p0+kc) of a strided matrix as an A panel.
#[inline]
pub fn pack_a_strided(a: &[f32], a_s: (usize, usize), i: usize, rows: usize, p0: usize, kc: usize, panel: &mut [f32]) {
    if a_s.1 == 1 && rows == MR {
        // A whole panel from contiguous rows: walk the panel in order, one value of each row per step, so the
        // writes are sequential (the row-by-row loop below writes every 6th value, ~5% of a training step).
        let src: [&[f32]; MR] = std::array::from_fn(|r| &a[(i + r) * a_s.0 + p0..][..kc]);
        for (p, dst) in panel[..kc * MR].chunks_exact_mut(MR).enumerate() {
            for (d, s) in dst.iter_mut().zip(&src) {
                *d = s[p];
            }
        }
        return;
    }
    for r in 0..rows {
        let base = (i + r) * a_s.0 + p0 * a_s.1;
        if a_s.1 == 1 {
            for (p, &v) in a[base..base + kc].iter().enumerate() {
                panel[p * MR + r] = v;
            }
        } else {
            for p in 0..kc {
                panel[p * MR + r] = a[base + p * a_s.1];
            }
        }
    }
}

/// `panel[(o + t)·NR + q] = src[starts[q] + t]` for q < cols, t < len: `cols` runs of `len` contiguous values
/// laid side by side (a transpose). 8×8 blocks go through AVX registers where available.
#[inline]
pub fn transpose_runs(src: &[f32], starts: &[usize; NR], cols: usize, len: usize, panel: &mut [f32], o: usize) {
    let mut t0 = 0;
    #[cfg(target_arch = "x86_64")]
    if fast_available() {
        for &s in &starts[..cols] {
            assert!(s + len <= src.len(), "transpose source out of bounds");
        }
        assert!((o + len) * NR <= panel.len(), "transpose destination out of bounds");
        // SAFETY: AVX2 is present; every read lies in src and every write in panel (asserted above).
        t0 = unsafe { super::gemm_avx2::transpose8(src, starts, cols, len, panel, o) };
    }
    for q in 0..cols {
        for t in t0..len {
            panel[(o + t) * NR + q] = src[starts[q] + t];
        }
    }
}

/// `dst[..len] = src[..len]` for the short runs of the packing loops (≤ 16 values): fixed-size moves the
/// compiler inlines, instead of a call to memmove per run.
#[inline(always)]
pub fn copy_short(dst: &mut [f32], src: &[f32]) {
    let len = dst.len();
    let src = &src[..len];
    let mut t = 0;
    while t + 8 <= len {
        dst[t..t + 8].copy_from_slice(&src[t..t + 8]);
        t += 8;
    }
    if t + 4 <= len {
        dst[t..t + 4].copy_from_slice(&src[t..t + 4]);
        t += 4;
    }
    while t < len {
        dst[t] = src[t];
        t += 1;
    }
}

/// Depth [p0, p0+kc) × columns [j, j+cols) of a strided matrix as a B panel.
#[inline]
pub fn pack_b_strided(b: &[f32], b_s: (usize, usize), p0: usize, kc: usize, j: usize, cols: usize, panel: &mut [f32]) {
    if b_s.1 == 1 {
        for (p, dst) in panel.chunks_exact_mut(NR).enumerate() {
            let src = (p0 + p) * b_s.0 + j;
            copy_short(&mut dst[..cols], &b[src..src + cols]);
        }
    } else if b_s.0 == 1 {
        let mut starts = [0; NR];
        for (q, s) in starts.iter_mut().enumerate().take(cols) {
            *s = p0 + (j + q) * b_s.1;
        }
        transpose_runs(b, &starts, cols, kc, panel, 0);
    } else {
        for q in 0..cols {
            let base = p0 * b_s.0 + (j + q) * b_s.1;
            for p in 0..kc {
                panel[p * NR + q] = b[base + p * b_s.0];
            }
        }
    }
}

/// [`sgemm`] on the blocked path.
#[allow(clippy::too_many_arguments)]
fn blocked_strided(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_s: (usize, usize),
    b: &[f32],
    b_s: (usize, usize),
    beta: f32,
    c: &mut [f32],
    c_s: (usize, usize),
) {
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                update(&mut c[i * c_s.0 + j * c_s.1], 0.0, beta);
            }
        }
        return;
    }
    blocked_on(
        isa,
        m,
        k,
        n,
        |i, rows, p0, kc, panel| pack_a_strided(a, a_s, i, rows, p0, kc, panel),
        |p0, kc, j, cols, panel| pack_b_strided(b, b_s, p0, kc, j, cols, panel),
        |t| {
            // The first k-block applies beta; the later ones add their sums to c.
            let beta = if t.first { beta } else { 1.0 };
            let at = t.i * c_s.0 + t.j * c_s.1;
            for (r, tr) in t.t.iter().enumerate().take(t.rows) {
                if c_s.1 == 1 {
                    for (o, &v) in c[at + r * c_s.0..][..t.cols].iter_mut().zip(tr) {
                        update(o, v, beta);
                    }
                } else {
                    for (q, &v) in tr.iter().enumerate().take(t.cols) {
                        update(&mut c[at + r * c_s.0 + q * c_s.1], v, beta);
                    }
                }
            }
        },
    );
}
