//! The detector's training loss (FCOS): sigmoid focal loss over every location and class,
//! normalised by the number of positive locations; GIoU loss of the positives' boxes weighted
//! by their centerness targets; binary cross-entropy of the centerness on positives.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::assign::Targets;
use crate::detector::LevelOutput;
use crate::losses::{bce_with_logits, giou_loss, sigmoid_focal_loss};

/// The loss and its parts (scalars, `[1]`).
#[derive(Clone, Debug)]
pub struct LossParts {
    /// Focal loss / positives.
    pub classification: Tensor<1>,
    /// Centerness-weighted GIoU loss of the positives.
    pub regression: Tensor<1>,
    /// Centerness BCE, mean over positives.
    pub centerness: Tensor<1>,
    /// Their sum.
    pub total: Tensor<1>,
    /// Positive locations in the batch.
    pub positives: usize,
}

/// `[N, K, H, W]` outputs of all levels as `[N, L, K]` (levels after one another, row-major
/// within a level, as [`crate::assign::fcos_targets`] orders locations).
fn flatten(levels: &[Tensor<4>]) -> Tensor<3> {
    let parts: Vec<Tensor<3>> = levels
        .iter()
        .map(|t| {
            let [n, k, h, w] = t.dims();
            t.clone().reshape([n, k, h * w]).swap_dims(1, 2)
        })
        .collect();
    Tensor::cat(parts, 1)
}

/// FCOS's loss for a batch: `targets[i]` are image `i`'s (from
/// [`fcos_targets`](crate::assign::fcos_targets) on the same levels). Alpha 0.25, gamma 2.
pub fn fcos_loss(outputs: &[LevelOutput], targets: &[Targets], device: &Device) -> LossParts {
    let cls = flatten(
        &outputs
            .iter()
            .map(|o| o.cls_logits.clone())
            .collect::<Vec<_>>(),
    );
    let reg = flatten(&outputs.iter().map(|o| o.ltrb.clone()).collect::<Vec<_>>());
    let ctr = flatten(
        &outputs
            .iter()
            .map(|o| o.centerness.clone())
            .collect::<Vec<_>>(),
    );
    let [n, l, classes] = cls.dims();
    // One-hot class targets; positives' flat indices, distances and centerness.
    let mut one_hot = vec![0.0f32; n * l * classes];
    let (mut index, mut ltrb, mut centerness) = (Vec::new(), Vec::new(), Vec::new());
    for (i, t) in targets.iter().enumerate() {
        for (k, label) in t.labels.iter().enumerate() {
            if let Some(c) = *label {
                one_hot[(i * l + k) * classes + c] = 1.0;
                index.push((i * l + k) as i64);
                ltrb.extend(t.ltrb[k].map(|v| v as f32));
                centerness.push(t.centerness[k] as f32);
            }
        }
    }
    let positives = index.len();
    let one_hot = Tensor::<3>::from_data(TensorData::new(one_hot, [n, l, classes]), device);
    let classification =
        sigmoid_focal_loss(cls, one_hot, 0.25, 2.0).sum() / (positives.max(1) as f64);
    let (regression, centerness_loss) = if positives == 0 {
        (Tensor::zeros([1], device), Tensor::zeros([1], device))
    } else {
        let idx = Tensor::<1, Int>::from_data(TensorData::new(index, [positives]), device);
        let pred = reg.reshape([n * l, 4]).select(0, idx.clone());
        let target = Tensor::<2>::from_data(TensorData::new(ltrb, [positives, 4]), device);
        let weight = Tensor::<1>::from_data(TensorData::new(centerness, [positives]), device);
        // Boxes relative to their location: (-l, -t, r, b).
        let sign = Tensor::<2>::from_data(
            TensorData::new(vec![-1.0f32, -1.0, 1.0, 1.0], [1, 4]),
            device,
        );
        let giou = giou_loss(pred * sign.clone(), target * sign);
        let regression = (giou * weight.clone()).sum() / weight.clone().sum().clamp_min(1e-6);
        let logits = ctr.reshape([n * l]).select(0, idx);
        let centerness_loss = bce_with_logits(logits, weight).mean();
        (regression, centerness_loss)
    };
    LossParts {
        total: classification.clone() + regression.clone() + centerness_loss.clone(),
        classification,
        regression,
        centerness: centerness_loss,
        positives,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::{Level, fcos_targets};
    use crate::boxes::Bbox;
    use burn::tensor::Distribution;

    fn outputs(device: &Device) -> Vec<Tensor<4>> {
        // cls (2 classes), ltrb, centerness for levels 4x4 and 2x2, batch 2.
        [[2usize, 4], [4, 4], [1, 4], [2, 2], [4, 2], [1, 2]]
            .iter()
            .map(|&[k, s]| {
                Tensor::<4>::random([2, k, s, s], Distribution::Uniform(0.5, 3.0), device)
                    .require_grad()
            })
            .collect()
    }

    fn level_outputs(t: &[Tensor<4>]) -> Vec<LevelOutput> {
        t.chunks(3)
            .map(|c| LevelOutput {
                cls_logits: c[0].clone(),
                ltrb: c[1].clone() * 8.0,
                centerness: c[2].clone(),
            })
            .collect()
    }

    #[test]
    fn loss_has_its_parts_and_descends() {
        let device = Device::flex().autodiff();
        let levels = [
            Level::new(8, 4, 4, (0.0, 16.0)),
            Level::new(16, 2, 2, (16.0, f64::INFINITY)),
        ];
        let targets = [
            fcos_targets(&levels, &[Bbox::new(2.0, 2.0, 22.0, 20.0)], &[1], None),
            fcos_targets(&levels, &[], &[], None),
        ];
        let params = outputs(&device);
        let parts = fcos_loss(&level_outputs(&params), &targets, &device);
        assert!(parts.positives > 0);
        let value = |t: &Tensor<1>| t.clone().into_scalar::<f64>();
        for t in [&parts.classification, &parts.regression, &parts.centerness] {
            assert!(value(t).is_finite() && value(t) > 0.0);
        }
        // A small step against the gradient lowers the loss.
        let grads = parts.total.backward();
        let stepped: Vec<Tensor<4>> = params
            .iter()
            .map(|p| Tensor::from_inner(p.clone().inner() - p.grad(&grads).unwrap() * 0.01))
            .collect();
        let after = fcos_loss(&level_outputs(&stepped), &targets, &device);
        assert!(value(&after.total) < value(&parts.total));
        // No objects anywhere: only the classification term.
        let none = [
            fcos_targets(&levels, &[], &[], None),
            fcos_targets(&levels, &[], &[], None),
        ];
        let empty = fcos_loss(&level_outputs(&params), &none, &device);
        assert_eq!(empty.positives, 0);
        assert_eq!(value(&empty.regression), 0.0);
        assert!(value(&empty.classification) > 0.0);
    }
}
