//! Weights as safetensors files with PyTorch `state_dict` names (`conv1.weight`, `fc2.bias`, …), so
//! `safetensors.torch.load_file` / `save_file` read and write the same files as `--init` / `--save-weights`.
//!
//! safetensors: an 8-byte little-endian header length, a JSON header mapping each name to
//! `{dtype, shape, data_offsets}`, then the tensors' bytes (little-endian, C order). The whole file is read
//! and parsed by the `safetensors` crate, which checks that the offsets tile the data exactly; everything it
//! rejects becomes an [`Error::Weights`] naming the file, never a panic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::{Error, Result, util};

fn werr(path: &Path, msg: impl Into<String>) -> Error {
    Error::Weights { path: path.to_path_buf(), msg: msg.into() }
}

/// `[32,1,3,3]`, as in the messages.
fn shape_str(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// Save f32 tensors `(name, shape, data)` atomically ([`util::write_atomic`]: an earlier file at `path` survives
/// any failure). Each shape's product must equal its data length; names must be distinct. The header carries
/// `{"format": "pt"}` like files written by `safetensors.torch`.
pub fn save(path: &Path, tensors: &[(&str, &[usize], &[f32])]) -> Result<()> {
    let file = to_bytes(path, tensors, &[])?;
    util::write_atomic(path, &file)?;
    log::info!("saved {} tensors to {}", tensors.len(), path.display());
    Ok(())
}

/// The bytes [`save`] writes, with `meta` added to the header's `__metadata__` (checkpoints put the optimizer's
/// step count there). `path` only names the file in messages.
pub fn to_bytes(path: &Path, tensors: &[(&str, &[usize], &[f32])], meta: &[(&str, String)]) -> Result<Vec<u8>> {
    let mut seen = BTreeSet::new();
    let mut bytes: Vec<Vec<u8>> = Vec::with_capacity(tensors.len());
    for &(name, shape, data) in tensors {
        if !seen.insert(name) {
            return Err(werr(path, format!("tensor name {name} given twice")));
        }
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            return Err(werr(
                path,
                format!("{name}: shape {} does not hold its {} values", shape_str(shape), data.len()),
            ));
        }
        bytes.push(bytemuck::cast_slice::<f32, u8>(data).to_vec());
    }
    // Little-endian hosts only write f32 bytes as they are in memory; safetensors is little-endian.
    const _: () = assert!(cfg!(target_endian = "little"));
    let mut views = Vec::with_capacity(tensors.len());
    for (&(name, shape, _), b) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, shape.to_vec(), b).map_err(|e| werr(path, format!("{name}: {e}")))?;
        views.push((name, view));
    }
    let mut metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    metadata.extend(meta.iter().map(|(k, v)| (k.to_string(), v.clone())));
    safetensors::serialize(views, Some(metadata)).map_err(|e| werr(path, format!("cannot serialize: {e}")))
}

