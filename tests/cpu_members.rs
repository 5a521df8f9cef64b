//! The member axis on the CPU reference backend: every op with P members gives, for each member, exactly what
//! the same op gives alone on that member's data (bit for bit); a one-member input is shared; slots and hyper
//! blocks are per member; a frozen member's update changes nothing; mismatched member counts are errors.

use wgtrain::Error;
use wgtrain::backend::{Backend, ConvGeom, PoolGeom, numel};
use wgtrain::cpu::{CpuBackend, CpuTensor};
use wgtrain::optim::{AdamGroup, AdamHyper, ClipParams, SgdGroup, SgdHyper};

const P: usize = 3;

fn rand_vec(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A P-member tensor with different random values per member, and each member's values.
fn stacked(b: &mut CpuBackend, seed: u64, shape: &[usize]) -> (CpuTensor, Vec<Vec<f32>>) {
    let parts: Vec<Vec<f32>> = (0..P).map(|m| rand_vec(seed * 100 + m as u64, numel(shape))).collect();
    let mut t = b.zeros_members(P, shape, "t").unwrap();
    b.write(&mut t, &parts.concat()).unwrap();
    (t, parts)
}

fn solo(b: &mut CpuBackend, data: &[f32], shape: &[usize]) -> CpuTensor {
    b.tensor(data, shape, "solo").unwrap()
}

fn member(t: &CpuTensor, m: usize) -> &[f32] {
    let n = numel(&t.shape);
    &t.data[m * n..][..n]
}

#[test]
fn conv_layers_run_each_member_on_its_own_weights_and_a_shared_batch() {
    let mut b = CpuBackend::new();
    let (n, c, k, hw) = (2, 2, 3, 6);
    let geom = ConvGeom { stride: 1, padding: 1 };
    let x = b.tensor(&rand_vec(1, n * c * hw * hw), &[n, c, hw, hw], "x").unwrap(); // shared
    let (w, ws) = stacked(&mut b, 2, &[k, c, 3, 3]);
    let (bias, bs) = stacked(&mut b, 3, &[k]);
    let mut y = b.zeros_members(P, &[n, k, hw, hw], "y").unwrap();
    b.conv2d_relu(&x, &w, &bias, geom, &mut y).unwrap();
    let (dy, dys) = stacked(&mut b, 4, &[n, k, hw, hw]);
    let (mut dw, mut db) = (b.zeros_members(P, &[k, c, 3, 3], "dw").unwrap(), b.zeros_members(P, &[k], "db").unwrap());
    b.conv2d_backward_weight(&x, &dy, geom, &mut dw, &mut db).unwrap();
    let (mask, masks) = stacked(&mut b, 5, &[n, c, hw, hw]);
    let mut dx = b.zeros_members(P, &[n, c, hw, hw], "dx").unwrap();
    b.conv2d_backward_input_relu(&dy, &w, &mask, geom, &mut dx).unwrap();
    for m in 0..P {
        let (wm, bm, dym) =
            (solo(&mut b, &ws[m], &[k, c, 3, 3]), solo(&mut b, &bs[m], &[k]), solo(&mut b, &dys[m], &[n, k, hw, hw]));
        let mut ym = b.zeros(&[n, k, hw, hw], "y").unwrap();
        b.conv2d_relu(&x, &wm, &bm, geom, &mut ym).unwrap();
        assert_eq!(member(&y, m), ym.data.as_slice(), "conv2d_relu, member {m}");
        let (mut dwm, mut dbm) = (b.zeros(&[k, c, 3, 3], "dw").unwrap(), b.zeros(&[k], "db").unwrap());
        b.conv2d_backward_weight(&x, &dym, geom, &mut dwm, &mut dbm).unwrap();
        assert_eq!((member(&dw, m), member(&db, m)), (dwm.data.as_slice(), dbm.data.as_slice()), "dw, db {m}");
        let maskm = solo(&mut b, &masks[m], &[n, c, hw, hw]);
        let mut dxm = b.zeros(&[n, c, hw, hw], "dx").unwrap();
        b.conv2d_backward_input_relu(&dym, &wm, &maskm, geom, &mut dxm).unwrap();
        assert_eq!(member(&dx, m), dxm.data.as_slice(), "dx, member {m}");
    }
    assert_ne!(member(&y, 0), member(&y, 1), "members with different weights differ");
}

#[test]
fn linear_pool_and_loss_are_per_member_with_per_member_slots() {
    let mut b = CpuBackend::new();
    let (n, i, o, ring) = (4, 8, 5, 6);
    let (x, xs) = stacked(&mut b, 10, &[n, i]);
    let (w, ws) = stacked(&mut b, 11, &[o, i]);
    let bias = b.tensor(&rand_vec(12, o), &[o], "fixed bias").unwrap(); // shared
    let mut y = b.zeros_members(P, &[n, o], "y").unwrap();
    b.linear(&x, &w, &bias, &mut y).unwrap();
    let labels: Vec<u32> = (0..n as u32).map(|r| r % o as u32).collect();
    let mut dlogits = b.zeros_members(P, &[n, o], "dz").unwrap();
    let mut losses = b.zeros_members(P, &[ring], "losses").unwrap();
    b.softmax_xent(&y, &labels, &mut dlogits, &mut losses, 4).unwrap();
    let mut acc = b.zeros_members(P, &[2], "acc").unwrap();
    b.eval_accumulate(&y, &labels, &mut acc).unwrap();
    let (px, pxs) = stacked(&mut b, 13, &[2, 2, 4, 4]);
    let mut py = b.zeros_members(P, &[2, 2, 2, 2], "py").unwrap();
    b.max_pool2d(&px, PoolGeom::TWO, &mut py).unwrap();
    for m in 0..P {
        let (xm, wm) = (solo(&mut b, &xs[m], &[n, i]), solo(&mut b, &ws[m], &[o, i]));
        let mut ym = b.zeros(&[n, o], "y").unwrap();
        b.linear(&xm, &wm, &bias, &mut ym).unwrap();
        assert_eq!(member(&y, m), ym.data.as_slice(), "linear, member {m}");
        let (mut dzm, mut lm) = (b.zeros(&[n, o], "dz").unwrap(), b.zeros(&[ring], "l").unwrap());
        b.softmax_xent(&ym, &labels, &mut dzm, &mut lm, 4).unwrap();
        assert_eq!(member(&dlogits, m), dzm.data.as_slice(), "dlogits, member {m}");
        assert_eq!(member(&losses, m), lm.data.as_slice(), "member {m}'s ring holds its loss in slot 4 only");
        let mut am = b.zeros(&[2], "acc").unwrap();
        b.eval_accumulate(&ym, &labels, &mut am).unwrap();
        assert_eq!(member(&acc, m), am.data.as_slice(), "eval counters, member {m}");
        let pxm = solo(&mut b, &pxs[m], &[2, 2, 4, 4]);
        let mut pym = b.zeros(&[2, 2, 2, 2], "py").unwrap();
        b.max_pool2d(&pxm, PoolGeom::TWO, &mut pym).unwrap();
        assert_eq!(member(&py, m), pym.data.as_slice(), "pool, member {m}");
    }
}

#[test]
fn mismatched_member_counts_are_shape_errors() {
    let mut b = CpuBackend::new();
    let x = b.zeros_members(2, &[4, 8], "x").unwrap();
    let w = b.zeros_members(P, &[5, 8], "w").unwrap();
    let bias = b.zeros(&[5], "b").unwrap();
    let mut y = b.zeros_members(P, &[4, 5], "y").unwrap();
    let e = b.linear(&x, &w, &bias, &mut y).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("2 members"), "{e}");
    let w2 = b.zeros_members(2, &[5, 8], "w").unwrap();
    let x1 = b.zeros(&[4, 8], "x").unwrap();
    let e = b.linear(&x1, &w2, &bias, &mut y).unwrap_err();
    assert!(e.to_string().contains("w has 2 members"), "{e}");
    assert!(b.zeros_members(0, &[1], "none").is_err() && b.zeros_members(65, &[1], "many").is_err());
}

