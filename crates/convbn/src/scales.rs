//! The per-channel scaling coefficients `s = gamma / sqrt(running_var + eps)` of a model's
//! ConvBN blocks: the quantity behind Deploy mode's instability.
//!
//! Folding trains `W' = W * s` instead of `W`. A gradient step of size `lr` on `W'` moves the
//! equivalent `W` by `lr / s^2` times the Eval-mode step (the gradient w.r.t. `W` is `s` times
//! that w.r.t. `W'`, and `W = W' / s`), so Deploy is Eval with a per-output-channel learning
//! rate multiplied by `1/s^2` — huge for channels with small `s`.

use burn::module::Module;

use crate::{BlockInfo, Mode, fold, walk};

/// One block's scaling coefficients.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockScales {
    /// The block (path, mode, shape, eps).
    pub block: BlockInfo,
    /// `gamma / sqrt(running_var + eps)` per output channel (`gamma = 1` without affine);
    /// `None` for a folded (Deploy) block, whose statistics are gone.
    pub scale: Option<Vec<f32>>,
}

/// The scaling coefficients of every ConvBN block of `model`, in visiting order.
pub fn scales<M: Module>(model: &M) -> Vec<BlockScales> {
    walk::scan(model)
        .into_iter()
        .map(|view| {
            let scale = (view.info.mode != Mode::Deploy).then(|| {
                fold::scale(view.gamma, view.running_var, view.info.eps)
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap_or_default()
            });
            BlockScales {
                block: view.info,
                scale,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use burn::module::Param;
    use burn::tensor::Tensor;

    use super::*;
    use crate::{ConvBn2d, ConvBnConfig, set_mode};

    #[test]
    fn scales_are_gamma_over_root_var_plus_eps() {
        let device = Device::flex();
        let mut block: ConvBn2d = ConvBnConfig::new(2, 3, [1, 1])
            .with_eps(1e-3)
            .init(&device)
            .unwrap();
        let gamma = Tensor::<1>::from_data(TensorData::from([1.0f32, 2.0, 0.5]), &device);
        block.gamma = Some(Param::from_tensor(gamma));
        block.running_var.update(Tensor::from_data(
            TensorData::from([1.0f32, 0.25, 4.0]),
            &device,
        ));
        let s = scales(&vec![block.clone()]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].block.path, "0");
        assert_eq!(s[0].block.eps, 1e-3);
        let got = s[0].scale.clone().unwrap();
        for (g, e) in got.iter().zip([
            1.0 / 1.001f64.sqrt(),
            2.0 / 0.251f64.sqrt(),
            0.5 / 4.001f64.sqrt(),
        ]) {
            assert!((*g as f64 - e).abs() < 1e-6, "{g} vs {e}");
        }
        set_mode(&mut block, Mode::Deploy).unwrap();
        assert_eq!(scales(&block)[0].scale, None);
    }
}
