// Multi-tensor torch.optim.SGD over a packed set, exactly Backend::sgd_update:
//   g = clip(grad)   (by norm: g·min(1, max_norm·(1/(norm + 1e-6))); by value: clamp to ±value)
//   if weight_decay ≠ 0: g = g + weight_decay·param
//   if momentum ≠ 0: buf = g (first use) or momentum·buf + (1 − dampening)·g;  g = g + momentum·buf (nesterov) or buf
//   param = param − lr·g
// One dispatch covers every tensor: param, grad and buf are whole packed buffers (same layout), and the segment
// table says which elements are tensor t's and which group's hyper-parameters apply. Workgroups are numbered
// consecutively over the tensors (tensor t owns workgroups [first_wg, first_wg + ⌈len/WG⌉)), so no workgroup
// idles; the hyper-parameters come from a uniform the host rewrites each step, so a scheduler never rebuilds a
// pipeline or a bind group.
//
// Member axis (populations): workgroup z = member m, which reads hyper-parameter block m (the uniform declares
// MAX_MEMBERS = 64 blocks; the host writes as many as there are members) and updates element m·set_ms + offset
// + k with the solo arithmetic; a block with frozen ≠ 0 returns before writing anything, so a member that has
// stopped keeps its parameters and momentum bit for bit. The segment table is member 0's, shared by all.
//
// Bounds (no runtime checks, see ShaderChecks in src/gpu/kernels.rs): the segment search stays within
// arrayLength(segs) and ends (the interval halves each pass); element k < len of its segment; the member's
// block is < MAX_MEMBERS and its group < MAX_GROUPS (host-checked); the norm slot is host-checked.

struct ClipParams {
    max_norm: f32,
    value: f32,
    use_norm: u32,
    use_value: u32,
    norm_slot: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct SgdGroup {
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    nesterov: u32,
    init_momentum: u32,
    _pad0: u32,
    _pad1: u32,
}

struct SgdHyper {
    clip: ClipParams,
    frozen: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    group: array<SgdGroup, 8>,
}

// Member strides (elements); workgroup z = member. Member m's parameters and state are the packed set at
// m·set_ms, its gradients at m·grad_ms (0: one gradient set shared), its norms at m·norms_ms.
struct MemberParams {
    set_ms: u32,
    grad_ms: u32,
    norms_ms: u32,
    _pad0: u32,
}

// Tensor t of the packed set: elements [offset, offset + len) of the pack, in group `group`.
struct Segment {
    offset: u32,
    len: u32,
    group: u32,
    first_wg: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> hyper: array<SgdHyper, 64>;
@group(0) @binding(1) var<storage, read> segs: array<Segment>;
@group(0) @binding(2) var<storage, read> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(5) var<storage, read_write> buf: array<f32>;
@group(0) @binding(6) var<uniform> mp: MemberParams;

// The last segment whose first workgroup is ≤ wid (segments are sorted by first_wg; an empty tensor shares its
// first_wg with the next one, and the later one wins).
fn segment(wid: u32) -> Segment {
    var lo = 0u;
    var hi = arrayLength(&segs) - 1u;
    while (lo < hi) {
        let mid = (lo + hi + 1u) / 2u;
        if (segs[mid].first_wg <= wid) { lo = mid; } else { hi = mid - 1u; }
    }
    return segs[lo];
}

// clip_grad_norm_'s coefficient: PyTorch evaluates max_norm / (norm + 1e-6) as reciprocal then multiply, and
// clamps to 1 keeping a NaN; then clip_grad_value_'s clamp, which passes a NaN through.
fn clipped(g0: f32, c: ClipParams, member: u32) -> f32 {
    var g = g0;
    if (c.use_norm != 0u) {
        let coef = (1.0 / (norms[member * mp.norms_ms + c.norm_slot] + 1e-6)) * c.max_norm;
        g = g * select(coef, 1.0, coef > 1.0);
    }
    if (c.use_value != 0u) {
        g = select(select(g, c.value, g > c.value), -c.value, g < -c.value);
    }
    return g;
}

@compute @workgroup_size(WG)
fn sgd_update(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let member = wg.z;
    if (hyper[member].frozen != 0u) { return; }
    let wid = wg.x + wg.y * nwg.x;
    let s = segment(wid);
    let k = (wid - s.first_wg) * WG + lid;
    if (k >= s.len) { return; }
    let i = member * mp.set_ms + s.offset + k;
    let h = hyper[member].group[s.group];
    var g = clipped(grad[member * mp.grad_ms + s.offset + k], hyper[member].clip, member);
    if (h.weight_decay != 0.0) { g = g + h.weight_decay * param[i]; }
    if (h.momentum != 0.0) {
        var b = g;
        if (h.init_momentum == 0u) { b = h.momentum * buf[i] + (1.0 - h.dampening) * g; }
        buf[i] = b;
        if (h.nesterov != 0u) { g = g + h.momentum * b; } else { g = b; }
    }
    param[i] = param[i] - h.lr * g;
}
