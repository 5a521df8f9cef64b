//! The CPU reference's optimizer ops through the `Backend` trait: SGD (one group, then several groups with
//! clipping by norm and by value) and Adam / AdamW / amsgrad against the formulas written out by hand, step by
//! step in f32 in the documented order — bit-identical — plus an f64 Adam as a check on the formula itself, the
//! f64 gradient norm, and the argument errors both backends share.

use wgtrain::backend::Backend;
use wgtrain::cpu::{CpuBackend, CpuTensor};
use wgtrain::optim::{AdamGroup, AdamHyper, ClipParams, MAX_GROUPS, SgdGroup, SgdHyper};
use wgtrain::tolerance::Tolerance;

fn packed(be: &mut CpuBackend, values: &[Vec<f32>], name: &str) -> Vec<CpuTensor> {
    let shapes: Vec<Vec<usize>> = values.iter().map(|v| vec![v.len()]).collect();
    let labels: Vec<String> = (0..values.len()).map(|i| format!("{name}{i}")).collect();
    let mut set = be.zeros_packed(&shapes, &labels).unwrap();
    for (t, v) in set.iter_mut().zip(values) {
        be.write(t, v).unwrap();
    }
    set
}

fn uniform<T: bytemuck::Pod>(be: &mut CpuBackend, v: &T) -> Vec<u8> {
    let mut u = be.uniform(std::mem::size_of::<T>(), "hyper").unwrap();
    be.write_uniform(&mut u, bytemuck::bytes_of(v)).unwrap();
    u
}

fn read_all(be: &mut CpuBackend, set: &[CpuTensor]) -> Vec<Vec<f32>> {
    set.iter().map(|t| be.read(t).unwrap()).collect()
}

#[test]
fn sgd_follows_torch_formula_over_steps() {
    let mut be = CpuBackend::new();
    let norms = be.zeros(&[1], "norms").unwrap();
    for (nesterov, dampening) in [(false, 0.0), (true, 0.0), (false, 0.3)] {
        let (mut p0, g0) = (vec![0.5f32, -1.0, 2.0], [0.1f32, 0.2, -0.3]);
        let mut p = packed(&mut be, std::slice::from_ref(&p0), "p");
        let g = packed(&mut be, &[g0.to_vec()], "g");
        let mut buf = packed(&mut be, &[vec![0.0; 3]], "buf");
        let mut b0 = [0.0f32; 3];
        for (s, lr) in [0.1f32, 0.05, 0.2].into_iter().enumerate() {
            let mut h = SgdHyper::default();
            h.group[0] = SgdGroup {
                lr,
                momentum: 0.9,
                dampening,
                weight_decay: 0.01,
                nesterov: nesterov as u32,
                init_momentum: (s == 0) as u32,
                ..Default::default()
            };
            let u = uniform(&mut be, &h);
            be.sgd_update(&mut p, &g, &mut buf, &[0], &u, &norms).unwrap();
            for i in 0..3 {
                let d = g0[i] + 0.01 * p0[i];
                b0[i] = if s == 0 { d } else { 0.9 * b0[i] + (1.0 - dampening) * d };
                let step = if nesterov { d + 0.9 * b0[i] } else { b0[i] };
                p0[i] -= lr * step;
            }
            // Same f32 operations in the same order: bit-identical.
            assert_eq!(be.read(&p[0]).unwrap(), p0, "step {s}, nesterov {nesterov}, dampening {dampening}");
        }
        assert_eq!(be.read(&g[0]).unwrap(), g0, "the gradients are not modified");
    }
}

/// `norms[slot]` = sqrt of the f64 sum of squares over every tensor, rounded once.
#[test]
fn grad_norm_is_the_f64_norm_over_all_tensors() {
    let mut be = CpuBackend::new();
    let values = vec![vec![3.0f32], vec![0.1, -0.2, 0.3, 1e-3, -7.0, 0.0, 2.5], vec![1e-20; 5]];
    let grads = packed(&mut be, &values, "g");
    let mut norms = be.zeros(&[3], "norms").unwrap();
    be.grad_norm(&grads, &mut norms, 1).unwrap();
    let want = values.iter().flatten().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt() as f32;
    assert_eq!(be.read(&norms).unwrap(), vec![0.0, want, 0.0]);
    assert!(be.grad_norm(&grads, &mut norms, 3).is_err(), "slot outside the norm buffer");
    assert!(be.grad_norm(&[], &mut norms, 0).is_err(), "no gradients");
}

