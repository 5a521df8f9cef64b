// Fused softmax cross-entropy (loss and dlogits in one pass) and the evaluation counters.
//
// Numerically stable: every row is shifted by its maximum before exp, so exp never overflows and
// logsumexp = m + log Σ exp(z − m). The batch mean needs a reduction over rows, so both entries run as a
// single workgroup (N is a batch, L = 10): a strided loop over rows, then a fixed-order tree, so the loss
// is deterministic. The loss goes to losses[cursor.loss_slot], read back in bulk by the host.
//
// Member axis: workgroup z = member; member m reads its logits at m·logits_ms (0: shared), writes its dlogits
// at m·dlogits_ms and its loss to losses[m·out_ms + cursor.loss_slot] (eval: acc[m·out_ms + 0, 1]). Labels are
// shared: row n of every member reads labels[n].
//
// Bounds (no runtime checks, see ShaderChecks in src/gpu/kernels.rs): rows r < n, classes l < L; a label is
// clamped below L (the model's last width is the data's class count, so this never changes a valid label; it
// keeps a bad one inside its row); the tree works on WG ≤ 256 partials; the slot is < the losses' length
// (host-checked).

struct XentParams {
    n: u32,
    l: u32,
    logits_ms: u32,
    dlogits_ms: u32,
    out_ms: u32, // losses (softmax_xent) or acc (eval_accumulate)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// The backend's cursor uniform: op arguments that change every step without creating a buffer per value.
struct Cursor {
    batch_offset: u32,
    loss_slot: u32,
    norm_slot: u32,
    _pad0: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: XentParams;
@group(0) @binding(1) var<uniform> cursor: Cursor;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<storage, read_write> losses: array<f32>;
@group(0) @binding(6) var<storage, read_write> acc: array<f32>;

var<workgroup> part: array<f32, WG>;
var<workgroup> hits: array<u32, WG>;

// Where the workgroup's member's logits start.
var<private> z0: u32;

fn row_max(base: u32) -> f32 {
    var m = logits[z0 + base];
    for (var l = 1u; l < p.l; l++) { m = max(m, logits[z0 + base + l]); }
    return m;
}

fn row_sum_exp(base: u32, m: f32) -> f32 {
    var s = 0.0;
    for (var l = 0u; l < p.l; l++) { s += exp(logits[z0 + base + l] - m); }
    return s;
}

fn reduce(lid: u32) {
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            part[lid] += part[lid + half];
            hits[lid] += hits[lid + half];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(WG)
fn softmax_xent(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    z0 = wid.z * p.logits_ms;
    let d0 = wid.z * p.dlogits_ms;
    let nf = f32(p.n);
    var total = 0.0;
    for (var r = lid.x; r < p.n; r += WG) {
        let base = r * p.l;
        let y = min(labels[r], p.l - 1u);
        let m = row_max(base);
        let s = row_sum_exp(base, m);
        total += (m + log(s)) - logits[z0 + base + y];
        for (var l = 0u; l < p.l; l++) {
            let sm = exp(logits[z0 + base + l] - m) / s;
            dlogits[d0 + base + l] = (sm - select(0.0, 1.0, l == y)) / nf;
        }
    }
    part[lid.x] = total;
    hits[lid.x] = 0u;
    reduce(lid.x);
    if (lid.x == 0u) { losses[wid.z * p.out_ms + cursor.loss_slot] = part[0] / nf; }
}

// acc[0] += Σ_n (logsumexp(z_n) − z_n[y_n]), acc[1] += #{n : argmax z_n = y_n} (first maximum wins).
@compute @workgroup_size(WG)
fn eval_accumulate(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    z0 = wid.z * p.logits_ms;
    var total = 0.0;
    var count = 0u;
    for (var r = lid.x; r < p.n; r += WG) {
        let base = r * p.l;
        let y = min(labels[r], p.l - 1u);
        let m = row_max(base);
        total += (m + log(row_sum_exp(base, m))) - logits[z0 + base + y];
        var best = 0u;
        for (var l = 1u; l < p.l; l++) {
            if (logits[z0 + base + l] > logits[z0 + base + best]) { best = l; }
        }
        count += select(0u, 1u, best == y);
    }
    part[lid.x] = total;
    hits[lid.x] = count;
    reduce(lid.x);
    if (lid.x == 0u) {
        let a0 = wid.z * p.out_ms;
        acc[a0] += part[0];
        acc[a0 + 1u] += f32(hits[0]);
    }
}
