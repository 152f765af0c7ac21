//! Helpers shared by the integration tests: small generated CIFAR-format data sets and a
//! one-shot HTTP server on 127.0.0.1.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// CIFAR-10 file names, training files first.
pub const FILES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];

/// `n` records of a learnable synthetic task: each class has its own mean colour and a
/// class-dependent stripe, plus pseudo-random noise from `seed`.
pub fn records(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut out = Vec::with_capacity(n * 3073);
    for _ in 0..n {
        let label = (next() % 10) as u8;
        out.push(label);
        for channel in 0..3u32 {
            for pixel in 0..1024u32 {
                let (y, x) = (pixel / 32, pixel % 32);
                let base = 40 + 20 * ((label as u32 + channel * 3) % 10);
                let stripe = if (x + y * label as u32) % 10 < 5 {
                    30
                } else {
                    0
                };
                let noise = next() % 40;
                out.push((base + stripe + noise).min(255) as u8);
            }
        }
    }
    out
}

/// Writes a CIFAR-format directory with `per_file` records in each training file and `test`
/// records in the test file; returns the directory.
pub fn write_cifar_dir(dir: &Path, per_file: usize, test: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (index, name) in FILES.iter().enumerate() {
        let n = if index < 5 { per_file } else { test };
        std::fs::write(dir.join(name), records(n, index as u64 + 1)).unwrap();
    }
    dir.to_path_buf()
}

/// The bytes of a `.tar.gz` laid out like the official archive, holding the files of `dir`.
pub fn archive_bytes(dir: &Path) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for name in FILES {
        builder
            .append_path_with_name(dir.join(name), format!("cifar-10-batches-bin/{name}"))
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Serves `body` to `requests` HTTP GETs on 127.0.0.1 from a background thread; returns the URL.
pub fn serve(body: Vec<u8>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cifar-10-binary.tar.gz",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    url
}

/// Set to keep every test directory (they are otherwise removed when a test passes).
pub const KEEP_VARIABLE: &str = "MIRRORBURN_KEEP_TEST_DIRS";

/// A fresh empty directory under the system temp dir, removed when dropped, except when the test
/// is failing (its path is printed, for inspection) or `$MIRRORBURN_KEEP_TEST_DIRS` is set.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os(KEEP_VARIABLE).is_some() {
            eprintln!("test directory kept: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// An integration test's seed: `$MIRRORBURN_TEST_SEED` if set, else `default` (failure
/// messages print it).
pub fn test_seed(default: u64) -> u64 {
    std::env::var("MIRRORBURN_TEST_SEED").map_or(default, |s| s.parse().expect("an integer seed"))
}

/// Asserts that a finished command succeeded, printing its stderr (after `context`) if not.
pub fn assert_success(output: &std::process::Output, context: &str) {
    assert!(
        output.status.success(),
        "{context}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh [`TempDir`] named after `label`.
pub fn temp_dir(label: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!(
        "mirrorburn-{label}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// The tiny training config of the CLI tests: VGG-16 at width/16, batch 20, lr 0.05, the
/// hyperbolic map at lambda 0.01, no download.
pub fn tiny_config(name: &str, seed: u64, epochs: usize) -> String {
    format!(
        r#"name = "{name}"
seed = {seed}
epochs = {epochs}
batch_size = 20
lr = 0.05

[model]
width_divisor = 16

[data]
download = false

[optimizer]
potential = {{ kind = "hyperbolic", lambda = 0.01 }}
"#
    )
}

/// A [`TempDir`] holding generated data in `data/` (`per_file` images per training file, `test`
/// test images) and `config` as `config.toml`.
pub fn workspace(label: &str, per_file: usize, test: usize, config: &str) -> TempDir {
    let root = temp_dir(label);
    write_cifar_dir(&root.join("data"), per_file, test);
    std::fs::write(root.join("config.toml"), config).unwrap();
    root
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Where real CIFAR-10 is looked for, in order, the way the program does it: `$MIRRORBURN_DATA`,
/// then the shared copy (`../shared/data/cifar-10-batches-bin`), then `data/`.
pub fn cifar_candidates() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates: Vec<PathBuf> = std::env::var_os(mirrorburn::data::DATA_DIR_VARIABLE)
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push(repo.join("../shared/data/cifar-10-batches-bin"));
    candidates.push(repo.join("data"));
    candidates
}

/// The first of `candidates` that holds CIFAR-10; when none does, the archive from `source` is
/// downloaded (MD5-checked, by the program's own downloader) into `fallback`, which is returned.
pub fn find_or_download(
    candidates: &[PathBuf],
    fallback: &Path,
    source: &mirrorburn::data::ArchiveSource,
) -> PathBuf {
    if let Some(found) = candidates.iter().find(|d| mirrorburn::data::holds_cifar(d)) {
        return found.clone();
    }
    eprintln!(
        "CIFAR-10 is in none of {candidates:?}; downloading {} into {}",
        source.url,
        fallback.display()
    );
    mirrorburn::data::load_or_fetch(fallback, Some(source))
        .unwrap_or_else(|e| panic!("no CIFAR-10 found and the download failed: {e}"));
    fallback.to_path_buf()
}

/// Real CIFAR-10: found in [`cifar_candidates`], else the official archive downloaded into
/// `data/`.
pub fn real_cifar() -> PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    find_or_download(
        &cifar_candidates(),
        &data,
        &mirrorburn::data::ArchiveSource::official(),
    )
}

/// A command's stderr as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Polls `ready` until it holds; panics (naming `what`) if `child` exits first or after 300 s.
pub fn wait_until(child: &mut std::process::Child, what: &str, mut ready: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the process ended before {what}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// `mirrorburn <leading...> --data-dir DATA --out OUT <extra...>`.
pub fn mirrorburn_command<I, S>(
    leading: I,
    data: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mirrorburn"));
    command
        .args(leading)
        .arg("--data-dir")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra);
    command
}