fn sgd_block(lr: f32, momentum: f32, nesterov: bool, clip: Option<f32>, frozen: bool) -> SgdHyper {
    let mut h = SgdHyper { frozen: frozen.into(), ..Default::default() };
    if let Some(max_norm) = clip {
        h.clip = ClipParams { max_norm, use_norm: 1, norm_slot: 2, ..Default::default() };
    }
    h.group[0] = SgdGroup { lr, momentum, nesterov: nesterov.into(), init_momentum: 1, ..Default::default() };
    h
}

#[test]
fn updates_read_each_members_block_norm_and_state_and_leave_a_frozen_member_alone() {
    let mut b = CpuBackend::new();
    let shapes = vec![vec![3, 4], vec![3]];
    let labels = vec!["w".to_string(), "b".to_string()];
    let groups = [0u32, 0];
    let fill = |b: &mut CpuBackend, set: &mut [CpuTensor], seed: u64| {
        for (t, x) in set.iter_mut().enumerate() {
            let n = x.data.len();
            b.write(x, &rand_vec(seed + t as u64, n)).unwrap();
        }
    };
    let mut params = b.zeros_packed_members(P, &shapes, &labels).unwrap();
    let mut grads = b.zeros_packed_members(P, &shapes, &labels).unwrap();
    let mut bufs = b.zeros_packed_members(P, &shapes, &labels).unwrap();
    fill(&mut b, &mut params, 20);
    fill(&mut b, &mut grads, 30);
    let mut norms = b.zeros_members(P, &[4], "norms").unwrap();
    b.grad_norm(&grads, &mut norms, 2).unwrap();
    let blocks = [
        sgd_block(0.1, 0.9, true, Some(0.5), false),
        sgd_block(0.2, 0.0, false, None, true),
        sgd_block(0.05, 0.5, false, None, false),
    ];
    let mut hyper = b.uniform(P * std::mem::size_of::<SgdHyper>(), "hyper").unwrap();
    b.write_uniform(&mut hyper, bytemuck::cast_slice(&blocks)).unwrap();
    let before = params.clone();
    b.sgd_update(&mut params, &grads, &mut bufs, &groups, &hyper, &norms).unwrap();
    for (m, block) in blocks.iter().enumerate() {
        let mut sp: Vec<CpuTensor> = before.iter().map(|t| solo(&mut b, member(t, m), &t.shape)).collect();
        let sg: Vec<CpuTensor> = grads.iter().map(|t| solo(&mut b, member(t, m), &t.shape)).collect();
        let mut sb = b.zeros_packed(&shapes, &labels).unwrap();
        let mut sn = b.zeros(&[4], "norms").unwrap();
        b.grad_norm(&sg, &mut sn, 2).unwrap();
        assert_eq!(member(&norms, m), sn.data.as_slice(), "member {m}'s norm in its own slot 2");
        if m == 1 {
            for (t, p) in params.iter().enumerate() {
                assert_eq!(member(p, m), member(&before[t], m), "the frozen member's parameter {t} is untouched");
                assert!(member(&bufs[t], m).iter().all(|&v| v == 0.0), "and its momentum too");
            }
            continue;
        }
        let mut h = b.uniform(std::mem::size_of::<SgdHyper>(), "h").unwrap();
        b.write_uniform(&mut h, bytemuck::bytes_of(block)).unwrap();
        b.sgd_update(&mut sp, &sg, &mut sb, &groups, &h, &sn).unwrap();
        for t in 0..shapes.len() {
            assert_eq!(member(&params[t], m), sp[t].data.as_slice(), "member {m}, parameter {t}");
            assert_eq!(member(&bufs[t], m), sb[t].data.as_slice(), "member {m}, momentum {t}");
        }
    }
    // One block too few for three members.
    let mut short = b.uniform(2 * std::mem::size_of::<SgdHyper>(), "short").unwrap();
    b.write_uniform(&mut short, bytemuck::cast_slice(&blocks[..2])).unwrap();
    let e = b.sgd_update(&mut params, &grads, &mut bufs, &groups, &short, &norms).unwrap_err();
    assert!(e.to_string().contains("3 member(s)"), "{e}");
}

