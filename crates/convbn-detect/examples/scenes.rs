//! Draw Fashion-MNIST detection scenes with their boxes, to look at the data:
//! `cargo run --release -p convbn-detect --example scenes -- OUT.png [SEED]`
//! (needs `convbn fetch fashion-mnist`).

use convbn_detect::scenes::{SceneConfig, scene};
use image::{Rgb, RgbImage};

/// One colour per class.
const COLOURS: [[u8; 3]; 10] = [
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [210, 245, 60],
    [250, 190, 212],
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "scenes.png".into());
    let seed: u64 = args.next().map_or(Ok(0), |s| s.parse())?;
    let data = convbn_train::data::fashion_mnist::load(false)?;
    let config = SceneConfig::default();
    let (cols, rows, n) = (4u32, 2u32, config.size as u32);
    let mut canvas = RgbImage::new(cols * (n + 4), rows * (n + 4));
    for i in 0..cols * rows {
        let s = scene(&data.train, seed, i.into(), &config);
        let (ox, oy) = ((i % cols) * (n + 4), (i / cols) * (n + 4));
        for (k, &p) in s.pixels.iter().enumerate() {
            let (x, y) = (k as u32 % n, k as u32 / n);
            canvas.put_pixel(ox + x, oy + y, Rgb([p, p, p]));
        }
        for (b, &label) in s.boxes.iter().zip(&s.labels) {
            let colour = Rgb(COLOURS[label % COLOURS.len()]);
            let [x1, y1, x2, y2] = [b.x1, b.y1, b.x2 - 1.0, b.y2 - 1.0].map(|v| v as u32);
            for x in x1..=x2 {
                canvas.put_pixel(ox + x, oy + y1, colour);
                canvas.put_pixel(ox + x, oy + y2, colour);
            }
            for y in y1..=y2 {
                canvas.put_pixel(ox + x1, oy + y, colour);
                canvas.put_pixel(ox + x2, oy + y, colour);
            }
        }
        let names: Vec<&str> = s
            .labels
            .iter()
            .map(|&l| data.train.classes[l].as_str())
            .collect();
        println!("scene {i}: {names:?}");
    }
    canvas.save(&out)?;
    println!("wrote {out}");
    Ok(())
}
