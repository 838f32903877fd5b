use super::{CheckpointError, Shapes};
use pytorch_reader::{DType, PytorchReader};
use std::io::Read;
use std::path::Path;
use tch::{Kind, Tensor};

/// Tensors of a generator's state dict on the CPU, with training wrappers and `module.` removed.
#[derive(Debug)]
pub struct StateDict {
    pub tensors: Vec<(String, Tensor)>,
}

impl StateDict {
    pub fn shapes(&self) -> Shapes {
        self.tensors.iter().map(|(k, t)| (k.clone(), t.size())).collect()
    }
}

/// Reads a checkpoint and unwraps it to a flat generator state dict: `g_ema` (GPEN's training
/// checkpoints, README: "set --key g_ema"), `params_ema`, `params` and `state_dict` wrappers are
/// selected, and a `module.` prefix (DataParallel) is stripped.
pub fn read_state_dict(path: &Path) -> Result<StateDict, CheckpointError> {
    let tensors = read_tensors(path)?;
    if tensors.is_empty() {
        return Err(CheckpointError::NotGpen { path: path.into(), reason: "the file holds no tensors".into() });
    }
    let mut tensors = unwrap(tensors);
    if tensors.iter().any(|(k, _)| k.starts_with("final_conv.")) {
        return Err(CheckpointError::Discriminator { path: path.into() });
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(StateDict { tensors })
}

/// The state dict inside a checkpoint as the authors' loaders find it: a training wrapper's entries
/// selected (`g_ema`, GPEN's training checkpoints; `params_ema`/`params`, Real-ESRGAN's; `state_dict`,
/// RetinaFace's; `model`), then a DataParallel `module.` prefix stripped. Every network's loader
/// goes through this one function.
pub fn unwrap<T>(tensors: Vec<(String, T)>) -> Vec<(String, T)> {
    // A wrapped file holds other top-level entries (the discriminator `d`, optimiser states), so
    // select the wrapper's entries rather than just stripping a prefix.
    const WRAPPERS: [&str; 5] = ["g_ema.", "params_ema.", "params.", "state_dict.", "model."];
    let wrapper = WRAPPERS.into_iter().find(|w| tensors.iter().any(|(k, _)| k.starts_with(w)));
    tensors
        .into_iter()
        .filter_map(|(key, t)| match wrapper {
            Some(w) => key.strip_prefix(w).map(|k| (k.to_string(), t)),
            None => Some((key, t)),
        })
        .map(|(key, t)| (key.strip_prefix("module.").map(str::to_string).unwrap_or(key), t))
        .collect()
}

/// Reads every tensor of a `.pth`/`.pt` (zip or legacy pickle) or `.safetensors` file, recognised
/// by content, not by name. Nested dictionaries come back with dotted names (`g_ema.ecd0.0.0.weight`).
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    let io_err = |source| CheckpointError::Io { path: path.into(), source };
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path).and_then(|mut f| read_prefix(&mut f, &mut head)).map_err(io_err)?;
    let head = &head[..n];
    if n == 0 {
        return Err(CheckpointError::unreadable(path, "the file is empty"));
    }
    if looks_like_safetensors(head) {
        let tensors = Tensor::read_safetensors(path).map_err(|e| CheckpointError::unreadable(path, e))?;
        return Ok(tensors);
    }
    let is_zip = head.starts_with(b"PK\x03\x04");
    let is_pickle = head[0] == 0x80; // pickle protocol marker: legacy (pre-1.6) torch.save files
    if !is_zip && !is_pickle {
        return Err(CheckpointError::unreadable(path, "not a PyTorch checkpoint (.pth/.pt) or a .safetensors file (unknown header)"));
    }
    read_pickle_checkpoint(path)
}

/// The shape of every tensor of a checkpoint's state dict (wrappers unwrapped as [`unwrap`] does),
/// without reading the tensors' data (for memory plans that must not stall a window); safetensors
/// files are read whole.
pub fn read_shapes(path: &Path) -> Result<Shapes, CheckpointError> {
    Ok(unwrap(read_raw_shapes(path)?).into_iter().collect())
}

/// Bytes the tensors of `shapes` take resident in fp32 (what a network keeps on its device
/// whatever precision its file stores).
pub fn fp32_bytes(shapes: &Shapes) -> u64 {
    shapes.values().map(|s| s.iter().product::<i64>().max(1) as u64 * 4).sum()
}

fn read_raw_shapes(path: &Path) -> Result<Vec<(String, Vec<i64>)>, CheckpointError> {
    let head = {
        let mut head = [0u8; 16];
        let n = std::fs::File::open(path)
            .and_then(|mut f| read_prefix(&mut f, &mut head))
            .map_err(|source| CheckpointError::Io { path: path.into(), source })?;
        head[..n].to_vec()
    };
    if head.starts_with(b"PK\x03\x04") || head.first() == Some(&0x80) {
        let parsed = std::panic::catch_unwind(|| PytorchReader::new(path))
            .map_err(|_| CheckpointError::unreadable(path, "the file is damaged (its pickle could not be parsed)"))?
            .map_err(|e| CheckpointError::unreadable(path, describe_reader_error(&e)))?;
        return Ok(parsed.into_tensors().into_iter().map(|(name, t)| (name, t.shape().iter().map(|&d| d as i64).collect())).collect());
    }
    Ok(read_tensors(path)?.into_iter().map(|(k, t)| (k, t.size())).collect())
}

fn read_prefix(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..])? {
            0 => break,
            k => filled += k,
        }
    }
    Ok(filled)
}

/// safetensors: an 8-byte little-endian header length, then a JSON object.
fn looks_like_safetensors(head: &[u8]) -> bool {
    head.len() >= 9 && head[8] == b'{' && u64::from_le_bytes(head[..8].try_into().unwrap()) < (100 << 20)
}

fn read_pickle_checkpoint(path: &Path) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    // The pickle parser sees arbitrary bytes from a possibly damaged download; a panic inside it
    // must become an error for this file, not end the program.
    let parsed = std::panic::catch_unwind(|| PytorchReader::new(path))
        .map_err(|_| CheckpointError::unreadable(path, "the file is damaged (its pickle could not be parsed)"))?
        .map_err(|e| CheckpointError::unreadable(path, describe_reader_error(&e)))?;
    let mut out = Vec::with_capacity(parsed.len());
    for (name, t) in parsed.into_tensors() {
        let kind = match t.dtype() {
            DType::F32 => Kind::Float,
            DType::F16 => Kind::Half,
            DType::BF16 => Kind::BFloat16,
            DType::F64 => Kind::Double,
            DType::I64 => Kind::Int64,
            DType::I32 => Kind::Int,
            DType::I16 => Kind::Int16,
            DType::I8 => Kind::Int8,
            DType::U8 => Kind::Uint8,
            DType::Bool => Kind::Bool,
            other => {
                return Err(CheckpointError::unreadable(path, format!("tensor `{name}` has unsupported type {other:?}")));
            }
        };
        let bytes = t.read().map_err(|e| CheckpointError::unreadable(path, format!("tensor `{name}`: {e} (truncated file?)")))?;
        let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
        let tensor = Tensor::f_from_data_size(&bytes, &shape, kind).map_err(|e| CheckpointError::unreadable(path, e))?;
        out.push((name, tensor));
    }
    Ok(out)
}

fn describe_reader_error(e: &pytorch_reader::PytorchError) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if ["eof", "eocd", "end of central directory", "unexpected end", "failed to fill whole buffer"].iter().any(|m| lower.contains(m)) {
        format!("the file is truncated or damaged ({text}); download it again")
    } else {
        text
    }
}
