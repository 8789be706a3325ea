//! `convbn detect`: object detection on pretrained ConvBN backbones (issue 7; so far the COCO
//! evaluation).

pub mod eval;
pub mod train;

/// Detection sub-commands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Score a COCO results file against COCO ground truth (pycocotools' 12 numbers).
    Eval(eval::Args),
    /// Train an FCOS detector on the pretrained MobileNetV2 in Eval, Tune or Deploy mode.
    Train(Box<train::Args>),
}

/// Run it.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Eval(args) => eval::run(args),
        Command::Train(args) => train::run(*args),
    }
}