/// torch.nn.utils.clip_grad_norm_'s coefficient as PyTorch evaluates it in f32: `max_norm / (norm + 1e-6)` is
/// `(norm + 1e-6).reciprocal() * max_norm`, clamped to 1.
fn clip_coef(norm: f32, max_norm: f32) -> f32 {
    ((1.0 / (norm + 1e-6)) * max_norm).min(1.0)
}

/// Three parameters in two groups (different lr, momentum, weight decay, nesterov), clipped by norm and by
/// value, three steps: each element follows the hand-written formula bit for bit.
#[test]
fn sgd_groups_with_clipping_follow_hand_formulas() {
    let mut be = CpuBackend::new();
    let p0 = vec![vec![0.5f32, -1.0, 2.0], vec![0.25], vec![-0.75, 1.5]];
    let g0 = vec![vec![0.9f32, -2.0, 0.3], vec![4.0], vec![-0.05, 1.2]];
    let groups = [0u32, 1, 0];
    let group = [
        SgdGroup { lr: 0.1, momentum: 0.9, dampening: 0.1, weight_decay: 0.01, ..Default::default() },
        SgdGroup { lr: 0.03, momentum: 0.5, nesterov: 1, ..Default::default() },
    ];
    let (max_norm, value) = (2.0f32, 0.4f32);
    let mut p = packed(&mut be, &p0, "p");
    let g = packed(&mut be, &g0, "g");
    let mut buf = packed(&mut be, &[vec![0.0; 3], vec![0.0], vec![0.0; 2]], "buf");
    let mut norms = be.zeros(&[2], "norms").unwrap();
    let (mut want_p, mut want_b) = (p0.clone(), vec![vec![0.0f32; 3], vec![0.0], vec![0.0; 2]]);
    for s in 0..3 {
        be.grad_norm(&g, &mut norms, 1).unwrap();
        let clip = ClipParams { max_norm, value, use_norm: 1, use_value: 1, norm_slot: 1, ..Default::default() };
        let mut h = SgdHyper { clip, ..Default::default() };
        for (k, gr) in group.iter().enumerate() {
            h.group[k] = SgdGroup { lr: gr.lr * (1.0 + s as f32), init_momentum: (s == 0) as u32, ..*gr };
        }
        let u = uniform(&mut be, &h);
        be.sgd_update(&mut p, &g, &mut buf, &groups, &u, &norms).unwrap();

        let norm = g0.iter().flatten().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt() as f32;
        let coef = clip_coef(norm, max_norm);
        assert!(coef < 1.0, "the norm {norm} must exceed max_norm for the test to clip");
        for t in 0..3 {
            let gr = &h.group[groups[t] as usize];
            for i in 0..p0[t].len() {
                let mut d = (g0[t][i] * coef).clamp(-value, value);
                if gr.weight_decay != 0.0 {
                    d += gr.weight_decay * want_p[t][i];
                }
                let b = &mut want_b[t][i];
                *b = if s == 0 { d } else { gr.momentum * *b + (1.0 - gr.dampening) * d };
                d = if gr.nesterov != 0 { d + gr.momentum * *b } else { *b };
                want_p[t][i] -= gr.lr * d;
            }
        }
        assert_eq!(read_all(&mut be, &p), want_p, "params after step {s}");
        assert_eq!(read_all(&mut be, &buf), want_b, "momentum after step {s}");
    }
    // Without momentum in any group the buffers may be omitted; clipping by value alone.
    let mut h = SgdHyper::default();
    h.group[0].lr = 0.5;
    h.group[1].lr = 0.25;
    h.clip = ClipParams { value: 0.1, use_value: 1, ..Default::default() };
    let u = uniform(&mut be, &h);
    let before = read_all(&mut be, &p);
    be.sgd_update(&mut p, &g, &mut [], &groups, &u, &norms).unwrap();
    for (t, (after, b)) in read_all(&mut be, &p).iter().zip(&before).enumerate() {
        let lr = h.group[groups[t] as usize].lr;
        let want: Vec<f32> = b.iter().zip(&g0[t]).map(|(&p, &g)| p - lr * g.clamp(-0.1, 0.1)).collect();
        assert_eq!(after, &want, "plain SGD of parameter {t}");
    }
}

