//! Property tests of every parser of user files: arbitrary bytes and mutations of a valid file
//! (bytes set, flipped, inserted, cut off; header bytes more often) given to the PyTorch `.pth`
//! readers (zip and legacy), safetensors, IDX (plain and gzip), PNG and JPEG images, COCO JSON,
//! Pascal VOC XML, ONNX models and the run checkpoints of `finetune`. Each must return `Ok` or `Err` —
//! never panic — and stay within an address-space limit set on this test process
//! (`setrlimit(RLIMIT_AS)`, 3 GiB), so that a parser which believes a size in the file fails
//! the test instead of eating the machine. Seeds are fixed: CI runs the same cases every time.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use convbn::{ConvBn2d, ConvBnConfig};
use convbn_zoo::checkpoint::{Checkpoint, Entry, Expected};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const ADDRESS_SPACE: u64 = 3 << 30;

fn limit_memory() {
    let limit = libc::rlimit {
        rlim_cur: ADDRESS_SPACE,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit only reads the struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convbn-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One change to a file's bytes; positions are fractions of the length, or byte offsets into
/// the first 512 bytes (where headers live).
#[derive(Clone, Debug)]
enum Edit {
    Set(f64, u8),
    SetEarly(usize, u8),
    Flip(f64, u8),
    Insert(f64, Vec<u8>),
    Cut(f64),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0f64, any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        (0..512usize, any::<u8>()).prop_map(|(p, b)| Edit::SetEarly(p, b)),
        (0.0..1.0f64, 0..8u8).prop_map(|(p, b)| Edit::Flip(p, b)),
        (0.0..1.0f64, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Edit::Insert(p, b)),
        (0.0..1.0f64).prop_map(Edit::Cut),
    ]
}

fn mutate(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for e in edits {
        let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len.saturating_sub(1));
        match e {
            Edit::Set(p, b) if !out.is_empty() => {
                let i = at(*p, out.len());
                out[i] = *b;
            }
            Edit::SetEarly(i, b) if *i < out.len() => out[*i] = *b,
            Edit::Flip(p, bit) if !out.is_empty() => {
                let i = at(*p, out.len());
                out[i] ^= 1 << bit;
            }
            Edit::Insert(p, b) => {
                let i = at(*p, out.len() + 1);
                out.splice(i..i, b.iter().copied());
            }
            Edit::Cut(p) => out.truncate(at(*p, out.len() + 1)),
            _ => {}
        }
    }
    out
}

/// Inputs: a mutated `valid` file (most cases) or arbitrary bytes.
fn inputs(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(edit(), 1..6).prop_map(move |e| mutate(&valid, &e)),
        1 => prop::collection::vec(any::<u8>(), 0..1024),
    ]
}

