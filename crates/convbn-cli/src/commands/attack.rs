//! `convbn attack`: adversarial examples (FGSM / PGD, L-inf / L2, untargeted or targeted)
//! through a frozen pretrained ImageNet model, in one or several ConvBN modes on the same
//! images, with the memory and time of every step (the paper's Figure 4).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Tensor;
use convbn::measure::median;
use convbn::{Mode, set_mode};
use convbn_attack::agreement::{identical, relative_l2, to_8bit};
use convbn_attack::{AttackConfig, Method, Norm, attack};

use crate::commands::fraction::parse_fraction;
use convbn_zoo::image::{load_crop, normalize, save_png};
use convbn_zoo::imagenet::{Prediction, class_names, top_k};
use convbn_zoo::pretrained::{Weights, build};
use convbn_zoo::{Model, ModelSpec};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::commands::Format;
use crate::device::Precision;

/// Attack options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Architecture (mobilenet_v2, efficientnet_lite0, or any zoo model with --weights FILE),
    /// or onnx:FILE for an ONNX classifier.
    #[arg(long, default_value = "mobilenet_v2")]
    model: ModelSpec,
    /// ConvBN modes to attack in, comma-separated (several: same images, interleaved, compared).
    #[arg(long, value_delimiter = ',', default_value = "tune")]
    mode: Vec<Mode>,
    /// A checkpoint in the reference PyTorch layout instead of the ImageNet asset.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// fgsm or pgd.
    #[arg(long, default_value = "pgd")]
    method: Method,
    /// linf or l2.
    #[arg(long, default_value = "linf")]
    norm: Norm,
    /// Radius of the perturbation ball, on pixel values in [0, 1] (`4/255` allowed).
    #[arg(long, default_value = "4/255", value_parser = parse_fraction)]
    eps: f64,
    /// PGD step size (`1/255` allowed).
    #[arg(long, default_value = "1/255", value_parser = parse_fraction)]
    alpha: f64,
    /// PGD steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Make the model predict this ImageNet class (index) instead of any wrong one.
    #[arg(long)]
    target: Option<usize>,
    /// Start PGD at the clean image instead of a random point of the ball.
    #[arg(long)]
    no_random_start: bool,
    /// Seed of PGD's random start.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the adversarial and perturbation PNGs.
    #[arg(long, default_value = "runs/attack")]
    out: PathBuf,
    /// Float precision: f64 shows that modes agree beyond f32 rounding (slower).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Images (PNG/JPEG) or folders of images.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

/// One image attacked in one mode.
#[derive(Serialize, Debug)]
struct ImageResult {
    image: String,
    mode: Mode,
    success: bool,
    linf: f64,
    l2: f64,
    original_top5: Vec<Prediction>,
    adversarial_top5: Vec<Prediction>,
    adversarial_png: String,
    perturbation_png: String,
    step_ms_median: f64,
    step_peak_bytes: usize,
    final_loss: f64,
}

/// How two modes' attacks on the same images compare.
#[derive(Serialize, Debug)]
struct Comparison {
    modes: (Mode, Mode),
    /// Largest relative L2 difference of the first step's input gradients over the images.
    first_gradient_rel_l2_max: f64,
    /// Images on which success and the final top-1 agree.
    same_outcome: usize,
    images: usize,
    /// Fraction of adversarial pixel values (8-bit) identical between the modes.
    identical_pixels: f64,
    /// Median step time ratio (second / first).
    time_ratio: f64,
    /// Step peak memory ratio (second / first).
    memory_ratio: f64,
}

#[derive(Serialize)]
struct Report {
    model: String,
    precision: Precision,
    config: AttackConfig,
    results: Vec<ImageResult>,
    comparisons: Vec<Comparison>,
}

/// What is compared between modes for one image: first-step input gradient, adversarial
/// pixels (8-bit), and the outcome (success, final top-1).
struct Trace {
    gradient: Vec<f64>,
    pixels: Vec<u8>,
    outcome: (bool, usize),
}

