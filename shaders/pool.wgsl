// 2×2 max-pool, stride 2, floor (odd trailing rows/columns are dropped), and its backward.
//
// Tie rule (PyTorch's): scan the window in row-major order and move to a later element only if it is
// strictly greater or NaN, so the first maximum wins and a NaN propagates. Backward recomputes the
// window's winner from x instead of storing indices: one thread per dx element, no scatter, no atomics.

struct PoolParams {
    planes: u32, // N·C
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WG: u32 = 256u;
// Backward through a ReLU too (x being the ReLU's output): dx only where x > 0, PyTorch's ReLU gradient.
override MASK: bool = false;

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// Index 0..3 (row-major) of the winner of the window whose top-left element is x[base].
fn winner(base: u32) -> u32 {
    let offs = array<u32, 4>(0u, 1u, p.w, p.w + 1u);
    var best = x[base];
    var arg = 0u;
    for (var q = 1u; q < 4u; q++) {
        let v = x[base + offs[q]];
        if (v > best || v != v) {
            best = v;
            arg = q;
        }
    }
    return arg;
}

@compute @workgroup_size(WG)
fn maxpool2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let ohw = p.ho * p.wo;
    if (i >= p.planes * ohw) { return; }
    let plane = i / ohw;
    let oi = (i % ohw) / p.wo;
    let oj = i % p.wo;
    let base = (plane * p.h + 2u * oi) * p.w + 2u * oj;
    let q = winner(base);
    y[i] = x[base + (q / 2u) * p.w + q % 2u];
}

@compute @workgroup_size(WG)
fn maxpool2_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let hw = p.h * p.w;
    if (i >= p.planes * hw) { return; }
    let plane = i / hw;
    let hh = (i % hw) / p.w;
    let ww = i % p.w;
    let oi = hh / 2u;
    let oj = ww / 2u;
    if (oi >= p.ho || oj >= p.wo) {
        dx[i] = 0.0; // dropped by the floor: no window covers it
        return;
    }
    let q = winner((plane * p.h + 2u * oi) * p.w + 2u * oj);
    let mine = (hh % 2u) * 2u + ww % 2u;
    dx[i] = select(0.0, dy[(plane * p.ho + oi) * p.wo + oj], q == mine && (!MASK || x[i] > 0.0));
}
