//! The compressors of `OP_COMPRESSED`.

use std::io::{Read, Write};

use crate::WireError;

/// A message compressor, as negotiated in `hello.compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compressor {
    /// id 0: the payload is stored as is.
    Noop,
    /// id 1: snappy's raw format.
    Snappy,
    /// id 2: zlib (RFC 1950), default level.
    Zlib,
    /// id 3: zstd, default level.
    Zstd,
}

impl Compressor {
    /// The compressors a client can negotiate, in mongod's default preference order
    /// (`--networkMessageCompressors snappy,zstd,zlib`).
    pub const NEGOTIABLE: [Compressor; 3] = [Compressor::Snappy, Compressor::Zstd, Compressor::Zlib];

    /// The id byte on the wire.
    pub fn id(self) -> u8 {
        match self {
            Compressor::Noop => 0,
            Compressor::Snappy => 1,
            Compressor::Zlib => 2,
            Compressor::Zstd => 3,
        }
    }

    /// The compressor for an id byte.
    ///
    /// # Errors
    /// [`WireError::UnknownCompressor`] for ids outside 0..=3.
    pub fn from_id(id: u8) -> Result<Self, WireError> {
        match id {
            0 => Ok(Compressor::Noop),
            1 => Ok(Compressor::Snappy),
            2 => Ok(Compressor::Zlib),
            3 => Ok(Compressor::Zstd),
            other => Err(WireError::UnknownCompressor(other)),
        }
    }

    /// The name used in `hello.compression` and `--networkMessageCompressors`.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Noop => "noop",
            Compressor::Snappy => "snappy",
            Compressor::Zlib => "zlib",
            Compressor::Zstd => "zstd",
        }
    }

    /// The compressor with this name, if any (`noop` is not negotiable and not named here).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NEGOTIABLE.into_iter().find(|c| c.name() == name)
    }

    /// Compresses `data`.
    ///
    /// # Errors
    /// [`WireError::Compression`] if the compressor fails.
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, WireError> {
        let fail =
            |e: &dyn std::fmt::Display| WireError::Compression { compressor: self.name(), reason: e.to_string() };
        match self {
            Compressor::Noop => Ok(data.to_vec()),
            Compressor::Snappy => snap::raw::Encoder::new().compress_vec(data).map_err(|e| fail(&e)),
            Compressor::Zlib => {
                let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(data).map_err(|e| fail(&e))?;
                encoder.finish().map_err(|e| fail(&e))
            }
            Compressor::Zstd => zstd::bulk::compress(data, 0).map_err(|e| fail(&e)),
        }
    }

    /// Decompresses `data`, which must expand to exactly `declared` bytes. Output is never
    /// allowed to grow past `declared`, so a hostile payload cannot exhaust memory.
    ///
    /// # Errors
    /// [`WireError::Decompression`] for corrupt input, [`WireError::UncompressedSizeMismatch`]
    /// when the size differs from the declared one.
    pub fn decompress(self, data: &[u8], declared: usize) -> Result<Vec<u8>, WireError> {
        let fail =
            |e: &dyn std::fmt::Display| WireError::Decompression { compressor: self.name(), reason: e.to_string() };
        let out = match self {
            Compressor::Noop => data.to_vec(),
            Compressor::Snappy => {
                let len = snap::raw::decompress_len(data).map_err(|e| fail(&e))?;
                if len != declared {
                    return Err(WireError::UncompressedSizeMismatch { declared, actual: len });
                }
                snap::raw::Decoder::new().decompress_vec(data).map_err(|e| fail(&e))?
            }
            Compressor::Zlib => read_bounded(flate2::read::ZlibDecoder::new(data), declared).map_err(|e| fail(&e))?,
            Compressor::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(data).map_err(|e| fail(&e))?;
                read_bounded(decoder, declared).map_err(|e| fail(&e))?
            }
        };
        if out.len() == declared {
            Ok(out)
        } else {
            Err(WireError::UncompressedSizeMismatch { declared, actual: out.len() })
        }
    }
}

/// Reads at most one byte past `declared` (enough to notice a size mismatch). Memory grows
/// with the data actually produced: a tiny hostile message cannot reserve the 48 MB maximum.
fn read_bounded(reader: impl Read, declared: usize) -> std::io::Result<Vec<u8>> {
    const INITIAL_CAPACITY: usize = 64 * 1024;
    let mut out = Vec::with_capacity(declared.min(INITIAL_CAPACITY));
    let limit = u64::try_from(declared).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressor_round_trips_each_kind() -> Result<(), WireError> {
        let data = b"hello hello hello hello hello, compressed world".repeat(20);
        for compressor in [Compressor::Noop, Compressor::Snappy, Compressor::Zlib, Compressor::Zstd] {
            let packed = compressor.compress(&data)?;
            assert_eq!(compressor.decompress(&packed, data.len())?, data, "{}", compressor.name());
            assert_eq!(Compressor::from_id(compressor.id())?, compressor);
        }
        Ok(())
    }

    #[test]
    fn compressor_rejects_wrong_declared_size() -> Result<(), WireError> {
        let data = vec![7u8; 1000];
        for compressor in Compressor::NEGOTIABLE {
            let packed = compressor.compress(&data)?;
            assert!(compressor.decompress(&packed, 999).is_err(), "{} too small", compressor.name());
            assert!(compressor.decompress(&packed, 1001).is_err(), "{} too large", compressor.name());
        }
        Ok(())
    }

    #[test]
    fn compressor_rejects_garbage() {
        let garbage = [0xffu8; 64];
        for compressor in Compressor::NEGOTIABLE {
            assert!(compressor.decompress(&garbage, 100).is_err(), "{}", compressor.name());
        }
    }

    #[test]
    fn compressor_names_match_negotiation() {
        assert_eq!(Compressor::from_name("zstd"), Some(Compressor::Zstd));
        assert_eq!(Compressor::from_name("noop"), None);
        assert!(Compressor::from_id(4).is_err());
    }
}
