//! Images to network inputs: decode (PNG, JPEG), resize the shorter side, center crop,
//! normalise per channel — torchvision's ImageNet evaluation transform on a PIL image
//! (`Resize(256)`, `CenterCrop(224)`, `ToTensor`, `Normalize`), reproduced step by step:
//!
//! - `Resize(s)`: the shorter side becomes `s` and the longer `int(s * long / short)`
//!   (truncated, as torchvision computes it), resampled with Pillow's antialiased bilinear
//!   filter (a triangle filter widened by the scale factor when shrinking, 8-bit fixed-point
//!   arithmetic) through `fast_image_resize`'s convolution, which reproduces it;
//! - `CenterCrop(c)`: offsets `round((size - c) / 2)` with Python's rounding (half to even);
//! - EXIF orientation is ignored, as Pillow's `Image.open` + torchvision do by default.

use std::os::raw::c_int;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::ZooError;

/// Decode a PNG or JPEG file as 8-bit RGB, with the pixels Pillow's
/// `Image.open(path).convert("RGB")` gives.
///
/// The file is decoded and checked by the `image` crate (with its memory limits); a JPEG is
/// then decoded again by libjpeg-turbo's decoder (mozjpeg's bundled copy, the decoder Pillow
/// wraps: islow IDCT, fancy upsampling), which gives Pillow's pixels bit for bit where the
/// `image` crate's decoder differs by a grey level or two. A JPEG libjpeg refuses but `image`
/// reads (CMYK, say) keeps `image`'s pixels.
pub fn open_rgb(path: &Path) -> Result<image::RgbImage, ZooError> {
    // Read once: `image` decodes (format from the extension, as `image::open` does) and
    // libjpeg decodes again from the same bytes.
    let bytes = std::fs::read(path).map_err(|e| ZooError::io(path, e))?;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(&bytes[..]));
    if let Ok(format) = image::ImageFormat::from_path(path) {
        reader.set_format(format);
    }
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::IoError(io) => ZooError::io(path, io),
        other => ZooError::Corrupt {
            path: path.display().to_string(),
            why: format!("not a readable PNG or JPEG image ({other})"),
        },
    })?;
    let img = img.to_rgb8();
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(img);
    }
    match decode_jpeg_like_pillow(&bytes, img.dimensions()) {
        Libjpeg::Pixels(pixels) => {
            Ok(image::RgbImage::from_raw(img.width(), img.height(), pixels).unwrap_or(img))
        }
        Libjpeg::Refused => Ok(img),
        Libjpeg::Truncated => Err(ZooError::Corrupt {
            path: path.display().to_string(),
            why: "truncated JPEG: the compressed data ends before the image does (libjpeg: \
                  premature end of JPEG file; Pillow refuses it too)"
                .into(),
        }),
    }
}

/// What libjpeg-turbo made of a JPEG.
enum Libjpeg {
    /// RGB pixels, row-major.
    Pixels(Vec<u8>),
    /// libjpeg cannot decode it (another colour space, say), or sees another size.
    Refused,
    /// The data ends inside the image: libjpeg would fill the rest with grey.
    Truncated,
}