/// Run `check` on `cases` inputs derived from `valid`, with a fixed seed.
fn fuzz(name: &str, valid: Vec<u8>, cases: u32, check: impl Fn(&Path, &[u8])) {
    limit_memory();
    let dir = scratch(name);
    let file = dir.join("input");
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = [7u8; 32];
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let ran = std::cell::Cell::new(0u32);
    runner
        .run(&inputs(valid), |bytes| {
            std::fs::write(&file, &bytes).unwrap();
            check(&file, &bytes);
            ran.set(ran.get() + 1);
            Ok(())
        })
        .unwrap();
    assert!(
        ran.get() >= cases,
        "{name}: {} of {cases} cases ran",
        ran.get()
    );
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../convbn-zoo/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

/// What the tiny `.pth` fixtures hold.
fn tiny_expected() -> Expected {
    Expected {
        shapes: [("a".to_string(), vec![2, 3]), ("b".to_string(), vec![2])].into(),
    }
}

#[test]
fn pytorch_zip_and_legacy_checkpoints() {
    for name in ["tiny_zip.pth", "tiny_legacy.pth"] {
        fuzz(name, fixture(name), 300, |path, _| {
            let _ = Checkpoint::open_for(path, &tiny_expected());
            let _ = Checkpoint::open(path);
        });
    }
}

#[test]
fn safetensors_files() {
    let dir = scratch("st-valid");
    let mut checkpoint = Checkpoint::default();
    for (name, shape) in [("a", vec![2, 3]), ("b", vec![2])] {
        let n = shape.iter().product::<usize>();
        let values = (0..n).map(|i| i as f32).collect();
        checkpoint
            .tensors
            .insert(name.into(), Entry { shape, values });
    }
    let valid = dir.join("valid.safetensors");
    checkpoint.save_safetensors(&valid).unwrap();
    fuzz(
        "safetensors",
        std::fs::read(&valid).unwrap(),
        300,
        |path, bytes| {
            let _ = Checkpoint::open_for(path, &tiny_expected());
            let _ = Checkpoint::open(path);
            let _ = Checkpoint::from_safetensors_bytes(bytes);
        },
    );
}

#[test]
fn idx_files_plain_and_gzip() {
    let mut idx = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3];
    idx.extend(0..18u8);
    fuzz("idx", idx.clone(), 200, |path, bytes| {
        let _ = convbn_zoo::data::idx::parse_idx(bytes);
        let _ = convbn_zoo::data::idx::read_idx(path);
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &idx).unwrap();
    fuzz("idx-gz", gz.finish().unwrap(), 200, |path, _| {
        let _ = convbn_zoo::data::idx::read_idx(path);
    });
}

#[test]
fn png_and_jpeg_images() {
    let dir = scratch("img-valid");
    let img = image::RgbImage::from_fn(24, 16, |x, y| {
        image::Rgb([(x * 10) as u8, (y * 15) as u8, 60])
    });
    for ext in ["png", "jpg"] {
        let valid = dir.join(format!("valid.{ext}"));
        img.save(&valid).unwrap();
        fuzz(ext, std::fs::read(&valid).unwrap(), 200, |path, _| {
            let _ = convbn_zoo::image::open_rgb(path);
        });
    }
}

#[test]
fn coco_json_and_voc_xml() {
    let images = scratch("coco-images");
    image::RgbImage::new(40, 30)
        .save(images.join("a.png"))
        .unwrap();
    let coco = r#"{"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30},
        {"id": 2, "file_name": "../b.png", "width": 10, "height": 10}],
      "annotations": [{"id": 5, "image_id": 1, "category_id": 3, "bbox": [1, 2, 10, 8],
        "area": 80, "iscrowd": 0}],
      "categories": [{"id": 3, "name": "thing"}]}"#;
    fuzz("coco", coco.as_bytes().to_vec(), 300, |path, _| {
        if let Ok(dataset) = convbn_detect::coco::CocoDataset::load(path) {
            for policy in [
                convbn_detect::samples::OnInvalid::Error,
                convbn_detect::samples::OnInvalid::Skip,
            ] {
                let _ = convbn_detect::samples::from_coco(&dataset, &images, policy);
            }
        }
    });
    let voc = r#"<annotation><filename>a.png</filename>
      <size><width>40</width><height>30</height><depth>3</depth></size>
      <object><name>thing</name><difficult>0</difficult>
        <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>11</xmax><ymax>10</ymax></bndbox></object>
    </annotation>"#;
    fuzz("voc", voc.as_bytes().to_vec(), 300, |path, bytes| {
        let _ = convbn_detect::voc::parse_voc(&String::from_utf8_lossy(bytes), "fuzz.xml");
        let _ = convbn_detect::voc::load_voc(path);
    });
}

#[test]
fn run_checkpoints_of_finetune() {
    use convbn_train::checkpoint::{Position, RunState, optimizer_limit, parameter_bytes, read};
    use convbn_train::log::RunLog;
    let device = Device::flex();
    let block: ConvBn2d = ConvBnConfig::new(2, 3, [3, 3]).init(&device).unwrap();
    let config: convbn_train::FinetuneConfig = serde_json::from_value(serde_json::json!({
        "model": "mobilenet_v2", "start": {"kind": "random"}, "data": {"kind": "fashion-mnist"},
        "size": 32, "batch_size": 4, "epochs": 1, "train_limit": null, "test_limit": null,
        "augment": false,
        "optimizer": {"kind": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0},
        "schedule": {"kind": "constant"}, "seed": 0, "eval_batch_size": 8
    }))
    .unwrap();
    let state = RunState {
        position: Position::default(),
        param_ids: Default::default(),
        log: RunLog {
            mode: convbn::Mode::Tune,
            config,
            iterations: Vec::new(),
            epochs: Vec::new(),
            summary: None,
        },
    };
    let dir = scratch("run-valid");
    let valid = dir.join("checkpoint.safetensors");
    convbn_train::checkpoint::save(&valid, &block, &[1, 2, 3, 4], &state).unwrap();
    let limit = optimizer_limit(parameter_bytes(&block));
    fuzz("run", std::fs::read(&valid).unwrap(), 300, |path, _| {
        if let Ok(saved) = read(path) {
            let mut model = block.clone();
            let _ = saved.load_into(&mut model);
            let _ = saved.optimizer(limit);
        }
    });
}

/// ONNX models (the PP-OCR classifier, mutated): import, and run what imports.
#[test]
fn onnx_models() {
    let Some(path) = convbn_zoo::assets::for_test("ppocr_cls") else {
        return;
    };
    let device = Device::flex();
    let x = burn::tensor::Tensor::<4>::zeros([1, 3, 48, 64], &device);
    let (imported, ran) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    fuzz("onnx", std::fs::read(path).unwrap(), 150, |path, bytes| {
        if let Ok(model) = convbn_onnx::OnnxModel::from_bytes(bytes, &device) {
            imported.set(imported.get() + 1);
            if model.forward(x.clone()).is_ok() {
                ran.set(ran.get() + 1);
            }
        }
        let _ = convbn_onnx::OnnxModel::from_file(path, &device);
    });
    println!(
        "onnx: {} of 150 inputs imported, {} of them ran",
        imported.get(),
        ran.get()
    );
}
