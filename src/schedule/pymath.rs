//! Python's arithmetic, where it differs from Rust's: the goldens are Python floats, so every formula that
//! PyTorch evaluates in Python is evaluated here with the same operations, and the same inputs that make
//! Python raise make these return `Err` (Rust would silently produce inf/NaN or panic).

use crate::{Error, Result};

/// `a / b` for Python floats: ZeroDivisionError when `b == 0` (Rust gives ±inf or NaN).
#[inline]
pub fn div(a: f64, b: f64, what: &str) -> Result<f64> {
    if b == 0.0 {
        return Err(Error::Schedule(format!("{what}: float division by zero (PyTorch raises ZeroDivisionError)")));
    }
    Ok(a / b)
}

/// `a % b` for Python ints: floor modulo (the result has the sign of `b`); `b == 0` is ZeroDivisionError.
#[inline]
pub fn imod(a: i64, b: i64, what: &str) -> Result<i64> {
    if b == 0 {
        return Err(Error::Schedule(format!("{what}: integer modulo by zero (PyTorch raises ZeroDivisionError)")));
    }
    // wrapping_rem: i64::MIN % -1 would overflow; Python gives 0 there.
    let r = a.wrapping_rem(b);
    Ok(if r != 0 && ((r < 0) != (b < 0)) { r + b } else { r })
}

/// `a // b` for Python ints: floor division; `b == 0` is ZeroDivisionError.
#[inline]
pub fn ifloordiv(a: i64, b: i64, what: &str) -> Result<i64> {
    if b == 0 {
        return Err(Error::Schedule(format!("{what}: integer division by zero (PyTorch raises ZeroDivisionError)")));
    }
    let q = a.wrapping_div(b);
    Ok(if (a.wrapping_rem(b) != 0) && ((a < 0) != (b < 0)) { q - 1 } else { q })
}

/// `x ** y` for Python floats (C `pow`, as CPython calls it): `0.0 ** negative` is ZeroDivisionError and a
/// finite result that overflows is OverflowError.
#[inline]
pub fn pow(x: f64, y: f64, what: &str) -> Result<f64> {
    if x == 0.0 && y < 0.0 {
        return Err(Error::Schedule(format!(
            "{what}: 0.0 cannot be raised to a negative power (PyTorch raises ZeroDivisionError)"
        )));
    }
    let r = x.powf(y);
    if r.is_infinite() && x.is_finite() && y.is_finite() {
        return Err(Error::Schedule(format!("{what}: {x} ** {y} overflows (PyTorch raises OverflowError)")));
    }
    Ok(r)
}

/// Python's builtin `max(a, b)`: the first argument unless the second is strictly greater (so NaN handling
/// follows Python, not IEEE `fmax`).
#[inline]
pub fn py_max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// Python's `bisect.bisect_right(a, x)`, run as written even on an unsorted list (SequentialLR does that
/// with milestones it never sorts).
pub fn bisect_right(a: &[i64], x: i64) -> usize {
    let (mut lo, mut hi) = (0usize, a.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if x < a[mid] {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// A run length as a step count (saturating: no run is longer than i64::MAX steps).
#[inline]
pub fn run_len(steps: usize) -> i64 {
    i64::try_from(steps).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_mod_and_div_follow_python() {
        assert_eq!(imod(5, -3, "x").unwrap(), -1);
        assert_eq!(imod(-5, 3, "x").unwrap(), 1);
        assert_eq!(imod(6, 3, "x").unwrap(), 0);
        assert_eq!(ifloordiv(-5, 3, "x").unwrap(), -2);
        assert_eq!(ifloordiv(5, -3, "x").unwrap(), -2);
        assert_eq!(ifloordiv(6, 3, "x").unwrap(), 2);
        assert!(imod(1, 0, "x").is_err());
        assert!(ifloordiv(1, 0, "x").is_err());
    }

    #[test]
    fn pow_raises_like_python() {
        assert!(pow(0.0, -1.0, "x").is_err());
        assert!(pow(10.0, 400.0, "x").is_err());
        assert_eq!(pow(0.0, 0.0, "x").unwrap(), 1.0);
        assert!(div(1.0, 0.0, "x").is_err());
        assert!(div(1.0, -0.0, "x").is_err());
    }

    #[test]
    fn bisect_matches_python() {
        assert_eq!(bisect_right(&[2, 5], 5), 2);
        assert_eq!(bisect_right(&[2, 5], 4), 1);
        assert_eq!(bisect_right(&[], 4), 0);
        // unsorted lists: the same probes as Python (bisect_right([5, 2], 3) == 2)
        assert_eq!(bisect_right(&[5, 2], 3), 2);
        assert_eq!(bisect_right(&[5, 2], 1), 0);
    }

    #[test]
    fn py_max_keeps_first_on_nan() {
        assert!(py_max(f64::NAN, 1.0).is_nan());
        assert_eq!(py_max(1.0, f64::NAN), 1.0);
    }
}
