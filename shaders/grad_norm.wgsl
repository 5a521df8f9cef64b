// Global L2 norm of a packed set of gradients in two dispatches with a fixed summation order (deterministic):
//   grad_norm_partials: workgroup w sums the squares of elements [w·WG·ITEMS, (w+1)·WG·ITEMS) of the whole
//                       packed buffer (the gaps between tensors are zero), each thread ITEMS of them at stride
//                       WG, then a tree over the workgroup → partials[w];
//   grad_norm_finish:   one workgroup sums the partials (thread t: t, t + WG, …, then a tree) and writes
//                       sqrt(total) to norms[cursor.norm_slot].
// The slot comes from the backend's cursor uniform, so a ring of norm slots creates no buffer per slot.
//
// Member axis: workgroup z = member in both passes. Member m's set is elements [m·grads_ms, m·grads_ms + len)
// (0: one set shared), its partials are partials[m·partials ..], its norm goes to
// norms[m·norms_ms + cursor.norm_slot]; the same ranges and order as a solo run, so the same bits.
//
// Bounds (no runtime checks, see ShaderChecks in src/gpu/kernels.rs): partials read element i < len of the
// member's set and write wid < partials; the finish pass reads j < partials; the slot is < the norms' length
// (the host checks every slot it writes into the cursor).

struct NormParams {
    len: u32,       // f32 values in one member's packed set
    partials: u32,  // workgroups of the first pass, per member
    grads_ms: u32,
    norms_ms: u32,
}

struct Cursor {
    batch_offset: u32,
    loss_slot: u32,
    norm_slot: u32,
    _pad0: u32,
}

const WG: u32 = 256u;
const ITEMS: u32 = 16u;

@group(0) @binding(0) var<uniform> p: NormParams;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<uniform> cursor: Cursor;
@group(0) @binding(4) var<storage, read> partials_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> norms: array<f32>;

var<workgroup> part: array<f32, WG>;

fn tree(lid: u32) {
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) { part[lid] += part[lid + half]; }
        workgroupBarrier();
    }
}

@compute @workgroup_size(WG)
fn grad_norm_partials(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Workgroups past the last partial (a 2-D grid rounds up) add nothing and write nothing.
    let wid = wg.x + wg.y * nwg.x;
    let base = wid * WG * ITEMS;
    var s = 0.0;
    if (wid < p.partials) {
        for (var j = 0u; j < ITEMS; j++) {
            let i = base + j * WG + lid;
            if (i < p.len) {
                let v = grads[wg.z * p.grads_ms + i];
                s += v * v;
            }
        }
    }
    part[lid] = s;
    tree(lid);
    if (lid == 0u && wid < p.partials) { partials[wg.z * p.partials + wid] = part[0]; }
}

@compute @workgroup_size(WG)
fn grad_norm_finish(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let first = wg.z * p.partials;
    var s = 0.0;
    for (var j = lid; j < p.partials; j += WG) { s += partials_in[first + j]; }
    part[lid] = s;
    tree(lid);
    if (lid == 0u) { norms[wg.z * p.norms_ms + cursor.norm_slot] = sqrt(part[0]); }
}