/// Adam's moments and parameters after steps 1..=3, f32 in the order of `Backend::adam_update`'s formula,
/// with the host's f64 bias corrections.
struct HandAdam {
    p: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    vmax: Vec<f32>,
}

impl HandAdam {
    fn step(&mut self, g0: &[f32], a: &AdamGroup, decoupled: bool, amsgrad: bool, coef: Option<f32>) {
        for (i, &gi) in g0.iter().enumerate() {
            let mut g = coef.map_or(gi, |c| gi * c);
            if decoupled {
                self.p[i] *= a.decay_factor;
            } else {
                g += a.weight_decay * self.p[i];
            }
            // torch.lerp with weight 1 − beta1: below 0.5 from the start, else from the end. Both 1 − beta are
            // PyTorch's Python floats: the host's f64 values rounded once, not 1 − beta in f32.
            let w = a.one_minus_beta1;
            self.m[i] = if w < 0.5 { self.m[i] + w * (g - self.m[i]) } else { g - (g - self.m[i]) * (1.0 - w) };
            self.v[i] = a.beta2 * self.v[i] + ((a.one_minus_beta2) * g) * g;
            let v = if amsgrad {
                self.vmax[i] = self.vmax[i].max(self.v[i]);
                self.vmax[i]
            } else {
                self.v[i]
            };
            self.p[i] -= (a.step_size * self.m[i]) / (v.sqrt() / a.bias_correction2_sqrt + a.eps);
        }
    }
}

/// The group at step t as the host fills it (f64 arithmetic rounded once to f32, as PyTorch's Python floats).
fn adam_group(lr: f64, betas: (f64, f64), eps: f64, weight_decay: f64, t: i32) -> AdamGroup {
    AdamGroup::at_step(lr, betas, eps, weight_decay, f64::from(t))
}

#[test]
fn adam_adamw_amsgrad_follow_the_hand_expanded_formula_over_three_steps() {
    let mut be = CpuBackend::new();
    let p0 = vec![vec![0.5f32, -1.0, 2.0, 0.0], vec![0.3, -0.02]];
    // Gradients change every step; the second parameter's shrink so amsgrad's maximum differs from exp_avg_sq.
    let grads_at = |s: usize| vec![vec![0.9f32, -2.0, 0.3, 1e-3], vec![1.5 * 0.01f32.powi(s as i32), -0.7]];
    // (decoupled, amsgrad, clip by norm, betas of group 1): group 1's beta1 = 0.3 takes lerp's other branch.
    for (decoupled, amsgrad, clip, beta1b) in
        [(false, false, false, 0.9), (true, false, false, 0.9), (false, true, true, 0.3), (true, true, false, 0.3)]
    {
        let what = format!("decoupled {decoupled} amsgrad {amsgrad} clip {clip} beta1 {beta1b}");
        let zeros = || vec![vec![0.0f32; 4], vec![0.0; 2]];
        let mut p = packed(&mut be, &p0, "p");
        let (mut m, mut v, mut vmax) = (packed(&mut be, &zeros(), "m"), packed(&mut be, &zeros(), "v"), {
            if amsgrad { packed(&mut be, &zeros(), "vmax") } else { Vec::new() }
        });
        let mut norms = be.zeros(&[1], "norms").unwrap();
        let mut hand: Vec<HandAdam> = p0
            .iter()
            .map(|p| HandAdam { p: p.clone(), m: vec![0.0; p.len()], v: vec![0.0; p.len()], vmax: vec![0.0; p.len()] })
            .collect();
        for s in 0..3 {
            let t = s as i32 + 1;
            let g0 = grads_at(s);
            let g = packed(&mut be, &g0, "g");
            be.grad_norm(&g, &mut norms, 0).unwrap();
            let mut h = AdamHyper { amsgrad: amsgrad as u32, decoupled: decoupled as u32, ..Default::default() };
            h.group[0] = adam_group(1e-2 / t as f64, (0.9, 0.999), 1e-8, 0.01, t);
            h.group[1] = adam_group(3e-3, (beta1b, 0.99), 1e-6, 0.1, t);
            let norm = g0.iter().flatten().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt() as f32;
            let coef = clip.then(|| clip_coef(norm, 1.0));
            if clip {
                h.clip = ClipParams { max_norm: 1.0, use_norm: 1, ..Default::default() };
                assert!(coef < Some(1.0), "{what}: the norm {norm} must exceed max_norm");
            }
            let u = uniform(&mut be, &h);
            be.adam_update(&mut p, &g, &mut m, &mut v, &mut vmax, &[0, 1], &u, &norms).unwrap();
            for (k, hd) in hand.iter_mut().enumerate() {
                hd.step(&g0[k], &h.group[k], decoupled, amsgrad, coef);
            }
            for k in 0..2 {
                assert_eq!(be.read(&p[k]).unwrap(), hand[k].p, "{what}: param {k} after step {t}");
                assert_eq!(be.read(&m[k]).unwrap(), hand[k].m, "{what}: exp_avg {k} after step {t}");
                assert_eq!(be.read(&v[k]).unwrap(), hand[k].v, "{what}: exp_avg_sq {k} after step {t}");
                if amsgrad {
                    assert_eq!(be.read(&vmax[k]).unwrap(), hand[k].vmax, "{what}: max_exp_avg_sq {k}");
                }
            }
            if amsgrad && s == 2 {
                assert_ne!(hand[1].vmax, hand[1].v, "{what}: the maximum must matter by step 3");
            }
        }
    }
}

