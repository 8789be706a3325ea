//! Running fine-tuning jobs and reporting them: progress, chart, summary table and JSON.

use std::path::Path;

use anyhow::{Context, Result};
use convbn::Mode;
use convbn_train::Finetune;
use convbn_train::checkpoint::Log;
use convbn_train::log::RunLog;
use convbn_zoo::files::{DirLock, remove_stale_partials};
use serde::Serialize;

use crate::budget;
use crate::commands::Format;
use crate::commands::summary::{self, COST_HEADERS};
use crate::commands::train_args::TrainArgs;
use crate::device::Precision;
use crate::plot;
use crate::progress::TrainProgress;

/// What a fine-tuning mode achieved.
#[derive(Serialize, Debug)]
pub struct Accuracy {
    /// Test accuracy after the last epoch.
    pub final_test_accuracy: f64,
}

/// One mode's line of the fine-tuning summary.
pub type ModeSummary = summary::ModeSummary<Accuracy>;

/// Summaries of finished logs, with ratios to the Eval run when there is one.
pub fn summarize(logs: &[RunLog]) -> Vec<ModeSummary> {
    summary::summarize(logs, |l| Accuracy {
        final_test_accuracy: l.epochs.last().map_or(0.0, |e| e.test_accuracy),
    })
}

/// The summary as a Markdown table.
pub fn table(rows: &[ModeSummary]) -> String {
    let (headers, align) = COST_HEADERS;
    let mut out = format!("| mode | test accuracy | {headers} |\n|---|---:|{align}|\n");
    for r in rows {
        out += &format!(
            "| {} | {:.2}% | {} |\n",
            r.mode,
            100.0 * r.result.final_test_accuracy,
            r.cost_cells()
        );
    }
    out
}

#[derive(Serialize)]
struct SummaryFile<'a> {
    config: &'a convbn_train::FinetuneConfig,
    train_images: usize,
    test_images: usize,
    modes: &'a [ModeSummary],
}

/// Run (or resume) `modes` in lock-step with `args`, then write `curves.png`, `summary.json`
/// and `summary.md` into the run directory and print the summary.
pub fn train_and_report(args: &TrainArgs, modes: &[Mode], format: Format) -> Result<()> {
    let config = args.config()?;
    let options = args.options();
    let _lock = claim_run_dir(&args.out)?;
    // Read now, to refuse a mixed directory before any work; the lock keeps them as they are.
    let earlier = earlier_logs::<RunLog>(&args.out, modes, &config)?;
    let device = args.device.training_device(Precision::F32)?;
    check_memory(&config, modes.len(), &device)?;
    let mut job = if args.run.resume {
        Finetune::resume(config.clone(), modes, options, &device)?
    } else {
        Finetune::new(config.clone(), modes, options, &device)?
    };
    let (n_train, n_test) = (job.task().data().train.len(), job.task().data().test.len());
    eprintln!(
        "{} on {n_train} training / {n_test} test images at {}x{}, {} iterations of {} in {} \
         mode{}{}",
        config.model,
        config.size,
        config.size,
        job.total_steps(),
        config.batch_size,
        modes
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if modes.len() > 1 { "s (lock-step)" } else { "" },
        if args.run.resume {
            format!(", resuming at iteration {}", job.position().step)
        } else {
            String::new()
        }
    );
    let mut progress = TrainProgress::new(config.batch_size, modes.len());
    let result = job.run(&mut progress);
    progress.finish();
    let out = &args.out;
    let logs = with_earlier(result?, earlier);
    let title = format!(
        "{} on {} ({n_train} train / {n_test} test, {}x{}, batch {}, seed {})",
        config.model,
        match &config.data {
            convbn_train::DataSource::FashionMnist => "Fashion-MNIST".to_string(),
            convbn_train::DataSource::Folder { train, .. } => train.display().to_string(),
        },
        config.size,
        config.size,
        config.batch_size,
        config.seed
    );
    plot::curves::draw(&logs, &title, &out.join("curves.png"))?;
    if logs.iter().any(|l| l.summary.is_none()) {
        let step = job.position().step;
        eprintln!(
            "stopped after {step} iterations; checkpoints in {}; continue with the same \
             options and --resume",
            out.display()
        );
        return Ok(());
    }
    let rows = summarize(&logs);
    let file = SummaryFile {
        config: &config,
        train_images: n_train,
        test_images: n_test,
        modes: &rows,
    };
    write(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&file)?,
    )?;
    let md = table(&rows);
    write(&out.join("summary.md"), md.as_bytes())?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&file)?),
        Format::Table => {
            println!("{md}");
            println!(
                "logs: {}/<mode>/log.json, chart: {}",
                out.display(),
                out.join("curves.png").display()
            );
        }
    }
    refuse_divergence(rows.iter().map(|r| (r.mode, r.diverged_at)), out)
}