#[test]
fn adam_members_with_one_frozen_match_their_solo_updates() {
    let mut b = CpuBackend::new();
    let shapes = vec![vec![5]];
    let labels = vec!["w".to_string()];
    let mut params = b.zeros_packed_members(P, &shapes, &labels).unwrap();
    let mut grads = b.zeros_packed_members(P, &shapes, &labels).unwrap();
    b.write(&mut params[0], &rand_vec(40, 5 * P)).unwrap();
    b.write(&mut grads[0], &rand_vec(41, 5 * P)).unwrap();
    let mut sets: Vec<Vec<CpuTensor>> = (0..3).map(|_| b.zeros_packed_members(P, &shapes, &labels).unwrap()).collect();
    let norms = b.zeros_members(P, &[1], "norms").unwrap();
    let block = |lr: f32, decoupled: u32, frozen: u32| {
        let mut h = AdamHyper { amsgrad: 1, decoupled, frozen, ..Default::default() };
        h.group[0] = AdamGroup {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            step_size: lr / 0.1,
            bias_correction2_sqrt: 0.001f32.sqrt(),
            decay_factor: 1.0 - lr * 0.01,
            one_minus_beta1: 0.1,
            one_minus_beta2: 0.001,
            ..Default::default()
        };
        h
    };
    let blocks = [block(1e-3, 1, 0), block(1e-2, 1, 1), block(3e-3, 0, 0)];
    let mut hyper = b.uniform(P * std::mem::size_of::<AdamHyper>(), "hyper").unwrap();
    b.write_uniform(&mut hyper, bytemuck::cast_slice(&blocks)).unwrap();
    let before = params[0].clone();
    let [ea, eas, mx] = &mut sets[..] else { unreachable!() };
    b.adam_update(&mut params, &grads, ea, eas, mx, &[0], &hyper, &norms).unwrap();
    assert_eq!(member(&params[0], 1), member(&before, 1), "frozen member untouched");
    for m in [0, 2] {
        let mut sp = vec![solo(&mut b, member(&before, m), &[5])];
        let sg = vec![solo(&mut b, member(&grads[0], m), &[5])];
        let mut s: Vec<Vec<CpuTensor>> = (0..3).map(|_| b.zeros_packed(&shapes, &labels).unwrap()).collect();
        let sn = b.zeros(&[1], "n").unwrap();
        let mut h = b.uniform(std::mem::size_of::<AdamHyper>(), "h").unwrap();
        b.write_uniform(&mut h, bytemuck::bytes_of(&blocks[m])).unwrap();
        let [ea, eas, mx] = &mut s[..] else { unreachable!() };
        b.adam_update(&mut sp, &sg, ea, eas, mx, &[0], &h, &sn).unwrap();
        assert_eq!(member(&params[0], m), sp[0].data.as_slice(), "member {m}");
        assert_eq!(member(&sets[2][0], m), s[2][0].data.as_slice(), "member {m}'s max_exp_avg_sq");
    }
}
