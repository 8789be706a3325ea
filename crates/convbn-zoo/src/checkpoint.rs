//! Checkpoint files as name -> tensor maps: PyTorch `.pth`/`.pt` (zip format of PyTorch >= 1.6
//! and the legacy pickle stream before it, strided tensors gathered) and `.safetensors`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::ZooError;

/// One tensor of a checkpoint, as `f32` in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Shape, PyTorch layout.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// The floating-point tensors of a checkpoint, by name. Integer tensors (such as BatchNorm's
/// `num_batches_tracked`) are kept apart in [`Checkpoint::ignored`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Float tensors by name.
    pub tensors: BTreeMap<String, Entry>,
    /// Names of non-float tensors, which models never load.
    pub ignored: Vec<String>,
}

impl Checkpoint {
    /// Open a checkpoint, choosing the format from the file's first bytes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ZooError> {
        let path = path.as_ref();
        let head = read_head(path)?;
        if is_safetensors(&head) {
            Self::from_safetensors(path)
        } else {
            Self::from_pytorch(path)
        }
    }

    /// Read a PyTorch `torch.save` file holding a state dict (or a dict with a
    /// `state_dict`/`model` entry).
    pub fn from_pytorch(path: impl AsRef<Path>) -> Result<Self, ZooError> {
        let path = path.as_ref();
        let corrupt = |e: &dyn std::fmt::Display| ZooError::Corrupt {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        let reader = pytorch_reader::PytorchReader::new(path).map_err(|e| corrupt(&e))?;
        let keys = reader.keys();
        let nested = ["state_dict", "model"]
            .into_iter()
            .find(|k| keys.iter().all(|name| name.starts_with(&format!("{k}."))));
        let reader = match nested {
            Some(key) => pytorch_reader::PytorchReader::with_top_level_key(path, key)
                .map_err(|e| corrupt(&e))?,
            None => reader,
        };
        let mut checkpoint = Checkpoint::default();
        for (name, tensor) in reader.into_tensors() {
            let bytes = tensor.read().map_err(|e| corrupt(&e))?;
            // pytorch-reader hands back native-endian bytes.
            let native_le = cfg!(target_endian = "little");
            let values = match tensor.dtype() {
                pytorch_reader::DType::F32 => decode(&bytes, Float::F32, native_le),
                pytorch_reader::DType::F64 => decode(&bytes, Float::F64, native_le),
                _ => {
                    checkpoint.ignored.push(name);
                    continue;
                }
            };
            let entry = Entry {
                shape: tensor.shape().to_vec(),
                values,
            };
            checkpoint.tensors.insert(name, entry);
        }
        checkpoint.ignored.sort();
        Ok(checkpoint)
    }

    /// Read a `.safetensors` file (f32 and f64 tensors; others are ignored).
    pub fn from_safetensors(path: impl AsRef<Path>) -> Result<Self, ZooError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ZooError::io(path, e))?;
        Self::from_safetensors_bytes(&bytes).map_err(|why| ZooError::Corrupt {
            path: path.display().to_string(),
            why,
        })
    }

    /// Parse `.safetensors` bytes (f32 and f64 tensors; others are listed in `ignored`).
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self, String> {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let mut checkpoint = Checkpoint::default();
        for (name, view) in st.tensors() {
            let data = view.data();
            let values = match view.dtype() {
                safetensors::Dtype::F32 => decode(data, Float::F32, true),
                safetensors::Dtype::F64 => decode(data, Float::F64, true),
                _ => {
                    checkpoint.ignored.push(name);
                    continue;
                }
            };
            checkpoint.tensors.insert(
                name,
                Entry {
                    shape: view.shape().to_vec(),
                    values,
                },
            );
        }
        checkpoint.ignored.sort();
        Ok(checkpoint)
    }

    /// Write the tensors as a `.safetensors` file (f32, little-endian).
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), ZooError> {
        let path = path.as_ref();
        let data = self
            .to_safetensors_bytes(&[], None)
            .map_err(|why| ZooError::Corrupt {
                path: path.display().to_string(),
                why,
            })?;
        crate::assets::write_atomically(path, &data)
    }

    /// The tensors as `.safetensors` bytes (f32, little-endian), plus `extra` raw byte tensors
    /// (dtype u8) and string `metadata`, for files that carry more than weights.
    pub fn to_safetensors_bytes(
        &self,
        extra: &[(&str, &[u8])],
        metadata: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Vec<u8>, String> {
        use safetensors::{Dtype, tensor::TensorView};
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(name, e)| {
                let raw = e.values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name.clone(), raw, e.shape.clone())
            })
            .collect();
        let mut views = bytes
            .iter()
            .map(|(name, raw, shape)| {
                TensorView::new(Dtype::F32, shape.clone(), raw).map(|v| (name.clone(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        for (name, raw) in extra {
            views.push((
                name.to_string(),
                TensorView::new(Dtype::U8, vec![raw.len()], raw).map_err(|e| e.to_string())?,
            ));
        }
        safetensors::serialize(views, metadata).map_err(|e| e.to_string())
    }
}

/// Element type of stored floats.
#[derive(Clone, Copy)]
enum Float {
    F32,
    F64,
}

/// Raw float bytes (little- or big-endian) as `f32` values.
fn decode(data: &[u8], float: Float, little_endian: bool) -> Vec<f32> {
    match float {
        Float::F32 => data
            .chunks_exact(4)
            .map(|b| {
                let b = [b[0], b[1], b[2], b[3]];
                if little_endian {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                }
            })
            .collect(),
        Float::F64 => data
            .chunks_exact(8)
            .map(|b| {
                let b: [u8; 8] = b.try_into().expect("chunks of 8 bytes");
                (if little_endian {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                }) as f32
            })
            .collect(),
    }
}

fn read_head(path: &Path) -> Result<Vec<u8>, ZooError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| ZooError::io(path, e))?;
    let mut head = vec![0u8; 16];
    let n = file.read(&mut head).map_err(|e| ZooError::io(path, e))?;
    head.truncate(n);
    Ok(head)
}

/// A safetensors file starts with a little-endian u64 header length and a JSON object.
fn is_safetensors(head: &[u8]) -> bool {
    head.len() >= 9 && head[8] == b'{'
}
