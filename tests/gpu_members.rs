//! The member axis on the GPU: every op run once on P = 3 members (different random data per member) gives
//! member m exactly — bit for bit — what the same op gives run solo (members = 1, `zeros`/`zeros_packed`) on
//! member m's data. Covers shared one-member inputs (the batch x, a bias), member-packed parameters and
//! gradients (views a set size apart), split-K (linear and conv backward-weight), the 32×128 conv tile, the
//! per-member slots of the loss, evaluation and norm ops, and frozen members of every update. Also: a
//! mismatched member count is `Error::Shape`, a member-packed set round-trips through write/read/read_set,
//! a stack beyond the device's binding limit is `Error::DeviceLimit`, and a member step is one submit that
//! creates nothing after the first.
//!
//! Shapes are small: CI runs this on lavapipe.

#[path = "gpu_common/mod.rs"]
mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use wgtrain::Error;
use wgtrain::backend::{Backend, ConvGeom, PoolGeom};
use wgtrain::gpu::{GpuBackend, GpuIndices, GpuTensor};
use wgtrain::optim::{AdamGroup, AdamHyper, ClipParams, SgdGroup, SgdHyper};

const P: usize = 3;

/// How an operand is allocated: one shared member, P plain (contiguous) members, or a view of the op's
/// member-packed set (all `Packed` inputs form one set, all `Packed` outputs another).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum K {
    Shared,
    Plain,
    Packed,
}

