//! `convbn detect`: object detection on pretrained ConvBN backbones (training, prediction, COCO
//! evaluation).

pub mod eval;
pub mod predict;
pub mod train;

/// Detection sub-commands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Score a COCO results file against COCO ground truth (pycocotools' 12 numbers).
    Eval(eval::Args),
    /// Train an FCOS detector on a pretrained backbone in Eval, Tune or Deploy mode.
    Train(Box<train::Args>),
    /// Detect objects in images with a trained detector: PNGs with boxes drawn, and JSON.
    Predict(predict::Args),
}

/// Run it.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Eval(args) => eval::run(args),
        Command::Train(args) => train::run(*args),
        Command::Predict(args) => predict::run(args),
    }
}
