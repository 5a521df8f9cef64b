// Fused SGD-momentum update, exactly torch.optim.SGD (see Backend::sgd_update):
//   g = grad + weight_decay·param
//   if momentum ≠ 0: buf = g (first use) or momentum·buf + (1 − dampening)·g;  g = g + momentum·buf (nesterov) or buf
//   param = param − lr·g
// lr, momentum, … come from the per-step uniform written by queue.write_buffer before the step's submit,
// so a scheduler never rebuilds a pipeline or a bind group.

struct StepParams {
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    nesterov: u32,
    init_momentum: u32,
    batch_offset: u32,
    loss_slot: u32,
}

struct ElemParams {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<uniform> p: ElemParams;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> buf: array<f32>;

@compute @workgroup_size(WG)
fn sgd_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    var g = grad[i] + step.weight_decay * param[i];
    if (step.momentum != 0.0) {
        var b = g;
        if (step.init_momentum == 0u) { b = step.momentum * buf[i] + (1.0 - step.dampening) * g; }
        buf[i] = b;
        if (step.nesterov != 0u) { g = g + step.momentum * b; } else { g = b; }
    }
    param[i] = param[i] - step.lr * g;
}