thread_local! {
    /// Set by [`note_warning`] when libjpeg warns that the data ended early.
    static JPEG_ENDED_EARLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// libjpeg's warning hook: remember "premature end of JPEG file"; other warnings (corrupt
/// data libjpeg resynchronises over) are ignored, as Pillow ignores them.
extern "C-unwind" fn note_warning(cinfo: &mut mozjpeg_sys::jpeg_common_struct, level: c_int) {
    // SAFETY: libjpeg calls this hook with its live error manager attached to `cinfo`.
    let code = unsafe { cinfo.err.as_ref() }.map(|e| e.msg_code);
    if level < 0 && code == Some(mozjpeg_sys::JWRN_JPEG_EOF as c_int) {
        JPEG_ENDED_EARLY.with(|f| f.set(true));
    }
}

/// libjpeg's fatal-error hook: unwind (without the panic hook) to [`decode_jpeg_like_pillow`].
extern "C-unwind" fn unwind_on_error(_cinfo: &mut mozjpeg_sys::jpeg_common_struct) {
    std::panic::resume_unwind(Box::new("libjpeg fatal error"));
}

/// libjpeg-turbo's RGB pixels of a JPEG of `size`. libjpeg reports errors by unwinding
/// (caught here) and warnings through [`note_warning`].
fn decode_jpeg_like_pillow(bytes: &[u8], size: (u32, u32)) -> Libjpeg {
    JPEG_ENDED_EARLY.with(|f| f.set(false));
    // SAFETY: a zeroed error manager is what `jpeg_std_error` expects to fill in.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `err` is a valid, exclusively borrowed error manager.
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(unwind_on_error);
    err.emit_message = Some(note_warning);
    let pixels = std::panic::catch_unwind(move || -> Option<Vec<u8>> {
        let decompress = mozjpeg::Decompress::builder().with_err(err).from_mem(bytes);
        let mut started = decompress.ok()?.rgb().ok()?;
        if (started.width(), started.height()) != (size.0 as usize, size.1 as usize) {
            return None;
        }
        let pixels: Vec<[u8; 3]> = started.read_scanlines().ok()?;
        started.finish().ok()?;
        Some(pixels.into_iter().flatten().collect())
    });
    if JPEG_ENDED_EARLY.with(|f| f.get()) {
        return Libjpeg::Truncated;
    }
    match pixels {
        Ok(Some(pixels)) => Libjpeg::Pixels(pixels),
        _ => Libjpeg::Refused,
    }
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

/// The size torchvision's `Resize(resize)` gives a `w` x `h` image: the shorter side
/// `resize`, the longer `int(resize * long / short)`.
pub fn resized_size(w: u32, h: u32, resize: u32) -> (u32, u32) {
    let long = |l: u32, s: u32| (u64::from(resize) * u64::from(l) / u64::from(s)) as u32;
    if w <= h {
        (resize, long(h, w))
    } else {
        (long(w, h), resize)
    }
}

/// Resample `img` to `w` x `h` with Pillow's antialiased bilinear filter (`Image.resize(...,
/// BILINEAR)`, what torchvision's `Resize` calls): the one resampling function of the project
/// (inference, attacks, folder and Fashion-MNIST datasets, detection inputs and scenes).
/// Grey (`Luma<u8>`) and RGB (`Rgb<u8>`) images; `None` for an empty size or another pixel
/// type.
///
/// Pillow filters rows first (to `w` x `h_src`, rounded to 8 bits), then columns;
/// `fast_image_resize` goes columns first when both change, so the two passes are run as two
/// one-axis resizes in Pillow's order: the 8-bit intermediate is then Pillow's.
pub fn resize_bilinear<P>(
    img: &image::ImageBuffer<P, Vec<u8>>,
    w: u32,
    h: u32,
) -> Option<image::ImageBuffer<P, Vec<u8>>>
where
    P: image::Pixel<Subpixel = u8>,
{
    let pixel = match P::CHANNEL_COUNT {
        1 => PixelType::U8,
        3 => PixelType::U8x3,
        _ => return None,
    };
    if img.width() == 0 || img.height() == 0 || w == 0 || h == 0 {
        return None;
    }
    let rows = resize_one_axis(
        img.as_raw().clone(),
        pixel,
        img.dimensions(),
        (w, img.height()),
    )?;
    let both = resize_one_axis(rows, pixel, (w, img.height()), (w, h))?;
    image::ImageBuffer::from_raw(w, h, both)
}

/// One pass of [`resize_bilinear`] over packed 8-bit pixels (only one side changes; none is a
/// copy).
fn resize_one_axis(
    bytes: Vec<u8>,
    pixel: PixelType,
    from: (u32, u32),
    to: (u32, u32),
) -> Option<Vec<u8>> {
    if from == to {
        return Some(bytes);
    }
    let src = Image::from_vec_u8(from.0, from.1, bytes, pixel).ok()?;
    let mut dst = Image::new(to.0, to.1, pixel);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&src, &mut dst, &options).ok()?;
    Some(dst.into_vec())
}

/// torchvision's center-crop offset of `crop` within `size`: `round((size - crop) / 2)` with
/// Python's round-half-to-even.
fn crop_offset(size: u32, crop: u32) -> u32 {
    let twice = size - crop; // the offset is twice/2, rounded half to even
    let half = twice / 2;
    if twice % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// torchvision's `Resize(resize)` then `CenterCrop(crop)` on a PIL image (see the module
/// documentation); `None` for an empty image. A crop larger than the resized image (only when
/// `crop > resize`) resizes the shorter side to `crop` instead of padding.
pub fn resize_center_crop(
    img: &image::RgbImage,
    resize: u32,
    crop: u32,
) -> Option<image::RgbImage> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    let (nw, nh) = resized_size(w, h, resize.max(crop));
    let resized = resize_bilinear(img, nw, nh)?;
    let (left, top) = (crop_offset(nw, crop), crop_offset(nh, crop));
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
