//! Softmax cross-entropy, mean over the batch, computed row by row with the max subtracted first
//! (exp never overflows) and the loss taken as ln Σ exp(z − m) − (z_y − m), which keeps its small part even
//! when |m| is huge.

use super::real::Real;

fn row_logsumexp<T: Real>(z: &[T]) -> (T, T) {
    let mut m = z[0];
    for &v in z {
        if v > m {
            m = v;
        }
    }
    let mut s = T::ZERO;
    for &v in z {
        s += (v - m).exp();
    }
    (m, s)
}

/// Returns the mean loss; writes dz = (softmax(z) − onehot(y)) / n.
pub fn softmax_xent<T: Real>(n: usize, l: usize, z: &[T], y: &[u32], dz: &mut [T]) -> T {
    let inv_n = T::ONE / T::from_usize(n);
    let mut total = T::ZERO;
    for r in 0..n {
        let zr = &z[r * l..][..l];
        let (m, s) = row_logsumexp(zr);
        let label = y[r] as usize;
        total += s.ln() - (zr[label] - m);
        for (c, (d, &v)) in dz[r * l..][..l].iter_mut().zip(zr).enumerate() {
            let p = (v - m).exp() / s;
            *d = (if c == label { p - T::ONE } else { p }) * inv_n;
        }
    }
    total * inv_n
}

/// (Σ per-example loss, number of rows whose first argmax equals the label).
pub fn eval_counts<T: Real>(n: usize, l: usize, z: &[T], y: &[u32]) -> (f64, usize) {
    let (mut loss, mut correct) = (0.0, 0);
    for r in 0..n {
        let zr = &z[r * l..][..l];
        let (m, s) = row_logsumexp(zr);
        loss += (s.ln() - (zr[y[r] as usize] - m)).to_f64();
        let mut best = 0;
        for (c, &v) in zr.iter().enumerate() {
            if v > zr[best] {
                best = c;
            }
        }
        correct += usize::from(best == y[r] as usize);
    }
    (loss, correct)
}
