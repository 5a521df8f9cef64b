// k×k convolution with stride s and zero padding p, as implicit GEMM: no im2col buffer, each tile element is
// gathered from the NCHW tensors on the fly. MODE (override) picks the product:
//
//   MODE 0 forward          y[n,k,i,j]  rows k,  cols (n,i,j), reduce (c,u,v)   A = w,  B = x[n,c,i·s−p+u,j·s−p+v]
//   MODE 1 backward-input   dx[n,c,h,w] rows c,  cols (n,h,w), reduce (k,u,v)   A = w,  B = dy[n,k,i,j] where
//                                                                               i·s−p+u = h, j·s−p+v = w (else 0)
//   MODE 2 backward-weight  dw[k,c,u,v] rows k,  cols (c,u,v), reduce (n,i,j)   A = dy, B = x[n,c,i·s−p+u,j·s−p+v]
// (x reads outside the image are the zero padding.) MODE 1 with s > 1 runs over every (k,u,v) and drops the
// terms whose i is not whole: simple, and only the strided layers pay for it.
//
// Tiles sized per layer. A workgroup of 16×16 threads computes a BM × BN = 16·TM × 16·TN output tile, each
// thread TM × TN outputs in registers (in groups of up to 4 consecutive rows and columns, see VA, VB);
// TM, TN are override constants the launcher picks from the product's shape: 8×8 per thread (128×128) where
// there are more than 64 rows, 4×8 (64×128) for a 64-row product such as the sample CNN's conv2 forward, 2×8
// (32×128) for 32 rows, and a narrow 2×1 (32×16) for an output as small as conv1's weight gradient (32×9),
// which a 64×64 tile would leave 93% empty.
//
// The k loop runs over 8-deep slices, double-buffered in workgroup memory with one barrier per slice: while
// the threads multiply slice i out of one buffer, the global loads of slice i + 1 are already in flight into
// registers, and are stored into the other buffer after the multiply. Two buffers of BK·(BM + BN) floats
// are 16·16·(TM + TN) ≤ 4096 floats: every tile fits WebGPU's default 16 KiB of workgroup memory.
// Workgroup memory holds vec4s, and the multiply reads each thread's rows and columns as whole vectors (its
// TM rows are groups of up to 4 consecutive rows, likewise its TN columns): for an 8×8 thread, 4 vector reads
// per 64 fmas instead of 16 scalar ones. The slices are laid out [BK][BM] (A, its row groups swizzled by the
// depth, `a_at`) and [BK][BN] (B), and stay conflict-free both ways: the stores of a warp fill 32 distinct banks,
// and a warp's vector reads are two A vectors (its two values of lid.y, broadcast) and 16 consecutive B ones.
// Every output still sums its k terms one at a time in ascending k (one fma per term into its register), so
// the tile shape and slice depth change no result: each variant equals every other bit for bit.
//
// MODE 2 has a tiny output (K × C·k²) and a long reduction (N·Ho·Wo), so it is split over workgroup z like
// matmul.wgsl and summed by matmul.wgsl's reduce_splits; its output is plain row-major, i.e. dw's layout.
//
// Member axis (populations): workgroup z = member·splits + split (splits = 1 outside MODE 2's split), and member
// m's a, b, epilogue operand and output start at m·(their member stride), 0 for an input every member shares.
// The loops are the solo kernel's, so member m's result is bit for bit the solo conv on member m's data.
//
// No division in the loads. A thread loads the same B column in every k-slice, so the column's part of the
// address (divisions by runtime sizes: slow on GPUs, emulated per lane on CPU rasterizers) is computed once
// per thread. The reduction index kk of its B loads advances by a fixed step per load (and that of its A loads
// by BK per slice), so kk is kept as mixed-radix digits (MODE 0, 1: (c or k, u, v), radices k, k; MODE 2:
// (n, i, j), radices Ho, Wo) and advanced by adding the step's digits with carries.
//
// Bounds (the module is built without naga's runtime checks, see ShaderChecks in src/gpu/kernels.rs): every
// global load is guarded (load_a: row < m and kk < k_end; load_b/load_x: the column < n, kk < k_end, and the
// image row and column inside H×W, negative values wrapping to huge u32s), stores only for row < m and
// col < n (store, the pooled store for row < m and whole windows < n), bias_sums for k < m; workgroup indices
// stay below 1024 vec4s by the tile arithmetic above (HALF ≤ 512), private arrays are indexed by loop counters
// under override bounds (TM·TN ≤ 64, LA, LB ≤ 4). Divisors are sizes the launcher checks to be non-zero
// (ho, wo, h·w, ks, hp·wp, splits) or override constants. tests/gpu_guards.rs checks all of it.

