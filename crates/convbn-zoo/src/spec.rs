//! [`ModelSpec`]: what `--model` names: a zoo architecture or an ONNX file.

use std::path::PathBuf;
use std::str::FromStr;

use crate::{Architecture, ZooError};

/// The prefix that names an ONNX file on the command line (`--model onnx:net.onnx`).
pub const ONNX_PREFIX: &str = "onnx:";

/// A model the tools can build: one of the zoo's architectures, or any ONNX CNN whose
/// Conv -> BatchNormalization pairs become ConvBN blocks ([`convbn_onnx::OnnxModel`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ModelSpec {
    /// A zoo architecture (`resnet50`, `mobilenet_v2`, ...).
    Zoo(Architecture),
    /// An ONNX file (`onnx:PATH`), with the weights it carries.
    Onnx(PathBuf),
}

impl ModelSpec {
    /// Per-channel `(mean, std)` the model expects on `[0, 1]` RGB input: the architecture's,
    /// or ImageNet's for an ONNX file (the file does not say; most CNNs use ImageNet's).
    pub fn normalization(&self) -> ([f32; 3], [f32; 3]) {
        match self {
            ModelSpec::Zoo(arch) => arch.normalization(),
            ModelSpec::Onnx(_) => crate::imagenet::NORMALIZATION,
        }
    }

    /// The zoo architecture, if this is one.
    pub fn architecture(&self) -> Option<Architecture> {
        match self {
            ModelSpec::Zoo(arch) => Some(*arch),
            ModelSpec::Onnx(_) => None,
        }
    }
}

impl From<Architecture> for ModelSpec {
    fn from(arch: Architecture) -> Self {
        ModelSpec::Zoo(arch)
    }
}

impl From<&ModelSpec> for ModelSpec {
    fn from(spec: &ModelSpec) -> Self {
        spec.clone()
    }
}

impl std::fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSpec::Zoo(arch) => arch.fmt(f),
            ModelSpec::Onnx(path) => write!(f, "{ONNX_PREFIX}{}", path.display()),
        }
    }
}

impl FromStr for ModelSpec {
    type Err = ZooError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().strip_prefix(ONNX_PREFIX) {
            Some("") => Err(ZooError::Unknown(format!(
                "'{s}' names no file: write {ONNX_PREFIX}PATH"
            ))),
            Some(path) => Ok(ModelSpec::Onnx(PathBuf::from(path))),
            None => s.parse::<Architecture>().map(ModelSpec::Zoo).map_err(|e| {
                ZooError::Unknown(format!("{e}, or {ONNX_PREFIX}FILE for an ONNX model"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_onnx_files_take_a_prefix() {
        for arch in Architecture::ALL {
            let spec: ModelSpec = arch.name().parse().unwrap();
            assert_eq!(spec, ModelSpec::Zoo(arch));
            assert_eq!(spec.to_string().parse::<ModelSpec>().unwrap(), spec);
        }
        let onnx: ModelSpec = "onnx:dir/net.onnx".parse().unwrap();
        assert_eq!(onnx, ModelSpec::Onnx(PathBuf::from("dir/net.onnx")));
        assert_eq!(onnx.to_string(), "onnx:dir/net.onnx");
        assert!(onnx.architecture().is_none());
        let empty = "onnx:".parse::<ModelSpec>().unwrap_err().to_string();
        assert!(empty.contains("names no file"), "{empty}");
        let unknown = "lenet".parse::<ModelSpec>().unwrap_err().to_string();
        assert!(
            unknown.contains("onnx:FILE") && unknown.contains("resnet50"),
            "{unknown}"
        );
    }
}