fn spec(shape: &[usize], kind: K) -> (Vec<usize>, K) {
    (shape.to_vec(), kind)
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// Tensors for `specs`: with `p` members, or solo (`p` = 1 through `zeros` / `zeros_packed`, as a single run
/// allocates them).
fn alloc(g: &mut GpuBackend, specs: &[(Vec<usize>, K)], p: usize) -> Vec<GpuTensor> {
    let packed: Vec<Vec<usize>> = specs.iter().filter(|s| s.1 == K::Packed).map(|s| s.0.clone()).collect();
    let labels: Vec<String> = (0..packed.len()).map(|i| format!("packed{i}")).collect();
    let mut set = if packed.is_empty() {
        Vec::new()
    } else if p == 1 {
        g.zeros_packed(&packed, &labels).unwrap()
    } else {
        g.zeros_packed_members(p, &packed, &labels).unwrap()
    }
    .into_iter();
    specs
        .iter()
        .map(|(shape, kind)| match kind {
            K::Packed => set.next().unwrap(),
            K::Plain if p > 1 => g.zeros_members(p, shape, "plain").unwrap(),
            _ => g.zeros(shape, "solo").unwrap(),
        })
        .collect()
}

/// Per-member random data of each spec (one member for a shared operand).
fn data(specs: &[(Vec<usize>, K)], seed: u64) -> Vec<Vec<Vec<f32>>> {
    specs
        .iter()
        .enumerate()
        .map(|(i, (shape, kind))| {
            let members = if *kind == K::Shared { 1 } else { P };
            (0..members).map(|m| rand_vec(seed * 1000 + i as u64 * 10 + m as u64, numel(shape))).collect()
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

type Run<'a> = dyn Fn(&mut GpuBackend, &[GpuTensor], &mut [GpuTensor]) -> wgtrain::Result<()> + 'a;

/// Run `run` on P members (inputs `ins`, outputs `outs`, every output starting from its own random values),
/// then solo on each member's data, and require member m's outputs to equal the solo outputs bit for bit.
fn check(g: &mut GpuBackend, name: &str, ins: &[(Vec<usize>, K)], outs: &[(Vec<usize>, K)], seed: u64, run: &Run<'_>) {
    let din = data(ins, seed);
    let dout = data(outs, seed + 7);
    let mut x = alloc(g, ins, P);
    let mut y = alloc(g, outs, P);
    for (t, d) in x.iter_mut().zip(&din).chain(y.iter_mut().zip(&dout)) {
        g.write(t, &d.concat()).unwrap();
    }
    for (t, spec) in y.iter().zip(outs) {
        assert_eq!(g.members(t), P, "{name}: output {spec:?}");
    }
    run(g, &x, &mut y).unwrap_or_else(|e| panic!("{name} with {P} members: {e}"));
    let got: Vec<Vec<f32>> = y.iter().map(|t| g.read(t).unwrap()).collect();
    for m in 0..P {
        let mut xs = alloc(g, ins, 1);
        let mut ys = alloc(g, outs, 1);
        for (t, d) in xs.iter_mut().zip(&din).chain(ys.iter_mut().zip(&dout)) {
            g.write(t, &d[m.min(d.len() - 1)]).unwrap();
        }
        run(g, &xs, &mut ys).unwrap_or_else(|e| panic!("{name} solo: {e}"));
        for (o, t) in ys.iter().enumerate() {
            let want = g.read(t).unwrap();
            let n = want.len();
            let part = &got[o][m * n..(m + 1) * n];
            assert_eq!(bits(part), bits(&want), "{name}: member {m}, output {o} differs from the solo run");
            // The op really wrote something (not a copy of the untouched initial values).
            assert_ne!(bits(part), bits(&dout[o][m]), "{name}: member {m}, output {o} was not written");
        }
    }
}

#[test]
fn linear_ops_match_solo_runs_bit_for_bit() {
    let Some(mut g) = gpu_or_skip("linear_ops_match_solo_runs_bit_for_bit") else { return };
    // (n, i, o); the second and third have a reduction long enough for split-K (k ≥ 512) in forward and
    // backward-input, whose reduction then applies the bias and mask epilogues per member.
    for (case, &(n, i, o)) in [(5usize, 7usize, 6usize), (2, 600, 3), (3, 4, 520)].iter().enumerate() {
        let seed = 10 + case as u64;
        for xk in [K::Plain, K::Shared] {
            let name = format!("linear {n}x{i}x{o}, x {xk:?}");
            let ins = [spec(&[n, i], xk), spec(&[o, i], K::Packed), spec(&[o], K::Packed)];
            check(&mut g, &name, &ins, &[spec(&[n, o], K::Plain)], seed, &|g, x, y| {
                g.linear(&x[0], &x[1], &x[2], &mut y[0])
            });
            check(&mut g, &format!("{name} relu"), &ins, &[spec(&[n, o], K::Plain)], seed, &|g, x, y| {
                g.linear_relu(&x[0], &x[1], &x[2], &mut y[0])
            });
        }
        // A fixed one-member (shared) bias with P-member weights.
        let ins = [spec(&[n, i], K::Plain), spec(&[o, i], K::Packed), spec(&[o], K::Shared)];
        check(&mut g, "linear, shared bias", &ins, &[spec(&[n, o], K::Plain)], seed, &|g, x, y| {
            g.linear(&x[0], &x[1], &x[2], &mut y[0])
        });
        let ins = [spec(&[n, o], K::Plain), spec(&[o, i], K::Packed)];
        check(&mut g, "linear_backward_input", &ins, &[spec(&[n, i], K::Plain)], seed, &|g, x, y| {
            g.linear_backward_input(&x[0], &x[1], &mut y[0])
        });
        let ins = [spec(&[n, o], K::Plain), spec(&[o, i], K::Packed), spec(&[n, i], K::Plain)];
        check(&mut g, "linear_backward_input_relu", &ins, &[spec(&[n, i], K::Plain)], seed, &|g, x, y| {
            g.linear_backward_input_relu(&x[0], &x[1], &x[2], &mut y[0])
        });
    }
    // Backward-weight: a short batch, and a batch of 512 (split-K over the batch); x shared or per member.
    for (n, i, o) in [(5usize, 7usize, 6usize), (512, 3, 4)] {
        for xk in [K::Plain, K::Shared] {
            let ins = [spec(&[n, i], xk), spec(&[n, o], K::Plain)];
            let outs = [spec(&[o, i], K::Packed), spec(&[o], K::Packed)];
            check(&mut g, &format!("linear_backward_weight n={n}, x {xk:?}"), &ins, &outs, 20, &|g, x, y| {
                let (dw, db) = y.split_at_mut(1);
                g.linear_backward_weight(&x[0], &x[1], &mut dw[0], &mut db[0])
            });
        }
    }
}

/// [n, c, h, w, k], kernel edge, geometry.
type ConvCase = ([usize; 5], usize, ConvGeom);

#[test]
fn conv_ops_match_solo_runs_bit_for_bit() {
    let Some(mut g) = gpu_or_skip("conv_ops_match_solo_runs_bit_for_bit") else { return };
    let cases: [ConvCase; 4] = [
        // 64×64 tiles everywhere.
        ([2, 3, 6, 6, 40], 3, ConvGeom::UNIT),
        // Forward and backward-input on the 32×128 tile (≤ 32 rows, ≥ 128 columns).
        ([2, 4, 10, 10, 8], 3, ConvGeom::UNIT),
        // Stride and padding.
        ([2, 3, 7, 7, 5], 3, ConvGeom { stride: 2, padding: 1 }),
        // Backward-weight split over the batch (N·Ho·Wo = 512).
        ([2, 2, 18, 18, 4], 3, ConvGeom::UNIT),
    ];
    for (case, &([n, c, h, w, k], ks, geom)) in cases.iter().enumerate() {
        let seed = 30 + case as u64;
        let ho = geom.out_size(h, ks).unwrap();
        let wo = geom.out_size(w, ks).unwrap();
        let (xs, ws, ys) = ([n, c, h, w], [k, c, ks, ks], [n, k, ho, wo]);
        for xk in [K::Plain, K::Shared] {
            let name = format!("conv2d case {case}, x {xk:?}");
            let ins = [spec(&xs, xk), spec(&ws, K::Packed), spec(&[k], K::Packed)];
            check(&mut g, &name, &ins, &[spec(&ys, K::Plain)], seed, &|g, x, y| {
                g.conv2d(&x[0], &x[1], &x[2], geom, &mut y[0])
            });
            check(&mut g, &format!("{name} relu"), &ins, &[spec(&ys, K::Plain)], seed, &|g, x, y| {
                g.conv2d_relu(&x[0], &x[1], &x[2], geom, &mut y[0])
            });
            let ins = [spec(&xs, xk), spec(&ys, K::Plain)];
            let outs = [spec(&ws, K::Packed), spec(&[k], K::Packed)];
            check(&mut g, &format!("conv2d_backward_weight case {case}, x {xk:?}"), &ins, &outs, seed, &|g, x, y| {
                let (dw, db) = y.split_at_mut(1);
                g.conv2d_backward_weight(&x[0], &x[1], geom, &mut dw[0], &mut db[0])
            });
        }
        let ins = [spec(&ys, K::Plain), spec(&ws, K::Packed)];
        check(&mut g, &format!("conv2d_backward_input case {case}"), &ins, &[spec(&xs, K::Plain)], seed, &|g, x, y| {
            g.conv2d_backward_input(&x[0], &x[1], geom, &mut y[0])
        });
        let ins = [spec(&ys, K::Plain), spec(&ws, K::Packed), spec(&xs, K::Plain)];
        let name = format!("conv2d_backward_input_relu case {case}");
        check(&mut g, &name, &ins, &[spec(&xs, K::Plain)], seed, &|g, x, y| {
            g.conv2d_backward_input_relu(&x[0], &x[1], &x[2], geom, &mut y[0])
        });
    }
}

#[test]
fn pool_relu_and_loss_ops_match_solo_runs_bit_for_bit() {
    let Some(mut g) = gpu_or_skip("pool_relu_and_loss_ops_match_solo_runs_bit_for_bit") else { return };
    let geom = PoolGeom { kernel: 3, stride: 2 };
    let (xs, ys) = ([2, 3, 7, 7], [2, 3, 3, 3]);
    check(&mut g, "max_pool2d", &[spec(&xs, K::Plain)], &[spec(&ys, K::Plain)], 50, &|g, x, y| {
        g.max_pool2d(&x[0], geom, &mut y[0])
    });
    let ins = [spec(&xs, K::Plain), spec(&ys, K::Plain)];
    check(&mut g, "max_pool2d_backward", &ins, &[spec(&xs, K::Plain)], 51, &|g, x, y| {
        g.max_pool2d_backward(&x[0], &x[1], geom, &mut y[0])
    });
    check(&mut g, "max_pool2d_backward_relu", &ins, &[spec(&xs, K::Plain)], 52, &|g, x, y| {
        g.max_pool2d_backward_relu(&x[0], &x[1], geom, &mut y[0])
    });
    check(&mut g, "relu", &[spec(&[3, 50], K::Plain)], &[spec(&[3, 50], K::Plain)], 53, &|g, x, y| {
        g.relu(&x[0], &mut y[0])
    });
    let ins = [spec(&[3, 50], K::Plain), spec(&[3, 50], K::Plain)];
    check(&mut g, "relu_backward", &ins, &[spec(&[3, 50], K::Plain)], 54, &|g, x, y| {
        g.relu_backward(&x[0], &x[1], &mut y[0])
    });

    // Labels are shared by every member; losses and acc are per member (slot 2 of 4: the other slots keep
    // their initial values, which the comparison with the solo run checks too).
    let (n, l) = (7, 10);
    let labels: GpuIndices = g.indices(&[3, 0, 9, 9, 1, 5, 2], "labels").unwrap();
    let outs = [spec(&[n, l], K::Plain), spec(&[4], K::Plain)];
    for lk in [K::Plain, K::Shared] {
        check(&mut g, &format!("softmax_xent, logits {lk:?}"), &[spec(&[n, l], lk)], &outs, 55, &|g, x, y| {
            let (d, losses) = y.split_at_mut(1);
            g.softmax_xent(&x[0], &labels, &mut d[0], &mut losses[0], 2)
        });
    }
    check(&mut g, "eval_accumulate", &[spec(&[n, l], K::Plain)], &[spec(&[2], K::Plain)], 56, &|g, x, y| {
        g.eval_accumulate(&x[0], &labels, &mut y[0])
    });
    // The norm of each member's whole packed set, into its slot 1 of 3; one partial workgroup covers 4096
    // values, so a 5000-value tensor gives each member two partials.
    let ins = [spec(&[5000], K::Packed), spec(&[3, 7], K::Packed), spec(&[11], K::Packed)];
    check(&mut g, "grad_norm", &ins, &[spec(&[3], K::Plain)], 57, &|g, x, y| g.grad_norm(x, &mut y[0], 1));
}

#[test]
fn mismatched_member_counts_are_shape_errors() {
    let Some(mut g) = gpu_or_skip("mismatched_member_counts_are_shape_errors") else { return };
    let x = g.zeros_members(3, &[2, 4], "x").unwrap();
    let w2 = g.zeros_members(2, &[5, 4], "w").unwrap();
    let b = g.zeros(&[5], "b").unwrap();
    let mut y3 = g.zeros_members(3, &[2, 5], "y").unwrap();
    let e = g.linear(&x, &w2, &b, &mut y3).unwrap_err();
    assert!(matches!(&e, Error::Shape { op, msg } if op.contains("linear") && msg.contains("`w`")), "{e:?}");
    // A parameter may not be shared: w with one member against a 3-member output.
    let w1 = g.zeros(&[5, 4], "w1").unwrap();
    let e = g.linear(&x, &w1, &b, &mut y3).unwrap_err();
    assert!(matches!(&e, Error::Shape { .. }), "{e:?}");
    // Nor an input with another count than 1 or P.
    let x2 = g.zeros_members(2, &[2, 4], "x2").unwrap();
    let w3 = g.zeros_members(3, &[5, 4], "w3").unwrap();
    assert!(matches!(g.linear(&x2, &w3, &b, &mut y3), Err(Error::Shape { .. })));
    // Conv: weight with 2 members, output with 3.
    let cx = g.zeros(&[1, 1, 4, 4], "cx").unwrap();
    let cw = g.zeros_members(2, &[2, 1, 3, 3], "cw").unwrap();
    let cb = g.zeros(&[2], "cb").unwrap();
    let mut cy = g.zeros_members(3, &[1, 2, 2, 2], "cy").unwrap();
    assert!(matches!(g.conv2d(&cx, &cw, &cb, ConvGeom::UNIT, &mut cy), Err(Error::Shape { .. })));
    // ReLU shares nothing: a one-member input against a 3-member output.
    let r = g.zeros(&[2, 5], "r").unwrap();
    assert!(matches!(g.relu(&r, &mut y3), Err(Error::Shape { .. })));
    // Losses with 2 members for 3-member dlogits.
    let labels = g.indices(&[0, 1], "labels").unwrap();
    let mut d = g.zeros_members(3, &[2, 5], "d").unwrap();
    let mut losses = g.zeros_members(2, &[4], "losses").unwrap();
    assert!(matches!(g.softmax_xent(&y3, &labels, &mut d, &mut losses, 0), Err(Error::Shape { .. })));
    // An update whose uniform holds 1 block for 3 members, and one whose state has 2 members.
    let shapes = vec![vec![4usize], vec![2, 3]];
    let labels = vec!["a".to_string(), "b".to_string()];
    let mut params = g.zeros_packed_members(3, &shapes, &labels).unwrap();
    let grads = g.zeros_packed_members(3, &shapes, &labels).unwrap();
    let mut bufs2 = g.zeros_packed_members(2, &shapes, &labels).unwrap();
    let norms = g.zeros_members(3, &[2], "norms").unwrap();
    let mut one = g.uniform(std::mem::size_of::<SgdHyper>(), "one").unwrap();
    g.write_uniform(&mut one, bytemuck::bytes_of(&sgd_hyper(0, 0))).unwrap();
    let e = g.sgd_update(&mut params, &grads, &mut [], &[0, 0], &one, &norms).unwrap_err();
    assert!(matches!(&e, Error::Shape { op, .. } if op.contains("sgd")), "{e:?}");
    let mut three = g.uniform(3 * std::mem::size_of::<SgdHyper>(), "three").unwrap();
    let blocks = [sgd_hyper(0, 0); 3];
    g.write_uniform(&mut three, bytemuck::cast_slice(&blocks)).unwrap();
    let e = g.sgd_update(&mut params, &grads, &mut bufs2, &[0, 0], &three, &norms).unwrap_err();
    assert!(matches!(&e, Error::Shape { op, .. } if op.contains("sgd")), "{e:?}");
    // Norms are per member when a member clips by norm (its slot is its own); unread otherwise, so a shared
    // one-member tensor is fine then.
    let mut bufs3 = g.zeros_packed_members(3, &shapes, &labels).unwrap();
    let norms1 = g.zeros(&[2], "norms1").unwrap();
    g.sgd_update(&mut params, &grads, &mut bufs3, &[0, 0], &three, &norms1).unwrap();
    let clipping: Vec<SgdHyper> = (0..3).map(|m| sgd_block(m, false, true)).collect();
    g.write_uniform(&mut three, bytemuck::cast_slice(&clipping)).unwrap();
    let e = g.sgd_update(&mut params, &grads, &mut bufs3, &[0, 0], &three, &norms1).unwrap_err();
    assert!(matches!(&e, Error::Shape { msg, .. } if msg.contains("norms1")), "{e:?}");
    g.sgd_update(&mut params, &grads, &mut bufs3, &[0, 0], &three, &norms).unwrap();
    // The batch is shared: gather refuses a member axis on x.
    let images = g.zeros(&[4, 3], "images").unwrap();
    let ilabels = g.indices(&[0, 1, 2, 3], "ilabels").unwrap();
    let order = g.indices(&[0, 1, 2, 3], "order").unwrap();
    let mut bx = g.zeros_members(3, &[2, 3], "bx").unwrap();
    let mut by = g.indices(&[0, 0], "by").unwrap();
    assert!(matches!(g.gather_batch(&images, &ilabels, &order, 0, &mut bx, &mut by), Err(Error::Shape { .. })));
    // A writable view may not share its buffer with another operand of the dispatch: a member-packed view's
    // binding spans its set's other tensors (here x lies between dw's copies).
    let mut set = g.zeros_packed_members(3, &[vec![5, 4], vec![5], vec![2, 4]], &labels3()).unwrap();
    let dy = g.zeros_members(3, &[2, 5], "dy").unwrap();
    let (dw, rest) = set.split_at_mut(1);
    let (db, x) = rest.split_at_mut(1);
    let e = g.linear_backward_weight(&x[0], &dy, &mut dw[0], &mut db[0]).unwrap_err();
    assert!(matches!(&e, Error::Shape { msg, .. } if msg.contains("same buffer")), "{e:?}");
    // Member counts outside 1..=64.
    assert!(matches!(g.zeros_members(0, &[2], "none"), Err(Error::Shape { .. })));
    assert!(matches!(g.zeros_members(65, &[2], "many"), Err(Error::Shape { .. })));
}

#[test]
fn member_packed_sets_round_trip_and_stacks_beyond_the_binding_limit_are_device_limits() {
    let Some(mut g) = gpu_or_skip("member_packed_sets_round_trip") else { return };
    let shapes = vec![vec![3usize], vec![2, 5], vec![70], vec![0]];
    let labels: Vec<String> = (0..shapes.len()).map(|i| format!("t{i}")).collect();
    let mut set = g.zeros_packed_members(P, &shapes, &labels).unwrap();
    let values: Vec<Vec<f32>> = shapes.iter().enumerate().map(|(i, s)| rand_vec(90 + i as u64, P * numel(s))).collect();
    // Write in reverse order: each write must touch only its own tensor's copies.
    for (t, v) in set.iter_mut().zip(&values).rev() {
        assert_eq!(g.members(t), P);
        g.write(t, v).unwrap();
    }
    assert_eq!(g.read_set(&set).unwrap(), values);
    for (t, v) in set.iter().zip(&values) {
        assert_eq!(g.shape(t), shapes[values.iter().position(|x| x == v).unwrap()].as_slice());
        assert_eq!(&g.read(t).unwrap(), v);
    }
    // Rewriting one tensor leaves the others (whose copies lie between its copies) alone.
    let fresh = rand_vec(99, P * 10);
    g.write(&mut set[1], &fresh).unwrap();
    let back = g.read_set(&set).unwrap();
    assert_eq!(back[1], fresh);
    assert_eq!((&back[0], &back[2]), (&values[0], &values[2]));
    // A wrong number of values is refused.
    assert!(matches!(g.write(&mut set[0], &[1.0; 3]), Err(Error::Shape { .. })));
    // A plain member tensor round-trips too.
    let mut plain = g.zeros_members(P, &[2, 3], "plain").unwrap();
    let v = rand_vec(98, P * 6);
    g.write(&mut plain, &v).unwrap();
    assert_eq!(g.read(&plain).unwrap(), v);

    // One member's copy fits, 64 stacked do not.
    let max = g.max_binding_bytes().unwrap();
    let per = (max / 4 / 32) as usize;
    let e = g.zeros_members(64, &[per], "huge").unwrap_err();
    assert!(matches!(&e, Error::DeviceLimit(m) if m.contains("huge") && m.contains("64 members")), "{e:?}");
    let e = g.zeros_packed_members(64, &[vec![per]], &["huge_set".to_string()]).unwrap_err();
    assert!(matches!(&e, Error::DeviceLimit(m) if m.contains("huge_set")), "{e:?}");
}

fn labels3() -> Vec<String> {
    ["dw", "db", "x"].map(String::from).to_vec()
}

fn sgd_hyper(frozen: u32, init: u32) -> SgdHyper {
    let group = SgdGroup {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.1,
        weight_decay: 0.01,
        nesterov: 0,
        init_momentum: init,
        ..Default::default()
    };
    SgdHyper { frozen, group: [group; 8], ..Default::default() }
}

/// Member m's hyper-parameters: different per member (learning rate, momentum, nesterov, clip) so that a
/// member reading another's block would be caught.
fn sgd_block(m: usize, frozen: bool, init: bool) -> SgdHyper {
    let mut h = sgd_hyper(u32::from(frozen), u32::from(init));
    h.clip = ClipParams { max_norm: 0.5 + m as f32 * 0.25, use_norm: 1, norm_slot: 1, ..Default::default() };
    if m == 2 {
        h.clip.use_value = 1;
        h.clip.value = 0.05;
    }
    for (gi, grp) in h.group.iter_mut().enumerate() {
        grp.lr = 0.05 * (m + 1) as f32 + gi as f32 * 0.01;
        grp.nesterov = u32::from(m != 1);
        grp.momentum = if gi == 1 { 0.0 } else { 0.8 + 0.05 * m as f32 };
    }
    h
}

fn adam_block(m: usize, frozen: bool, variant: usize) -> AdamHyper {
    let group = AdamGroup {
        lr: 0.01 * (m + 1) as f32,
        beta1: 0.9 - 0.05 * m as f32,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.02,
        step_size: 0.013 * (m + 1) as f32,
        bias_correction2_sqrt: 0.05 + 0.01 * m as f32,
        decay_factor: 0.9995,
        one_minus_beta1: (1.0 - (0.9 - 0.05 * m as f64)) as f32,
        one_minus_beta2: 0.001,
        ..Default::default()
    };
    AdamHyper {
        clip: ClipParams {
            max_norm: 0.7 + m as f32 * 0.1,
            use_norm: u32::from(m != 1),
            norm_slot: 0,
            ..Default::default()
        },
        amsgrad: u32::from(variant == 2),
        decoupled: u32::from(variant == 1),
        frozen: u32::from(frozen),
        group: [group; 8],
        ..Default::default()
    }
}

/// Packed shapes of the update tests, their groups, and initial values (P members, member-major) per set.
fn update_sets(
    g: &mut GpuBackend,
    n_sets: usize,
    p: usize,
    values: &[Vec<Vec<f32>>],
    m: Option<usize>,
) -> Vec<Vec<GpuTensor>> {
    let shapes = vec![vec![300usize], vec![4, 5], vec![17]];
    let labels: Vec<String> = (0..shapes.len()).map(|i| format!("u{i}")).collect();
    (0..n_sets)
        .map(|s| {
            let mut set = if p == 1 {
                g.zeros_packed(&shapes, &labels).unwrap()
            } else {
                g.zeros_packed_members(p, &shapes, &labels).unwrap()
            };
            for (t, v) in set.iter_mut().zip(&values[s]) {
                let n = v.len() / P;
                let part = match m {
                    Some(m) => &v[m * n..(m + 1) * n],
                    None => &v[..],
                };
                g.write(t, part).unwrap();
            }
            set
        })
        .collect()
}

const UPDATE_SHAPES: [usize; 3] = [300, 20, 17];
const GROUPS: [u32; 3] = [0, 1, 0];

fn update_values(n_sets: usize, seed: u64) -> Vec<Vec<Vec<f32>>> {
    (0..n_sets)
        .map(|s| {
            UPDATE_SHAPES.iter().enumerate().map(|(t, &n)| rand_vec(seed + s as u64 * 10 + t as u64, P * n)).collect()
        })
        .collect()
}

/// Norms (2 slots per member, member-major) large enough that clipping by norm changes the gradients.
fn norm_values() -> Vec<f32> {
    vec![3.0, 4.0, 0.2, 5.0, 2.5, 7.0]
}

type UpdateRun<'a> =
    dyn Fn(&mut GpuBackend, &mut [Vec<GpuTensor>], &wgtrain::gpu::GpuUniform, &GpuTensor) -> wgtrain::Result<()> + 'a;

/// The update `run` (params = set 0, grads = set 1, state = the other sets) on P members with `blocks`, then
/// solo per member with its own block unfrozen: a frozen member's params and state must be unchanged, the
/// others equal to their solo update, bit for bit.
fn check_update<H: bytemuck::Pod>(
    g: &mut GpuBackend,
    name: &str,
    n_sets: usize,
    blocks: &[H],
    frozen: &[bool],
    solo_block: &dyn Fn(usize) -> H,
    run: &UpdateRun<'_>,
) {
    let values = update_values(n_sets, 500);
    let mut sets = update_sets(g, n_sets, P, &values, None);
    let mut norms = g.zeros_members(P, &[2], "norms").unwrap();
    g.write(&mut norms, &norm_values()).unwrap();
    let mut u = g.uniform(P * std::mem::size_of::<H>(), "hyper").unwrap();
    g.write_uniform(&mut u, bytemuck::cast_slice(blocks)).unwrap();
    run(g, &mut sets, &u, &norms).unwrap_or_else(|e| panic!("{name}: {e}"));
    let got: Vec<Vec<Vec<f32>>> = sets.iter().map(|s| g.read_set(s).unwrap()).collect();
    for m in 0..P {
        let mut solo = update_sets(g, n_sets, 1, &values, Some(m));
        let mut sn = g.zeros(&[2], "norms").unwrap();
        g.write(&mut sn, &norm_values()[m * 2..m * 2 + 2]).unwrap();
        let mut su = g.uniform(std::mem::size_of::<H>(), "hyper1").unwrap();
        g.write_uniform(&mut su, bytemuck::bytes_of(&solo_block(m))).unwrap();
        run(g, &mut solo, &su, &sn).unwrap_or_else(|e| panic!("{name} solo: {e}"));
        for (s, set) in solo.iter().enumerate() {
            if s == 1 {
                continue; // the gradients are only read
            }
            let want = g.read_set(set).unwrap();
            for (t, w) in want.iter().enumerate() {
                let n = w.len();
                let part = &got[s][t][m * n..(m + 1) * n];
                let initial = &values[s][t][m * n..(m + 1) * n];
                if frozen[m] {
                    assert_eq!(bits(part), bits(initial), "{name}: frozen member {m} changed set {s} tensor {t}");
                } else {
                    assert_eq!(bits(part), bits(w), "{name}: member {m} set {s} tensor {t} differs from solo");
                    if s == 0 {
                        assert_ne!(bits(part), bits(initial), "{name}: member {m}'s parameter {t} not updated");
                    }
                }
            }
        }
    }
}

#[test]
fn sgd_members_match_solo_updates_and_frozen_members_stay_put() {
    let Some(mut g) = gpu_or_skip("sgd_members_match_solo_updates") else { return };
    for init in [true, false] {
        for frozen_member in [0, 1] {
            let frozen: Vec<bool> = (0..P).map(|m| m == frozen_member).collect();
            let blocks: Vec<SgdHyper> = (0..P).map(|m| sgd_block(m, frozen[m], init)).collect();
            let name = format!("sgd init={init} frozen={frozen_member}");
            check_update(&mut g, &name, 3, &blocks, &frozen, &|m| sgd_block(m, false, init), &|g, sets, u, norms| {
                let (params, rest) = sets.split_at_mut(1);
                let (grads, bufs) = rest.split_at_mut(1);
                g.sgd_update(&mut params[0], &grads[0], &mut bufs[0], &GROUPS, u, norms)
            });
        }
    }
}

#[test]
fn adam_members_match_solo_updates_and_frozen_members_stay_put() {
    let Some(mut g) = gpu_or_skip("adam_members_match_solo_updates") else { return };
    // variant 0: Adam, 1: AdamW, 2: Adam with amsgrad.
    for variant in 0..3 {
        let frozen_member = variant % P;
        let frozen: Vec<bool> = (0..P).map(|m| m == frozen_member).collect();
        let blocks: Vec<AdamHyper> = (0..P).map(|m| adam_block(m, frozen[m], variant)).collect();
        let name = format!("adam variant {variant} frozen={frozen_member}");
        check_update(&mut g, &name, 5, &blocks, &frozen, &|m| adam_block(m, false, variant), &|g, sets, u, norms| {
            let (params, rest) = sets.split_at_mut(1);
            let (grads, rest) = rest.split_at_mut(1);
            let (m1, rest) = rest.split_at_mut(1);
            let (v, vmax) = rest.split_at_mut(1);
            g.adam_update(&mut params[0], &grads[0], &mut m1[0], &mut v[0], &mut vmax[0], &GROUPS, u, norms)
        });
    }
}

/// A population's training step (shared batch, member-packed parameters and gradients, per-member loss and
/// norm slots, SGD) records into one submit and creates no GPU object after the first step.
#[test]
fn a_member_step_is_one_submit_and_allocates_nothing_after_the_first() {
    let Some(mut g) = gpu_or_skip("a_member_step_is_one_submit") else { return };
    let (n, i, o) = (4, 6, 5);
    let shapes = vec![vec![o, i], vec![o]];
    let labels = vec!["w".to_string(), "b".to_string()];
    let mut params = g.zeros_packed_members(P, &shapes, &labels).unwrap();
    let mut grads = g.zeros_packed_members(P, &shapes, &labels).unwrap();
    let mut bufs = g.zeros_packed_members(P, &shapes, &labels).unwrap();
    let w = rand_vec(70, P * o * i);
    g.write(&mut params[0], &w).unwrap();
    let mut x = g.zeros(&[n, i], "x").unwrap();
    let labels_t = g.indices(&[0, 4, 2, 1], "y").unwrap();
    let mut y = g.zeros_members(P, &[n, o], "logits").unwrap();
    let mut dy = g.zeros_members(P, &[n, o], "dlogits").unwrap();
    let mut losses = g.zeros_members(P, &[3], "losses").unwrap();
    let mut norms = g.zeros_members(P, &[3], "norms").unwrap();
    let mut hyper = g.uniform(P * std::mem::size_of::<SgdHyper>(), "hyper").unwrap();
    let mut counts = Vec::new();
    for step in 0..3usize {
        g.write(&mut x, &rand_vec(71 + step as u64, n * i)).unwrap();
        let blocks: Vec<SgdHyper> = (0..P).map(|m| sgd_block(m, false, step == 0)).collect();
        g.write_uniform(&mut hyper, bytemuck::cast_slice(&blocks)).unwrap();
        let before = g.submissions();
        g.begin_step().unwrap();
        g.linear(&x, &params[0], &params[1], &mut y).unwrap();
        g.softmax_xent(&y, &labels_t, &mut dy, &mut losses, step).unwrap();
        let (dw, db) = grads.split_at_mut(1);
        g.linear_backward_weight(&x, &dy, &mut dw[0], &mut db[0]).unwrap();
        g.grad_norm(&grads, &mut norms, 1).unwrap();
        g.sgd_update(&mut params, &grads, &mut bufs, &[0, 1], &hyper, &norms).unwrap();
        g.end_step().unwrap();
        assert_eq!(g.submissions() - before, 1, "step {step}");
        counts.push(g.allocations());
    }
    assert_eq!(counts[1], counts[2], "a GPU object was created after the first step");
    let losses = g.read(&losses).unwrap();
    for m in 0..P {
        assert!(losses[m * 3..m * 3 + 3].iter().all(|l| l.is_finite() && *l > 0.0), "member {m}: {losses:?}");
    }
    assert_ne!(g.read(&params[0]).unwrap(), w, "no member was updated");
}