/// An error naming every mode whose loss became NaN or infinite (`(mode, iteration)`), after
/// the summaries were written: such a mode stopped before the bad step, so its checkpoint in
/// `out` keeps the last finite weights.
pub fn refuse_divergence(
    modes: impl Iterator<Item = (Mode, Option<usize>)>,
    out: &Path,
) -> Result<()> {
    let diverged: Vec<String> = modes
        .filter_map(|(mode, at)| at.map(|at| format!("{mode} at iteration {at}")))
        .collect();
    if diverged.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "the loss became NaN or infinite ({}): training of that mode stopped before the bad \
         step, and its checkpoint in {}/<mode>/ keeps the last finite weights; lower --lr \
         (Deploy mode diverges first, see `convbn stability`)",
        diverged.join(", "),
        out.display()
    )
}

/// Take `out` for this run: an exclusive lock held until the returned guard is dropped (a
/// second run on the same directory is refused), and temporary files that killed writers
/// left in it removed.
pub fn claim_run_dir(out: &Path) -> Result<DirLock> {
    let lock = DirLock::acquire(out)?;
    let dirs = std::iter::once(out.to_path_buf()).chain(Mode::ALL.map(|m| out.join(m.to_string())));
    for dir in dirs {
        for file in remove_stale_partials(&dir) {
            eprintln!("removed {} (left by an interrupted write)", file.display());
        }
    }
    Ok(lock)
}

/// Refuse a fine-tuning run whose model, batch, size and data cannot fit in memory: the
/// images a batch really holds (no more than the training set), the network's probe step
/// scaled to them, and a folder dataset held at the network's size.
fn check_memory(
    config: &convbn_train::FinetuneConfig,
    modes: usize,
    device: &burn::tensor::Device,
) -> Result<()> {
    use convbn_train::DataSource;
    // Images available: Fashion-MNIST's 60,000 (held at 28x28), or a folder's files (held
    // at the network's size, one byte per value).
    let (images, held) = match &config.data {
        DataSource::FashionMnist => (60_000, Some(0)),
        DataSource::Folder { train, test, .. } => {
            let count = |dir: &std::path::Path| -> Result<usize> {
                Ok(convbn_train::data::folder::scan(dir)?
                    .iter()
                    .map(|(_, files)| files.len())
                    .sum())
            };
            let n = count(train)? + test.as_deref().map(count).transpose()?.unwrap_or(0);
            (n, budget::product(&[n, 3, config.size, config.size]))
        }
    };
    let images = config.train_limit.map_or(images, |l| l.min(images));
    let spec: convbn_zoo::ModelSpec = config.model.parse()?;
    let what = format!("fine-tuning {}", config.model);
    budget::ensure_fits(&format!("{what}'s images at {0}x{0}", config.size), held)?;
    budget::ensure_zoo_training_fits(
        &what,
        &spec,
        modes,
        config.batch_size.min(images.max(1)),
        config.size,
        device,
    )
}

/// Finished logs of modes other than `modes` that earlier runs left in `out`
/// (`<out>/<mode>/log.json`), so that summaries and charts cover every mode present. Refuses
/// when one of them was made with other options: one summary must not mix two experiments.
pub fn earlier_logs<L: Log>(out: &Path, modes: &[Mode], config: &L::Config) -> Result<Vec<L>> {
    let mut logs = Vec::new();
    for mode in Mode::ALL.into_iter().filter(|m| !modes.contains(m)) {
        let path = out.join(mode.to_string()).join("log.json");
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let log: L = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a log of this kind of run", path.display()))?;
        if log.config() != config {
            anyhow::bail!(
                "{} holds a {mode} run made with other options, and this run's summary would \
                 mix the two; choose another --out, or remove {}",
                out.display(),
                path.parent().unwrap_or(out).display()
            );
        }
        if log.finished() {
            logs.push(log);
        } else {
            eprintln!(
                "note: the {mode} run in {} has not finished; it is left out of the summary",
                out.display()
            );
        }
    }
    Ok(logs)
}

/// `logs` of this run (in the order the modes were given) followed by `earlier` ones.
pub fn with_earlier<L>(mut logs: Vec<L>, earlier: Vec<L>) -> Vec<L> {
    logs.extend(earlier);
    logs
}

/// Write `bytes` to `path` atomically, naming the file on failure.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    convbn_zoo::files::write_atomically(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}
