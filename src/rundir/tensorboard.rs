//! TensorBoard event files under `<run>/tensorboard/`: the documented TFRecord framing (length,
//! masked CRC-32C, payload, masked CRC-32C) around `Event` protocol buffers with scalar and
//! histogram summaries, written by hand (a few dozen lines, instead of a protobuf toolchain).
//! Each process that trains the run appends to its own file, as TensorBoard expects.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::RunDirError;
use crate::fsutil::append_all;

/// The folder of the event files, relative to the run directory.
pub const TENSORBOARD_DIR: &str = "tensorboard";

/// One summary value.
#[derive(Clone, Debug, PartialEq)]
pub enum SummaryValue {
    /// A scalar curve point.
    Scalar {
        /// Tag, e.g. `loss/train`.
        tag: String,
        /// Value.
        value: f32,
    },
    /// A histogram (TensorBoard's `HistogramProto`).
    Histogram {
        /// Tag, e.g. `weights/features.0.weight`.
        tag: String,
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
        /// Number of values.
        count: f64,
        /// Sum of the values.
        sum: f64,
        /// Sum of their squares.
        sum_squares: f64,
        /// Right edge of each bucket.
        limits: Vec<f64>,
        /// Count per bucket.
        counts: Vec<f64>,
    },
}

/// One event read back from a file: its step and values.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Training step (we use the epoch).
    pub step: i64,
    /// Its summary values.
    pub values: Vec<SummaryValue>,
}

/// Appends events to this process's event file of a run.
#[derive(Clone, Debug)]
pub struct EventWriter {
    path: PathBuf,
}

impl EventWriter {
    /// A new event file in `<root>/tensorboard/`, started with the file-version event.
    pub fn create(root: &Path) -> Result<Self, RunDirError> {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let path = root.join(TENSORBOARD_DIR).join(format!(
            "events.out.tfevents.{seconds}.mirrorburn.{}",
            std::process::id()
        ));
        let writer = Self { path };
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time());
        put_bytes(&mut event, 3, b"brain.Event:2");
        writer.append(&event)?;
        Ok(writer)
    }

    /// Appends one event at `step` with `values`.
    pub fn write(&self, step: i64, values: &[SummaryValue]) -> Result<(), RunDirError> {
        let mut summary = Vec::new();
        for value in values {
            put_bytes(&mut summary, 1, &encode_value(value));
        }
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time());
        put_varint_field(&mut event, 2, step as u64);
        put_bytes(&mut event, 5, &summary);
        self.append(&event)
    }

    fn append(&self, payload: &[u8]) -> Result<(), RunDirError> {
        let mut record = Vec::with_capacity(payload.len() + 16);
        let length = (payload.len() as u64).to_le_bytes();
        record.extend_from_slice(&length);
        record.extend_from_slice(&masked_crc(&length).to_le_bytes());
        record.extend_from_slice(payload);
        record.extend_from_slice(&masked_crc(payload).to_le_bytes());
        Ok(append_all(&self.path, &record)?)
    }
}

