//! The kernels are built without naga's runtime checks (`ShaderChecks::Trusted`: no index clamps, no loop
//! guards), so they must keep inside their operands by themselves. This makes that a checked fact: every
//! [`KernelKey`] the code can build runs on odd shapes (edges that cut every tile, split-K, strides and padding,
//! every conv tile forced in turn, one member and three) and on seeded random ones, once as checked modules on plain buffers and once as
//! trusted modules with every buffer between poisoned guard regions. The two must agree bit for bit on every
//! output, and no guard word (nor a byte between a packed set's views) may change. A guard region is inside the
//! binding (see `src/gpu/guards.rs`), so even a driver with robust buffer access cannot drop a stray write
//! before this sees it. The run must have built every key of `KernelKey::all()`, or the test would pass
//! vacuously for the kernels it missed.
//!
//! Shapes are small: CI runs this on lavapipe.

mod gpu_common;

use std::collections::BTreeSet;

use gpu_common::{gpu_or_skip, rand_vec};
use wgtrain::backend::{Backend, ConvGeom, Head, PoolChain, PoolGeom, pack_bytes};
use wgtrain::gpu::kernels::{KernelKey, Tile};
use wgtrain::gpu::{GpuBackend, GpuTensor, ShaderChecks};
use wgtrain::optim::{AdamGroup, AdamHyper, ClipParams, SgdGroup, SgdHyper};

/// Runs the ops of one configuration and keeps every output's bits, in order.
struct Suite<'a> {
    g: &'a mut GpuBackend,
    /// Members of every operand but the batch's indices.
    p: usize,
    seed: u64,
    /// The case being run: the label of its outputs, so a guard report names it.
    case: String,
    /// The conv tile forced, if any (part of each conv case's name).
    tile: Option<Tile>,
    out: Vec<(String, Vec<u32>)>,
}

