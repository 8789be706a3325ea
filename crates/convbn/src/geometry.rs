//! Convolution geometry (stride, padding, dilation, groups) for 1, 2 and 3 spatial dimensions.

use burn::tensor::ops::ConvOptions;

/// Stride, padding, dilation and groups of a convolution with `spatial()` spatial dimensions.
///
/// Vectors hold one entry per spatial dimension; padding is `(begin, end)` so asymmetric
/// ("SAME"-style) padding is expressible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Step of the kernel per spatial dimension (non-zero).
    pub stride: Vec<usize>,
    /// Zero padding `(begin, end)` per spatial dimension.
    pub padding: Vec<(usize, usize)>,
    /// Kernel dilation per spatial dimension (non-zero).
    pub dilation: Vec<usize>,
    /// Number of channel groups (`in_channels` for depthwise).
    pub groups: usize,
}

impl ConvGeometry {
    /// Number of spatial dimensions (1, 2 or 3).
    pub fn spatial(&self) -> usize {
        self.stride.len()
    }

    /// Output extent along each spatial dimension for the given input extents and kernel.
    ///
    /// `out = floor((in + pad_begin + pad_end - dilation*(k-1) - 1) / stride) + 1`; `None` when
    /// the (padded) input is smaller than the dilated kernel.
    pub fn output_size(&self, input: &[usize], kernel: &[usize]) -> Option<Vec<usize>> {
        (0..self.spatial())
            .map(|i| {
                let padded = input[i] + self.padding[i].0 + self.padding[i].1;
                let reach = self.dilation[i] * (kernel[i] - 1) + 1;
                (padded >= reach).then(|| (padded - reach) / self.stride[i] + 1)
            })
            .collect()
    }

    /// burn's `ConvOptions` for `N` spatial dimensions (`N` must equal [`spatial`](Self::spatial)).
    pub fn options<const N: usize>(&self) -> ConvOptions<N> {
        let arr = |v: &[usize]| -> [usize; N] { core::array::from_fn(|i| v[i]) };
        ConvOptions::new_with_padding(
            arr(&self.stride),
            core::array::from_fn(|i| self.padding[i]),
            arr(&self.dilation),
            self.groups,
        )
    }
}
