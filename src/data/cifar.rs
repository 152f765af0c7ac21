//! The official CIFAR-10 binary layout: `data_batch_1..5.bin` and `test_batch.bin`, each a run of
//! 3073-byte records (one label byte, then 1024 red, 1024 green and 1024 blue bytes, row-major),
//! read from a directory or straight from `cifar-10-binary.tar.gz`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes in one record: 1 label + 3 x 32 x 32 pixels.
pub const RECORD_BYTES: usize = 3073;
/// Pixel bytes in one image.
pub const IMAGE_BYTES: usize = 3072;
/// The five training files, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file (the validation split).
pub const TEST_FILE: &str = "test_batch.bin";
/// Name of the official archive.
pub const ARCHIVE_NAME: &str = "cifar-10-binary.tar.gz";
/// Folder inside the official archive that holds the files.
pub const ARCHIVE_FOLDER: &str = "cifar-10-batches-bin";

/// Why CIFAR-10 could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Some of the six binary files are absent.
    #[error(
        "CIFAR-10 not found in {dir}: missing {missing}. Put data_batch_1..5.bin and test_batch.bin \
         (or {ARCHIVE_NAME}) in that directory, pass --data-dir DIR, or set MIRRORBURN_DATA; \
         with internet access mirrorburn downloads the official archive itself"
    )]
    Missing {
        /// Directory searched.
        dir: PathBuf,
        /// The missing file names, comma-separated.
        missing: String,
    },
    /// A file's size is not a whole number of records.
    #[error(
        "{path}: {len} bytes is not a positive multiple of the 3073-byte CIFAR-10 record; the file is truncated or not CIFAR-10 binary data — replace it with a fresh copy"
    )]
    BadSize {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: usize,
    },
    /// A label byte is not a class index.
    #[error(
        "{path}: record {record} has label byte {label} (must be 0..=9); the file is corrupt — replace it with a fresh copy"
    )]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Record index.
        record: usize,
        /// The label byte.
        label: u8,
    },
    /// The archive cannot be read to the end.
    #[error(
        "{path}: cannot read the archive ({reason}); it is truncated or corrupt — delete it and download it again"
    )]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A downloaded archive has the wrong MD5.
    #[error(
        "{path}: MD5 {actual} does not match the published {expected}; the download is corrupt and was discarded — try again"
    )]
    Checksum {
        /// Where the archive would have gone.
        path: PathBuf,
        /// Published checksum.
        expected: String,
        /// Checksum of what arrived.
        actual: String,
    },
    /// Downloading failed.
    #[error(
        "could not download {url} ({reason}). Without network access, put data_batch_1..5.bin and test_batch.bin (or {ARCHIVE_NAME}) in {dir}"
    )]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
        /// Where the files should go.
        dir: PathBuf,
    },
    /// Any other I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Images and labels of one split, as raw bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// `len * 3072` pixel bytes, channel-major per image.
    pub pixels: Vec<u8>,
    /// One class index per image.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.pixels[index * IMAGE_BYTES..(index + 1) * IMAGE_BYTES]
    }

    /// Appends the records of one binary file, validating size and labels.
    fn append_records(&mut self, bytes: &[u8], path: &Path) -> Result<(), DataError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD_BYTES) {
            return Err(DataError::BadSize {
                path: path.to_path_buf(),
                len: bytes.len(),
            });
        }
        for (record, chunk) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
            let label = chunk[0];
            if label > 9 {
                return Err(DataError::BadLabel {
                    path: path.to_path_buf(),
                    record,
                    label,
                });
            }
            self.labels.push(label);
            self.pixels.extend_from_slice(&chunk[1..]);
        }
        Ok(())
    }
}

/// The training split (the five data batches) and the validation split (the test batch).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cifar10 {
    /// 50,000 training images in the official order (fewer for generated test data).
    pub train: Split,
    /// 10,000 test images, used for validation.
    pub test: Split,
}

/// The directory that holds the six binary files, if `dir` or its `cifar-10-batches-bin`
/// subfolder does.
pub fn binary_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join(ARCHIVE_FOLDER)]
        .into_iter()
        .find(|candidate| all_files().all(|name| candidate.join(name).is_file()))
}

fn all_files() -> impl Iterator<Item = &'static str> {
    TRAIN_FILES.into_iter().chain([TEST_FILE])
}

/// Reads the six binary files from `dir`.
pub fn read_dir(dir: &Path) -> Result<Cifar10, DataError> {
    let missing: Vec<&str> = all_files().filter(|n| !dir.join(n).is_file()).collect();
    if !missing.is_empty() {
        return Err(DataError::Missing {
            dir: dir.to_path_buf(),
            missing: missing.join(", "),
        });
    }
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path)
            .map(|bytes| (bytes, path.clone()))
            .map_err(|source| DataError::Io { path, source })
    };
    let mut data = Cifar10::default();
    for name in TRAIN_FILES {
        let (bytes, path) = read(name)?;
        data.train.append_records(&bytes, &path)?;
    }
    let (bytes, path) = read(TEST_FILE)?;
    data.test.append_records(&bytes, &path)?;
    Ok(data)
}

/// Reads the six binary files straight out of the official `.tar.gz` archive.
pub fn read_archive(path: &Path) -> Result<Cifar10, DataError> {
    let archive_error = |reason: String| DataError::Archive {
        path: path.to_path_buf(),
        reason,
    };
    let file = fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| archive_error(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_error(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| archive_error(e.to_string()))?
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if all_files().any(|wanted| wanted == name) {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| archive_error(e.to_string()))?;
            files.push((name, bytes));
        }
    }
    // The tar reader stops at the end-of-archive blocks; gzip checks its CRC-32 and length only
    // at the end of the stream, so read it to the end: a damaged byte must not pass as a pixel.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())
        .map_err(|e| archive_error(format!("the compressed data is damaged: {e}")))?;
    let mut data = Cifar10::default();
    for (split, names) in [
        (&mut data.train, TRAIN_FILES.as_slice()),
        (&mut data.test, [TEST_FILE].as_slice()),
    ] {
        for name in names {
            let (_, bytes) = files
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| archive_error(format!("{name} is missing from the archive")))?;
            split.append_records(bytes, &path.join(name))?;
        }
    }
    Ok(data)
}
