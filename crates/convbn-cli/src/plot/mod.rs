//! PNG charts drawn with plotters and an embedded font (DejaVu Sans), so they render the same
//! on machines without system fonts.

pub mod bench;
pub mod boxes;
pub mod curves;
pub mod detect;
pub mod histogram;
pub mod lines;

use std::sync::Once;

use plotters::style::{FontStyle, RGBColor, register_font};

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
