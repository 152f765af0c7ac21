//! CIFAR-10 reading, archive handling and download, on generated CIFAR-format files.

mod common;

use common::*;
use md5::{Digest, Md5};
use mirrorburn::data::{self, DataError};

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn reads_a_directory_and_the_same_files_from_an_archive() {
    let root = temp_dir("read");
    let dir = write_cifar_dir(&root.join("bin"), 7, 5);
    let from_dir = data::read_dir(&dir).unwrap();
    assert_eq!(from_dir.train.len(), 35);
    assert_eq!(from_dir.test.len(), 5);
    let raw = records(7, 1);
    assert_eq!(from_dir.train.labels[0], raw[0]);
    assert_eq!(from_dir.train.image(0), &raw[1..3073]);
    let archive = dir.parent().unwrap().join(data::ARCHIVE_NAME);
    std::fs::write(&archive, archive_bytes(&dir)).unwrap();
    assert_eq!(data::read_archive(&archive).unwrap(), from_dir);
}

#[test]
fn load_finds_binaries_in_a_subfolder_then_an_archive() {
    let root = temp_dir("locate");
    let dir = write_cifar_dir(&root.join("cifar-10-batches-bin"), 3, 2);
    assert_eq!(data::load(&root, false).unwrap().train.len(), 15);
    let other = temp_dir("locate-archive");
    std::fs::write(other.join(data::ARCHIVE_NAME), archive_bytes(&dir)).unwrap();
    assert_eq!(data::load(&other, false).unwrap().test.len(), 2);
}

#[test]
fn missing_files_are_named_with_the_fix() {
    let root = temp_dir("missing");
    let dir = write_cifar_dir(&root, 2, 2);
    std::fs::remove_file(dir.join("data_batch_3.bin")).unwrap();
    let error = data::load(&dir, false).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, DataError::Missing { .. }), "{message}");
    assert!(message.contains("data_batch_3.bin"), "{message}");
    assert!(message.contains("--data-dir"), "{message}");
}

#[test]
fn a_size_that_is_not_a_whole_number_of_records_is_rejected() {
    let root = temp_dir("size");
    let dir = write_cifar_dir(&root, 2, 2);
    let mut bytes = std::fs::read(dir.join("test_batch.bin")).unwrap();
    bytes.pop();
    std::fs::write(dir.join("test_batch.bin"), bytes).unwrap();
    let message = data::read_dir(&dir).unwrap_err().to_string();
    assert!(
        message.contains("test_batch.bin") && message.contains("3073"),
        "{message}"
    );
}

#[test]
fn a_label_above_nine_is_rejected() {
    let root = temp_dir("label");
    let dir = write_cifar_dir(&root, 2, 2);
    let mut bytes = std::fs::read(dir.join("data_batch_2.bin")).unwrap();
    bytes[3073] = 10;
    std::fs::write(dir.join("data_batch_2.bin"), bytes).unwrap();
    let message = data::read_dir(&dir).unwrap_err().to_string();
    assert!(
        message.contains("record 1") && message.contains("label byte 10"),
        "{message}"
    );
}

#[test]
fn a_truncated_archive_is_rejected() {
    let root = temp_dir("truncated");
    let dir = write_cifar_dir(&root, 20, 5);
    let bytes = archive_bytes(&dir);
    let archive = dir.join(data::ARCHIVE_NAME);
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let error = data::read_archive(&archive).unwrap_err();
    assert!(matches!(error, DataError::Archive { .. }), "{error}");
    assert!(error.to_string().contains("truncated"), "{error}");
}

#[test]
fn download_with_the_right_checksum_lands_and_loads() {
    let root = temp_dir("dl-src");
    let source = write_cifar_dir(&root, 3, 2);
    let body = archive_bytes(&source);
    let url = serve(body.clone(), 1);
    let dest_dir = temp_dir("dl-good");
    let dest = dest_dir.join(data::ARCHIVE_NAME);
    data::fetch(&url, &dest, &md5_hex(&body), false).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(data::load(&dest_dir, false).unwrap().train.len(), 15);
    let leftovers: Vec<_> = std::fs::read_dir(&dest_dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
}

#[test]
fn download_with_a_bad_checksum_leaves_nothing_behind() {
    let root = temp_dir("dl-src2");
    let source = write_cifar_dir(&root, 3, 2);
    let url = serve(archive_bytes(&source), 1);
    let dest_dir = temp_dir("dl-bad");
    let dest = dest_dir.join(data::ARCHIVE_NAME);
    let error = data::fetch(&url, &dest, data::OFFICIAL_MD5, false).unwrap_err();
    assert!(matches!(error, DataError::Checksum { .. }), "{error}");
    assert!(error.to_string().contains(data::OFFICIAL_MD5), "{error}");
    assert_eq!(
        std::fs::read_dir(&dest_dir).unwrap().count(),
        0,
        "nothing half-written"
    );
}

#[test]
fn without_network_the_error_says_where_to_put_the_files() {
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dest_dir = temp_dir("dl-offline");
    let dest = dest_dir.join(data::ARCHIVE_NAME);
    let url = format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz");
    let message = data::fetch(&url, &dest, data::OFFICIAL_MD5, false)
        .unwrap_err()
        .to_string();
    assert!(message.contains("could not download"), "{message}");
    assert!(
        message.contains(&dest_dir.display().to_string()),
        "{message}"
    );
    assert!(message.contains("test_batch.bin"), "{message}");
}
