// 3×3 valid convolution, stride 1, as implicit GEMM: no im2col buffer, each tile element is gathered from
// the NCHW tensors on the fly. MODE (override) picks the product; the GEMM body is the tiled, register-
// blocked loop of matmul.wgsl (16-deep k slices, 16 outputs per thread), with the tile shape set by TM:
// each thread computes TM rows × 16/TM columns, so the tile is BM × BN = 16·TM × 256/TM. TM = 4 (64×64)
// suits 64+ rows; TM = 2 (32×128) keeps a 32-row product (conv1 forward, conv2 backward-input) from
// spending half of every tile on rows that do not exist.
//
//   MODE 0 forward          y[n,k,i,j]  rows k,  cols (n,i,j), reduce (c,u,v)   A = w,  B = x
//   MODE 1 backward-input   dx[n,c,h,w] rows c,  cols (n,h,w), reduce (k,u,v)   A = w,  B = dy (shifted, zero outside)
//   MODE 2 backward-weight  dw[k,c,u,v] rows k,  cols (c,u,v), reduce (n,i,j)   A = dy, B = x
//
// MODE 2 has a tiny output (K × C·9) and a long reduction (N·Ho·Wo), so it is split over workgroup z like
// matmul.wgsl and summed by matmul.wgsl's reduce_splits; its output is plain row-major, i.e. dw's layout.

struct ConvParams {
    batch: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    ho: u32,
    wo: u32,
    m: u32,
    n: u32,
    k: u32,
    k_chunk: u32,
    _pad0: u32,
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

// [BK][BM] then [BK][BN]: BK·(BM + BN) ≤ 2560 for TM ∈ {2, 4, 8}.
var<workgroup> tiles: array<f32, 2560>;

fn load_a(row: u32, kk: u32, k_end: u32) -> f32 {
    if (row >= p.m || kk >= k_end) { return 0.0; }
    switch MODE {
        case 0u: { return a[row * p.k + kk]; } // w[k=row, (c,u,v)=kk]
        case 1u: { return a[((kk / 9u) * p.cin + row) * 9u + kk % 9u]; } // w[k, c=row, u, v]
        default: { // dy[n, k=row, i, j], kk = (n, i·wo + j)
            let hw = p.ho * p.wo;
            return a[((kk / hw) * p.cout + row) * hw + kk % hw];
        }
    }
}

// A thread loads the same B column in every k-slice (col = col0 + t mod BN), so the part of the address
// that needs divisions by runtime sizes (slow on GPUs and emulated per lane on CPU rasterizers) is computed
// once per thread; per element only divisions by the constants 9 and 3 remain (modes 0 and 1).
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
        case 0u: { // col = (n, i, j): x offset of [n, 0, i, j]
            let hw = p.ho * p.wo;
            ci.base = (col / hw) * p.cin * p.h * p.w + ((col % hw) / p.wo) * p.w + col % p.wo;
        }
        case 1u: { // col = (n, h, w): dy offset of [n, 0, 0, 0] and the position
            let hw = p.h * p.w;
            ci.base = (col / hw) * p.cout * p.ho * p.wo;
            ci.hh = i32((col % hw) / p.w);
            ci.ww = i32(col % p.w);
        }
        default: { // col = (c, u, v): x offset of [0, c, u, v]
            ci.base = (col / 9u) * p.h * p.w + ((col % 9u) / 3u) * p.w + col % 3u;
        }
    }
    return ci;
}

fn load_b(kk: u32, ci: Col, k_end: u32) -> f32 {
    if (!ci.ok || kk >= k_end) { return 0.0; }
    switch MODE {
        case 0u: { // x[n, c, i+u, j+v], kk = (c,u,v)
            return b[ci.base + ((kk / 9u) * p.h + (kk % 9u) / 3u) * p.w + kk % 3u];
        }
        case 1u: { // dy[n, k, h−u, w−v], kk = (k,u,v); zero outside dy
            let i = ci.hh - i32((kk % 9u) / 3u);
            let j = ci.ww - i32(kk % 3u);
            if (i < 0 || j < 0 || i >= i32(p.ho) || j >= i32(p.wo)) { return 0.0; }
            return b[ci.base + ((kk / 9u) * p.ho + u32(i)) * p.wo + u32(j)];
        }
        default: { // x[n, c, i+u, j+v], kk = (n,i,j)
            let hw = p.ho * p.wo;
            let r = kk % hw;
            return b[(kk / hw) * p.cin * p.h * p.w + (r / p.wo) * p.w + r % p.wo + ci.base];
        }
    }
}

fn store(row: u32, col: u32, v: f32, z: u32) {
    switch MODE {
        case 0u: {
            let hw = p.ho * p.wo;
            var y = bias[row] + v;
            if (RELU) { y = select(0.0, y, y > 0.0 || y != y); }
            out[((col / hw) * p.cout + row) * hw + col % hw] = y;
        }
        case 1u: {
            let hw = p.h * p.w;
            let i = ((col / hw) * p.cin + row) * hw + col % hw;
            if (MASK) { out[i] = select(0.0, v, bias[i] > 0.0); } else { out[i] = v; }
        }
        default: { out[z * p.m * p.n + row * p.n + col] = v; }
    }
}

@compute @workgroup_size(16, 16, 1)
fn conv2d(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let k_begin = wid.z * p.k_chunk;
    let k_end = min(p.k, k_begin + p.k_chunk);
    let t = lid.y * 16u + lid.x;
    let ci = col_info(col0 + t % BN);
    let tb = BK * BM; // where the B slice starts in `tiles`
    var acc: array<f32, 16>;
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        for (var l = 0u; l < TM; l++) { // BK·BM = 256·TM elements of A
            let e = t + 256u * l;
            tiles[(e % BK) * BM + e / BK] = load_a(row0 + e / BK, k0 + e % BK, k_end);
        }
        for (var l = 0u; l < TN; l++) { // BK·BN = 256·TN elements of B
            let e = t + 256u * l; // BN divides 256, so e mod BN = t mod BN: the column in `ci`
            tiles[tb + (e / BN) * BN + e % BN] = load_b(k0 + e / BN, ci, k_end);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var ar: array<f32, 8>;
            var br: array<f32, 8>;
            for (var i = 0u; i < TM; i++) {
                ar[i] = tiles[kk * BM + lid.y + 16u * i];
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
            if (row < p.m && col < p.n) { store(row, col, acc[i * TN + j], wid.z); }
        }
    }
}
