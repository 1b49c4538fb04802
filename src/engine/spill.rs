//! A list that stays in memory up to a limit and continues in an anonymous temporary
//! file beyond it, so that collecting the files to delete after a sync costs bounded
//! memory however many there are.

use crate::error::{Error, Result};
use crate::path::RelPath;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Paths with their sizes, in insertion order.
pub struct SpillList {
    mem: Vec<(RelPath, i64)>,
    file: Option<BufWriter<File>>,
    spilled: u64,
    limit: usize,
}

fn anonymous_file() -> Result<File> {
    let dir = std::env::temp_dir();
    let mut rnd = [0u8; 8];
    let _ = getrandom::getrandom(&mut rnd);
    let path = dir.join(format!(".cloudsync-spill-{}", hex::encode(rnd)));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io("create temporary file", path.display(), e))?;
    // Unlinked at once: nothing is left behind, whatever happens to this process.
    let _ = std::fs::remove_file(&path);
    Ok(f)
}

impl SpillList {
    pub fn new(limit: usize) -> SpillList {
        SpillList { mem: Vec::new(), file: None, spilled: 0, limit }
    }

    pub fn len(&self) -> u64 {
        self.spilled + self.mem.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, path: RelPath, size: i64) -> Result<()> {
        self.mem.push((path, size));
        if self.mem.len() >= self.limit {
            let w = match &mut self.file {
                Some(w) => w,
                None => self.file.insert(BufWriter::new(anonymous_file()?)),
            };
            for (p, s) in self.mem.drain(..) {
                let b = p.as_bytes();
                w.write_all(&(b.len() as u32).to_le_bytes())?;
                w.write_all(b)?;
                w.write_all(&s.to_le_bytes())?;
                self.spilled += 1;
            }
        }
        Ok(())
    }

    /// Hand every item back in insertion order, `chunk` at a time.
    pub fn drain(self, chunk: usize, mut f: impl FnMut(Vec<(RelPath, i64)>) -> bool) -> Result<()> {
        let mut batch = Vec::with_capacity(chunk);
        if let Some(w) = self.file {
            let mut file = w.into_inner().map_err(|e| Error::from(e.into_error()))?;
            file.seek(SeekFrom::Start(0))?;
            let mut r = BufReader::new(file);
            for _ in 0..self.spilled {
                let mut len = [0u8; 4];
                r.read_exact(&mut len)?;
                let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
                r.read_exact(&mut bytes)?;
                let mut size = [0u8; 8];
                r.read_exact(&mut size)?;
                batch.push((RelPath::new(&bytes)?, i64::from_le_bytes(size)));
                if batch.len() == chunk && !f(std::mem::replace(&mut batch, Vec::with_capacity(chunk))) {
                    return Ok(());
                }
            }
        }
        for item in self.mem {
            batch.push(item);
            if batch.len() == chunk && !f(std::mem::replace(&mut batch, Vec::with_capacity(chunk))) {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            f(batch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_and_returns_everything_in_order() {
        let mut l = SpillList::new(7);
        for i in 0..100 {
            l.push(RelPath::new(format!("d/f{i}\u{e9}").as_bytes()).unwrap(), i).unwrap();
        }
        assert_eq!(l.len(), 100);
        let mut got = Vec::new();
        l.drain(9, |b| {
            assert!(b.len() <= 9);
            got.extend(b);
            true
        })
        .unwrap();
        assert_eq!(got.len(), 100);
        for (i, (p, s)) in got.iter().enumerate() {
            assert_eq!(p.as_bytes(), format!("d/f{i}\u{e9}").as_bytes());
            assert_eq!(*s, i as i64);
        }
    }

    #[test]
    fn stopping_early_is_fine() {
        let mut l = SpillList::new(2);
        for i in 0..10 {
            l.push(RelPath::new(format!("{i}").as_bytes()).unwrap(), 0).unwrap();
        }
        let mut n = 0;
        l.drain(3, |_| {
            n += 1;
            false
        })
        .unwrap();
        assert_eq!(n, 1);
    }
}
