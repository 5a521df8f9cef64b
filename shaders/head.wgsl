// The classifier head of a training step — last linear layer, softmax cross-entropy, and the layer's backward —
// in two dispatches instead of four (linear forward, softmax_xent, backward-weight with the bias, backward-input).
//
//   head_forward  workgroup = R rows of the batch (× member z): the rows' logits z = b + x·wᵀ, their softmax
//                 cross-entropy (each row's loss term, and dz = (softmax − onehot)/N), and their dx = dz·w,
//                 masked where x ≤ 0 when MASK (x is then the ReLU output that fed the layer). Everything a row
//                 needs is the row's own, so the rows split over workgroups freely.
//   head_weights  what sums over the whole batch: dw = dzᵀ·x (one output per thread), db = Σ_n dz (one
//                 workgroup per class), and the batch loss from the rows' terms (the first workgroup).
//
// Same arithmetic as the ops it replaces, term for term and in the same order: each logit, dx and dw element
// is one fma per term in ascending order from 0 (matmul.wgsl's inner loop), the bias added after (its
// epilogue); the softmax and loss formulas are softmax_xent.wgsl's; db and the loss sum the rows as
// elementwise.wgsl's bias_grad and softmax_xent.wgsl do (thread t: rows t, t + 256, …, then the same tree). So the fused head equals the unfused ops bit for bit wherever those do not split k
// (tests/gpu_head.rs); the launcher falls back to them for more than LMAX classes or a bias outside the
// weight's gradient set (dw and db are written through one binding spanning both).
//
// Member axis: workgroup z = member; every operand at its member stride (0 for the shared batch, labels shared).
//
// Bounds (no runtime checks, see ShaderChecks in src/gpu/kernels.rs): head_forward handles rows < min(R, n −
// r0) and outputs o < rows·l or rows·i; zs holds R·LMAX ≤ 1024 values (the launcher takes the fused path only
// for l ≤ LMAX); head_weights computes one dw element per thread below l·i, db for class < l, the loss in the
// first workgroup; labels are clamped below l as in softmax_xent.wgsl.

struct HeadParams {
    n: u32, // rows (batch)
    l: u32, // classes (≤ LMAX)
    i: u32, // in-features
    has_dx: u32, // 0 when the layer is the model's first (no dx wanted)
    x_ms: u32, // member strides (elements)
    w_ms: u32,
    b_ms: u32,
    logits_ms: u32,
    dlogits_ms: u32,
    rows_ms: u32, // the row-loss scratch: n per member
    dx_ms: u32,
    out_ms: u32, // losses
    dwb_ms: u32, // the span holding dw and db
    w_at: u32, // where dw and db start in that span
    b_at: u32,
    _pad0: u32,
}

// The backend's cursor uniform (see softmax_xent.wgsl).
struct Cursor {
    batch_offset: u32,
    loss_slot: u32,
    norm_slot: u32,
    _pad0: u32,
}

override MASK: bool = false;

const WG: u32 = 256u;
const R: u32 = 16u; // rows per head_forward workgroup
const LMAX: u32 = 64u; // classes: [R][LMAX] logits fit in workgroup memory

@group(0) @binding(0) var<uniform> p: HeadParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> logits: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(7) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;
// head_weights reads what head_forward wrote (as read-only bindings of the same buffers) and writes the rest.
@group(0) @binding(9) var<uniform> cursor: Cursor;
@group(0) @binding(10) var<storage, read> dz: array<f32>;
@group(0) @binding(11) var<storage, read> row_terms: array<f32>;
@group(0) @binding(12) var<storage, read_write> dwb: array<f32>;
@group(0) @binding(13) var<storage, read_write> losses: array<f32>;