struct ConvParams {
    batch: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    ho: u32,
    wo: u32,
    ks: u32, // kernel edge k
    stride: u32,
    pad: u32,
    m: u32,
    n: u32,
    k: u32,
    k_chunk: u32,
    splits: u32,
    a_ms: u32, // member strides (elements) of a, b, the epilogue operand (bias or mask) and out
    b_ms: u32,
    e_ms: u32,
    out_ms: u32, // for split partials splits·part ([member][split][part])
    out_at: u32, // where the product starts in `out` (dw's place in a dw+db span; 0 otherwise)
    bias_at: u32, // BIAS_GRAD: where db starts in `out` (split partials: m·n, after the slice's dw)
    part: u32, // elements of one split's partial slice: m·n, plus m with BIAS_GRAD
    inner: u32, // conv2d_pool: the two pools' kernels (edge E = inner·outer) and the pooled size
    outer: u32,
    hp: u32,
    wp: u32,
    arg_ms: u32, // member stride of argmax
    _pad0: u32,
}

override MODE: u32 = 0u;
// Epilogues fusing the ReLU around a conv layer:
override RELU: bool = false; // MODE 0: y = max(·, 0) after the bias (NaN propagates, as in PyTorch)
override MASK: bool = false; // MODE 1: keep dx where binding 3 (the ReLU output that fed the conv) > 0
override BIAS_GRAD: bool = false; // MODE 2: also db, in extra workgroups (see `bias_sums`)
override POOL: bool = false; // MODE 0, entry conv2d_pool: columns enumerate pooling windows (see there)
override TM: u32 = 4u; // rows per thread: 2, 4 or 8
override TN: u32 = 4u; // columns per thread: 1, 2, 4 or 8 (TM + TN ≤ 16)

const BK: u32 = 8u;
override BM: u32 = 16u * TM;
override BN: u32 = 16u * TN;
// A slice is BM·BK = 128·TM elements: TM / 2 loads per thread, rows t/BK + 32·l.
override LA: u32 = TM / 2u;
// B slice: BK·BN = 128·TN elements: TN / 2 loads per thread (TN = 1: one, by the first 128 threads), the
// thread's column fixed at t mod BN and its kk advancing by SB = BK / LB from one load to the next (also
// across slices: LB·SB = BK).
override LB: u32 = (TN + 1u) / 2u;
override SB: u32 = BK / LB;
// A thread's outputs: TM rows in groups of VA consecutive rows (lid.y·VA + 16·VA·ii + q) and TN columns in
// groups of VB (lid.x·VB + 16·VB·jj + q), so each group is one vector read from workgroup memory.
override VA: u32 = TM - (TM / 8u) * 4u; // min(TM, 4)
override VB: u32 = TN - (TN / 8u) * 4u; // min(TN, 4)
// One buffer, in vec4s: A [BK][BM/4] (swizzled, see `a_at`) then B [BK][BN/4].
override HALF: u32 = BK * (BM + BN) / 4u;
override B_AT: u32 = BK * BM / 4u;

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Two buffers of HALF ≤ 512 vec4s (16 KiB in all), read as vec4s.
var<workgroup> tiles: array<vec4<f32>, 1024>;

// The vec4 of buffer `at` holding A's rows 4·g .. 4·g + 3 at slice depth kk. The group is XOR-swizzled with kk:
// a warp stores rows 4w..4w+3 at the 8 depths kk (its threads t mod 8), which unswizzled would land in the same
// four banks; at g ^ kk they fill all 32. A thread's reads at one depth stay one whole vec4 (the swizzle moves
// groups, not rows within one), and g ^ kk < BM/4 since BM/4 is a multiple of 8.
fn a_at(at: u32, kk: u32, g: u32) -> u32 {
    return at + kk * (BM / 4u) + (g ^ kk);
}

// Where the workgroup's member's copies of a, b and the epilogue operand start (set once per invocation).
var<private> a0: u32;
var<private> b0: u32;
var<private> e0: u32;

// A reduction index kk = (hi·R1 + mid)·R2 + lo as its digits; R1, R2 from `radices`.
struct Digits {
    hi: u32,
    mid: u32,
    lo: u32,
}