/// The f32 op against Adam written the textbook way in f64 (m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ),
/// p −= lr·m̂/(√v̂ + eps)): the two orders agree to f32 rounding, so the formula is Adam's.
#[test]
fn adam_matches_the_textbook_formula_in_f64() {
    let mut be = CpuBackend::new();
    let (lr, b1, b2, eps, wd) = (1e-2, 0.9, 0.999, 1e-8, 0.0);
    let p0 = vec![0.5f32, -1.0, 2.0, 0.125, -0.3];
    let mut p = packed(&mut be, std::slice::from_ref(&p0), "p");
    let (mut m, mut v) = (packed(&mut be, &[vec![0.0; 5]], "m"), packed(&mut be, &[vec![0.0; 5]], "v"));
    let norms = be.zeros(&[1], "norms").unwrap();
    let (mut pd, mut md, mut vd) = (p0.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(), [0.0; 5], [0.0; 5]);
    for t in 1..=5 {
        let g0: Vec<f32> = (0..5).map(|i| ((i as f32 + 1.0) * 0.37 * t as f32).sin()).collect();
        let g = packed(&mut be, std::slice::from_ref(&g0), "g");
        let mut h = AdamHyper::default();
        h.group[0] = adam_group(lr, (b1, b2), eps, wd, t);
        let u = uniform(&mut be, &h);
        be.adam_update(&mut p, &g, &mut m, &mut v, &mut [], &[0], &u, &norms).unwrap();
        for i in 0..5 {
            let gi = f64::from(g0[i]);
            md[i] = b1 * md[i] + (1.0 - b1) * gi;
            vd[i] = b2 * vd[i] + (1.0 - b2) * gi * gi;
            let (mh, vh) = (md[i] / (1.0 - b1.powi(t)), vd[i] / (1.0 - b2.powi(t)));
            pd[i] -= lr * mh / (vh.sqrt() + eps);
        }
    }
    // Five steps of ~20 roundings each on parameters of size ~1 and updates of size ~lr: 1e-6 is ~15 ulp.
    Tolerance::new(1e-6, 1e-6).assert("adam vs f64", &be.read(&p[0]).unwrap(), &pd);
}