var<workgroup> zs: array<f32, 1024>; // [R][LMAX]: the block's logits, then its dlogits
var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn head_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let member = wid.z;
    let r0 = wid.x * R;
    let rows = min(R, p.n - r0);
    let x0 = member * p.x_ms;
    let w0 = member * p.w_ms;
    // 1. The block's logits, one output per thread.
    for (var o = lid.x; o < rows * p.l; o += WG) {
        let r = o / p.l;
        let l = o % p.l;
        var acc = 0.0;
        for (var k = 0u; k < p.i; k++) {
            acc = fma(x[x0 + (r0 + r) * p.i + k], w[w0 + l * p.i + k], acc);
        }
        let z = bias[member * p.b_ms + l] + acc;
        zs[r * LMAX + l] = z;
        logits[member * p.logits_ms + (r0 + r) * p.l + l] = z;
    }
    workgroupBarrier();
    // 2. Each row's softmax cross-entropy (softmax_xent.wgsl's formulas), one row per thread.
    if (lid.x < rows) {
        let r = lid.x;
        let base = r * LMAX;
        let y = min(labels[r0 + r], p.l - 1u);
        var m = zs[base];
        for (var l = 1u; l < p.l; l++) { m = max(m, zs[base + l]); }
        var s = 0.0;
        for (var l = 0u; l < p.l; l++) { s += exp(zs[base + l] - m); }
        row_loss[member * p.rows_ms + r0 + r] = (m + log(s)) - zs[base + y];
        let nf = f32(p.n);
        for (var l = 0u; l < p.l; l++) {
            let d = (exp(zs[base + l] - m) / s - select(0.0, 1.0, l == y)) / nf;
            zs[base + l] = d; // only this row's own entries, each read above for the last time
            dlogits[member * p.dlogits_ms + (r0 + r) * p.l + l] = d;
        }
    }
    workgroupBarrier();
    // 3. The block's dx = dz·w, one output per thread (coalesced along in-features).
    if (p.has_dx == 0u) { return; }
    for (var o = lid.x; o < rows * p.i; o += WG) {
        let r = o / p.i;
        let k = o % p.i;
        var acc = 0.0;
        for (var l = 0u; l < p.l; l++) {
            acc = fma(zs[r * LMAX + l], w[w0 + l * p.i + k], acc);
        }
        let at = (r0 + r) * p.i + k;
        if (MASK) { acc = select(0.0, acc, x[x0 + at] > 0.0); }
        dx[member * p.dx_ms + at] = acc;
    }
}

@compute @workgroup_size(WG)
fn head_weights(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let member = wid.z;
    let d0 = member * p.dlogits_ms;
    let x0 = member * p.x_ms;
    let out0 = member * p.dwb_ms;
    let dw_groups = (p.l * p.i + WG - 1u) / WG;
    if (wid.x >= dw_groups) { // uniform: one workgroup per class, db as elementwise.wgsl's bias_grad sums it
        let l = wid.x - dw_groups;
        var s = 0.0;
        for (var r = lid.x; r < p.n; r += WG) { s += dz[d0 + r * p.l + l]; }
        part[lid.x] = s;
        workgroupBarrier();
        for (var half = WG / 2u; half > 0u; half /= 2u) {
            if (lid.x < half) { part[lid.x] += part[lid.x + half]; }
            workgroupBarrier();
        }
        if (lid.x == 0u) { dwb[out0 + p.b_at + l] = part[0]; }
        return;
    }
    // dw[l, k] = Σ_n dz[n, l]·x[n, k], one output per thread.
    let o = wid.x * WG + lid.x;
    if (o < p.l * p.i) {
        let l = o / p.i;
        let k = o % p.i;
        var acc = 0.0;
        for (var r = 0u; r < p.n; r++) {
            acc = fma(dz[d0 + r * p.l + l], x[x0 + r * p.i + k], acc);
        }
        dwb[out0 + p.w_at + o] = acc;
    }
    if (wid.x != 0u) { return; } // uniform: the whole workgroup returns
    // The batch loss, as softmax_xent.wgsl sums it.
    var total = 0.0;
    for (var r = lid.x; r < p.n; r += WG) { total += row_terms[member * p.rows_ms + r]; }
    part[lid.x] = total;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid.x < half) { part[lid.x] += part[lid.x + half]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { losses[member * p.out_ms + cursor.loss_slot] = part[0] / f32(p.n); }
}
