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
/// `num_batches_tracked`) are kept apart in [`Checkpoint::ignored`]; float tensors a model did
/// not ask for at that shape are listed in [`Checkpoint::unread`] without reading their data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Float tensors by name.
    pub tensors: BTreeMap<String, Entry>,
    /// Names of non-float tensors, which models never load.
    pub ignored: Vec<String>,
    /// Float tensors whose data was left unread, with their shapes: the model they were read
    /// for has no such key, or expects another shape (see [`Expected`]).
    pub unread: BTreeMap<String, Vec<usize>>,
}

/// What a model expects of a checkpoint: the shape of every key it loads. Reading a file
/// against it checks each tensor's declared shape *before* its data is materialised, and
/// bounds the total bytes read by the model's own size, so a small file that declares huge
/// tensors (zero strides, a forged shape) costs nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expected {
    /// Checkpoint key -> shape as stored in the file.
    pub shapes: BTreeMap<String, Vec<usize>>,
}

impl Expected {
    /// The most bytes a file may make us materialise: every expected tensor once, stored as
    /// `f64` (the widest float read).
    pub fn byte_budget(&self) -> usize {
        self.shapes
            .values()
            .map(|s| s.iter().product::<usize>().saturating_mul(8))
            .fold(0usize, usize::saturating_add)
    }

    /// Whether a tensor `name` of `shape` is wanted.
    fn wants(&self, name: &str, shape: &[usize]) -> bool {
        self.shapes.get(name).is_some_and(|s| s == shape)
    }
}

/// The most bytes reading a file of `file_len` bytes may materialise when no model bounds it:
/// four times the file, plus 64 MiB.
pub fn unchecked_budget(file_len: u64) -> usize {
    usize::try_from(file_len.saturating_mul(4))
        .unwrap_or(usize::MAX)
        .saturating_add(64 << 20)
}

/// Builds a checkpoint tensor by tensor, for both file formats: float tensors the model wants
/// (all of them without a model) are read within a byte budget, the others are listed.
struct Collector<'a> {
    path: &'a Path,
    expected: Option<&'a Expected>,
    /// Bytes that may still be read: the model's size ([`Expected::byte_budget`]), or
    /// [`unchecked_budget`] of the file.
    left: usize,
    total: usize,
    out: Checkpoint,
}

impl<'a> Collector<'a> {
    fn new(path: &'a Path, file_len: u64, expected: Option<&'a Expected>) -> Self {
        let total = expected.map_or(unchecked_budget(file_len), Expected::byte_budget);
        Self {
            path,
            expected,
            left: total,
            total,
            out: Checkpoint::default(),
        }
    }

    fn corrupt(&self, why: String) -> ZooError {
        ZooError::Corrupt {
            path: self.path.display().to_string(),
            why,
        }
    }

    /// Offer tensor `name` of `shape`, stored as `float` (`None`: not a float type) in `bytes`
    /// bytes: it is read with `read` only when wanted and within the budget.
    fn offer(
        &mut self,
        name: String,
        shape: Vec<usize>,
        float: Option<Float>,
        bytes: usize,
        little_endian: bool,
        read: impl FnOnce() -> Result<Vec<u8>, ZooError>,
    ) -> Result<(), ZooError> {
        let Some(float) = float else {
            self.out.ignored.push(name);
            return Ok(());
        };
        if self.expected.is_some_and(|e| !e.wants(&name, &shape)) {
            self.out.unread.insert(name, shape);
            return Ok(());
        }
        self.left = match self.left.checked_sub(bytes) {
            Some(left) => left,
            None => {
                return Err(self.corrupt(format!(
                    "tensor '{name}' would take the data read past {} bytes, more than the \
                     model (or the file) can hold",
                    self.total
                )));
            }
        };
        let values = decode(&read()?, float, little_endian);
        self.out.tensors.insert(name, Entry { shape, values });
        Ok(())
    }

    fn finish(mut self) -> Checkpoint {
        self.out.ignored.sort();
        self.out
    }
}

/// Key prefixes a whole state dict may be nested under (`{"model": state_dict}` saved flat).
const NESTED: [&str; 2] = ["state_dict", "model"];

/// The prefix every key of `keys` starts with, if any of [`NESTED`].
fn nested_prefix<'a>(keys: impl Iterator<Item = &'a str> + Clone) -> Option<&'static str> {
    NESTED.into_iter().find(|k| {
        let dotted = format!("{k}.");
        keys.clone().next().is_some() && keys.clone().all(|name| name.starts_with(&dotted))
    })
}

