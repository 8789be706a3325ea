//! How closely two attacks agree: gradients and adversarial pixels.

/// Relative L2 distance `|a - b| / |a|` (0 when both are zero).
pub fn relative_l2(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = a.iter().map(|x| x.powi(2)).sum();
    if num == 0.0 {
        0.0
    } else {
        (num / den.max(f64::MIN_POSITIVE)).sqrt()
    }
}

/// Pixel values in `[0, 1]` as the 8-bit values a PNG stores.
pub fn to_8bit(values: &[f64]) -> Vec<u8> {
    values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Number of positions where `a` and `b` hold the same value.
pub fn identical(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).filter(|(p, q)| p == q).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(relative_l2(&[3.0, 4.0], &[3.0, 4.0]), 0.0);
        assert!((relative_l2(&[3.0, 4.0], &[3.0, 3.0]) - 0.2).abs() < 1e-12);
        assert_eq!(relative_l2(&[0.0], &[0.0]), 0.0);
        assert_eq!(to_8bit(&[-0.1, 0.5, 1.0, 2.0]), vec![0, 128, 255, 255]);
        assert_eq!(identical(&[1, 2, 3], &[1, 0, 3]), 2);
    }
}