/// The image files named by `inputs` (folders expanded, sorted).
fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str())
                    })
                })
                .collect();
            if found.is_empty() {
                bail!("folder {} holds no PNG or JPEG image", p.display());
            }
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("image {} does not exist", p.display());
        }
    }
    Ok(out)
}

fn probabilities(model: &Model, x: &Tensor<4>, norm: ([f32; 3], [f32; 3])) -> Result<Vec<f32>> {
    let logits = model.forward(normalize(Tensor::from_inner(x.clone()), norm.0, norm.1))?;
    logits
        .inner()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn to_vec(x: Tensor<4>) -> Vec<f64> {
    x.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap_or_default()
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    let config = AttackConfig {
        method: args.method,
        norm: args.norm,
        eps: args.eps,
        alpha: args.alpha,
        steps: args.steps,
        target: args.target,
        random_start: !args.no_random_start,
        seed: args.seed,
    };
    config.validate(1000)?;
    if args.mode.is_empty() {
        bail!("give at least one --mode");
    }
    if args.mode.contains(&Mode::Train) {
        bail!(
            "--mode train is not an attack mode: it normalises with batch statistics and updates \
             the running statistics, so the attacked model would change under the attack; use \
             eval, tune or deploy (frozen statistics)"
        );
    }
    crate::commands::distinct_modes(&args.mode, "--mode")?;
    let files = expand(&args.images)?;
    let device = args.device.training_device(args.precision)?;
    let plain = device.clone().inner();
    let weights = args
        .weights
        .clone()
        .map_or(Weights::ImageNet, Weights::File);
    let base = build(&args.model, &weights, true, &device)
        .with_context(|| format!("loading {}", args.model))?
        .no_grad();
    let mut models = Vec::new();
    for &mode in &args.mode {
        let mut m = base.clone();
        set_mode(&mut m, mode)?;
        models.push((mode, m));
    }
    let images = files
        .iter()
        .map(|f| load_crop(f, 256, 224, &plain).with_context(|| format!("reading {}", f.display())))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let norm = args.model.normalization();
    // An ONNX classifier has its own classes: ImageNet's names only for 1000 of them.
    let classes = match &base {
        Model::Onnx(m) => m.num_classes().unwrap_or(1000),
        _ => 1000,
    };
    config.validate(classes)?;
    let names = if classes == 1000 {
        class_names()
    } else {
        Vec::new()
    };
    let steps = if config.method == Method::Fgsm {
        1
    } else {
        config.steps
    };
    let bar = ProgressBar::new((files.len() * models.len() * steps) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} attack steps {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut results = Vec::new();
    let mut per_mode: Vec<Vec<Trace>> = (0..models.len()).map(|_| Vec::new()).collect();
    let mut outputs = crate::commands::names::UniqueNames::default();
    for (file, clean) in files.iter().zip(&images) {
        let stem = outputs.claim(
            &file
                .file_stem()
                .map_or("image".into(), |s| s.to_string_lossy().into_owned()),
        );
        for (i, (mode, model)) in models.iter().enumerate() {
            bar.set_message(format!("{stem} ({mode})"));
            let clean_p = probabilities(model, clean, norm)?;
            let original = top_k(&clean_p, 5, &names);
            let label = original[0].class_index;
            let out = attack(model, clean, norm, label, &config, &device)?;
            bar.inc(steps as u64);
            let adv_p = probabilities(model, &out.adversarial, norm)?;
            let adversarial = top_k(&adv_p, 5, &names);
            let top1 = adversarial[0].class_index;
            let success = match config.target {
                Some(t) => top1 == t,
                None => top1 != label,
            };
            let linf = Norm::Linf.measure(&out.perturbation);
            let l2 = Norm::L2.measure(&out.perturbation);
            let adv_png = args.out.join(format!("{stem}_{mode}_adversarial.png"));
            let pert_png = args.out.join(format!("{stem}_{mode}_perturbation.png"));
            save_png(out.adversarial.clone(), &adv_png)?;
            // Amplified: 0 maps to grey, the largest |delta| to black or white.
            let amp = 0.5 / linf.max(1e-12);
            save_png(out.perturbation.clone() * amp + 0.5, &pert_png)?;
            let ms: Vec<f64> = out.steps.iter().map(|s| s.ms).collect();
            let pixels = to_8bit(&to_vec(out.adversarial.clone()));
            per_mode[i].push(Trace {
                gradient: out.first_gradient.clone(),
                pixels,
                outcome: (success, top1),
            });
            results.push(ImageResult {
                image: file.display().to_string(),
                mode: *mode,
                success,
                linf,
                l2,
                original_top5: original,
                adversarial_top5: adversarial,
                adversarial_png: adv_png.display().to_string(),
                perturbation_png: pert_png.display().to_string(),
                step_ms_median: median(&ms),
                step_peak_bytes: out.steps.iter().map(|s| s.peak_bytes).max().unwrap_or(0),
                final_loss: out.steps.last().map_or(0.0, |s| s.loss),
            });
        }
    }
    bar.finish_and_clear();
    let comparisons = (1..models.len())
        .map(|j| compare(&models, &per_mode, &results, 0, j))
        .collect();
    let report = Report {
        model: args.model.to_string(),
        precision: args.precision,
        config,
        results,
        comparisons,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => print_table(&report, &args.out),
    }
    Ok(())
}

fn compare(
    models: &[(Mode, Model)],
    per_mode: &[Vec<Trace>],
    results: &[ImageResult],
    a: usize,
    b: usize,
) -> Comparison {
    let (ma, mb) = (models[a].0, models[b].0);
    let mut worst = 0f64;
    let (mut same, mut equal, mut total) = (0, 0usize, 0usize);
    for (x, y) in per_mode[a].iter().zip(&per_mode[b]) {
        worst = worst.max(relative_l2(&x.gradient, &y.gradient));
        same += usize::from(x.outcome == y.outcome);
        equal += identical(&x.pixels, &y.pixels);
        total += x.pixels.len();
    }
    let stat = |m: Mode, f: &dyn Fn(&ImageResult) -> f64| {
        let v: Vec<f64> = results.iter().filter(|r| r.mode == m).map(f).collect();
        median(&v)
    };
    Comparison {
        time_ratio: stat(mb, &|r| r.step_ms_median) / stat(ma, &|r| r.step_ms_median),
        memory_ratio: stat(mb, &|r| r.step_peak_bytes as f64)
            / stat(ma, &|r| r.step_peak_bytes as f64),
        modes: (ma, mb),
        first_gradient_rel_l2_max: worst,
        same_outcome: same,
        images: per_mode[a].len(),
        identical_pixels: equal as f64 / total.max(1) as f64,
    }
}

fn print_table(report: &Report, out: &Path) {
    let c = &report.config;
    println!(
        "{} ({:?}) {:?} {:?} eps {:.5} alpha {:.5} steps {}{}:",
        report.model,
        report.precision,
        c.method,
        c.norm,
        c.eps,
        c.alpha,
        c.steps,
        c.target.map_or(String::new(), |t| format!(" target {t}"))
    );
    for r in &report.results {
        println!(
            "  {} [{}] {}: {} ({:.1}%) -> {} ({:.1}%)  linf {:.5} l2 {:.4}  {:.0} ms/step  {:.1} MB/step",
            r.image,
            r.mode,
            if r.success { "success" } else { "failed" },
            r.original_top5[0].label,
            100.0 * r.original_top5[0].probability,
            r.adversarial_top5[0].label,
            100.0 * r.adversarial_top5[0].probability,
            r.linf,
            r.l2,
            r.step_ms_median,
            r.step_peak_bytes as f64 / 1e6
        );
    }
    for k in &report.comparisons {
        println!(
            "  {} vs {}: first-step input gradients within {:.2e} (rel L2), same outcome on {}/{} \
             images, {:.2}% identical adversarial pixels; {} step time {:.3}x and peak memory \
             {:.3}x {}'s",
            k.modes.0,
            k.modes.1,
            k.first_gradient_rel_l2_max,
            k.same_outcome,
            k.images,
            100.0 * k.identical_pixels,
            k.modes.1,
            k.time_ratio,
            k.memory_ratio,
            k.modes.0
        );
    }
    println!("images: {}", out.display());
}