fn radices() -> vec2<u32> {
    if (MODE == 2u) { return vec2(p.ho, p.wo); } // kk = (n, i, j)
    return vec2(p.ks, p.ks); // kk = (c, u, v) or (k, u, v)
}

fn digits(v: u32) -> Digits {
    let r = radices();
    return Digits(v / (r.x * r.y), (v / r.y) % r.x, v % r.y);
}

// d + step, where step = digits(constant) has mid < R1 and lo < R2: at most one carry per digit.
fn advance(d: Digits, step: Digits) -> Digits {
    let r = radices();
    var lo = d.lo + step.lo;
    let c0 = lo >= r.y;
    lo = select(lo, lo - r.y, c0);
    var mid = d.mid + step.mid + u32(c0);
    let c1 = mid >= r.x;
    mid = select(mid, mid - r.x, c1);
    return Digits(d.hi + step.hi + u32(c1), mid, lo);
}

fn load_a(row: u32, kk: u32, d: Digits, k_end: u32) -> f32 {
    if (row >= p.m || kk >= k_end) { return 0.0; }
    switch MODE {
        case 0u: { return a[a0 + row * p.k + kk]; } // w[k=row, (c,u,v)=kk]
        case 1u: { return a[a0 + ((d.hi * p.cin + row) * p.ks + d.mid) * p.ks + d.lo]; } // w[k, c=row, u, v]
        default: { return a[a0 + ((d.hi * p.cout + row) * p.ho + d.mid) * p.wo + d.lo]; } // dy[n, k=row, i, j]
    }
}

// The per-thread part of a B column's address.
struct Col {
    base: u32,
    hh: i32,
    ww: i32,
    ok: bool,
}

fn col_info(col: u32) -> Col {
    var ci: Col;
    ci.ok = col < p.n;
    if (POOL) { // col = (n, a, b, di, dj): output (i, j) = (a·E + di, b·E + dj) of pooling window (a, b)
        let e = p.inner * p.outer;
        let win = col / (e * e);
        let at = col % (e * e);
        ci.base = (win / (p.hp * p.wp)) * p.cin * p.h * p.w;
        ci.hh = i32((((win / p.wp) % p.hp) * e + at / e) * p.stride) - i32(p.pad);
        ci.ww = i32(((win % p.wp) * e + at % e) * p.stride) - i32(p.pad);
        return ci;
    }
    switch MODE {
        case 0u: { // col = (n, i, j): x offset of [n, 0, 0, 0] and the window's top-left i·s − p, j·s − p
            let hw = p.ho * p.wo;
            ci.base = (col / hw) * p.cin * p.h * p.w;
            ci.hh = i32(((col % hw) / p.wo) * p.stride) - i32(p.pad);
            ci.ww = i32((col % p.wo) * p.stride) - i32(p.pad);
        }
        case 1u: { // col = (n, h, w): dy offset of [n, 0, 0, 0], and h + p, w + p (= i·s + u, j·s + v)
            let hw = p.h * p.w;
            ci.base = (col / hw) * p.cout * p.ho * p.wo;
            ci.hh = i32((col % hw) / p.w + p.pad);
            ci.ww = i32(col % p.w + p.pad);
        }
        default: { // col = (c, u, v): x offset of [0, c, 0, 0] and u − p, v − p
            let kk = p.ks * p.ks;
            ci.base = (col / kk) * p.h * p.w;
            ci.hh = i32((col % kk) / p.ks) - i32(p.pad);
            ci.ww = i32(col % p.ks) - i32(p.pad);
        }
    }
    return ci;
}

// x[base + (c·H + hh)·W + ww], or 0 in the padding (negative i32 → huge u32, so one compare per axis).
fn load_x(base: u32, c: u32, hh: i32, ww: i32) -> f32 {
    if (u32(hh) >= p.h || u32(ww) >= p.w) { return 0.0; }
    return b[b0 + base + (c * p.h + u32(hh)) * p.w + u32(ww)];
}

