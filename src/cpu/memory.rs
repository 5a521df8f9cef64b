//! Tensor memory on the CPU, checked before it is taken: a batch of activations that cannot fit must be a clean
//! error naming the tensor (exit status 2, as the GPU backend refuses a binding over its limits), not the
//! allocator's abort (`memory allocation of N bytes failed`, status 134) or the kernel's OOM killer later.

use crate::{Error, Result};

/// Bytes of memory available for new allocations now: `MemAvailable` of `/proc/meminfo` (Linux); `None` where it
/// cannot be read, and then only the allocator's own refusal is caught.
fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `n` zeros for the tensor `label` (`what` says what it is, for the message), or [`Error::DeviceLimit`] when
/// `n` f32 are more than the memory available or the allocator refuses them.
pub fn zeros(n: usize, label: &str, what: &str) -> Result<Vec<f32>> {
    let bytes = (n as u128) * 4;
    let too_big = |why: String| {
        Error::DeviceLimit(format!(
            "{what} `{label}` needs {bytes} bytes of memory, {why}; use a smaller batch, a smaller model or fewer members"
        ))
    };
    if let Some(avail) = available_bytes()
        && bytes > u128::from(avail)
    {
        return Err(too_big(format!("but only {avail} bytes are available")));
    }
    let mut v: Vec<f32> = Vec::new();
    v.try_reserve_exact(n).map_err(|e| too_big(format!("which the allocator refused ({e})")))?;
    v.resize(n, 0.0);
    Ok(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn more_than_the_machine_has_is_a_clean_error() {
        let e = super::zeros(usize::MAX / 8, "act.conv1", "tensor").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let m = e.to_string();
        assert!(m.contains("act.conv1") && m.contains("bytes"), "{m}");
        assert_eq!(super::zeros(5, "x", "tensor").unwrap(), vec![0.0; 5]);
    }
}
