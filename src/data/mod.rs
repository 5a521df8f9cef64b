//! MNIST: a validated IDX reader (raw or gzipped), the `--data DIR` loader and the embedded default subset.
//!
//! Pixels stay `u8` in memory (a quarter of the f32 size, and what a GPU upload of the whole set wants);
//! [`Split::normalized`] turns them into the network's input `(p/255 − 0.1307)/0.3081`.

mod embedded;
mod idx;

use std::path::{Path, PathBuf};

pub use embedded::embedded;
pub use idx::{IMAGES_MAGIC, LABELS_MAGIC, parse_images, parse_labels};

use crate::{Error, Result};

/// MNIST mean and standard deviation of `p/255` over the training set, as in the PyTorch MNIST example.
pub const MNIST_MEAN: f32 = 0.1307;
pub const MNIST_STD: f32 = 0.3081;

/// One part of the dataset: `len()` images of `rows×cols` u8 pixels with a class label each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// `len·rows·cols` bytes: image after image, each row-major (0 = background, 255 = ink).
    pub pixels: Vec<u8>,
    /// One class label per image.
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image: `rows·cols`.
    pub fn image_size(&self) -> usize {
        self.rows * self.cols
    }

    /// The first `n` images (all of them if `n ≥ len`), in file order (`--limit-train`, `--limit-test`).
    pub fn take(&self, n: usize) -> Split {
        self.range(0, n.min(self.len()))
    }

    /// `(first len−n, last n)`, for `--val-split n`; `n` is clamped to `len`.
    pub fn split_off_last(&self, n: usize) -> (Split, Split) {
        let cut = self.len() - n.min(self.len());
        (self.range(0, cut), self.range(cut, self.len()))
    }

    /// Network input for every pixel, in the same order as `pixels`: `((p as f32 / 255.0) − 0.1307) / 0.3081`,
    /// each step rounded to f32 in exactly this order, which is what PyTorch's float32 `ToTensor` +
    /// `Normalize((0.1307,), (0.3081,))` computes, bit for bit.
    pub fn normalized(&self) -> Vec<f32> {
        let table = pixel_table();
        self.pixels.iter().map(|&p| table[p as usize]).collect()
    }

    /// The labels widened to u32 (the form the loss kernels take).
    pub fn labels_u32(&self) -> Vec<u32> {
        self.labels.iter().map(|&l| u32::from(l)).collect()
    }

    fn range(&self, start: usize, end: usize) -> Split {
        let s = self.image_size();
        Split {
            pixels: self.pixels[start * s..end * s].to_vec(),
            labels: self.labels[start..end].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// [`normalize_pixel`] of every byte value, indexed by the byte: how the backends turn pixels kept as bytes on
/// the device into inputs (a lookup, no arithmetic on the device).
pub fn pixel_table() -> Vec<f32> {
    (0..=255u8).map(normalize_pixel).collect()
}

/// The input value of one pixel: `((p / 255) − 0.1307) / 0.3081` in f32, in this order.
pub fn normalize_pixel(p: u8) -> f32 {
    ((p as f32 / 255.0) - MNIST_MEAN) / MNIST_STD
}

/// Training and test splits, images of one size.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: Split,
    pub test: Split,
    /// Where it came from, for logs and metrics: `"embedded (10000 train / 2000 test)"` or the directory.
    pub source: String,
}

impl Mnist {
    /// Number of classes: one more than the largest label in either split (10 for MNIST).
    pub fn classes(&self) -> usize {
        self.train.labels.iter().chain(&self.test.labels).max().map_or(0, |&l| l as usize + 1)
    }

    /// Per-image input shape [C, H, W] (one channel).
    pub fn image_shape(&self) -> [usize; 3] {
        [1, self.train.rows, self.train.cols]
    }
}

/// The four files of MNIST, by the names of the original distribution (each may also end in `.gz`).
pub const FILE_NAMES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// Load MNIST from `dir` (`--data DIR`): [`FILE_NAMES`], each raw or gzipped (`NAME` is preferred over
/// `NAME.gz` when both exist). Training and test images must have the same size (any size: Fashion-MNIST,
/// KMNIST and other MNIST-format sets load unchanged) and each image file as many images as its label file has
/// labels.
pub fn load_dir(dir: &Path) -> Result<Mnist> {
    if !dir.is_dir() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            msg: "not a directory (expected the MNIST IDX files)".into(),
        });
    }
    let found: Vec<Option<PathBuf>> = FILE_NAMES.iter().map(|n| find(dir, n)).collect();
    let missing: Vec<String> =
        FILE_NAMES.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(n, _)| format!("{n} or {n}.gz")).collect();
    if !missing.is_empty() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            msg: format!("missing MNIST file(s): looked for {}", missing.join(", ")),
        });
    }
    let paths: Vec<PathBuf> = found.into_iter().flatten().collect();
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| Error::io(p, e));
    let train = load_split(&read(&paths[0])?, &paths[0], &read(&paths[1])?, &paths[1])?;
    let test = load_split(&read(&paths[2])?, &paths[2], &read(&paths[3])?, &paths[3])?;
    if (test.rows, test.cols) != (train.rows, train.cols) {
        return Err(Error::Data {
            path: paths[2].clone(),
            msg: format!(
                "test images are {}×{} but the training images in {} are {}×{}",
                test.rows,
                test.cols,
                paths[0].display(),
                train.rows,
                train.cols
            ),
        });
    }
    log::info!("MNIST from {}: {} train / {} test images", dir.display(), train.len(), test.len());
    Ok(Mnist { train, test, source: dir.display().to_string() })
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

/// Parse one image file and its label file and check they belong together (same count).
pub(crate) fn load_split(images: &[u8], images_path: &Path, labels: &[u8], labels_path: &Path) -> Result<Split> {
    let (pixels, rows, cols) = parse_images(images, images_path)?;
    let labels = parse_labels(labels, labels_path)?;
    let count = pixels.len() / (rows * cols);
    if count != labels.len() {
        return Err(Error::Data {
            path: labels_path.to_path_buf(),
            msg: format!("{} labels, but {} has {count} images", labels.len(), images_path.display()),
        });
    }
    Ok(Split { pixels, labels, rows, cols })
}