fn load_b(kk: u32, d: Digits, ci: Col, k_end: u32) -> f32 {
    if (!ci.ok || kk >= k_end) { return 0.0; }
    switch MODE {
        case 0u: { return load_x(ci.base, d.hi, ci.hh + i32(d.mid), ci.ww + i32(d.lo)); } // kk = (c, u, v)
        case 1u: { // dy[n, k, i, j] with i·s = h + p − u, j·s = w + p − v, kk = (k, u, v); zero if none
            var i = ci.hh - i32(d.mid);
            var j = ci.ww - i32(d.lo);
            if (p.stride != 1u) { // uniform branch: the sample CNN never takes it
                if (i < 0 || j < 0 || u32(i) % p.stride != 0u || u32(j) % p.stride != 0u) { return 0.0; }
                i = i32(u32(i) / p.stride);
                j = i32(u32(j) / p.stride);
            }
            if (u32(i) >= p.ho || u32(j) >= p.wo) { return 0.0; }
            return b[b0 + ci.base + (d.hi * p.ho + u32(i)) * p.wo + u32(j)];
        }
        default: { // x[n, c, i·s − p + u, j·s − p + v], kk = (n, i, j)
            let hh = i32(d.mid * p.stride) + ci.hh;
            let ww = i32(d.lo * p.stride) + ci.ww;
            return load_x(d.hi * p.cin * p.h * p.w + ci.base, 0u, hh, ww);
        }
    }
}

// `o0`: where the member's output (and, MODE 2 split, its split's slice) starts.
fn store(row: u32, col: u32, v: f32, o0: u32) {
    switch MODE {
        case 0u: {
            let hw = p.ho * p.wo;
            var y = bias[e0 + row] + v;
            if (RELU) { y = select(0.0, y, y > 0.0 || y != y); }
            out[o0 + ((col / hw) * p.cout + row) * hw + col % hw] = y;
        }
        case 1u: {
            let hw = p.h * p.w;
            let i = ((col / hw) * p.cin + row) * hw + col % hw;
            if (MASK) { out[o0 + i] = select(0.0, v, bias[e0 + i] > 0.0); } else { out[o0 + i] = v; }
        }
        default: { out[o0 + row * p.n + col] = v; }
    }
}

// The per-invocation state of the k loop: the next slice's reduction indices (as numbers and digits), the
// column of this thread's B loads, and the next slice's values fetched into registers.
var<private> ka: u32;
var<private> da: Digits;
var<private> step_a: Digits;
var<private> kb: u32;
var<private> db: Digits;
var<private> step_b: Digits;
var<private> ci: Col;
var<private> ra: array<f32, 4>;
var<private> rb: array<f32, 4>;

// Global loads of the next slice into registers (their latency overlaps the multiply of the current one).
fn fetch(row0: u32, t: u32, k_end: u32) {
    for (var l = 0u; l < LA; l++) {
        ra[l] = load_a(row0 + t / BK + 32u * l, ka, da, k_end);
    }
    ka += BK;
    if (MODE != 0u) { da = advance(da, step_a); } // MODE 0 indexes w by kk directly
    for (var l = 0u; l < LB; l++) {
        rb[l] = load_b(kb, db, ci, k_end);
        kb += SB;
        db = advance(db, step_b);
    }
}

// The fetched slice into buffer `at` (0 or HALF): A element (row t/BK + 32·l, kk t mod BK) into its swizzled
// vec4; B element e = t + 256·l (kk e / BN, column e mod BN) at float e of the B part.
fn stash(at: u32, t: u32) {
    for (var l = 0u; l < LA; l++) {
        let row = t / BK + 32u * l;
        tiles[a_at(at, t % BK, row / 4u)][row % 4u] = ra[l];
    }
    if (t < BK * BN) { // all threads unless TN = 1
        for (var l = 0u; l < LB; l++) {
            let e = t + 256u * l;
            tiles[at + B_AT + e / 4u][e % 4u] = rb[l];
        }
    }
}

