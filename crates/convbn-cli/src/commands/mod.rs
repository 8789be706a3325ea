//! One module per sub-command.

pub mod attack;
pub mod bench;
pub mod bench_block;
pub mod compare_modes;
pub mod data_parallel;
pub mod detect;
pub mod fetch;
pub mod finetune;
pub mod fraction;
pub mod inspect;
pub mod modes;
pub mod names;
pub mod predict;
pub mod report;
pub mod stability;
pub mod summary;
pub mod train_args;

/// Refuse a list of modes (`flag`'s value) that names a mode twice.
pub fn distinct_modes(modes: &[convbn::Mode], flag: &str) -> anyhow::Result<()> {
    for (i, m) in modes.iter().enumerate() {
        if modes[..i].contains(m) {
            anyhow::bail!("mode {m} is listed twice in {flag}");
        }
    }
    Ok(())
}

/// Output format shared by the commands.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Table,
    /// Machine-readable JSON on stdout.
    Json,
}