impl Suite<'_> {
    fn next_seed(&mut self) -> u64 {
        self.seed += 1;
        self.seed
    }

    /// A tensor of `p` members holding random values in [−1, 1).
    fn input(&mut self, shape: &[usize]) -> GpuTensor {
        let n: usize = shape.iter().product();
        let data = rand_vec(self.next_seed(), n * self.p);
        let mut t = self.g.zeros_members(self.p, shape, "input").unwrap();
        self.g.write(&mut t, &data).unwrap();
        t
    }

    /// An output, starting dirty so that every element must be written.
    fn output(&mut self, shape: &[usize]) -> GpuTensor {
        let n: usize = shape.iter().product();
        let label = format!("{} (output {shape:?})", self.case);
        let mut t = self.g.zeros_members(self.p, shape, &label).unwrap();
        self.g.write(&mut t, &vec![7.0; n * self.p]).unwrap();
        t
    }

    /// A packed set of `shapes` (all members), holding random values.
    fn packed(&mut self, shapes: &[&[usize]]) -> Vec<GpuTensor> {
        let shapes: Vec<Vec<usize>> = shapes.iter().map(|s| s.to_vec()).collect();
        let labels: Vec<String> = (0..shapes.len()).map(|i| format!("set{i}")).collect();
        let mut set = self.g.zeros_packed_members(self.p, &shapes, &labels).unwrap();
        for t in &mut set {
            let n = t.numel() * self.p;
            let data = rand_vec(self.next_seed(), n);
            self.g.write(t, &data).unwrap();
        }
        set
    }

    fn keep(&mut self, name: &str, t: &GpuTensor) {
        let v = self.g.read(t).unwrap();
        self.out.push((name.to_string(), v.iter().map(|x| x.to_bits()).collect()));
    }

    fn linear_ops(&mut self, (n, i, o): (usize, usize, usize)) {
        let case = format!("linear {n}x{i}x{o}");
        self.case = case.clone();
        let x = self.input(&[n, i]);
        let w = self.input(&[o, i]);
        let b = self.input(&[o]);
        let dy = self.input(&[n, o]);
        for relu in [false, true] {
            let mut y = self.output(&[n, o]);
            let r = if relu { self.g.linear_relu(&x, &w, &b, &mut y) } else { self.g.linear(&x, &w, &b, &mut y) };
            r.unwrap();
            self.keep(&format!("{case} forward relu={relu}"), &y);
            let mut dx = self.output(&[n, i]);
            let r = if relu {
                self.g.linear_backward_input_relu(&dy, &w, &x, &mut dx)
            } else {
                self.g.linear_backward_input(&dy, &w, &mut dx)
            };
            r.unwrap();
            self.keep(&format!("{case} backward-input relu={relu}"), &dx);
        }
        // dw and db apart (the GEMM, then bias_grad), and as views of one set (one dispatch writes both).
        let (mut dw, mut db) = (self.output(&[o, i]), self.output(&[o]));
        self.g.linear_backward_weight(&x, &dy, &mut dw, &mut db).unwrap();
        self.keep(&format!("{case} dw"), &dw);
        self.keep(&format!("{case} db"), &db);
        let mut set = self.packed(&[&[o, i], &[o]]);
        let (dw, db) = set.split_at_mut(1);
        self.g.linear_backward_weight(&x, &dy, &mut dw[0], &mut db[0]).unwrap();
        let got = self.g.read_set(&set).unwrap();
        self.out.push((format!("{case} dw+db set"), got.concat().iter().map(|v| v.to_bits()).collect()));
    }

    fn conv_ops(&mut self, [n, c, h, w, k]: [usize; 5], ks: usize, geom: ConvGeom) {
        let case = format!("conv {n}x{c}x{h}x{w}→{k} k{ks} {geom:?} tile {:?}", self.tile);
        self.case = case.clone();
        let (ho, wo) = (geom.out_size(h, ks).unwrap(), geom.out_size(w, ks).unwrap());
        let x = self.input(&[n, c, h, w]);
        let wt = self.input(&[k, c, ks, ks]);
        let b = self.input(&[k]);
        let dy = self.input(&[n, k, ho, wo]);
        let mut y = self.output(&[n, k, ho, wo]);
        self.g.conv2d(&x, &wt, &b, geom, &mut y).unwrap();
        self.keep(&format!("{case} forward"), &y);
        self.g.conv2d_relu(&x, &wt, &b, geom, &mut y).unwrap();
        self.keep(&format!("{case} forward relu"), &y);
        let mut dx = self.output(&[n, c, h, w]);
        self.g.conv2d_backward_input(&dy, &wt, geom, &mut dx).unwrap();
        self.keep(&format!("{case} backward-input"), &dx);
        self.g.conv2d_backward_input_relu(&dy, &wt, &x, geom, &mut dx).unwrap();
        self.keep(&format!("{case} backward-input relu"), &dx);
        let (mut dw, mut db) = (self.output(&[k, c, ks, ks]), self.output(&[k]));
        self.g.conv2d_backward_weight(&x, &dy, geom, &mut dw, &mut db).unwrap();
        self.keep(&format!("{case} dw"), &dw);
        self.keep(&format!("{case} db"), &db);
        let mut set = self.packed(&[&[k, c, ks, ks], &[k]]);
        let (dw, db) = set.split_at_mut(1);
        self.g.conv2d_backward_weight(&x, &dy, geom, &mut dw[0], &mut db[0]).unwrap();
        let got = self.g.read_set(&set).unwrap();
        self.out.push((format!("{case} dw+db set"), got.concat().iter().map(|v| v.to_bits()).collect()));
    }

    fn conv_pool_ops(&mut self, [n, c, h, w, k]: [usize; 5], pools: PoolChain) {
        let case = format!("conv+pool {n}x{c}x{h}x{w}→{k} {pools:?} tile {:?}", self.tile);
        self.case = case.clone();
        let geom = ConvGeom { stride: 1, padding: 1 };
        let (hp, wp) = (pools.out_size(h).unwrap(), pools.out_size(w).unwrap());
        let x = self.input(&[n, c, h, w]);
        let wt = self.input(&[k, c, 3, 3]);
        let b = self.input(&[k]);
        let (mut y, mut arg) = (self.output(&[n, k, hp, wp]), self.output(&[n, k, hp, wp]));
        self.g.conv2d_relu_pool(&x, &wt, &b, geom, pools, &mut y, &mut arg).unwrap();
        self.keep(&format!("{case} y"), &y);
        self.keep(&format!("{case} argmax"), &arg);
        let dy = self.input(&[n, k, hp, wp]);
        let mut dx = self.output(&[n, k, h, w]);
        self.g.conv2d_relu_pool_backward(&y, &arg, &dy, pools, &mut dx).unwrap();
        self.keep(&format!("{case} backward"), &dx);
    }

    fn pool_relu_loss_ops(&mut self) {
        self.case = "pool, relu, loss, head".into();
        let geom = PoolGeom { kernel: 3, stride: 2 };
        let x = self.input(&[2, 3, 7, 9]);
        let mut y = self.output(&[2, 3, 3, 4]);
        self.g.max_pool2d(&x, geom, &mut y).unwrap();
        self.keep("max_pool2d", &y);
        let dy = self.input(&[2, 3, 3, 4]);
        let mut dx = self.output(&[2, 3, 7, 9]);
        self.g.max_pool2d_backward(&x, &dy, geom, &mut dx).unwrap();
        self.keep("max_pool2d_backward", &dx);
        self.g.max_pool2d_backward_relu(&x, &dy, geom, &mut dx).unwrap();
        self.keep("max_pool2d_backward_relu", &dx);
        let mut r = self.output(&[3, 257]);
        let rx = self.input(&[3, 257]);
        self.g.relu(&rx, &mut r).unwrap();
        self.keep("relu", &r);
        let rdy = self.input(&[3, 257]);
        let mut rdx = self.output(&[3, 257]);
        self.g.relu_backward(&r, &rdy, &mut rdx).unwrap();
        self.keep("relu_backward", &rdx);

        // The loss, evaluation and the fused head, with labels shared by the members.
        let (n, l, i) = (7, 10, 13);
        let labels = self.g.indices(&[3, 0, 9, 9, 1, 5, 2], "labels").unwrap();
        let logits = self.input(&[n, l]);
        let (mut d, mut losses) = (self.output(&[n, l]), self.output(&[4]));
        self.g.softmax_xent(&logits, &labels, &mut d, &mut losses, 2).unwrap();
        self.keep("softmax_xent dlogits", &d);
        self.keep("softmax_xent losses", &losses);
        let mut acc = self.output(&[2]);
        self.g.eval_accumulate(&logits, &labels, &mut acc).unwrap();
        self.keep("eval_accumulate", &acc);
        let hx = self.input(&[n, i]);
        for relu_input in [false, true] {
            let mut set = self.packed(&[&[l, i], &[l]]);
            let w = self.input(&[l, i]);
            let b = self.input(&[l]);
            let (mut lg, mut dl, mut ls, mut dx) =
                (self.output(&[n, l]), self.output(&[n, l]), self.output(&[3]), self.output(&[n, i]));
            let (dw, db) = set.split_at_mut(1);
            let h = Head {
                x: &hx,
                w: &w,
                b: &b,
                labels: &labels,
                relu_input,
                logits: &mut lg,
                dlogits: &mut dl,
                losses: &mut ls,
                slot: 1,
                dw: &mut dw[0],
                db: &mut db[0],
                dx: Some(&mut dx),
            };
            self.g.linear_softmax_xent(h).unwrap();
            for (what, t) in [("logits", &lg), ("dlogits", &dl), ("losses", &ls), ("dx", &dx)] {
                self.keep(&format!("head relu_input={relu_input} {what}"), t);
            }
            let got = self.g.read_set(&set).unwrap();
            self.out.push((
                format!("head relu_input={relu_input} dw+db"),
                got.concat().iter().map(|v| v.to_bits()).collect(),
            ));
        }
    }

    /// The batch gathers, the norm and both updates over a packed set (5000 values: two norm partials).
    fn data_and_update_ops(&mut self) {
        self.case = "gather, norm, updates".into();
        let p = self.p;
        // Gathers fill a batch every member shares, so they run on one-member tensors.
        let data = rand_vec(self.next_seed(), 9 * 13);
        let images = self.g.tensor(&data, &[9, 13], "images").unwrap();
        let labels = self.g.indices(&[0, 1, 2, 3, 4, 5, 6, 7, 8], "labels").unwrap();
        let order = self.g.indices(&[8, 3, 5, 1, 0, 2, 7, 4, 6], "order").unwrap();
        let mut x = self.g.zeros(&[5, 13], "x").unwrap();
        let mut y = self.g.indices(&[9; 5], "y").unwrap();
        self.g.gather_batch(&images, &labels, &order, 3, &mut x, &mut y).unwrap();
        self.keep("gather_batch", &x);
        let bytes: Vec<u8> = (0..9 * 13).map(|v| (v * 37 % 256) as u8).collect();
        let pixels = self.g.indices(&pack_bytes(&bytes), "pixels").unwrap();
        let table: Vec<f32> = (0..256).map(|v| v as f32 / 255.0 - 0.5).collect();
        let table = self.g.tensor(&table, &[256], "table").unwrap();
        self.g.gather_pixels(&pixels, &table, &labels, &order, 2, &mut x, &mut y).unwrap();
        self.keep("gather_pixels", &x);

        let shapes: [&[usize]; 3] = [&[5000], &[3, 7], &[11]];
        let grads = self.packed(&shapes);
        let mut norms = self.output(&[2]);
        self.g.grad_norm(&grads, &mut norms, 0).unwrap();
        self.keep("grad_norm", &norms);
        let clip = ClipParams { max_norm: 0.5, use_norm: 1, norm_slot: 0, ..Default::default() };
        let sgd = SgdHyper {
            clip,
            group: [SgdGroup { lr: 0.1, momentum: 0.9, weight_decay: 0.01, nesterov: 1, ..Default::default() }; 8],
            ..Default::default()
        };
        let mut hyper = self.g.uniform(p * std::mem::size_of::<SgdHyper>(), "sgd").unwrap();
        self.g.write_uniform(&mut hyper, bytemuck::cast_slice(&vec![sgd; p])).unwrap();
        let (mut params, mut bufs) = (self.packed(&shapes), self.packed(&shapes));
        self.g.sgd_update(&mut params, &grads, &mut bufs, &[0, 1, 0], &hyper, &norms).unwrap();
        for (what, set) in [("sgd params", &params), ("sgd bufs", &bufs)] {
            let got = self.g.read_set(set).unwrap();
            self.out.push((what.to_string(), got.concat().iter().map(|v| v.to_bits()).collect()));
        }
        let group = AdamGroup::at_step(0.01, (0.9, 0.999), 1e-8, 0.02, 3.0);
        let adam = AdamHyper { clip, amsgrad: 1, decoupled: 1, group: [group; 8], ..Default::default() };
        let mut hyper = self.g.uniform(p * std::mem::size_of::<AdamHyper>(), "adam").unwrap();
        self.g.write_uniform(&mut hyper, bytemuck::cast_slice(&vec![adam; p])).unwrap();
        let (mut m1, mut m2, mut mx) = (self.packed(&shapes), self.packed(&shapes), self.packed(&shapes));
        self.g.adam_update(&mut params, &grads, &mut m1, &mut m2, &mut mx, &[0, 1, 0], &hyper, &norms).unwrap();
        for (what, set) in [("adam params", &params), ("adam m", &m1), ("adam v", &m2), ("adam vmax", &mx)] {
            let got = self.g.read_set(set).unwrap();
            self.out.push((what.to_string(), got.concat().iter().map(|v| v.to_bits()).collect()));
        }
    }
}

