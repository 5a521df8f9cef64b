// ReLU forward/backward and the bias gradient (a sum over everything but the channel axis).
//
// The sample CNN's ReLUs run fused into the GEMM epilogues (RELU/MASK in matmul.wgsl, conv2d.wgsl and
// pool.wgsl); these standalone kernels serve the unfused `relu`/`relu_backward` ops. With a member axis they
// run unchanged over every member's stacked, contiguous elements; bias_grad takes the member from workgroup z.
//
// Bounds (no runtime checks, see ShaderChecks in src/gpu/kernels.rs): relu and relu_backward touch element i
// only for i < len; bias_grad reads e < N·S of channel k < K (one workgroup per channel) and writes dst[k];
// `inner` is ≥ 1 (the launcher's shape check).

struct ElemParams {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct BiasGradParams {
    batch: u32,    // N
    channels: u32, // K
    inner: u32,    // S: elements per (n, k); 1 for a linear layer, Ho·Wo for a conv
    src_ms: u32,   // member strides of dy (0: shared) and db
    dst_ms: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: ElemParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<uniform> bp: BiasGradParams;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    // 2-D grids lift the 65535-workgroups-per-dimension limit for long vectors.
    return gid.x + gid.y * nwg.x * WG;
}

// dst = max(src, 0)
@compute @workgroup_size(WG)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    dst[i] = select(0.0, src[i], src[i] > 0.0 || src[i] != src[i]); // NaN propagates, as in PyTorch
}

// dst = dy where src > 0 (src = the ReLU output) else 0
@compute @workgroup_size(WG)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    dst[i] = select(0.0, dy[i], src[i] > 0.0);
}

const RW: u32 = 256u;
var<workgroup> part: array<f32, RW>;

// dst[k] = Σ_{n,s} src[(n·K + k)·S + s]: one workgroup per channel k (workgroup_id.x) and member
// (workgroup_id.z), a strided partial sum per thread, then a tree in workgroup memory; the order is fixed, so
// the result is deterministic and a member's equals its solo run's.
@compute @workgroup_size(RW)
fn bias_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let k = wid.x;
    let s0 = wid.z * bp.src_ms;
    let total = bp.batch * bp.inner;
    var s = 0.0;
    for (var e = lid.x; e < total; e += RW) {
        let n = e / bp.inner;
        s += src[s0 + (n * bp.channels + k) * bp.inner + e % bp.inner];
    }
    part[lid.x] = s;
    workgroupBarrier();
    for (var half = RW / 2u; half > 0u; half /= 2u) {
        if (lid.x < half) { part[lid.x] += part[lid.x + half]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { dst[wid.z * bp.dst_ms + k] = part[0]; }
}
