//! The values that flow along the graph's edges while it runs.
//!
//! Every float tensor is held as a rank-5 burn tensor with leading 1s and its ONNX rank
//! (0 to 5): numpy's right-aligned broadcasting is then burn's broadcasting of equal ranks,
//! and the reshapes between ranks are views. Integer values (shapes and what the graph
//! computes from them: `Shape -> Gather -> Concat -> Reshape`) stay on the host.

use burn::tensor::{Device, Tensor, TensorData};

/// The largest tensor rank the importer runs.
pub const MAX_RANK: usize = 5;

/// A float tensor of ONNX rank `rank`, stored with `5 - rank` leading 1s.
#[derive(Clone, Debug)]
pub(crate) struct Float {
    pub tensor: Tensor<MAX_RANK>,
    pub rank: usize,
}

impl Float {
    /// Wrap a burn tensor of rank `D`.
    pub fn new<const D: usize>(tensor: Tensor<D>) -> Self {
        let dims = tensor.dims();
        Self {
            tensor: tensor.reshape(padded(&dims)),
            rank: D,
        }
    }

    /// Reshape to the given ONNX shape (same element count; checked by the caller).
    pub fn with_dims(self, dims: &[usize]) -> Self {
        Self {
            tensor: self.tensor.reshape(padded(dims)),
            rank: dims.len(),
        }
    }

    /// The ONNX shape.
    pub fn dims(&self) -> Vec<usize> {
        self.tensor.dims()[MAX_RANK - self.rank..].to_vec()
    }

    /// The burn axis of ONNX axis `axis`.
    pub fn axis(&self, axis: usize) -> usize {
        axis + MAX_RANK - self.rank
    }

    /// The tensor as a burn tensor of rank `D` (the caller checked `rank == D`).
    pub fn get<const D: usize>(&self) -> Tensor<D> {
        let dims = self.dims();
        let mut shape = [0usize; D];
        shape.copy_from_slice(&dims);
        self.tensor.clone().reshape(shape)
    }

    /// Apply an element-wise function.
    pub fn map(self, f: impl FnOnce(Tensor<MAX_RANK>) -> Tensor<MAX_RANK>) -> Self {
        Self {
            tensor: f(self.tensor),
            rank: self.rank,
        }
    }

    /// A constant from ONNX data (any numeric type), as a float tensor on `device`.
    pub fn from_data(data: &TensorData, device: &Device) -> Self {
        let dims = data.shape().to_vec();
        let values: Vec<f32> = data.iter::<f32>().collect();
        Self {
            tensor: Tensor::from_data(TensorData::new(values, padded(&dims)), device),
            rank: dims.len(),
        }
    }
}

/// `dims` with leading 1s up to rank 5.
pub(crate) fn padded(dims: &[usize]) -> [usize; MAX_RANK] {
    let mut shape = [1usize; MAX_RANK];
    shape[MAX_RANK - dims.len()..].copy_from_slice(dims);
    shape
}

/// A value in the graph.
// Burn's tensor handle is large; values live in one slot table per run, so boxing would
// only add an allocation per op.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// A float tensor (on the model's device, in the autodiff graph).
    Float(Float),
    /// Integers on the host (rank 0 or 1): shapes, axes, indices.
    Ints(Vec<i64>),
}