impl Checkpoint {
    /// Open a checkpoint, choosing the format from the file's first bytes, and read every
    /// float tensor. Without a model to check against, the bytes read are bounded by
    /// [`unchecked_budget`] of the file's size (a state dict's views can share storage, but
    /// not by much more). Prefer [`Checkpoint::open_for`] when the target model is known.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ZooError> {
        Self::read(path.as_ref(), None)
    }

    /// Open a checkpoint for a model that expects `expected`: only tensors it asks for, at
    /// its shapes, are read; the others are listed in [`Checkpoint::unread`]. The bytes read
    /// are bounded by [`Expected::byte_budget`].
    pub fn open_for(path: impl AsRef<Path>, expected: &Expected) -> Result<Self, ZooError> {
        Self::read(path.as_ref(), Some(expected))
    }

    fn read(path: &Path, expected: Option<&Expected>) -> Result<Self, ZooError> {
        let (head, len) = read_head(path)?;
        match safetensors_header(&head, len) {
            Some(_) => SafetensorsFile::open(path)?.checkpoint(expected),
            None => Self::from_pytorch_file(path, len, expected),
        }
    }

    /// Read a PyTorch `torch.save` file holding a state dict (or a dict with a
    /// `state_dict`/`model` entry).
    pub fn from_pytorch(path: impl AsRef<Path>) -> Result<Self, ZooError> {
        let path = path.as_ref();
        let (_, len) = read_head(path)?;
        Self::from_pytorch_file(path, len, None)
    }

    fn from_pytorch_file(
        path: &Path,
        len: u64,
        expected: Option<&Expected>,
    ) -> Result<Self, ZooError> {
        let corrupt = |e: &dyn std::fmt::Display| ZooError::Corrupt {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        let reader = pytorch_reader::PytorchReader::new(path).map_err(|e| corrupt(&e))?;
        let keys = reader.keys();
        let reader = match nested_prefix(keys.iter().map(String::as_str)) {
            Some(key) => pytorch_reader::PytorchReader::with_top_level_key(path, key)
                .map_err(|e| corrupt(&e))?,
            None => reader,
        };
        let mut collector = Collector::new(path, len, expected);
        let mut tensors: Vec<_> = reader.into_tensors().into_iter().collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, tensor) in tensors {
            let float = match tensor.dtype() {
                pytorch_reader::DType::F32 => Some(Float::F32),
                pytorch_reader::DType::F64 => Some(Float::F64),
                _ => None,
            };
            let (shape, bytes) = (tensor.shape().to_vec(), tensor.byte_len());
            // pytorch-reader hands back native-endian bytes.
            let native_le = cfg!(target_endian = "little");
            collector.offer(name, shape, float, bytes, native_le, || {
                tensor.read().map_err(|e| corrupt(&e))
            })?;
        }
        Ok(collector.finish())
    }

    /// Read a `.safetensors` file (f32 and f64 tensors; others are ignored).
    pub fn from_safetensors(path: impl AsRef<Path>) -> Result<Self, ZooError> {
        SafetensorsFile::open(path.as_ref())?.checkpoint(None)
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
        crate::files::write_atomically(path, &data)
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

fn read_head(path: &Path) -> Result<(Vec<u8>, u64), ZooError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| ZooError::io(path, e))?;
    let len = file.metadata().map_err(|e| ZooError::io(path, e))?.len();
    let mut head = Vec::with_capacity(16);
    file.take(16)
        .read_to_end(&mut head)
        .map_err(|e| ZooError::io(path, e))?;
    Ok((head, len))
}

/// The largest header a safetensors file may have (the format's own limit).
const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;

/// The header length of a safetensors file of `len` bytes starting with `head`: `None` when
/// it is not one, `Some(Err)` when it is one with a malformed start. A safetensors file starts
/// with a little-endian u64 header length and a JSON object that must begin with `{`.
fn safetensors_header(head: &[u8], len: u64) -> Option<Result<u64, String>> {
    let n = u64::from_le_bytes(head.get(..8)?.try_into().ok()?);
    // A JSON object after the length (no zip, tar or pickle file has `{` there).
    let first = head.get(8..)?.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    Some(
        if n == 0 || n > MAX_SAFETENSORS_HEADER || n.saturating_add(8) > len {
            Err(format!(
                "a safetensors header of {n} bytes in a {len}-byte file (truncated, or not a \
                 safetensors file)"
            ))
        } else if head[8] != b'{' {
            Err("a safetensors header must start with '{', this one starts with white space".into())
        } else {
            Ok(n)
        },
    )
}

/// A `.safetensors` file opened by its header alone: tensors are read one at a time, so a
/// file costs what is read of it, and every declared size is checked against the file.
pub struct SafetensorsFile {
    path: std::path::PathBuf,
    file: std::fs::File,
    len: u64,
    data_start: u64,
    infos: BTreeMap<String, TensorInfo>,
    metadata: std::collections::HashMap<String, String>,
}

/// One tensor's place in a safetensors file.
struct TensorInfo {
    float: Option<Float>,
    shape: Vec<usize>,
    start: u64,
    end: u64,
}

impl TensorInfo {
    fn bytes(&self) -> usize {
        usize::try_from(self.end - self.start).unwrap_or(usize::MAX)
    }
}

