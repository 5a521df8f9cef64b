// Tiled SGEMM for the linear layers: C[M,N] = op(A)·op(B) (+ bias[col]), f32.
//
// One body serves the three products a linear layer needs; the operand layouts are override constants, so
// the branches fold away when the pipeline is created:
//   forward          y  = x·wᵀ + b   A = x [M,K],            B = w stored [N,K]  (TRANS_B)
//   backward-input   dx = dy·w       A = dy [M,K],           B = w [K,N]
//   backward-weight  dw = dyᵀ·x      A = dy stored [K,M] (TRANS_A), B = x [K,N]
//
// Tiles: 64×64 outputs per workgroup of 16×16 threads, 16-deep k slices in workgroup memory, and 4×4
// outputs per thread held in registers (register blocking: each value read from workgroup memory is used
// 4 times). A thread's outputs are strided by 16 so that neighbouring threads store neighbouring columns.
//
// Split-K: workgroup z reduces k in [z·k_chunk, min(K, (z+1)·k_chunk)) and stores its partial product at
// c[z·M·N ..]; `reduce_splits` then sums the slices in a fixed order (deterministic, no atomics). Small
// outputs with a long K (dw of a layer, batch-128 forward of fc1) otherwise occupy only a few workgroups.
//
// Member axis (populations): workgroup z = member·splits + split, and every operand of member m starts at
// m·(its member stride) — 0 for an input all members share (the batch x). The tile loop is the same for every
// member and the split count depends on one member's sizes only, so member m's result is bit for bit the solo
// product of its operands. Split partials are laid out [member][split][M·N] (c_ms = splits·M·N), which is just
// slice z, and reduce_splits sums each member's slices into its own output.
//
// Bounds (no runtime checks, see ShaderChecks in src/gpu/kernels.rs): loads are guarded (row < m, col < n,
// kk < k_end), stores only for row < m and col < n, bias_sums for row < m, reduce_splits for t < len·members;
// workgroup arrays are indexed below BK·SA = 1056; divisors are non-zero sizes (len ≥ 1 by max) or constants.

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    k_chunk: u32,
    splits: u32,
    a_ms: u32, // member strides (elements) of a, b, the epilogue operand and c
    b_ms: u32,
    e_ms: u32,
    c_ms: u32,
    c_at: u32, // where the product starts in c (dw's place in a dw+db span; 0 otherwise)
    bias_at: u32, // BIAS_GRAD: where db starts in c (split partials: m·n, after the slice's dw)
    part: u32, // elements of one split's partial slice: m·n, plus m with BIAS_GRAD
}

struct ReduceParams {
    len: u32, // one member's outputs
    n: u32,
    splits: u32,
    members: u32,
    e_ms: u32,
    out_ms: u32,
    head_at: u32, // element i < tail goes to c[member·out_ms + head_at + i] …
    tail: u32, // … and i ≥ tail (a dw+db partial's db part) to c[member·out_ms + tail_at + i − tail]
    tail_at: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override TRANS_A: bool = false; // A stored [K, M] instead of [M, K]
override TRANS_B: bool = false; // B stored [N, K] instead of [K, N]
override HAS_BIAS: bool = false; // add bias[col] (never in a split partial: the reduction adds it once)
// Epilogues fusing a ReLU layer (never in a split partial either; reduce_splits applies them):
override RELU: bool = false; // forward: max(·, 0) after the bias (NaN propagates, as in PyTorch)
override MASK: bool = false; // backward: keep c[i] only where binding 3 (the ReLU's output, shaped like c) > 0
// Backward-weight (TRANS_A): also the bias gradient db[row] = Σ_k dy[k, row], in the same dispatch, by extra
// workgroups past the output tiles in x (see `bias_sums`). dw and db are one binding (c, a span of the
// gradient set): dw at c_at, db at bias_at; split partials are [m·n dw | m db] slices of `part` elements.
override BIAS_GRAD: bool = false;
override WG: u32 = 256u; // workgroup size of reduce_splits

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> rp: ReduceParams;
@group(0) @binding(6) var<storage, read> parts: array<f32>;

// Rows of the tiles are padded from 64 to SA = 66 floats. Without TRANS_A, the 16 threads t..t+15 store one A
// row's 16 k-values, i.e. addresses 64 apart: all in one of the 32 four-byte banks of workgroup memory, a
// 16-way conflict (TRANS_B does the same to B). With a stride of 66 a warp's 32 stores (two rows of 16 k)
// land at 2·(t mod 16) + t/16: 32 distinct banks. The reads (lid.x or lid.y + 16·i within a row) and the
// other layout's stores (consecutive within a row) stay conflict-free. Same arithmetic, same results.
const SA: u32 = 66u;
var<workgroup> ta: array<f32, 1056>; // [BK][SA], columns < BM used
var<workgroup> tb: array<f32, 1056>; // [BK][SA], columns < BN used

// Where the workgroup's member's copies of a and b start (set once per invocation).
var<private> a0: u32;
var<private> b0: u32;

// Out-of-range elements read as 0 so partial tiles (M, N or K not multiples of the tile) need no other care.
fn load_a(row: u32, kk: u32, k_end: u32) -> f32 {
    if (row >= p.m || kk >= k_end) { return 0.0; }
    if (TRANS_A) { return a[a0 + kk * p.m + row]; }
    return a[a0 + row * p.k + kk];
}

fn load_b(kk: u32, col: u32, k_end: u32) -> f32 {
    if (col >= p.n || kk >= k_end) { return 0.0; }
    if (TRANS_B) { return b[b0 + col * p.k + kk]; }
    return b[b0 + kk * p.n + col];
}

// BIAS_GRAD: the extra workgroups past the tiles sum db[row] = Σ_k a[k·M + row] exactly as elementwise.wgsl's
// bias_grad does (thread t over k = t, t + 256, …, then the same tree), so db is bit for bit the separate
// reduction's. Split, the rows are spread over the splits as in conv2d.wgsl's `bias_sums` (extra column j of
// split s sums row j·splits + s and writes 0 for the column's other rows in its slice).
fn bias_sums(lid: vec3<u32>, wid: vec3<u32>, n_tiles: u32) {
    let member = wid.z / p.splits;
    let split = wid.z % p.splits;
    let j = wid.x - n_tiles;
    let row = j * p.splits + split;
    if (wid.y != 0u) { return; }
    let tail = member * p.c_ms + split * p.part + p.bias_at;
    let t = lid.y * 16u + lid.x;
    for (var other = t; other < p.splits; other += 256u) {
        let r = j * p.splits + other;
        if (other != split && r < p.m) { c[tail + r] = 0.0; }
    }
    if (row >= p.m) { return; }
    let a0 = member * p.a_ms;
    var s = 0.0;
    for (var k = t; k < p.k; k += 256u) { s += a[a0 + k * p.m + row]; }
    ta[t] = s;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half /= 2u) {
        if (t < half) { ta[t] += ta[t + half]; }
        workgroupBarrier();
    }
    if (t == 0u) { c[tail + row] = ta[0]; }
}