/// Every op on every shape of the suite, on `p` members.
fn run_suite(g: &mut GpuBackend, p: usize) -> Vec<(String, Vec<u32>)> {
    let mut s = Suite { g, p, seed: 1000 * p as u64, case: String::new(), tile: None, out: Vec::new() };
    // (n, i, o): small; a reduction of 600 (split-K forward, with the bias epilogues in the reduction); 520
    // outputs (split-K backward-input, with the mask in the reduction); a batch of 513 (split-K backward-weight).
    for shape in [(5, 7, 6), (3, 600, 5), (3, 4, 520), (513, 3, 4)] {
        s.linear_ops(shape);
    }
    // Each conv tile forced in turn, then the tiles picked from the shapes. Cases: odd edges; stride and
    // padding; 40 output channels (a second row of 32-row tiles); a long batch reduction (split-K, 578 terms).
    // With members, the member offsets are what changes, so one case per tile is enough.
    let tiles = [Some(Tile::Square64), Some(Tile::M32), Some(Tile::M64), Some(Tile::Square128), Some(Tile::Narrow)];
    for tile in tiles.into_iter().chain([None]) {
        s.g.set_conv_tile(tile);
        s.tile = tile;
        s.conv_ops([2, 3, 7, 9, 5], 3, ConvGeom::UNIT);
        s.conv_pool_ops([2, 3, 9, 11, 5], PoolChain { inner: 2, outer: 2 });
        if p == 1 {
            s.conv_ops([1, 2, 9, 8, 40], 5, ConvGeom { stride: 2, padding: 2 });
            s.conv_ops([2, 2, 19, 19, 3], 3, ConvGeom::UNIT);
            s.conv_pool_ops([2, 3, 9, 11, 5], PoolChain { inner: 2, outer: 1 });
            s.conv_pool_ops([1, 2, 17, 16, 3], PoolChain { inner: 2, outer: 4 });
        }
    }
    s.g.set_conv_tile(None);
    // Seeded random shapes on top of the chosen ones (the tiles picked from each shape).
    if p == 1 {
        let mut rng = 0x5eed_u64;
        let mut draw = |lo: usize, hi: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            lo + (rng % (hi - lo + 1) as u64) as usize
        };
        for _ in 0..3 {
            let shape = (draw(1, 40), draw(1, 70), draw(1, 70));
            s.linear_ops(shape);
            let (ks, stride, padding) = (draw(1, 5), draw(1, 2), draw(0, 2));
            let (h, w) = (draw(ks, 20), draw(ks, 20));
            s.conv_ops([draw(1, 3), draw(1, 4), h, w, draw(1, 70)], ks, ConvGeom { stride, padding });
        }
    }
    s.pool_relu_loss_ops();
    s.data_and_update_ops();
    s.out
}