#[test]
fn bad_update_arguments_are_errors() {
    let mut be = CpuBackend::new();
    let mut p = packed(&mut be, &[vec![1.0; 3], vec![1.0; 2]], "p");
    let g = packed(&mut be, &[vec![1.0; 3], vec![1.0; 2]], "g");
    let mut buf = packed(&mut be, &[vec![0.0; 3], vec![0.0; 2]], "buf");
    let norms = be.zeros(&[1], "norms").unwrap();
    let mut h = SgdHyper::default();
    h.group[0] = SgdGroup { lr: 0.1, momentum: 0.9, ..Default::default() };
    let u = uniform(&mut be, &h);
    let err = |r: wgtrain::Result<()>| r.unwrap_err().to_string();
    let e = err(be.sgd_update(&mut p, &g, &mut buf, &[0, MAX_GROUPS as u32], &u, &norms));
    assert!(e.contains("group 8"), "{e}");
    let e = err(be.sgd_update(&mut p, &g, &mut buf, &[0], &u, &norms));
    assert!(e.contains("group indices"), "{e}");
    let e = err(be.sgd_update(&mut p, &g, &mut [], &[0, 0], &u, &norms));
    assert!(e.contains("momentum"), "{e}");
    let e = err(be.sgd_update(&mut p, &g[..1], &mut buf, &[0, 0], &u, &norms));
    assert!(e.contains("grads"), "{e}");
    let other = packed(&mut be, &[vec![0.0; 2], vec![0.0; 3]], "other");
    let e = err(be.sgd_update(&mut p, &other, &mut buf, &[0, 0], &u, &norms));
    assert!(e.contains("shape"), "{e}");
    let short = vec![0u8; 16];
    let e = err(be.sgd_update(&mut p, &g, &mut buf, &[0, 0], &short, &norms));
    assert!(e.contains("SgdHyper"), "{e}");
    h.clip = ClipParams { use_norm: 1, norm_slot: 1, max_norm: 1.0, ..Default::default() };
    let u = uniform(&mut be, &h);
    let e = err(be.sgd_update(&mut p, &g, &mut buf, &[0, 0], &u, &norms));
    assert!(e.contains("norm slot 1"), "{e}");
    let ah = AdamHyper { amsgrad: 1, ..Default::default() };
    let u = uniform(&mut be, &ah);
    let (mut m, mut v) = (packed(&mut be, &[vec![0.0; 3], vec![0.0; 2]], "m"), buf);
    let e = err(be.adam_update(&mut p, &g, &mut m, &mut v, &mut [], &[0, 0], &u, &norms));
    assert!(e.contains("max_exp_avg_sq"), "{e}");
    assert!(be.uniform(24, "odd").is_err(), "a uniform is a multiple of 16 bytes");
    assert!(be.zeros_packed(&[vec![1]], &[]).is_err(), "one label per shape");
}

/// Issue #22: PyTorch hands `1 - beta1` and `1 - beta2` to its kernels as Python floats, so after one Adam step
/// from zero state exp_avg = f32(1 − 0.9)·g and exp_avg_sq = (f32(1 − 0.999)·g)·g, with f32(1 − 0.999) = 0.001.
/// Forming 1 − beta2 from the f32 beta2 gives 0.00099998713 instead: a bias of 1.3e-5 in every exp_avg_sq (and
/// ~6e-6 in every step) that long runs amplify far beyond float32 noise. Through the optimizer's own host path.
#[test]
fn adam_moments_weigh_the_gradient_by_pytorchs_one_minus_beta() {
    use wgtrain::optim::{OptimConfig, Optimizer, OptimizerKind};
    let mut be = CpuBackend::new();
    let mut config = OptimConfig::sgd(1e-3, 0.0);
    config.kind = OptimizerKind::Adam;
    let (names, shapes) = (vec!["w".to_string()], vec![vec![4]]);
    let groups = config.groups(&names).unwrap();
    let sched = config.scheduler_groups(&groups);
    let mut opt = Optimizer::new(&mut be, &config, groups, &names, &shapes).unwrap();
    let g0 = vec![1.0f32, -2.0, 3e-3, 0.7];
    let mut p = packed(&mut be, &[vec![0.5; 4]], "p");
    let g = packed(&mut be, std::slice::from_ref(&g0), "g");
    let mut norms = be.zeros(&[1], "norms").unwrap();
    be.grad_norm(&g, &mut norms, 0).unwrap();
    opt.prepare(&mut be, &sched, 0).unwrap();
    opt.update(&mut be, &mut p, &g, &norms).unwrap();
    let state = opt.read_state(&mut be).unwrap();
    let (w1, w2) = ((1.0f64 - 0.9) as f32, (1.0f64 - 0.999) as f32);
    assert_eq!(w2, 0.001f32);
    assert_eq!(state[0].1[0], g0.iter().map(|&g| w1 * g).collect::<Vec<_>>(), "exp_avg");
    assert_eq!(state[1].1[0], g0.iter().map(|&g| (w2 * g) * g).collect::<Vec<_>>(), "exp_avg_sq");
}
