//! CIFAR-10: the official binary layout, download with checksum, and Burn datasets.

mod cifar;
mod dataset;
mod download;

pub use cifar::{
    ARCHIVE_FOLDER, ARCHIVE_NAME, Cifar10, DataError, IMAGE_BYTES, RECORD_BYTES, Split, TEST_FILE,
    TRAIN_FILES, read_archive, read_dir,
};
pub use dataset::{
    CifarBatch, CifarBatcher, CifarDataset, CifarItem, Normalization, channel_stats, loader,
};
pub use download::{
    ArchiveSource, DATA_DIR_VARIABLE, OFFICIAL_MD5, OFFICIAL_URL, data_dir, fetch, holds_cifar,
    load, load_or_fetch,
};
