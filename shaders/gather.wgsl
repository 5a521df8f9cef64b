// Batch gather from the resident dataset: x[i,:] = images[order[batch_offset + i], :], y[i] = labels[…].
// gather_pixels reads a dataset kept as bytes (MNIST's u8 pixels, four per u32 word: a quarter of the f32
// size, so the 60,000 training images take 47 MB and fit the 128 MiB binding limit of WebGPU and many Metal/GL
// devices) and maps each byte through a 256-entry table the host computed: no arithmetic, so the values are
// exactly the CPU's.
// batch_offset comes from the backend's cursor uniform, so the dataset is uploaded once and a step never copies
// from the host. Indices are clamped (the host validates batch_offset; a bad order value cannot read
// outside the dataset).
//
// Bounds (no runtime checks, see ShaderChecks in src/gpu/kernels.rs): i < batch·dim; source_row clamps into
// the order and the dataset (rows, order_len ≥ 1: the launcher refuses empty ones); the byte's table index is
// masked to 0..255; dim ≥ 1.

struct GatherParams {
    batch: u32,
    dim: u32,
    rows: u32,      // M, images in the dataset
    order_len: u32,
}

// The backend's cursor uniform: op arguments that change every step without creating a buffer per value.
struct Cursor {
    batch_offset: u32,
    loss_slot: u32,
    norm_slot: u32,
    _pad0: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<uniform> cursor: Cursor;
@group(0) @binding(2) var<storage, read> images: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read> order: array<u32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<u32>;
@group(0) @binding(7) var<storage, read> pixels: array<u32>;
@group(0) @binding(8) var<storage, read> table: array<f32, 256>;

// The dataset row of batch row r (indices clamped: a bad order value cannot read outside the dataset).
fn source_row(r: u32) -> u32 {
    return min(order[min(cursor.batch_offset + r, p.order_len - 1u)], p.rows - 1u);
}

@compute @workgroup_size(WG)
fn gather_batch(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.batch * p.dim) { return; }
    let r = i / p.dim;
    let src = source_row(r);
    x[i] = images[src * p.dim + i % p.dim];
    if (i % p.dim == 0u) { y[r] = labels[src]; }
}

@compute @workgroup_size(WG)
fn gather_pixels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.batch * p.dim) { return; }
    let r = i / p.dim;
    let src = source_row(r);
    let k = src * p.dim + i % p.dim; // byte k of the stream
    x[i] = table[(pixels[k / 4u] >> (8u * (k % 4u))) & 0xffu];
    if (i % p.dim == 0u) { y[r] = labels[src]; }
}