@compute @workgroup_size(16, 16, 1)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n_tiles = (p.n + BN - 1u) / BN;
    if (BIAS_GRAD && wid.x >= n_tiles) { // uniform: the whole workgroup is a bias workgroup
        bias_sums(lid, wid, n_tiles);
        return;
    }
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let member = wid.z / p.splits;
    let split = wid.z % p.splits;
    a0 = member * p.a_ms;
    b0 = member * p.b_ms;
    let e0 = member * p.e_ms;
    let k_begin = split * p.k_chunk;
    let k_end = min(p.k, k_begin + p.k_chunk);
    let t = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        // 1024 elements per tile, 4 per thread; the thread→element map follows the contiguous global
        // dimension of each operand so that a warp's reads coalesce.
        for (var l = 0u; l < 4u; l++) {
            let e = t + 256u * l;
            var r = e / BK;
            var ka = e % BK;
            if (TRANS_A) { ka = e / BM; r = e % BM; }
            ta[ka * SA + r] = load_a(row0 + r, k0 + ka, k_end);
            var cb = e % BN;
            var kb = e / BN;
            if (TRANS_B) { cb = e / BK; kb = e % BK; }
            tb[kb * SA + cb] = load_b(k0 + kb, col0 + cb, k_end);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ar[i] = ta[kk * SA + lid.y + 16u * i];
                br[i] = tb[kk * SA + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(ar[i], br[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    let base = member * p.c_ms + split * p.part + p.c_at;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if (row < p.m && col < p.n) {
                c[base + row * p.n + col] = epilogue(acc[i * 4u + j], row * p.n + col, col, e0);
            }
        }
    }
}

// The bias and ReLU epilogues of output element i (column col); the member's operand starts at e0.
fn epilogue(acc: f32, i: u32, col: u32, e0: u32) -> f32 {
    var v = acc;
    if (HAS_BIAS) { v = bias[e0 + col] + v; }
    if (RELU) { v = select(0.0, v, v > 0.0 || v != v); }
    if (MASK) { v = select(0.0, v, bias[e0 + i] > 0.0); }
    return v;
}

// Over every member's outputs (index t = member·len + i): c[member·out_ms + head_at + i] = epilogue(Σ_z parts[(member·splits
// + z)·len + i]), slices summed in order z = 0, 1, …
@compute @workgroup_size(WG)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * WG;
    let member = t / max(rp.len, 1u);
    let i = t % max(rp.len, 1u);
    if (t >= rp.len * rp.members) { return; }
    let first = member * rp.splits * rp.len + i;
    var s = 0.0;
    for (var z = 0u; z < rp.splits; z++) {
        s += parts[first + z * rp.len];
    }
    let o = select(rp.head_at + i, rp.tail_at + i - rp.tail, i >= rp.tail);
    c[member * rp.out_ms + o] = epilogue(s, i, i % rp.n, member * rp.e_ms);
}
