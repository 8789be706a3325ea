//! `convbn detect`: object detection on pretrained ConvBN backbones (issue 7; so far the COCO
//! evaluation).

pub mod eval;

/// Detection sub-commands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Score a COCO results file against COCO ground truth (pycocotools' 12 numbers).
    Eval(eval::Args),
}

/// Run it.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Eval(args) => eval::run(args),
    }
}
