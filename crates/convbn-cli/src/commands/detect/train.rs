//! `convbn detect train`: train an FCOS detector on the pretrained MobileNetV2 backbone with
//! its ConvBN blocks in Eval, Tune or Deploy mode (several modes run in lock-step), with
//! progress, JSON logs, charts, checkpoints and resume.

use std::path::PathBuf;

use anyhow::{Context, Result};
use convbn::Mode;
use convbn_detect::train::augment::Augment;
use convbn_detect::train::baseline::grid_baseline;
use convbn_detect::train::evaluate::score;
use convbn_detect::train::log::DetectLog;
use convbn_detect::train::trainer::initial_detector;
use convbn_detect::train::{DetectConfig, DetectData, DetectTrain};
use serde::Serialize;

use crate::budget;
use crate::commands::Format;
use crate::commands::data_parallel::DevicesArgs;
use crate::commands::report::{claim_run_dir, earlier_logs, with_earlier, write};
use crate::commands::summary::{self, COST_HEADERS};
use crate::commands::train_args::{OptimArgs, RunArgs, parse_start};
use crate::device::Precision;
use crate::plot;
use crate::progress::DetectProgress;

/// Default learning rate of detection (SGD, momentum 0.9, batch 16).
pub const DETECT_LR: f64 = 0.01;

/// Default warm-up iterations of detection (the head starts untrained).
pub const DETECT_WARMUP: usize = 100;

/// Built-in and user datasets.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataName {
    /// Seeded Fashion-MNIST scenes (10 classes, 128x128 canvases, fixed test split).
    Scenes,
    /// DeepForest's aerial tree crowns (tiles; OSBS_029 and SOAP_061 held out).
    Trees,
    /// COCO JSON: --coco-train, --coco-train-images, --coco-test, --coco-test-images.
    Coco,
    /// Pascal VOC XML folders: --voc-train, --voc-test.
    Voc,
}

/// Augmentation names.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AugmentName {
    /// None.
    None,
    /// Horizontal flips.
    Flip,
    /// Rotations by 90 degrees, flips, brightness/contrast/colour jitter.
    Aerial,
}

/// Detection training options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// ConvBN mode(s) of the backbone: tune, eval or deploy; several (comma-separated) run in
    /// lock-step on the same batches.
    #[arg(long, value_delimiter = ',', default_value = "tune")]
    mode: Vec<Mode>,
    /// Dataset.
    #[arg(long, value_enum, default_value_t = DataName::Scenes)]
    data: DataName,
    /// Training scenes (--data scenes).
    #[arg(long, default_value_t = 2000)]
    scenes_train: usize,
    /// Test scenes (--data scenes).
    #[arg(long, default_value_t = 500)]
    scenes_test: usize,
    /// COCO training annotations (--data coco).
    #[arg(long)]
    coco_train: Option<PathBuf>,
    /// Folder of the COCO training images.
    #[arg(long)]
    coco_train_images: Option<PathBuf>,
    /// COCO test annotations.
    #[arg(long)]
    coco_test: Option<PathBuf>,
    /// Folder of the COCO test images.
    #[arg(long)]
    coco_test_images: Option<PathBuf>,
    /// Folder of VOC training annotations (--data voc), images beside them.
    #[arg(long)]
    voc_train: Option<PathBuf>,
    /// Folder of VOC test annotations.
    #[arg(long)]
    voc_test: Option<PathBuf>,
    /// Leave invalid annotations (boxes outside the image, negative sizes, unknown classes,
    /// missing images) out and report them, instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
    /// Backbone: mobilenet_v2, or a ResNet (resnet18/34/50/101, resnext50_32x4d,
    /// wide_resnet50_2) with --weights FILE (torchvision layout).
    #[arg(long, default_value = "mobilenet_v2")]
    backbone: String,
    /// Backbone weights: `imagenet` (MobileNetV2), `random`, or a checkpoint file.
    #[arg(long, default_value = "imagenet")]
    weights: String,
    /// Input side (a multiple of 32); default 128 for scenes, 256 otherwise.
    #[arg(long)]
    size: Option<usize>,
    /// FPN and head width.
    #[arg(long, default_value_t = 64)]
    channels: usize,
    /// Images per iteration.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Use only the first N training images (tiles for trees).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Augmentation: none, flip (horizontal; default) or aerial (all 8 rotations/flips and
    /// colour jitter; default for --data trees).
    #[arg(long, value_enum)]
    augment: Option<AugmentName>,
    #[command(flatten)]
    optim: OptimArgs,
    /// Seed of the head initialisation, shuffling and flips.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per step when evaluating.
    #[arg(long, default_value_t = 50)]
    eval_batch_size: usize,
    /// Run directory: `<out>/<mode>/{checkpoint.safetensors,log.json}`, charts, summary.
    #[arg(long, default_value = "runs/detect")]
    out: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    parallel: DevicesArgs,
    /// Float precision: f64 shows that Eval and Tune train the same model beyond f32
    /// rounding, which training's chaos amplifies within tens of iterations (slower).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