/// The `__metadata__` of a safetensors file's header (empty if it has none).
pub fn metadata(path: &Path, file: &[u8]) -> Result<HashMap<String, String>> {
    check_offsets_fit(file).map_err(|m| werr(path, format!("not a valid safetensors file: {m}")))?;
    let (_, meta) =
        SafeTensors::read_metadata(file).map_err(|e| werr(path, format!("not a valid safetensors file: {e}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Load exactly the `expected` f32 tensors `(name, shape)` and return their values in the order given.
///
/// Errors ([`Error::Weights`], naming the file): not a safetensors file or a malformed header; missing
/// names; extra names; a wrong shape (`conv1.weight has shape [32,1,5,5], expected [32,1,3,3]`); a wrong dtype
/// (`conv1.weight is F64, expected F32`); non-finite values. All name, shape and dtype problems are reported
/// together, separated by `; `.
pub fn load(path: &Path, expected: &[(&str, &[usize])]) -> Result<Vec<Vec<f32>>> {
    let file = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_bytes(path, &file, expected)
}

/// [`load`] of a file already read (`path` names it in messages).
pub fn load_bytes(path: &Path, file: &[u8], expected: &[(&str, &[usize])]) -> Result<Vec<Vec<f32>>> {
    let st = parse(path, file)?;

    let wanted: BTreeSet<&str> = expected.iter().map(|&(n, _)| n).collect();
    let present: BTreeSet<&str> = st.names().into_iter().collect();
    let mut problems = Vec::new();
    let missing: Vec<&str> = expected.iter().map(|&(n, _)| n).filter(|n| !present.contains(n)).collect();
    if !missing.is_empty() {
        problems.push(format!("missing tensors: {}", missing.join(", ")));
    }
    let extra: Vec<&str> = present.difference(&wanted).copied().collect();
    if !extra.is_empty() {
        problems.push(format!("unexpected tensors: {}", extra.join(", ")));
    }
    let mut views = Vec::with_capacity(expected.len());
    for &(name, shape) in expected {
        let Ok(view) = st.tensor(name) else { continue };
        if view.dtype() != Dtype::F32 {
            problems.push(format!("{name} is {:?}, expected F32", view.dtype()));
        } else if view.shape() != shape {
            problems.push(format!("{name} has shape {}, expected {}", shape_str(view.shape()), shape_str(shape)));
        }
        views.push((name, view));
    }
    if !problems.is_empty() {
        return Err(werr(path, problems.join("; ")));
    }

    let mut out = Vec::with_capacity(views.len());
    for (name, view) in views {
        let values: Vec<f32> =
            view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(werr(path, format!("{name} holds a non-finite value {v} at flat index {i}")));
        }
        out.push(values);
    }
    log::info!("loaded {} tensors from {}", out.len(), path.display());
    Ok(out)
}

/// What [`load_any`] returns: tensor name → (shape, values widened to f64).
pub type AnyTensors = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

/// Every tensor of a file whose tensors are all F32 or F64, widened to f64, by name: `(shape, values)`.
/// For tests that compare against f64 PyTorch references.
pub fn load_any(path: &Path) -> Result<AnyTensors> {
    let file = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = parse(path, &file)?;
    let mut out = BTreeMap::new();
    for (name, view) in st.iter() {
        let data = view.data();
        let values: Vec<f64> = match view.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            other => {
                return Err(werr(path, format!("{name} is {other:?}, expected F32 or F64")));
            }
        };
        out.insert(name.to_string(), (view.shape().to_vec(), values));
    }
    Ok(out)
}

fn parse<'a>(path: &Path, file: &'a [u8]) -> Result<SafeTensors<'a>> {
    check_offsets_fit(file).map_err(|m| werr(path, format!("not a valid safetensors file: {m}")))?;
    SafeTensors::deserialize(file).map_err(|e| werr(path, format!("not a valid safetensors file: {e}")))
}

/// Reject any `data_offsets` beyond the end of the file before the `safetensors` crate sees the header:
/// safetensors 0.8.0 sums the offsets with unchecked `+` (`buffer_end + N_LEN + n`, tensor.rs:420), which
/// panics with overflow checks on (and wraps without) when a header's offsets add up to nearly `usize::MAX`.
/// Headers this cannot read are left to the crate, which reports them properly.
fn check_offsets_fit(file: &[u8]) -> std::result::Result<(), String> {
    let Some(n) = file.get(..8).map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])) else {
        return Ok(());
    };
    let Some(header) = usize::try_from(n).ok().and_then(|n| file.get(8..8usize.checked_add(n)?)) else {
        return Ok(());
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(header) else {
        return Ok(());
    };
    let data_len = (file.len() - 8 - header.len()) as u64;
    for (name, info) in map.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
        let offsets = info.get("data_offsets").and_then(|o| o.as_array());
        for off in offsets.into_iter().flatten() {
            if off.as_u64().is_some_and(|o| o > data_len) {
                return Err(format!("{name}: data_offsets {off} lie beyond the {data_len} data bytes of the file"));
            }
        }
    }
    Ok(())
}
