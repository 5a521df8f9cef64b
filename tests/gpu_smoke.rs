//! Temporary smoke test (before the CPU backend lands).
mod gpu_common;
use wgtrain::backend::Backend;

#[test]
fn smoke() {
    let Some(mut g) = gpu_common::gpu_or_skip("smoke") else { return };
    eprintln!("{}", g.name());
    g.build_all_pipelines().unwrap();
    let (n, i, o) = (45, 1100, 65);
    let x = gpu_common::rand_vec(1, n * i);
    let w = gpu_common::rand_vec(2, o * i);
    let b = gpu_common::rand_vec(3, o);
    let tx = g.tensor(&x, &[n, i], "x").unwrap();
    let tw = g.tensor(&w, &[o, i], "w").unwrap();
    let tb = g.tensor(&b, &[o], "b").unwrap();
    let mut ty = g.zeros(&[n, o], "y").unwrap();
    g.linear(&tx, &tw, &tb, &mut ty).unwrap();
    let y = g.read(&ty).unwrap();
    let mut want = vec![0f32; n * o];
    for r in 0..n { for c in 0..o { let mut s = b[c] as f64; for k in 0..i { s += (x[r*i+k] * w[c*i+k]) as f64; } want[r*o+c] = s as f32; } }
    wgtrain::tolerance::Tolerance::new(1e-4, 1e-4).assert("linear", &y, &want);
}