impl Args {
    fn config(&self) -> Result<DetectConfig> {
        let need = |v: &Option<PathBuf>, flag: &str| -> Result<PathBuf> {
            v.clone()
                .with_context(|| format!("--data {:?} needs {flag}", self.data))
        };
        let data = match self.data {
            DataName::Scenes => DetectData::Scenes {
                train: self.scenes_train,
                test: self.scenes_test,
            },
            DataName::Trees => DetectData::Trees,
            DataName::Coco => DetectData::Coco {
                train: need(&self.coco_train, "--coco-train")?,
                train_images: need(&self.coco_train_images, "--coco-train-images")?,
                test: need(&self.coco_test, "--coco-test")?,
                test_images: need(&self.coco_test_images, "--coco-test-images")?,
            },
            DataName::Voc => DetectData::Voc {
                train: need(&self.voc_train, "--voc-train")?,
                test: need(&self.voc_test, "--voc-test")?,
            },
        };
        let config = DetectConfig {
            data,
            skip_invalid: self.skip_invalid,
            backbone: self.backbone.clone(),
            start: parse_start(&self.weights)?,
            size: self.size.unwrap_or(if self.data == DataName::Scenes {
                128
            } else {
                256
            }),
            channels: self.channels,
            batch_size: self.batch_size,
            epochs: self.epochs,
            train_limit: self.train_limit,
            test_limit: self.test_limit,
            augment: match self.augment {
                Some(AugmentName::None) => Augment::None,
                Some(AugmentName::Flip) => Augment::Flip,
                Some(AugmentName::Aerial) => Augment::Aerial,
                None if self.data == DataName::Trees => Augment::Aerial,
                None => Augment::Flip,
            },
            optimizer: self.optim.optimizer(DETECT_LR),
            schedule: self.optim.schedule(DETECT_WARMUP),
            seed: self.seed,
            eval_batch_size: self.eval_batch_size,
        };
        config.validate()?;
        Ok(config)
    }
}

/// What a detection mode achieved.
#[derive(Serialize, Debug)]
pub struct Scores {
    /// AP@[.5:.95] after the last epoch.
    pub ap: f64,
    /// AP50 after the last epoch.
    pub ap50: f64,
    /// AP75 after the last epoch.
    pub ap75: f64,
    /// pycocotools' 12 numbers after the last epoch.
    pub stats: [f64; 12],
}

/// One mode's line of the detection summary.
pub type ModeSummary = summary::ModeSummary<Scores>;

fn summarize(logs: &[DetectLog]) -> Vec<ModeSummary> {
    summary::summarize(logs, |l| {
        let stats = l.evaluations.last().map_or([-1.0; 12], |e| e.stats);
        Scores {
            ap: stats[0],
            ap50: stats[1],
            ap75: stats[2],
            stats,
        }
    })
}

fn table(rows: &[ModeSummary]) -> String {
    let (headers, align) = COST_HEADERS;
    let mut out =
        format!("| mode | AP | AP50 | AP75 | {headers} |\n|---|---:|---:|---:|{align}|\n");
    for r in rows {
        let p = &r.result;
        out += &format!(
            "| {} | {:.3} | {:.3} | {:.3} | {} |\n",
            r.mode,
            p.ap,
            p.ap50,
            p.ap75,
            r.cost_cells()
        );
    }
    out
}

#[derive(Serialize)]
struct SummaryFile<'a> {
    config: &'a DetectConfig,
    precision: Precision,
    classes: &'a [String],
    train_images: usize,
    train_objects: usize,
    test_images: usize,
    test_objects: usize,
    skipped: Vec<String>,
    /// pycocotools' numbers of the trivial baseline (median-size boxes on a grid, most
    /// frequent class, no look at the pixels) on the same test images.
    baseline: [f64; 12],
    modes: &'a [ModeSummary],
}

