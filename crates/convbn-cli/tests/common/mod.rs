//! Running the `convbn` binary in tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn convbn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convbn"))
        .args(args)
        .output()
        .expect("run convbn")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An asset's cached path, fetched first when missing (`None`: skipped under
/// `CONVBN_SKIP_ASSETS=1`; see `convbn_zoo::assets::for_test`).
pub fn cached(name: &str) -> Option<String> {
    convbn_zoo::assets::for_test(name).map(|p| p.display().to_string())
}

/// A fresh directory for a test, under the system's temporary directory.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convbn-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An image folder of `classes` classes, `per_class` 20x20 PNGs each: class `c` is a bright
/// square in corner `c`.
pub fn image_folder(root: &Path, classes: u32, per_class: u32) {
    for c in 0..classes {
        let dir = root.join(format!("c{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let img = image::RgbImage::from_fn(20, 20, |x, y| {
                let (cx, cy) = ((c % 2) * 10, (c / 2) * 10);
                let inside = x >= cx && x < cx + 10 && y >= cy && y < cy + 10;
                let v = if inside { 220 } else { 20 } + ((x * 7 + y * 13 + i * 31) % 25) as u8;
                image::Rgb([v, v, v])
            });
            img.save(dir.join(format!("{i:03}.png"))).unwrap();
        }
    }
}