fn run_both(g: &mut GpuBackend) -> Vec<(String, Vec<u32>)> {
    let mut out = run_suite(g, 1);
    out.extend(run_suite(g, 3).into_iter().map(|(n, v)| (format!("{n} (3 members)"), v)));
    out
}

#[test]
fn trusted_kernels_stay_inside_their_outputs_and_equal_the_checked_build() {
    let name = "trusted_kernels_stay_inside_their_outputs_and_equal_the_checked_build";
    let Some(mut checked) = gpu_or_skip(name) else { return };
    let Some(mut trusted) = gpu_or_skip(name) else { return };
    checked.set_shader_checks(ShaderChecks::Checked).unwrap();
    trusted.set_shader_checks(ShaderChecks::Trusted).unwrap();
    trusted.set_guard_regions(true);
    let want = run_both(&mut checked);
    let got = run_both(&mut trusted);
    assert_eq!(want.len(), got.len());
    for ((name, w), (_, g)) in want.iter().zip(&got) {
        if let Some(i) = (0..w.len().max(g.len())).find(|&i| w.get(i) != g.get(i)) {
            panic!(
                "{name}: the trusted build differs from the checked one at element {i} of {}: {:?} vs {:?}",
                w.len(),
                g.get(i).map(|b| f32::from_bits(*b)),
                w.get(i).map(|b| f32::from_bits(*b))
            );
        }
    }
    let problems = trusted.check_guard_regions().unwrap();
    assert!(problems.is_empty(), "kernels wrote outside their outputs:\n{}", problems.join("\n"));
    // Every kernel the code can build ran, trusted, against its checked twin.
    let all: BTreeSet<KernelKey> = KernelKey::all().into_iter().collect();
    let ran: BTreeSet<KernelKey> = trusted.built_kernels().into_iter().collect();
    let missed: Vec<String> = all.difference(&ran).map(|k| k.to_string()).collect();
    assert!(missed.is_empty(), "the suite never ran: {}", missed.join(", "));
    assert_eq!(checked.built_kernels(), trusted.built_kernels());
}

/// The guards are real: a value written one element past an output, where a kernel that overruns it by one would
/// put it, is reported, naming the tensor. (That a kernel changed to do so is caught by the test above was tried
/// by hand on `relu` and `conv2d`'s store; see docs/performance.md.)
#[test]
fn a_write_past_an_output_is_caught_by_its_guard() {
    let Some(mut g) = gpu_or_skip("a_write_past_an_output_is_caught_by_its_guard") else { return };
    g.set_guard_regions(true);
    let x = g.tensor(&[1.0, -2.0, 3.0], &[3], "x").unwrap();
    let mut y = g.zeros(&[3], "y").unwrap();
    g.relu(&x, &mut y).unwrap();
    assert_eq!(g.read(&y).unwrap(), [1.0, 0.0, 3.0]);
    assert!(g.check_guard_regions().unwrap().is_empty());
    g.write_past_end_for_test(&y, 1.5).unwrap();
    let problems = g.check_guard_regions().unwrap();
    assert!(problems.iter().any(|p| p.contains("`y`") && p.contains("guard after it")), "{problems:?}");
}