/// Refuse a detection run that cannot fit in memory: the FPN and head's width first (by
/// arithmetic, before anything is built), then a probe step of the whole detector at batch 1,
/// scaled to the batch and size (see [`budget`]).
fn check_memory(config: &DetectConfig, modes: usize, device: &burn::tensor::Device) -> Result<()> {
    // FPN (lateral and output convs) and two head towers: about 12 3x3 convs of the width.
    let head = budget::product(&[config.channels, config.channels, 9, 12, 4 * 4]);
    budget::ensure_fits(
        &format!("a detector with --channels {}", config.channels),
        head.and_then(|h| h.checked_mul(modes as u64)),
    )?;
    let random = DetectConfig {
        start: convbn_train::Start::Random,
        ..config.clone()
    };
    let probe = budget::Probe::measure(
        device,
        || Ok(initial_detector(&random, 10, false, device)?),
        |model, x| {
            let total = model
                .forward(x)?
                .into_iter()
                .map(|l| l.cls_logits.sum() + l.ltrb.sum() + l.centerness.sum())
                .reduce(|a, b| a + b)
                .expect("three levels");
            let _grads = total.backward();
            Ok(())
        },
    )?;
    probe.ensure_training_fits(
        &format!("detection training with --channels {}", config.channels),
        modes,
        config.batch_size,
        config.size,
    )
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    if args.parallel.is_set() {
        return data_parallel(&args);
    }
    let config = args.config()?;
    let options = args.run.options(&args.out);
    let _lock = claim_run_dir(&args.out)?;
    // Read now, to refuse a mixed directory before any work; the lock keeps them as they are.
    let earlier = earlier_logs::<DetectLog>(&args.out, &args.mode, &config)?;
    let device = args.device.training_device(args.precision)?;
    check_memory(&config, args.mode.len(), &device)?;
    let mut job = if args.run.resume {
        DetectTrain::resume(config.clone(), &args.mode, options, &device)?
    } else {
        DetectTrain::new(config.clone(), &args.mode, options, &device)?
    };
    let data = job.task().data();
    let skipped: Vec<String> = data
        .train
        .skipped
        .iter()
        .chain(&data.test.skipped)
        .cloned()
        .collect();
    for line in &skipped {
        eprintln!("skipped: {line}");
    }
    let (n_train, n_test) = (data.train.len(), data.test.len());
    let (o_train, o_test) = (data.train.objects(), data.test.objects());
    let classes = data.train.classes.clone();
    let baseline = score(&data.test, &grid_baseline(&data.train, &data.test))?.stats;
    eprintln!(
        "{:?}: {n_train} training images ({o_train} objects) / {n_test} test images ({o_test} \
         objects), {} classes, at {}x{}; {} iterations of {} in {} mode{}{}",
        args.data,
        classes.len(),
        config.size,
        config.size,
        job.total_steps(),
        config.batch_size,
        args.mode
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if args.mode.len() > 1 {
            "s (lock-step)"
        } else {
            ""
        },
        if args.run.resume {
            format!(", resuming at iteration {}", job.position().step)
        } else {
            String::new()
        }
    );
    let mut progress = DetectProgress::new(config.batch_size, args.mode.len());
    let result = job.run(&mut progress);
    progress.finish();
    let out = &args.out;
    let logs = with_earlier(result?, earlier);
    let title = format!(
        "FCOS-{} on {:?} ({n_train} train / {n_test} test, {}x{}, batch {}, seed {})",
        config.backbone, args.data, config.size, config.size, config.batch_size, config.seed
    );
    plot::detect::draw(&logs, &title, &out.join("curves.png"))?;
    if logs.iter().any(|l| l.summary.is_none()) {
        eprintln!(
            "stopped after {} iterations; checkpoints in {}; continue with the same options \
             and --resume",
            job.position().step,
            out.display()
        );
        return Ok(());
    }
    let rows = summarize(&logs);
    let file = SummaryFile {
        config: &config,
        precision: args.precision,
        classes: &classes,
        train_images: n_train,
        train_objects: o_train,
        test_images: n_test,
        test_objects: o_test,
        skipped,
        baseline,
        modes: &rows,
    };
    write(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&file)?,
    )?;
    let md = format!(
        "{}\ntrivial baseline (median-size boxes on a grid, no look at the pixels): AP {:.3}, \
         AP50 {:.3}\n",
        table(&rows),
        baseline[0],
        baseline[1]
    );
    write(&out.join("summary.md"), md.as_bytes())?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&file)?),
        Format::Table => {
            println!("{md}");
            println!(
                "logs: {}/<mode>/log.json, chart: {}, checkpoints: {}/<mode>/checkpoint.safetensors",
                out.display(),
                out.join("curves.png").display(),
                out.display()
            );
        }
    }
    crate::commands::report::refuse_divergence(rows.iter().map(|r| (r.mode, r.diverged_at)), out)
}

/// What a Learner run reports (`summary.json`).
#[derive(Serialize)]
struct LearnerSummary<'a> {
    mode: Mode,
    devices: Vec<String>,
    config: &'a DetectConfig,
    steps: usize,
    /// pycocotools' 12 numbers on the test set.
    coco: [f64; 12],
}

/// `--devices`: burn's Learner, data-parallel.
fn data_parallel(args: &Args) -> Result<()> {
    if args.precision != Precision::F32 {
        anyhow::bail!("--devices trains in f32; leave out --precision");
    }
    let config = args.config()?;
    let _lock = claim_run_dir(&args.out)?;
    let plan = args
        .parallel
        .plan(&args.device, &args.run, &args.out, &args.mode)?;
    let mode = args.mode[0];
    let outcome = convbn_detect::learner::train_with_learner(
        &config,
        mode,
        &plan.devices,
        plan.parallelism,
        &plan.dir,
        true,
    )?;
    let summary = LearnerSummary {
        mode,
        devices: args.parallel.names(),
        config: &config,
        steps: outcome.steps,
        coco: outcome.stats.stats,
    };
    plan.finish(&outcome.model, &convbn_zoo::load::Naming::burn(), &summary)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Format::Table => println!(
            "{mode} on {}: {} steps, AP {:.3}, AP50 {:.3}\nweights: {}",
            summary.devices.join(", "),
            summary.steps,
            summary.coco[0],
            summary.coco[1],
            plan.weights.display()
        ),
    }
    Ok(())
}
