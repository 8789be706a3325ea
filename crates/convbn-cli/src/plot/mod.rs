//! PNG charts drawn with plotters and an embedded font (DejaVu Sans), so they render the same
//! on machines without system fonts.

pub mod bench;
pub mod boxes;
pub mod curves;
pub mod detect;
pub mod histogram;
pub mod lines;

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, IntoDrawingArea};
use plotters::style::{FontStyle, RGBColor, register_font};

/// The drawing area of an RGB canvas in memory.
pub type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draw on a `w` x `h` RGB canvas (`pixels`, row-major RGB, or white) and write it as a PNG
/// at `path` atomically (temporary file, `fsync`, rename): a chart is complete or absent,
/// never half written, and an older chart is replaced only by a complete one.
pub fn png(
    path: &Path,
    (w, h): (u32, u32),
    pixels: Option<Vec<u8>>,
    draw: impl FnOnce(&Canvas<'_>) -> Result<()>,
) -> Result<()> {
    let mut canvas = pixels.unwrap_or_else(|| vec![255; 3 * w as usize * h as usize]);
    {
        let root = BitMapBackend::with_buffer(&mut canvas, (w, h)).into_drawing_area();
        draw(&root)?;
        root.present().map_err(err)?;
    }
    let mut bytes = Vec::new();
    image::RgbImage::from_raw(w, h, canvas)
        .context("a canvas of the drawn size")?
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .with_context(|| format!("encoding {}", path.display()))?;
    convbn_zoo::files::write_atomically(path, &bytes)?;
    Ok(())
}

/// DejaVu Sans (Bitstream Vera license, see `assets/DejaVuSans.LICENSE`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Make the embedded font plotters' `sans-serif`.
pub fn init_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a valid TrueType file compiled into the binary.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Colour of the `i`-th series (colour-blind-safe palette).
pub fn color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(230, 159, 0),
        RGBColor(0, 0, 0),
        RGBColor(120, 120, 120),
    ];
    PALETTE[i % PALETTE.len()]
}

/// A plotters error as an `anyhow` error.
pub fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart failed: {e}")
}
