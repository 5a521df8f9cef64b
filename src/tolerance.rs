//! The one numeric-agreement check used by every test and by `wgtrain compare`: `|a − e| ≤ abs + rel·|e|`.
//!
//! Rounding-to-decimals hides relative error on large values and flags noise on tiny ones; an absolute floor
//! plus a relative term scaled by the expected value is what float32 error actually looks like.

/// Allowed error `abs + rel·|expected|`.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

/// Where two sequences disagree most, and the first place they break the tolerance.
#[derive(Clone, Debug, Default)]
pub struct Agreement {
    pub max_abs_err: f64,
    pub first_bad: Option<(usize, f64, f64)>,
}

impl Tolerance {
    pub const fn new(abs: f64, rel: f64) -> Self {
        Tolerance { abs, rel }
    }

    /// Compare element-wise; NaN anywhere counts as a failure.
    pub fn compare(&self, actual: &[f64], expected: &[f64]) -> Agreement {
        let mut out = Agreement::default();
        for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
            let err = (a - e).abs();
            if err > out.max_abs_err || err.is_nan() {
                out.max_abs_err = if err.is_nan() { f64::INFINITY } else { err };
            }
            // NaN error fails: `err <= bound` is false for NaN.
            let within = err <= self.abs + self.rel * e.abs();
            if out.first_bad.is_none() && !within {
                out.first_bad = Some((i, a, e));
            }
        }
        out
    }

    /// `Err` with the first bad index, both values and the max error, or with a length mismatch.
    pub fn check<A: Into<f64> + Copy, E: Into<f64> + Copy>(
        &self,
        what: &str,
        actual: &[A],
        expected: &[E],
    ) -> Result<f64, String> {
        if actual.len() != expected.len() {
            return Err(format!("{what}: length {} but expected {}", actual.len(), expected.len()));
        }
        let a: Vec<f64> = actual.iter().map(|&x| x.into()).collect();
        let e: Vec<f64> = expected.iter().map(|&x| x.into()).collect();
        let r = self.compare(&a, &e);
        match r.first_bad {
            None => Ok(r.max_abs_err),
            Some((i, a, e)) => Err(format!(
                "{what}: first mismatch at index {i}: got {a}, expected {e} (|Δ| = {:.3e} > {:.1e} + {:.1e}·|e|); max |Δ| = {:.3e} over {} values",
                (a - e).abs(),
                self.abs,
                self.rel,
                r.max_abs_err,
                actual.len()
            )),
        }
    }

    /// Panicking form of [`Tolerance::check`] for tests.
    #[track_caller]
    pub fn assert<A: Into<f64> + Copy, E: Into<f64> + Copy>(&self, what: &str, actual: &[A], expected: &[E]) {
        if let Err(msg) = self.check(what, actual, expected) {
            panic!("{msg}");
        }
    }
}
