//! Finding CIFAR-10 on disk, and downloading the official archive when it is not there.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use super::cifar::{ARCHIVE_NAME, Cifar10, DataError, binary_dir, read_archive, read_dir};

/// Where the official binary archive is published.
pub const OFFICIAL_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// Its published MD5.
pub const OFFICIAL_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// The environment variable naming the data directory.
pub const DATA_DIR_VARIABLE: &str = "MIRRORBURN_DATA";

/// The data directory of a command: `--data-dir` if given, else the config's `data.dir`, else
/// `$MIRRORBURN_DATA`, else `data/`.
pub fn data_dir(cli: Option<&Path>, config: Option<&Path>) -> PathBuf {
    cli.or(config)
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(DATA_DIR_VARIABLE).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Whether `dir` holds CIFAR-10 in a form [`load`] reads without downloading.
pub fn holds_cifar(dir: &Path) -> bool {
    binary_dir(dir).is_some() || dir.join(ARCHIVE_NAME).is_file()
}

/// Where an archive is downloaded from and the MD5 it must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSource {
    /// URL of the `.tar.gz`.
    pub url: String,
    /// Its hex MD5.
    pub md5: String,
}

impl ArchiveSource {
    /// The official CIFAR-10 binary archive.
    pub fn official() -> Self {
        Self {
            url: OFFICIAL_URL.to_string(),
            md5: OFFICIAL_MD5.to_string(),
        }
    }
}

/// Loads CIFAR-10 from `dir`: the six binary files (in `dir` or its `cifar-10-batches-bin`
/// subfolder), else `dir/cifar-10-binary.tar.gz`, else (when `download` is set) the official
/// archive fetched into `dir` first.
pub fn load(dir: &Path, download: bool) -> Result<Cifar10, DataError> {
    load_or_fetch(dir, download.then(ArchiveSource::official).as_ref())
}

/// Like [`load`], downloading from `source` (when given) if `dir` holds no copy.
pub fn load_or_fetch(dir: &Path, source: Option<&ArchiveSource>) -> Result<Cifar10, DataError> {
    if let Some(found) = binary_dir(dir) {
        return read_dir(&found);
    }
    let archive = dir.join(ARCHIVE_NAME);
    if !archive.is_file() {
        let Some(source) = source else {
            return read_dir(dir); // reports exactly which files are missing
        };
        fetch(&source.url, &archive, &source.md5, true)?;
    }
    read_archive(&archive)
}

/// How long a download may wait for the server: to connect, and for each next chunk of data. A
/// stalled transfer fails after this instead of hanging.
pub const DOWNLOAD_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Downloads `url` to `dest`, checking its MD5 against `expected_md5`. The bytes go to a
/// temporary file that is renamed into place only after the checksum matches, so `dest` is
/// never half-written. Shows a progress bar when `progress` is set. Fails when the server does
/// not answer or sends nothing for `DOWNLOAD_STALL_TIMEOUT`.
pub fn fetch(url: &str, dest: &Path, expected_md5: &str, progress: bool) -> Result<(), DataError> {
    fetch_with_timeout(url, dest, expected_md5, progress, DOWNLOAD_STALL_TIMEOUT)
}

fn fetch_with_timeout(
    url: &str,
    dest: &Path,
    expected_md5: &str,
    progress: bool,
    stall: Duration,
) -> Result<(), DataError> {
    let dir = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let failed = |reason: String| DataError::Download {
        url: url.to_string(),
        reason,
        dir: dir.clone(),
    };
    let io_error = |source| DataError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(stall)
        .timeout_read(stall)
        .build();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let total = response
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok());
    let bar = if progress {
        indicatif::ProgressBar::new(total.unwrap_or(0))
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "downloading CIFAR-10 {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("static template"),
    );
    fs::create_dir_all(&dir).map_err(io_error)?;
    let tmp = dir.join(format!(".{ARCHIVE_NAME}.part{}", std::process::id()));
    let of_total = total.map_or(String::new(), |t| format!(" of {t}"));
    let result = stream_to(response.into_reader(), &tmp, &bar)
        .map_err(|(e, received)| {
            failed(
                if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock {
                    format!(
                        "no data for {} s after {received}{of_total} bytes",
                        stall.as_secs_f64()
                    )
                } else {
                    format!("transfer interrupted after {received}{of_total} bytes: {e}")
                },
            )
        })
        .and_then(|(digest, received)| match total {
            Some(total) if received != total => {
                Err(failed(format!("received {received} of {total} bytes")))
            }
            _ => Ok(digest),
        })
        .and_then(|digest| {
            if digest == expected_md5 {
                Ok(())
            } else {
                Err(DataError::Checksum {
                    path: dest.to_path_buf(),
                    expected: expected_md5.to_string(),
                    actual: digest,
                })
            }
        });
    bar.finish_and_clear();
    match result {
        Ok(()) => crate::fsutil::commit(&tmp, dest).map_err(io_error),
        Err(error) => {
            let _ = fs::remove_file(&tmp);
            Err(error)
        }
    }
}

/// Copies `reader` into a new file at `path`, returning the hex MD5 and the byte count; an
/// error comes with the bytes received before it.
fn stream_to(
    mut reader: impl Read,
    path: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<(String, u64), (std::io::Error, u64)> {
    let mut file = fs::File::create(path).map_err(|e| (e, 0))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = reader.read(&mut buffer).map_err(|e| (e, received))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n]).map_err(|e| (e, received))?;
        received += n as u64;
        bar.inc(n as u64);
    }
    file.sync_all().map_err(|e| (e, received))?;
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((digest, received))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    use super::*;

    /// A server that announces 1,000 bytes, sends 100, and then stalls for `hold`.
    fn stalling_server(hold: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/{ARCHIVE_NAME}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.read(&mut [0u8; 4096]);
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&[7u8; 100]);
            let _ = stream.flush();
            std::thread::sleep(hold);
        });
        url
    }

    /// A transfer that stops sending fails after the stall timeout, naming the URL, the bytes
    /// received and where to put the files by hand, and leaves no partial file.
    #[test]
    fn a_stalled_download_times_out_with_the_bytes_received() {
        let url = stalling_server(Duration::from_secs(20));
        let dir = std::env::temp_dir().join(format!("mirrorburn-stall-{}", std::process::id()));
        let started = Instant::now();
        let error = fetch_with_timeout(
            &url,
            &dir.join(ARCHIVE_NAME),
            OFFICIAL_MD5,
            false,
            Duration::from_millis(500),
        )
        .unwrap_err();
        let waited = started.elapsed();
        let message = error.to_string();
        assert!(waited < Duration::from_secs(10), "waited {waited:?}");
        assert!(
            message.contains(&url)
                && message.contains("after 100 of 1000 bytes")
                && message.contains("put data_batch_1..5.bin"),
            "{message}"
        );
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