// The workgroup's output tile: every sum, in this thread's registers (output (i, j) of the thread is
// acc[i·TN + j], at `out_row`, `out_col`).
fn tile_sums(lid: vec3<u32>, wid: vec3<u32>) -> array<f32, 64> {
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let member = wid.z / p.splits;
    let split = wid.z % p.splits;
    a0 = member * p.a_ms;
    b0 = member * p.b_ms;
    e0 = member * p.e_ms;
    let k_begin = split * p.k_chunk;
    let k_end = min(p.k, k_begin + p.k_chunk);
    let t = lid.y * 16u + lid.x;
    ci = col_info(col0 + t % BN);
    // A: thread t loads kk = k0 + t mod BK; B: kk = k0 + t/BN + SB·l.
    ka = k_begin + t % BK;
    da = digits(ka);
    step_a = digits(BK);
    kb = k_begin + t / BN;
    db = digits(kb);
    step_b = digits(SB);
    var acc: array<f32, 64>;
    fetch(row0, t, k_end);
    stash(0u, t);
    workgroupBarrier();
    var at = 0u; // the buffer holding the current slice
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        let more = k0 + BK < k_end; // uniform: the same for every thread of the workgroup
        if (more) { fetch(row0, t, k_end); }
        for (var kk = 0u; kk < BK; kk++) {
            var ar: array<f32, 8>;
            var br: array<f32, 8>;
            // Whole-vector reads: a thread's group of rows (columns) is a whole vec4, or the half (for VB = 1 the
            // component) of one that a select picks — never a component index that varies by thread, which a
            // driver may lower through local memory (measured on an H200: backward-input 8.9 → 13.0 TFLOP/s).
            for (var ii = 0u; ii < TM / VA; ii++) {
                let r = lid.y * VA + 16u * VA * ii; // r mod 4 = 0 (VA = 4) or 2·(lid.y mod 2) (VA = 2)
                let v = tiles[a_at(at, kk, r / 4u)];
                if (VA == 4u) {
                    for (var q = 0u; q < 4u; q++) { ar[ii * 4u + q] = v[q]; }
                } else {
                    let h = select(v.xy, v.zw, (lid.y & 1u) == 1u);
                    ar[ii * 2u] = h.x;
                    ar[ii * 2u + 1u] = h.y;
                }
            }
            for (var jj = 0u; jj < TN / VB; jj++) {
                let c = lid.x * VB + 16u * VB * jj; // c mod 4 = 0 (VB = 4), 2·(lid.x mod 2) (2), lid.x mod 4 (1)
                let v = tiles[at + B_AT + kk * (BN / 4u) + c / 4u];
                if (VB == 4u) {
                    for (var q = 0u; q < 4u; q++) { br[jj * 4u + q] = v[q]; }
                } else if (VB == 2u) {
                    let h = select(v.xy, v.zw, (lid.x & 1u) == 1u);
                    br[jj * 2u] = h.x;
                    br[jj * 2u + 1u] = h.y;
                } else {
                    let s = lid.x & 3u;
                    br[jj] = select(select(v.x, v.y, s == 1u), select(v.z, v.w, s == 3u), s >= 2u);
                }
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i * TN + j] = fma(ar[i], br[j], acc[i * TN + j]);
                }
            }
        }
        // The other buffer was last read in the previous slice, before the barrier that ended it.
        if (more) { stash(HALF - at, t); }
        workgroupBarrier();
        at = HALF - at;
    }
    return acc;
}

// Row and column in the tile of this thread's output i (of TM) and j (of TN).
fn out_row(lid: vec3<u32>, i: u32) -> u32 {
    return lid.y * VA + 16u * VA * (i / VA) + i % VA;
}

fn out_col(lid: vec3<u32>, j: u32) -> u32 {
    return lid.x * VB + 16u * VB * (j / VB) + j % VB;
}

// BIAS_GRAD (MODE 2): the bias gradient db[k] = Σ_{n,i,j} dy[n,k,i,j] in the same dispatch as dw, by extra
// workgroups past the output tiles in x (row y = 0), each summing one channel exactly as elementwise.wgsl's
// bias_grad does — thread t over the elements t, t + 256, … of (n, i·Wo + j), then the same tree — so db is
// bit for bit the separate reduction's. dw and db are one binding (`out`, a span of the gradient set): dw at
// out_at, db at bias_at. Split, the partials are [m·n dw | m db] slices of `part`, and the channels are spread
// over the splits (extra column j of split s sums channel j·splits + s and writes 0 for the column's other
// channels in its slice), so that there are ⌈K/splits⌉ extra columns, not K, and reduce_splits' sum over the
// slices leaves each db as it is.
fn bias_sums(lid: vec3<u32>, wid: vec3<u32>, n_tiles: u32) {
    let member = wid.z / p.splits;
    let split = wid.z % p.splits;
    let j = wid.x - n_tiles;
    let k = j * p.splits + split;
    if (wid.y != 0u) { return; }
    let tail = member * p.out_ms + split * p.part + p.bias_at;
    let t = lid.y * 16u + lid.x;
    for (var other = t; other < p.splits; other += 256u) {
        let c = j * p.splits + other;
        if (other != split && c < p.m) { out[tail + c] = 0.0; }
    }
    if (k >= p.m) { return; }
    let s_len = p.ho * p.wo;
    let a0 = member * p.a_ms;
    var s = 0.0;
    for (var e = t; e < p.batch * s_len; e += 256u) {
        s += a[a0 + ((e / s_len) * p.cout + k) * s_len + e % s_len];
    }
    tiles[t / 4u][t % 4u] = s;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half /= 2u) {
        if (t < half) { tiles[t / 4u][t % 4u] += tiles[(t + half) / 4u][(t + half) % 4u]; }
        workgroupBarrier();
    }
    if (t == 0u) { out[tail + k] = tiles[0][0]; }
}

