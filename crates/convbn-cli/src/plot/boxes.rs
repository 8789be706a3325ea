//! Detections drawn on an image: one coloured box per detection with its class and score,
//! ground-truth boxes (when given) in thin white.

use std::path::Path;

use anyhow::Result;
use convbn_detect::boxes::Bbox;
use convbn_detect::decode::Prediction;
use image::{RgbImage, imageops};
use plotters::prelude::*;

use super::{color, err, init_font, png};

/// Smallest side of the drawn picture: small images are enlarged (nearest neighbour) so the
/// labels stay readable.
const MIN_SIDE: u32 = 512;

/// Draw `predictions` (and `truth`, boxes with class indices) on `image` into a PNG at `path`.
pub fn draw(
    image: &RgbImage,
    predictions: &[Prediction],
    truth: &[(Bbox, usize)],
    classes: &[String],
    path: &Path,
) -> Result<()> {
    init_font();
    let (w, h) = image.dimensions();
    let k = (MIN_SIDE as f64 / f64::from(w.min(h))).max(1.0).ceil() as u32;
    let canvas = imageops::resize(image, w * k, h * k, imageops::FilterType::Nearest).into_raw();
    png(path, (w * k, h * k), Some(canvas), |root| {
        let at = |x: f64, y: f64| ((x * f64::from(k)) as i32, (y * f64::from(k)) as i32);
        for (b, _) in truth {
            root.draw(&Rectangle::new(
                [at(b.x1, b.y1), at(b.x2, b.y2)],
                WHITE.stroke_width(1),
            ))
            .map_err(err)?;
        }
        for p in predictions {
            let c = color(p.label);
            let b = p.bbox;
            root.draw(&Rectangle::new(
                [at(b.x1, b.y1), at(b.x2, b.y2)],
                c.stroke_width(3),
            ))
            .map_err(err)?;
            let name = classes.get(p.label).map_or("?", String::as_str);
            let text = format!("{name} {:.2}", p.score);
            let (x, y) = at(b.x1, b.y1);
            let style = ("sans-serif", 16).into_font().color(&WHITE);
            let (tw, th) = root.estimate_text_size(&text, &style).map_err(err)?;
            let y = (y - th as i32 - 4).max(0);
            root.draw(&Rectangle::new(
                [(x, y), (x + tw as i32 + 6, y + th as i32 + 4)],
                c.filled(),
            ))
            .map_err(err)?;
            root.draw_text(&text, &style, (x + 3, y + 2)).map_err(err)?;
        }
        Ok(())
    })
}
