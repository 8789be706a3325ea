//! The detector's losses on burn tensors (any backend, differentiable): the sigmoid focal
//! loss for classification and the generalized-IoU loss for boxes.

use burn::tensor::{Tensor, activation};

/// Sigmoid focal loss per element (Lin et al. 2017, as torchvision's `sigmoid_focal_loss`):
///
/// ```text
/// p = sigmoid(x),  p_t = p t + (1 - p)(1 - t),  a_t = alpha t + (1 - alpha)(1 - t)
/// FL = a_t (1 - p_t)^gamma BCE(x, t),  BCE = max(x, 0) - x t + log(1 + exp(-|x|))
/// ```
///
/// `logits` and `targets` (0 or 1, or soft) have the same shape.
pub fn sigmoid_focal_loss<const D: usize>(
    logits: Tensor<D>,
    targets: Tensor<D>,
    alpha: f64,
    gamma: f64,
) -> Tensor<D> {
    let p = activation::sigmoid(logits.clone());
    let bce = bce_with_logits(logits, targets.clone());
    let not_t = targets.clone().neg() + 1.0;
    let p_t = p.clone() * targets.clone() + (p.neg() + 1.0) * not_t.clone();
    let alpha_t = targets * alpha + not_t * (1.0 - alpha);
    alpha_t * (p_t.neg() + 1.0).powf_scalar(gamma) * bce
}

/// Binary cross-entropy of `sigmoid(logits)` against `targets`, per element, computed stably:
/// `max(x, 0) - x t + log(1 + exp(-|x|))`.
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, targets: Tensor<D>) -> Tensor<D> {
    logits.clone().clamp_min(0.0) - logits.clone() * targets
        + (logits.abs().neg().exp() + 1.0).log()
}

/// `1 - GIoU` of corresponding boxes (`[N, 4]`, `x1, y1, x2, y2`), as torchvision's
/// `generalized_box_iou_loss` (`eps = 1e-7` in both ratios): `[N]`.
pub fn giou_loss(pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let n = pred.dims()[0];
    let col = |t: &Tensor<2>, i: usize| t.clone().slice([0..n, i..i + 1]).reshape([n]);
    let [px1, py1, px2, py2] = [0, 1, 2, 3].map(|i| col(&pred, i));
    let [tx1, ty1, tx2, ty2] = [0, 1, 2, 3].map(|i| col(&target, i));
    let area_p = (px2.clone() - px1.clone()) * (py2.clone() - py1.clone());
    let area_t = (tx2.clone() - tx1.clone()) * (ty2.clone() - ty1.clone());
    let iw = (px2.clone().min_pair(tx2.clone()) - px1.clone().max_pair(tx1.clone())).clamp_min(0.0);
    let ih = (py2.clone().min_pair(ty2.clone()) - py1.clone().max_pair(ty1.clone())).clamp_min(0.0);
    let inter = iw * ih;
    let union = area_p + area_t - inter.clone();
    let iou = inter / (union.clone() + 1e-7);
    let cw = px2.max_pair(tx2) - px1.min_pair(tx1);
    let ch = py2.max_pair(ty2) - py1.min_pair(ty1);
    let area_c = cw * ch;
    let giou = iou - (area_c.clone() - union) / (area_c + 1e-7);
    giou.neg() + 1.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec().unwrap()
    }

    /// Reference values from torchvision 0.29.2 (`torchvision.ops.sigmoid_focal_loss`,
    /// alpha 0.25, gamma 2, and `generalized_box_iou_loss`, both in float64).
    #[test]
    fn match_torchvision() {
        let d = Device::flex();
        let x = Tensor::<2>::from_data(
            TensorData::new(
                vec![
                    -3.0f32, -0.5, 0.0, 0.7, 2.5, 8.0, 1.0, -2.0, 4.0, -6.0, 0.3, -0.1,
                ],
                [2, 6],
            ),
            &d,
        );
        let t = Tensor::<2>::from_data(
            TensorData::new(
                vec![
                    0.0f32, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0,
                ],
                [2, 6],
            ),
            &d,
        );
        let want = [
            8.196249337274802e-05,
            0.09435290021485244,
            0.12996509635498973,
            0.011097630935326916,
            0.00011349202365712539,
            5.996227859282769,
            0.005664514377116832,
            0.001352672126430284,
            2.9061804284680104,
            1.4932071656782415,
            0.2114428021776228,
            0.05128951558637465,
        ];
        for (g, w) in values(sigmoid_focal_loss(x, t, 0.25, 2.0)).iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-5 * w.abs().max(1e-3),
                "focal {g} vs {w}"
            );
        }
        let boxes = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [4, 4]), &d);
        let a = boxes(vec![
            0., 0., 10., 10., 5., 5., 15., 20., 0., 0., 4., 4., 2., 3., 6., 9.,
        ]);
        let b = boxes(vec![
            5., 0., 15., 10., 5., 5., 15., 20., 10., 10., 14., 14., 1., 1., 7., 12.,
        ]);
        let want = [
            0.6666666668888889,
            6.666666108046115e-10,
            1.8367346934506457,
            0.6363636369146005,
        ];
        for (g, w) in values(giou_loss(a, b)).iter().zip(want) {
            assert!((g - w).abs() <= 1e-6, "giou loss {g} vs {w}");
        }
    }

    /// Both losses differentiate: the GIoU gradient moves a box toward its target, and the
    /// focal gradient of a positive's logit is negative (raise it).
    #[test]
    fn gradients_point_the_right_way() {
        let d = Device::flex().autodiff();
        let pred =
            Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0, 10.0, 10.0], [1, 4]), &d)
                .require_grad();
        let target =
            Tensor::<2>::from_data(TensorData::new(vec![5.0f32, 0.0, 15.0, 10.0], [1, 4]), &d);
        let grads = giou_loss(pred.clone(), target).sum().backward();
        let g = values(pred.grad(&grads).unwrap());
        assert!(g[0] < 0.0 && g[2] < 0.0, "x1 and x2 should grow: {g:?}");
        let x = Tensor::<1>::from_data(TensorData::new(vec![0.5f32], [1]), &d).require_grad();
        let t = Tensor::<1>::from_data(TensorData::new(vec![1.0f32], [1]), &d);
        let grads = sigmoid_focal_loss(x.clone(), t, 0.25, 2.0).sum().backward();
        assert!(values(x.grad(&grads).unwrap())[0] < 0.0);
    }
}