@compute @workgroup_size(16, 16, 1)
fn conv2d(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n_tiles = (p.n + BN - 1u) / BN;
    if (BIAS_GRAD && wid.x >= n_tiles) { // uniform: the whole workgroup is a bias workgroup
        bias_sums(lid, wid, n_tiles);
        return;
    }
    let acc = tile_sums(lid, wid);
    let o0 = (wid.z / p.splits) * p.out_ms + (wid.z % p.splits) * p.part + p.out_at;
    for (var i = 0u; i < TM; i++) {
        let row = wid.y * BM + out_row(lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = wid.x * BN + out_col(lid, j);
            if (row < p.m && col < p.n) { store(row, col, acc[i * TN + j], o0); }
        }
    }
}

// conv + bias + ReLU + the max-pools of an edge E = inner·outer chain (`PoolChain`), writing only the pooled
// output y [N, K, Hp, Wp] and each value's place in its E×E window (argmax, di·E + dj). The GEMM's columns
// enumerate whole pooling windows, (n, a, b, di, dj), so a tile (BN a multiple of E², the launcher's choice)
// holds whole windows; after the k loop the tile goes through workgroup memory a chunk of rows at a time, and
// one thread per (row, window) takes the maximum as the two pools would: the inner pool's first maximum (a
// later element wins only if greater, or NaN) in each inner window, then the outer pool's over those, in
// row-major order. The conv output itself is never written.
@group(0) @binding(5) var<storage, read_write> argmax: array<f32>;

@compute @workgroup_size(16, 16, 1)
fn conv2d_pool(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let acc = tile_sums(lid, wid);
    let member = wid.z;
    e0 = member * p.e_ms;
    let e = p.inner * p.outer;
    let cells = e * e;
    let wins = BN / cells; // windows per tile row
    let rc = min(BM, 4096u / BN); // tile rows per chunk of workgroup memory
    let t = lid.y * 16u + lid.x;
    for (var c0 = 0u; c0 < BM; c0 += rc) {
        workgroupBarrier(); // the k loop's or the previous chunk's reads are done
        for (var i = 0u; i < TM; i++) {
            let r = out_row(lid, i);
            let row = wid.y * BM + r;
            if (r >= c0 && r < c0 + rc && row < p.m) {
                for (var j = 0u; j < TN; j++) {
                    var y = bias[e0 + row] + acc[i * TN + j];
                    y = select(0.0, y, y > 0.0 || y != y);
                    let f = (r - c0) * BN + out_col(lid, j);
                    tiles[f / 4u][f % 4u] = y;
                }
            }
        }
        workgroupBarrier();
        for (var o = t; o < rc * wins; o += 256u) {
            let lr = o / wins;
            let win = o % wins;
            let row = wid.y * BM + c0 + lr;
            let wcol = wid.x * BN + win * cells;
            if (row >= p.m || wcol >= p.n) { continue; }
            let base = lr * BN + win * cells;
            var best = 0.0;
            var best_at = 0u;
            for (var u2 = 0u; u2 < p.outer; u2++) {
                for (var v2 = 0u; v2 < p.outer; v2++) {
                    // The inner window (u2, v2)'s winner.
                    var ib = 0.0;
                    var ib_at = 0u;
                    for (var u1 = 0u; u1 < p.inner; u1++) {
                        for (var v1 = 0u; v1 < p.inner; v1++) {
                            let at = (u2 * p.inner + u1) * e + v2 * p.inner + v1;
                            let f = base + at;
                            let v = tiles[f / 4u][f % 4u];
                            if ((u1 == 0u && v1 == 0u) || v > ib || v != v) {
                                ib = v;
                                ib_at = at;
                            }
                        }
                    }
                    if ((u2 == 0u && v2 == 0u) || ib > best || ib != ib) {
                        best = ib;
                        best_at = ib_at;
                    }
                }
            }
            let w = wcol / cells; // (n, a, b)
            let n = w / (p.hp * p.wp);
            let k = ((n * p.cout + row) * p.hp + (w / p.wp) % p.hp) * p.wp + w % p.wp;
            out[member * p.out_ms + k] = best;
            argmax[member * p.arg_ms + k] = f32(best_at);
        }
    }
}
