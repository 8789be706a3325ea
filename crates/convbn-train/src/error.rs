//! Errors of fine-tuning runs.

/// Everything that can stop a fine-tuning run, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A dataset is missing, empty or malformed.
    #[error("{0}")]
    Data(String),
    /// An option is out of range or inconsistent.
    #[error("{0}")]
    Config(String),
    /// A checkpoint cannot be read, written or resumed from.
    #[error("{0}")]
    Checkpoint(String),
    /// The loss became NaN or infinite.
    #[error("{0}")]
    Diverged(String),
    /// Models, assets and checkpoints of the zoo.
    #[error(transparent)]
    Zoo(#[from] convbn_zoo::ZooError),
    /// ConvBN blocks.
    #[error(transparent)]
    ConvBn(#[from] convbn::ConvBnError),
    /// Files.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        error: std::io::Error,
    },
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            error: source,
        }
    }
}
