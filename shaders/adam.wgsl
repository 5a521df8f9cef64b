// Multi-tensor torch.optim.Adam / AdamW (single-tensor formulation) over a packed set, exactly
// Backend::adam_update, f32 in this order:
//   g = clip(grad)                                  (as sgd.wgsl)
//   if weight_decay ≠ 0: param = param·decay_factor (AdamW)  or  g = g + weight_decay·param (Adam)
//   exp_avg    = lerp(exp_avg, g, 1 − beta1)        (torch.lerp's two-sided formula)
//   exp_avg_sq = beta2·exp_avg_sq + ((1 − beta2)·g)·g
//   v = amsgrad ? (max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq)) : exp_avg_sq
//   param = param − (step_size·exp_avg) / (sqrt(v) / bias_correction2_sqrt + eps)
// step_size, bias_correction2_sqrt, decay_factor and the weights 1 − beta1, 1 − beta2 (one_minus_beta1/2) are
// computed per step by the host in f64, as PyTorch does in Python floats (1.0 − beta2 formed here in f32 would be
// 1.3e-5 off for beta2 = 0.999 and bias every step: AdamGroup in src/optim/hyper.rs). One dispatch for all
// tensors, laid out as in sgd.wgsl (segment table, consecutive workgroups), and for every member as in sgd.wgsl
// (workgroup z = member, block `hyper[member]`, frozen members write nothing).
//
// Bounds (no runtime checks, see ShaderChecks in src/gpu/kernels.rs): as sgd.wgsl — a terminating search
// inside arrayLength(segs), k < len of the segment, host-checked member block, group and norm slot.

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

struct AdamGroup {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,
    bias_correction2_sqrt: f32,
    decay_factor: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    _pad0: u32,
    _pad1: u32,
}

struct AdamHyper {
    clip: ClipParams,
    amsgrad: u32,
    decoupled: u32,
    frozen: u32,
    _pad0: u32,
    group: array<AdamGroup, 8>,
}

// Member strides (elements); workgroup z = member. Member m's parameters and state are the packed set at
// m·set_ms, its gradients at m·grad_ms (0: one gradient set shared), its norms at m·norms_ms.
struct MemberParams {
    set_ms: u32,
    grad_ms: u32,
    norms_ms: u32,
    _pad0: u32,
}

struct Segment {
    offset: u32,
    len: u32,
    group: u32,
    first_wg: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> hyper: array<AdamHyper, 64>;
@group(0) @binding(1) var<storage, read> segs: array<Segment>;
@group(0) @binding(2) var<storage, read> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(6) var<storage, read_write> exp_avg_sq: array<f32>;
// Not touched unless amsgrad (the host binds a placeholder then).
@group(0) @binding(7) var<storage, read_write> max_exp_avg_sq: array<f32>;
@group(0) @binding(8) var<uniform> mp: MemberParams;

fn segment(wid: u32) -> Segment {
    var lo = 0u;
    var hi = arrayLength(&segs) - 1u;
    while (lo < hi) {
        let mid = (lo + hi + 1u) / 2u;
        if (segs[mid].first_wg <= wid) { lo = mid; } else { hi = mid - 1u; }
    }
    return segs[lo];
}

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

// torch.lerp for a scalar weight: exact at w = 0 and at w = 1.
fn torch_lerp(start: f32, end: f32, w: f32) -> f32 {
    if (abs(w) < 0.5) { return start + w * (end - start); }
    return end - (end - start) * (1.0 - w);
}

@compute @workgroup_size(WG)
fn adam_update(
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
    var p = param[i];
    if (h.weight_decay != 0.0) {
        if (hyper[member].decoupled != 0u) { p = p * h.decay_factor; } else { g = g + h.weight_decay * p; }
    }
    let m = torch_lerp(exp_avg[i], g, h.one_minus_beta1);
    exp_avg[i] = m;
    var v = h.beta2 * exp_avg_sq[i] + (h.one_minus_beta2 * g) * g;
    exp_avg_sq[i] = v;
    if (hyper[member].amsgrad != 0u) {
        // torch.maximum keeps a NaN from either side.
        let mx = max_exp_avg_sq[i];
        if (v != v || v > mx) { max_exp_avg_sq[i] = v; } else { v = mx; }
    }
    let denom = sqrt(v) / h.bias_correction2_sqrt + h.eps;
    param[i] = p - (h.step_size * m) / denom;
}
