// Fused softmax cross-entropy (loss and dlogits in one pass) and the evaluation counters.
//
// Numerically stable: every row is shifted by its maximum before exp, so exp never overflows and
// logsumexp = m + log Σ exp(z − m). The batch mean needs a reduction over rows, so both entries run as a
// single workgroup (N is a batch, L = 10): a strided loop over rows, then a fixed-order tree, so the loss
// is deterministic. The loss goes to losses[cursor.loss_slot], read back in bulk by the host.

struct XentParams {
    n: u32,
    l: u32,
    _pad0: u32,
    _pad1: u32,
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

fn row_max(base: u32) -> f32 {
    var m = logits[base];
    for (var l = 1u; l < p.l; l++) { m = max(m, logits[base + l]); }
    return m;
}

fn row_sum_exp(base: u32, m: f32) -> f32 {
    var s = 0.0;
    for (var l = 0u; l < p.l; l++) { s += exp(logits[base + l] - m); }
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
fn softmax_xent(@builtin(local_invocation_id) lid: vec3<u32>) {
    let nf = f32(p.n);
    var total = 0.0;
    for (var r = lid.x; r < p.n; r += WG) {
        let base = r * p.l;
        let y = labels[r];
        let m = row_max(base);
        let s = row_sum_exp(base, m);
        total += (m + log(s)) - logits[base + y];
        for (var l = 0u; l < p.l; l++) {
            let sm = exp(logits[base + l] - m) / s;
            dlogits[base + l] = (sm - select(0.0, 1.0, l == y)) / nf;
        }
    }
    part[lid.x] = total;
    hits[lid.x] = 0u;
    reduce(lid.x);
    if (lid.x == 0u) { losses[cursor.loss_slot] = part[0] / nf; }
}

// acc[0] += Σ_n (logsumexp(z_n) − z_n[y_n]), acc[1] += #{n : argmax z_n = y_n} (first maximum wins).
@compute @workgroup_size(WG)
fn eval_accumulate(@builtin(local_invocation_id) lid: vec3<u32>) {
    var total = 0.0;
    var count = 0u;
    for (var r = lid.x; r < p.n; r += WG) {
        let base = r * p.l;
        let y = labels[r];
        let m = row_max(base);
        total += (m + log(row_sum_exp(base, m))) - logits[base + y];
        var best = 0u;
        for (var l = 1u; l < p.l; l++) {
            if (logits[base + l] > logits[base + best]) { best = l; }
        }
        count += select(0u, 1u, best == y);
    }
    part[lid.x] = total;
    hits[lid.x] = count;
    reduce(lid.x);
    if (lid.x == 0u) {
        acc[0] += part[0];
        acc[1] += f32(hits[0]);
    }
}
