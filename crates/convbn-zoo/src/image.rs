//! Images to network inputs: decode (PNG, JPEG), resize the shorter side, center crop,
//! normalise per channel — torchvision's ImageNet evaluation transform.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::FilterType;

use crate::ZooError;

/// Decode a PNG or JPEG file as 8-bit RGB.
pub fn open_rgb(path: &Path) -> Result<image::RgbImage, ZooError> {
    let img = image::open(path).map_err(|e| match e {
        image::ImageError::IoError(io) => ZooError::io(path, io),
        other => ZooError::Corrupt {
            path: path.display().to_string(),
            why: format!("not a readable PNG or JPEG image ({other})"),
        },
    })?;
    Ok(img.to_rgb8())
}

/// RGB pixels as `f32` values in `[0, 1]`, `[3, H, W]` row-major.
fn to_planar(rgb: &image::RgbImage) -> (Vec<f32>, usize, usize) {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut out = vec![0.0; 3 * h * w];
    for (x, y, p) in rgb.enumerate_pixels() {
        for c in 0..3 {
            out[c * h * w + y as usize * w + x as usize] = p[c] as f32 / 255.0;
        }
    }
    (out, h, w)
}

/// Resize so the shorter side is `resize` (bilinear with antialiasing) and center-crop
/// `crop` x `crop`; `None` for an empty image.
pub fn resize_center_crop(
    img: &image::RgbImage,
    resize: u32,
    crop: u32,
) -> Option<image::RgbImage> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    let scale = resize as f64 / w.min(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(crop),
        ((h as f64 * scale).round() as u32).max(crop),
    );
    let resized = image::imageops::resize(img, nw, nh, FilterType::Triangle);
    let (left, top) = ((nw - crop) / 2, (nh - crop) / 2);
    Some(image::imageops::crop_imm(&resized, left, top, crop, crop).to_image())
}

/// Resize so the shorter side is `resize` (bilinear with antialiasing), center-crop
/// `crop` x `crop`: a `[1, 3, crop, crop]` tensor of RGB values in `[0, 1]`.
pub fn load_crop(
    path: impl AsRef<Path>,
    resize: u32,
    crop: u32,
    device: &Device,
) -> Result<Tensor<4>, ZooError> {
    let path = path.as_ref();
    let img = open_rgb(path)?;
    let cropped = resize_center_crop(&img, resize, crop).ok_or_else(|| ZooError::Corrupt {
        path: path.display().to_string(),
        why: "empty image".into(),
    })?;
    let (values, ch, cw) = to_planar(&cropped);
    Ok(Tensor::from_data(
        TensorData::new(values, [1, 3, ch, cw]),
        device,
    ))
}

/// `(x - mean) / std` per channel of `[N, 3, H, W]` images (differentiable).
pub fn normalize(x: Tensor<4>, mean: [f32; 3], std: [f32; 3]) -> Tensor<4> {
    let device = x.device();
    let m =
        Tensor::<1>::from_data(TensorData::new(mean.to_vec(), [3]), &device).reshape([1, 3, 1, 1]);
    let s =
        Tensor::<1>::from_data(TensorData::new(std.to_vec(), [3]), &device).reshape([1, 3, 1, 1]);
    (x - m) / s
}

/// [`load_crop`] then [`normalize`]: torchvision's ImageNet evaluation transform.
pub fn preprocess(
    path: impl AsRef<Path>,
    resize: u32,
    crop: u32,
    mean: [f32; 3],
    std: [f32; 3],
    device: &Device,
) -> Result<Tensor<4>, ZooError> {
    Ok(normalize(load_crop(path, resize, crop, device)?, mean, std))
}

/// Save a `[1, 3, H, W]` (or `[3, H, W]`-shaped) tensor of values in `[0, 1]` as an RGB PNG.
pub fn save_png(x: Tensor<4>, path: impl AsRef<Path>) -> Result<(), ZooError> {
    let path = path.as_ref();
    let [_, c, h, w] = x.dims();
    let values = x
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ZooError::Unknown(format!("{e:?}")))?;
    let img = image::RgbImage::from_fn(w as u32, h as u32, |px, py| {
        let at = |ch: usize| {
            let v = values[(ch.min(c - 1) * h + py as usize) * w + px as usize];
            (v.clamp(0.0, 1.0) * 255.0).round() as u8
        };
        image::Rgb([at(0), at(1), at(2)])
    });
    img.save(path).map_err(|e| match e {
        image::ImageError::IoError(io) => ZooError::io(path, io),
        other => ZooError::Unknown(format!("writing {}: {other}", path.display())),
    })
}
