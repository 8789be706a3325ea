//! One module per sub-command.

pub mod bench_block;
pub mod fetch;
pub mod inspect;
pub mod modes;
pub mod predict;

/// Output format shared by the commands.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Table,
    /// Machine-readable JSON on stdout.
    Json,
}
