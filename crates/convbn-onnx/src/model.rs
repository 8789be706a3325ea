//! [`OnnxModel`]: an imported graph as a burn [`Module`].

use std::path::Path;

use burn::module::Module;
use burn::nn::LinearConfig;
use burn::tensor::{Device, Tensor};

use crate::error::{OnnxError, Result};
use crate::import::import_graph;
use crate::layer::Layer;
use crate::program::Program;
use crate::value::Float;

/// An ONNX CNN as a trainable burn module.
///
/// Its parameters live in [`layers`](Self::layers) (paths `layers.<i>...`); every Conv whose
/// output only feeds a BatchNormalization is a [`convbn::ConvBn2d`] block there, so
/// [`convbn::set_mode`] switches the whole model between Train, Eval, Deploy and Tune in one
/// line and [`convbn::blocks`] lists the blocks. The graph itself (which op reads which value)
/// is kept beside the parameters and runs op by op on burn tensors, so autodiff, optimizers,
/// records and devices work as for any burn module.
#[derive(Module, Debug)]
pub struct OnnxModel {
    /// The trainable layers, in graph order.
    pub layers: Vec<Layer>,
    #[module(skip)]
    program: Program,
}

impl OnnxModel {
    /// Import an ONNX file; every ConvBN block starts in Eval mode (transfer learning).
    pub fn from_file(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes, &path.display().to_string(), device)
    }

    /// Import an ONNX model held in memory.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        Self::parse(bytes, "the given bytes", device)
    }

    fn parse(bytes: &[u8], what: &str, device: &Device) -> Result<Self> {
        let parse_error = |message: String| OnnxError::Parse {
            what: what.to_string(),
            message,
        };
        if bytes.is_empty() {
            return Err(parse_error("the file is empty".into()));
        }
        // onnx-ir reports most problems as errors but asserts on a few malformed graphs.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            onnx_ir::OnnxGraphBuilder::new()
                .simplify(false)
                .parse_bytes(bytes)
        }));
        let graph = match parsed {
            Ok(Ok(graph)) => graph,
            Ok(Err(e)) => return Err(parse_error(e.to_string())),
            Err(panic) => {
                let message = convbn::panic_message(panic.as_ref())
                    .unwrap_or_else(|| "the parser stopped on an inconsistent graph".into());
                return Err(parse_error(message));
            }
        };
        let imported = import_graph(&graph, device)?;
        Ok(Self {
            layers: imported.layers,
            program: imported.program,
        })
    }

    /// The graph's output for images `[N, C, H, W]` (class probabilities when the graph
    /// ends in a Softmax).
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        self.run(x, self.program.output.0)
    }

    /// The logits for images `[N, C, H, W]`: the graph's output, or the input of its final
    /// Softmax over classes (what a cross-entropy loss takes).
    pub fn logits(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        self.run(x, self.program.logits)
    }

    fn run(&self, x: Tensor<4>, slot: usize) -> Result<Tensor<2>> {
        // The channels are fixed by the first layer; the file's spatial extent is only the
        // size it was exported at (the graph runs on any size its layers accept).
        let (_, name, shape) = &self.program.input;
        let dims = x.dims();
        if let Some(Some(channels)) = shape.get(1)
            && dims[1] != *channels
        {
            return Err(OnnxError::Run {
                node: name.clone(),
                message: format!(
                    "the model takes {channels} input channels, got input of shape {dims:?}"
                ),
            });
        }
        let y = self.program.run(&self.layers, Float::new(x), slot)?;
        if y.rank != 2 {
            return Err(OnnxError::Run {
                node: self.program.output.1.clone(),
                message: format!(
                    "the output has shape {:?}; a classifier's is [N, classes]",
                    y.dims()
                ),
            });
        }
        Ok(y.get::<2>())
    }

    /// The input's shape as the file states it (`None` where it leaves an axis free). Only
    /// the channels are enforced: the graph runs on any spatial size its layers accept.
    pub fn input_shape(&self) -> &[Option<usize>] {
        &self.program.input.2
    }

    /// The ONNX node name(s) of each layer (`conv2d3+batchnormalization3` for a ConvBN
    /// block), indexed like [`layers`](Self::layers).
    pub fn layer_names(&self) -> &[String] {
        &self.program.layer_names
    }

    /// How many graph nodes run as steps (fused Conv+BN+activation count once).
    pub fn steps(&self) -> usize {
        self.program.steps.len()
    }

    /// Number of classes (the classifier's outputs), when the logits come from a Linear.
    pub fn num_classes(&self) -> Option<usize> {
        let layer = self.program.classifier?;
        match &self.layers[layer] {
            Layer::Linear(l) => Some(l.weight.dims()[1]),
            _ => None,
        }
    }

    /// Replace the classifier (the Linear producing the logits) with a fresh one for
    /// `num_classes` classes, initialised as burn's `Linear` (transfer learning).
    pub fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Result<Self> {
        let Some(layer) = self.program.classifier else {
            return Err(OnnxError::Invalid {
                node: self.program.output.1.clone(),
                message: "the logits do not come from a Linear (Gemm/MatMul) layer, so there is \
                          no classifier to replace"
                    .into(),
            });
        };
        let Layer::Linear(old) = &self.layers[layer] else {
            unreachable!("the classifier is a Linear layer");
        };
        let [d_in, _] = old.weight.dims();
        let bias = old.bias.is_some();
        self.layers[layer] = Layer::Linear(
            LinearConfig::new(d_in, num_classes)
                .with_bias(bias)
                .init(device),
        );
        Ok(self)
    }
}
