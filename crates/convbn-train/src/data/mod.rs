//! Image-classification datasets held in memory as 8-bit pixels, and the transform that turns
//! them into normalised network inputs.

pub mod augment;
pub mod fashion_mnist;
pub mod folder;

use crate::TrainError;

/// Images of one size with class labels, as 8-bit pixels (`[n, channels, height, width]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// 1 (grey, repeated to RGB when rendered) or 3 (RGB).
    pub channels: usize,
    /// Height of every image.
    pub height: usize,
    /// Width of every image.
    pub width: usize,
    /// All pixels, image after image, planar (channel-major).
    pub pixels: Vec<u8>,
    /// Class index of every image.
    pub labels: Vec<usize>,
    /// Class names, indexed by label.
    pub classes: Vec<String>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes of one image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The first `limit` images (all when `None` or larger than the set).
    pub fn truncated(mut self, limit: Option<usize>) -> Self {
        if let Some(limit) = limit.filter(|&l| l < self.len()) {
            self.labels.truncate(limit);
            self.pixels.truncate(limit * self.image_len());
        }
        self
    }

    /// Check that the set is usable for training: not empty, labels within the classes.
    pub fn check(&self, what: &str) -> Result<(), TrainError> {
        if self.is_empty() {
            return Err(TrainError::Data(format!("the {what} set holds no image")));
        }
        if let Some(&bad) = self.labels.iter().find(|&&l| l >= self.classes.len()) {
            return Err(TrainError::Data(format!(
                "the {what} set has label {bad} but only {} classes",
                self.classes.len()
            )));
        }
        if self.pixels.len() != self.len() * self.image_len() {
            return Err(TrainError::Data(format!(
                "the {what} set holds {} bytes of pixels for {} images of {}",
                self.pixels.len(),
                self.len(),
                self.image_len()
            )));
        }
        Ok(())
    }
}

/// A training and a test set with the same classes.
#[derive(Clone, Debug)]
pub struct Split {
    /// Images to train on.
    pub train: ImageSet,
    /// Images to measure accuracy on.
    pub test: ImageSet,
}

impl Split {
    /// Check both sets and that they agree on the classes and the image format.
    pub fn check(&self) -> Result<(), TrainError> {
        self.train.check("training")?;
        self.test.check("test")?;
        if self.train.classes != self.test.classes {
            return Err(TrainError::Data(
                "the training and test sets have different classes".into(),
            ));
        }
        Ok(())
    }
}
