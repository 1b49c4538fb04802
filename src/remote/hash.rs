//! Content digests: the kinds providers know ([`Hashes`], a set in every remote's
//! `Features`), the digests they announce (S3's `x-amz-checksum-*`, B2's SHA1, GCS's
//! CRC32C), and hashers for them, so that a transfer is verified by whatever the server
//! can tell and `--checksum` compares by the strongest kind both sides have. MD5 is the
//! index's currency; other kinds are computed or read when needed.

use md5::Digest as _;

/// A kind of digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HashType {
    Md5,
    Sha1,
    Sha256,
    Crc32,
    Crc32c,
    Crc64Nvme,
}

/// A set of [`HashType`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hashes(u8);

impl Hashes {
    pub const NONE: Hashes = Hashes(0);
    /// Every kind (a local file can be hashed any way).
    pub const ALL: Hashes = Hashes(0b11_1111);

    pub const fn of(kind: HashType) -> Hashes {
        Hashes(1 << kind as u8)
    }
    pub const fn with(self, kind: HashType) -> Hashes {
        Hashes(self.0 | 1 << kind as u8)
    }
    pub fn contains(self, kind: HashType) -> bool {
        self.0 & (1 << kind as u8) != 0
    }
    pub fn and(self, other: Hashes) -> Hashes {
        Hashes(self.0 & other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The kind to compare by: MD5 when present (the index keeps it), else the
    /// strongest (SHA256, SHA1, then the CRCs).
    pub fn preferred(self) -> Option<HashType> {
        [HashType::Md5, HashType::Sha256, HashType::Sha1, HashType::Crc64Nvme, HashType::Crc32c, HashType::Crc32]
            .into_iter()
            .find(|k| self.contains(*k))
    }
}

impl HashType {
    pub fn name(self) -> &'static str {
        match self {
            HashType::Md5 => "md5",
            HashType::Sha1 => "sha1",
            HashType::Sha256 => "sha256",
            HashType::Crc32 => "crc32",
            HashType::Crc32c => "crc32c",
            HashType::Crc64Nvme => "crc64nvme",
        }
    }
}

/// A digest of a whole object, as raw bytes (CRCs big-endian, as S3 encodes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    pub kind: HashType,
    pub value: Vec<u8>,
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.name(), hex::encode(&self.value))
    }
}

/// Computes one kind of digest over a stream.
#[derive(Clone)]
pub enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Crc(HashType, crc_fast::Digest),
}

impl Hasher {
    pub fn new(kind: HashType) -> Hasher {
        use crc_fast::CrcAlgorithm as A;
        match kind {
            HashType::Md5 => Hasher::Md5(md5::Md5::new()),
            HashType::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashType::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashType::Crc32 => Hasher::Crc(kind, crc_fast::Digest::new(A::Crc32IsoHdlc)),
            HashType::Crc32c => Hasher::Crc(kind, crc_fast::Digest::new(A::Crc32Iscsi)),
            HashType::Crc64Nvme => Hasher::Crc(kind, crc_fast::Digest::new(A::Crc64Nvme)),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Crc(_, h) => h.update(data),
        }
    }

    pub fn finish(self) -> Checksum {
        match self {
            Hasher::Md5(h) => Checksum { kind: HashType::Md5, value: h.finalize().to_vec() },
            Hasher::Sha1(h) => Checksum { kind: HashType::Sha1, value: h.finalize().to_vec() },
            Hasher::Sha256(h) => Checksum { kind: HashType::Sha256, value: h.finalize().to_vec() },
            Hasher::Crc(kind, h) => {
                let v = h.finalize();
                let value = if kind == HashType::Crc64Nvme {
                    v.to_be_bytes().to_vec()
                } else {
                    (v as u32).to_be_bytes().to_vec()
                };
                Checksum { kind, value }
            }
        }
    }
}

/// A hasher is a sink for `io::copy`.
impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The MD5 of everything `r` delivers.
pub fn md5_of(r: &mut dyn std::io::Read) -> std::io::Result<crate::remote::Md5> {
    let mut h = Hasher::new(HashType::Md5);
    std::io::copy(r, &mut h)?;
    Ok(h.finish().value.try_into().unwrap_or_default())
}

/// The digest of `data`.
pub fn checksum(kind: HashType, data: &[u8]) -> Checksum {
    let mut h = Hasher::new(kind);
    h.update(data);
    h.finish()
}

/// Something bytes can be fed to: an MD5, or a [`Hasher`] of any kind.
pub trait Feed {
    fn feed(&mut self, data: &[u8]);
}

impl Feed for md5::Md5 {
    fn feed(&mut self, data: &[u8]) {
        self.update(data);
    }
}

/// Nothing to feed: a tee that hashes only when a digest is wanted.
impl<F: Feed> Feed for Option<F> {
    fn feed(&mut self, data: &[u8]) {
        if let Some(f) = self {
            f.feed(data);
        }
    }
}

impl Feed for Hasher {
    fn feed(&mut self, data: &[u8]) {
        self.update(data);
    }
}

/// Passes a reader's bytes through, feeding them to a hasher that the caller finishes
/// after the request (a part's digest, or what an upload sent, compared with what the
/// server says it stored).
pub struct Tee<'a, H = Hasher> {
    pub inner: Box<dyn std::io::Read + Send + 'a>,
    pub hasher: std::sync::Arc<std::sync::Mutex<H>>,
}

/// A [`Tee`] into an MD5.
pub type Md5Tee<'a> = Tee<'a, md5::Md5>;

impl<H: Feed> std::io::Read for Tee<'_, H> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.feed(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // The CRC catalogue's check values (input "123456789") and FIPS 180 "abc".
        assert_eq!(hex::encode(checksum(HashType::Crc32, b"123456789").value), "cbf43926");
        assert_eq!(hex::encode(checksum(HashType::Crc32c, b"123456789").value), "e3069283");
        assert_eq!(hex::encode(checksum(HashType::Crc64Nvme, b"123456789").value), "ae8b14860a799888");
        assert_eq!(hex::encode(checksum(HashType::Sha1, b"abc").value), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex::encode(checksum(HashType::Sha256, b"abc").value),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex::encode(checksum(HashType::Md5, b"").value), "d41d8cd98f00b204e9800998ecf8427e");
        // In pieces the same as whole.
        let mut h = Hasher::new(HashType::Crc32c);
        h.update(b"1234");
        h.update(b"56789");
        assert_eq!(h.finish(), checksum(HashType::Crc32c, b"123456789"));
    }
}
