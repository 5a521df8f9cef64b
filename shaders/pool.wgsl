// Max-pool with a kernel×kernel window every `stride` elements, floor mode (trailing rows/columns no window
// covers are dropped), no padding; and its backward.
//
// Tie rule (PyTorch's): scan the window in row-major order and move to a later element only if it is
// strictly greater or NaN, so the first maximum wins and a NaN propagates. Backward recomputes each window's
// winner from x instead of storing indices, and is a gather: one thread per dx element sums dy over the
// windows that contain it and that it wins, in row-major window order (PyTorch's CPU backward adds in that
// order too). Overlapping windows (stride < kernel) therefore need no scatter and no atomics.
//
// Bounds (no runtime checks, see ShaderChecks in src/gpu/kernels.rs): one thread per output (i < planes·ho·wo)
// or per dx element (i < planes·h·w); window reads stay inside the plane since floor mode only makes windows
// that fit (oi·stride + u < h); the backward's window ranges are clamped to [0, ho) × [0, wo); kernel, stride
// and sizes are ≥ 1 (the launcher's geometry check).

struct PoolParams {
    planes: u32, // N·C
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    kernel: u32,
    stride: u32,
    _pad0: u32,
}

override WG: u32 = 256u;
// Backward through a ReLU too (x being the ReLU's output): dx only where x > 0, PyTorch's ReLU gradient.
override MASK: bool = false;

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// Index in x of the winner of the window whose top-left element is x[base].
fn winner(base: u32) -> u32 {
    var arg = base;
    var best = x[base];
    for (var u = 0u; u < p.kernel; u++) {
        for (var v = 0u; v < p.kernel; v++) {
            let i = base + u * p.w + v;
            let val = x[i];
            if (val > best || val != val) {
                best = val;
                arg = i;
            }
        }
    }
    return arg;
}

@compute @workgroup_size(WG)
fn max_pool2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let ohw = p.ho * p.wo;
    if (i >= p.planes * ohw) { return; }
    let plane = i / ohw;
    let oi = (i % ohw) / p.wo;
    let oj = i % p.wo;
    y[i] = x[winner((plane * p.h + oi * p.stride) * p.w + oj * p.stride)];
}

// The output positions along one axis whose window covers input position `pos`: o·stride ≤ pos <
// o·stride + kernel, within [0, out). Returns [first, last + 1).
fn covering(pos: u32, out: u32) -> vec2<u32> {
    var lo = 0u;
    if (pos + 1u > p.kernel) { lo = (pos + 1u - p.kernel + p.stride - 1u) / p.stride; }
    return vec2(lo, min(pos / p.stride + 1u, out));
}

@compute @workgroup_size(WG)
fn max_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let hw = p.h * p.w;
    if (i >= p.planes * hw) { return; }
    let plane = i / hw;
    let rows = covering((i % hw) / p.w, p.ho);
    let cols = covering(i % p.w, p.wo);
    var g = 0.0;
    for (var oi = rows.x; oi < rows.y; oi++) {
        for (var oj = cols.x; oj < cols.y; oj++) {
            if (winner((plane * p.h + oi * p.stride) * p.w + oj * p.stride) == i) {
                g += dy[(plane * p.ho + oi) * p.wo + oj];
            }
        }
    }
    dx[i] = select(0.0, g, !MASK || x[i] > 0.0);
}

// The backward of conv2d.wgsl's conv2d_pool (a ReLU and a chain of pools with edge E = p.kernel): one thread
// per dx element of the conv output (h × w) sends it dy of its pooling window if it is the window's argmax and
// the pooled value is > 0 (the ReLU), else 0 — the two pools' backward and the ReLU mask in one gather.
@group(0) @binding(5) var<storage, read> pooled: array<f32>;
@group(0) @binding(6) var<storage, read> arg: array<f32>;

@compute @workgroup_size(WG)
fn pool_chain_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let hw = p.h * p.w;
    if (i >= p.planes * hw) { return; }
    let e = p.kernel;
    let plane = i / hw;
    let r = (i % hw) / p.w;
    let c = i % p.w;
    let a = r / e;
    let b = c / e;
    var g = 0.0;
    var keep = false;
    if (a < p.ho && b < p.wo) {
        let k = (plane * p.ho + a) * p.wo + b;
        if (u32(arg[k]) == (r - a * e) * e + (c - b * e)) {
            g += dy[k];
            keep = pooled[k] > 0.0;
        }
    }
    dx[i] = select(0.0, g, keep);
}
