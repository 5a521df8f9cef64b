// k×k convolution with stride s and zero padding p, as implicit GEMM: no im2col buffer, each tile element is
// gathered from the NCHW tensors on the fly. MODE (override) picks the product; the GEMM body is the tiled,
// register-blocked loop of matmul.wgsl (16-deep k slices, 16 outputs per thread), with the tile shape set by
// TM: each thread computes TM rows × 16/TM columns, so the tile is BM × BN = 16·TM × 256/TM. TM = 4 (64×64)
// suits 64+ rows; TM = 2 (32×128) keeps a 32-row product (conv1 forward, conv2 backward-input) from
// spending half of every tile on rows that do not exist.
//
//   MODE 0 forward          y[n,k,i,j]  rows k,  cols (n,i,j), reduce (c,u,v)   A = w,  B = x[n,c,i·s−p+u,j·s−p+v]
//   MODE 1 backward-input   dx[n,c,h,w] rows c,  cols (n,h,w), reduce (k,u,v)   A = w,  B = dy[n,k,i,j] where
//                                                                               i·s−p+u = h, j·s−p+v = w (else 0)
//   MODE 2 backward-weight  dw[k,c,u,v] rows k,  cols (c,u,v), reduce (n,i,j)   A = dy, B = x[n,c,i·s−p+u,j·s−p+v]
// (x reads outside the image are the zero padding.) MODE 1 with s > 1 runs over every (k,u,v) and drops the
// terms whose i is not whole: simple, and only the strided layers pay for it.
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
// per thread. The reduction index kk of its B loads advances by exactly TM per load (and that of its A loads
// by BK per slice), so kk is kept as mixed-radix digits (MODE 0, 1: (c or k, u, v), radices k, k; MODE 2:
// (n, i, j), radices Ho, Wo) and advanced by adding the step's digits with carries.

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
    out_ms: u32, // splits·m·n for MODE 2's partials ([member][split][m·n])
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
    _pad4: u32,
}

override MODE: u32 = 0u;
// Epilogues fusing the ReLU around a conv layer:
override RELU: bool = false; // MODE 0: y = max(·, 0) after the bias (NaN propagates, as in PyTorch)
override MASK: bool = false; // MODE 1: keep dx where binding 3 (the ReLU output that fed the conv) > 0
override TM: u32 = 4u; // 2, 4 or 8 (the workgroup arrays below are sized for these)

const BK: u32 = 16u;
override TN: u32 = 16u / TM;
override BM: u32 = 16u * TM;
override BN: u32 = 16u * TN;

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// [BK][SA] (A, columns < BM used) then [BK][BN] (B): BK·(SA + BN) ≤ 2592 for TM ∈ {2, 4, 8}.
// A's rows are padded from BM to SA = BM + 2 floats: the 16 threads t..t+15 store one A row's 16 k-values,
// which at a stride of BM (a multiple of 32) would all fall in one of the 32 four-byte banks of workgroup
// memory, a 16-way conflict; at BM + 2 a warp's 32 stores (two rows of 16 k) land at 2·(t mod 16) + t/16
// (mod 32), 32 distinct banks. B is stored along its rows (t mod BN) and needs no padding. Same arithmetic,
// same results.
override SA: u32 = BM + 2u;
var<workgroup> tiles: array<f32, 2592>;

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

// `o0`: where the member's output (and, MODE 2, its split's slice) starts.
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

@compute @workgroup_size(16, 16, 1)
fn conv2d(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let member = wid.z / p.splits;
    let split = wid.z % p.splits;
    a0 = member * p.a_ms;
    b0 = member * p.b_ms;
    e0 = member * p.e_ms;
    let o0 = member * p.out_ms + split * p.m * p.n;
    let k_begin = split * p.k_chunk;
    let k_end = min(p.k, k_begin + p.k_chunk);
    let t = lid.y * 16u + lid.x;
    let ci = col_info(col0 + t % BN);
    let tb = BK * SA; // where the B slice starts in `tiles`
    // A: this thread loads rows row0 + t/BK + 16·l at kk = k0 + t mod BK (the tile's element e = t + 256·l
    // sits at [e mod BK][e / BK]). B: column t mod BN at kk = k0 + t/BN + TM·l (element e at [e / BN][e mod
    // BN]; BN divides 256 and 256/BN = TM), and since TN·TM = BK the next slice continues the same
    // progression: kk steps by TM from one B load to the next.
    var ka = k_begin + t % BK;
    var da = digits(ka);
    let step_a = digits(BK);
    var kb = k_begin + t / BN;
    var db = digits(kb);
    let step_b = digits(TM);
    var acc: array<f32, 16>;
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        for (var l = 0u; l < TM; l++) { // BK·BM = 256·TM elements of A
            tiles[(t % BK) * SA + t / BK + 16u * l] = load_a(row0 + t / BK + 16u * l, ka, da, k_end);
        }
        ka += BK;
        if (MODE != 0u) { da = advance(da, step_a); } // MODE 0 indexes w by kk directly
        for (var l = 0u; l < TN; l++) { // BK·BN = 256·TN elements of B
            tiles[tb + (t / BN + TM * l) * BN + t % BN] = load_b(kb, db, ci, k_end);
            kb += TM;
            db = advance(db, step_b);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var ar: array<f32, 8>;
            var br: array<f32, 8>;
            for (var i = 0u; i < TM; i++) {
                ar[i] = tiles[kk * SA + lid.y + 16u * i];
            }
            for (var j = 0u; j < TN; j++) {
                br[j] = tiles[tb + kk * BN + lid.x + 16u * j];
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i * TN + j] = fma(ar[i], br[j], acc[i * TN + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < TM; i++) {
        let row = row0 + lid.y + 16u * i;
        for (var j = 0u; j < TN; j++) {
            let col = col0 + lid.x + 16u * j;
            if (row < p.m && col < p.n) { store(row, col, acc[i * TN + j], o0); }
        }
    }
}