/// Every event (with values) of every event file under `<root>/tensorboard/`, files in name order.
/// No such directory means no events yet; any other failure to list it is an error naming it.
pub fn read_events(root: &Path) -> Result<Vec<Event>, RunDirError> {
    let dir = root.join(TENSORBOARD_DIR);
    let listing_error = |source| RunDirError::Read {
        path: dir.clone(),
        source,
    };
    let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|entry| entry.map(|e| e.path()).map_err(listing_error))
            .collect::<Result<_, _>>()?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(listing_error(error)),
    };
    files.sort();
    let mut events = Vec::new();
    for path in files {
        let bytes = fs::read(&path).map_err(|source| RunDirError::Read {
            path: path.clone(),
            source,
        })?;
        let corrupt = |reason: &str| RunDirError::Corrupt {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let mut at = 0;
        while at + 12 <= bytes.len() {
            let length =
                u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
            let stored = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
            if stored != masked_crc(&bytes[at..at + 8]) {
                return Err(corrupt("a record length fails its CRC"));
            }
            // The length (its CRC passed) comes from the file: checked against the bytes actually
            // there (no overflow, nothing allocated by it). A record that runs past the end is a
            // torn last append (a kill mid-write) and ends the file, like a torn CSV line.
            let Some(end) = (at + 12)
                .checked_add(length)
                .filter(|end| end.checked_add(4).is_some_and(|e| e <= bytes.len()))
            else {
                break;
            };
            let (payload, crc) = (&bytes[at + 12..end], &bytes[end..end + 4]);
            if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != masked_crc(payload) {
                return Err(corrupt("a record fails its CRC"));
            }
            if let Some(event) = decode_event(payload).ok_or_else(|| corrupt("not an Event"))? {
                events.push(event);
            }
            at = end + 4;
        }
    }
    Ok(events)
}

fn wall_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn encode_value(value: &SummaryValue) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        SummaryValue::Scalar { tag, value } => {
            put_bytes(&mut out, 1, tag.as_bytes());
            put_key(&mut out, 2, 5);
            out.extend_from_slice(&value.to_le_bytes());
        }
        SummaryValue::Histogram {
            tag,
            min,
            max,
            count,
            sum,
            sum_squares,
            limits,
            counts,
        } => {
            put_bytes(&mut out, 1, tag.as_bytes());
            let mut histo = Vec::new();
            for (field, v) in [(1, min), (2, max), (3, count), (4, sum), (5, sum_squares)] {
                put_double(&mut histo, field, *v);
            }
            for (field, list) in [(6, limits), (7, counts)] {
                let packed: Vec<u8> = list.iter().flat_map(|v| v.to_le_bytes()).collect();
                put_bytes(&mut histo, field, &packed);
            }
            put_bytes(&mut out, 5, &histo);
        }
    }
    out
}

/// The event's step and values; `None` for events without a summary (the file version).
fn decode_event(bytes: &[u8]) -> Option<Option<Event>> {
    let mut step = 0;
    let mut values = None;
    for (field, data) in fields(bytes)? {
        match (field, data) {
            (2, Field::Varint(v)) => step = v as i64,
            (5, Field::Bytes(summary)) => {
                let mut list = Vec::new();
                for (_, value) in fields(summary)? {
                    let Field::Bytes(value) = value else {
                        return None;
                    };
                    list.push(decode_value(value)?);
                }
                values = Some(list);
            }
            _ => {}
        }
    }
    Some(values.map(|values| Event { step, values }))
}

fn decode_value(bytes: &[u8]) -> Option<SummaryValue> {
    let mut tag = String::new();
    let mut scalar = None;
    let mut histo = None;
    for (field, data) in fields(bytes)? {
        match (field, data) {
            (1, Field::Bytes(b)) => tag = String::from_utf8(b.to_vec()).ok()?,
            (2, Field::Fixed32(v)) => scalar = Some(f32::from_bits(v)),
            (5, Field::Bytes(b)) => histo = Some(b),
            _ => {}
        }
    }
    if let Some(value) = scalar {
        return Some(SummaryValue::Scalar { tag, value });
    }
    let mut h = [0.0f64; 5];
    let (mut limits, mut counts) = (Vec::new(), Vec::new());
    for (field, data) in fields(histo?)? {
        match (field, data) {
            (1..=5, Field::Fixed64(v)) => h[field as usize - 1] = f64::from_bits(v),
            (6 | 7, Field::Bytes(b)) => {
                let list: Vec<f64> = b
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                if field == 6 {
                    limits = list
                } else {
                    counts = list
                }
            }
            _ => {}
        }
    }
    Some(SummaryValue::Histogram {
        tag,
        min: h[0],
        max: h[1],
        count: h[2],
        sum: h[3],
        sum_squares: h[4],
        limits,
        counts,
    })
}

enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The (field number, value) pairs of a protobuf message, or `None` if malformed.
fn fields(mut bytes: &[u8]) -> Option<Vec<(u32, Field<'_>)>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = take_varint(&mut bytes)?;
        let field = (key >> 3) as u32;
        let value = match key & 7 {
            0 => Field::Varint(take_varint(&mut bytes)?),
            1 => {
                let (v, rest) = bytes.split_at_checked(8)?;
                bytes = rest;
                Field::Fixed64(u64::from_le_bytes(v.try_into().ok()?))
            }
            2 => {
                let length = take_varint(&mut bytes)? as usize;
                let (v, rest) = bytes.split_at_checked(length)?;
                bytes = rest;
                Field::Bytes(v)
            }
            5 => {
                let (v, rest) = bytes.split_at_checked(4)?;
                bytes = rest;
                Field::Fixed32(u32::from_le_bytes(v.try_into().ok()?))
            }
            _ => return None,
        };
        out.push((field, value));
    }
    Some(out)
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from(field << 3 | wire));
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_key(out, field, 0);
    put_varint(out, value);
}

fn put_double(out: &mut Vec<u8>, field: u32, value: f64) {
    put_key(out, field, 1);
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// TFRecord's masked CRC-32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// CRC-32C (Castagnoli), bitwise.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value of "123456789" (RFC 3720 test vectors).
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn events_round_trip_through_their_files() {
        let root = std::env::temp_dir().join(format!("mirrorburn-tb-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let writer = EventWriter::create(&root).unwrap();
        let histogram = SummaryValue::Histogram {
            tag: "weights/features.0.weight".into(),
            min: -0.5,
            max: 0.25,
            count: 3.0,
            sum: -0.125,
            sum_squares: 0.375,
            limits: vec![-0.25, 0.0, f64::MAX],
            counts: vec![1.0, 1.0, 1.0],
        };
        let scalar = SummaryValue::Scalar {
            tag: "loss/train".into(),
            value: 2.25,
        };
        writer.write(1, std::slice::from_ref(&scalar)).unwrap();
        writer
            .write(300, &[scalar.clone(), histogram.clone()])
            .unwrap();
        let events = read_events(&root).unwrap();
        assert_eq!(
            events,
            vec![
                Event {
                    step: 1,
                    values: vec![scalar.clone()]
                },
                Event {
                    step: 300,
                    values: vec![scalar, histogram]
                },
            ]
        );
        // A torn last record (a kill mid-append) ends the file; a damaged complete one does not.
        let file = fs::read_dir(root.join(TENSORBOARD_DIR))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let whole = fs::read(&file).unwrap();
        fs::write(&file, &whole[..whole.len() - 5]).unwrap();
        assert_eq!(
            read_events(&root).unwrap().len(),
            1,
            "the torn second event is dropped"
        );
        let mut flipped = whole;
        let last = flipped.len() - 5;
        flipped[last] ^= 1;
        fs::write(&file, &flipped).unwrap();
        let error = read_events(&root).unwrap_err().to_string();
        assert!(error.contains("fails its CRC"), "{error}");
        let _ = fs::remove_dir_all(&root);
    }

    /// A missing event directory is no events; one that cannot be listed (here a file where the
    /// directory should be) is an error naming it, not "no events".
    #[test]
    fn an_unlistable_event_directory_is_an_error_not_an_empty_run() {
        let root =
            std::env::temp_dir().join(format!("mirrorburn-tb-unlistable-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        assert_eq!(read_events(&root).unwrap(), Vec::new());
        fs::write(root.join(TENSORBOARD_DIR), b"not a directory").unwrap();
        let error = read_events(&root).unwrap_err().to_string();
        assert!(error.contains(TENSORBOARD_DIR), "{error}");
        let _ = fs::remove_dir_all(&root);
    }
}