/// A header entry as the format writes it.
#[derive(serde::Deserialize)]
struct RawInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

impl SafetensorsFile {
    /// Read and check the header of `path`.
    pub fn open(path: &Path) -> Result<Self, ZooError> {
        use std::io::Read;
        let corrupt = |why: String| ZooError::Corrupt {
            path: path.display().to_string(),
            why,
        };
        let (head, len) = read_head(path)?;
        let n = safetensors_header(&head, len)
            .unwrap_or_else(|| {
                Err("not a safetensors file (no JSON header after the length)".into())
            })
            .map_err(corrupt)?;
        let mut file = std::fs::File::open(path).map_err(|e| ZooError::io(path, e))?;
        let mut header = vec![0u8; n as usize + 8];
        file.read_exact(&mut header)
            .map_err(|e| ZooError::io(path, e))?;
        let header = std::str::from_utf8(&header[8..])
            .map_err(|e| corrupt(format!("header is not UTF-8: {e}")))?;
        let mut raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(header)
            .map_err(|e| corrupt(format!("header is not a JSON object: {e}")))?;
        let metadata = match raw.remove("__metadata__") {
            Some(m) => serde_json::from_value(m)
                .map_err(|e| corrupt(format!("__metadata__ is not a string map: {e}")))?,
            None => Default::default(),
        };
        let data_len = len - 8 - n;
        let mut infos = BTreeMap::new();
        for (name, value) in raw {
            let info: RawInfo = serde_json::from_value(value)
                .map_err(|e| corrupt(format!("tensor '{name}': {e}")))?;
            let (start, end) = info.data_offsets;
            let elements = info
                .shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| {
                    corrupt(format!("tensor '{name}': shape {:?} overflows", info.shape))
                })?;
            let (float, size) = match info.dtype.as_str() {
                "F64" => (Some(Float::F64), 8),
                "F32" => (Some(Float::F32), 4),
                "I64" | "U64" => (None, 8),
                "I32" | "U32" => (None, 4),
                "F16" | "BF16" | "I16" | "U16" => (None, 2),
                "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => (None, 1),
                other => {
                    return Err(corrupt(format!("tensor '{name}': unknown dtype {other}")));
                }
            };
            let expected = (elements as u64).checked_mul(size);
            if start > end || end > data_len || expected != Some(end - start) {
                return Err(corrupt(format!(
                    "tensor '{name}' ({} {:?}) claims bytes {start}..{end} of a {data_len}-byte \
                     data section",
                    info.dtype, info.shape
                )));
            }
            infos.insert(
                name,
                TensorInfo {
                    float,
                    shape: info.shape,
                    start,
                    end,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len,
            data_start: 8 + n,
            infos,
            metadata,
        })
    }

    /// The float tensors of the file as a checkpoint: with `expected`, only those a model
    /// asks for at its shapes (see [`Checkpoint::open_for`]); without, all of them within
    /// [`unchecked_budget`]. Keys nested under `model.`/`state_dict.` are unwrapped.
    pub fn checkpoint(&self, expected: Option<&Expected>) -> Result<Checkpoint, ZooError> {
        let prefix = nested_prefix(self.infos.keys().map(String::as_str));
        let mut collector = Collector::new(&self.path, self.len, expected);
        for (stored, info) in &self.infos {
            let name = match prefix {
                Some(p) => stored[p.len() + 1..].to_string(),
                None => stored.clone(),
            };
            collector.offer(
                name,
                info.shape.clone(),
                info.float,
                info.bytes(),
                true,
                || self.read_raw(stored),
            )?;
        }
        Ok(collector.finish())
    }

    /// The header's string metadata.
    pub fn metadata(&self) -> &std::collections::HashMap<String, String> {
        &self.metadata
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The byte size of tensor `name`, if the file has it.
    pub fn byte_len(&self, name: &str) -> Option<usize> {
        self.infos.get(name).map(TensorInfo::bytes)
    }

    /// The raw bytes of tensor `name` (checked against the file when it was opened).
    pub fn read_raw(&self, name: &str) -> Result<Vec<u8>, ZooError> {
        use std::io::{Read, Seek, SeekFrom};
        let info = self.infos.get(name).ok_or_else(|| ZooError::Corrupt {
            path: self.path.display().to_string(),
            why: format!("no tensor '{name}'"),
        })?;
        let io = |e| ZooError::io(&self.path, e);
        // `&File` reads and seeks: one open file serves every tensor.
        let mut file = &self.file;
        file.seek(SeekFrom::Start(self.data_start + info.start))
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.take(info.end - info.start)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() != info.bytes() {
            return Err(ZooError::Corrupt {
                path: self.path.display().to_string(),
                why: format!("tensor '{name}' is cut short (the file changed while read)"),
            });
        }
        Ok(bytes)
    }
}
