//! Directory listings as FTP servers send them: `MLSD` (RFC 3659, machine-readable, UTC
//! times) and, for servers without it (vsftpd), `LIST` in the Unix `ls -l` and the
//! Windows/IIS formats. Names are bytes, as the server sent them.

use crate::remote::{NANOS_PER_SEC, Nanos};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link (LIST `l…`, MLSD `OS.unix=slink`): followed with a `SIZE`/`MDTM`
    /// or skipped, never read as a file of the link's own size.
    Link,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub size: i64,
    /// Only where the listing tells it exactly (MLSD `modify`): LIST times are minutes at
    /// best, in the server's time zone, so the remote asks `MDTM` instead.
    pub mtime: Option<Nanos>,
}

/// `YYYYMMDDHHMMSS[.f+]` (UTC), as MLSD `modify` and MDTM send it.
pub fn parse_time(s: &str) -> Option<Nanos> {
    let s = s.trim();
    let (main, frac) = s.split_once('.').unwrap_or((s, ""));
    if main.len() != 14 || !main.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| main[a..b].parse::<i64>().ok();
    let iso = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        n(0, 4)?,
        n(4, 6)?,
        n(6, 8)?,
        n(8, 10)?,
        n(10, 12)?,
        n(12, 14)?
    );
    let secs = crate::remote::kit::time::parse_iso8601(&iso)?;
    let mut digits: Vec<i64> = frac.bytes().take(9).map(|b| i64::from(b - b'0')).collect();
    digits.resize(9, 0);
    Some(secs + digits.iter().fold(0, |a, d| a * 10 + d))
}

/// A time as MFMT and vsftpd's MDTM-set take it: `YYYYMMDDHHMMSS` UTC, whole seconds.
pub fn format_time(t: Nanos) -> String {
    let secs = t.div_euclid(NANOS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::remote::kit::time::civil_from_days(days);
    format!("{y:04}{m:02}{d:02}{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !l.is_empty())
}

/// One MLSD line: `fact=value;fact=value; name`. `None` for `cdir`/`pdir` and what is
/// neither a file, a directory nor a link.
pub fn parse_mlsd_line(line: &[u8]) -> Option<Item> {
    let sp = line.iter().position(|b| *b == b' ')?;
    let (facts, name) = (&line[..sp], &line[sp + 1..]);
    if name.is_empty() {
        return None;
    }
    let mut kind = None;
    let mut size = -1;
    let mut mtime = None;
    for fact in facts.split(|b| *b == b';') {
        let Some(eq) = fact.iter().position(|b| *b == b'=') else { continue };
        let key = String::from_utf8_lossy(&fact[..eq]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&fact[eq + 1..]);
        match key.as_str() {
            "type" => {
                let v = value.to_ascii_lowercase();
                kind = match v.as_str() {
                    "file" => Some(Kind::File),
                    "dir" => Some(Kind::Dir),
                    "cdir" | "pdir" => return None,
                    _ if v.contains("slink") || v.contains("symlink") => Some(Kind::Link),
                    _ => return None,
                };
            }
            "size" | "sizd" if size < 0 => size = value.parse().unwrap_or(-1),
            "modify" => mtime = parse_time(&value),
            _ => {}
        }
    }
    let kind = kind?;
    if name == b"." || name == b".." {
        return None;
    }
    Some(Item { name: name.to_vec(), size: if kind == Kind::Dir { 0 } else { size }, kind, mtime })
}

pub fn parse_mlsd(data: &[u8]) -> Vec<Item> {
    lines(data).filter_map(parse_mlsd_line).collect()
}

/// The byte offset where the `n`th whitespace-separated field of `line` starts.
fn field_starts(line: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut prev_space = true;
    for (i, b) in line.iter().enumerate() {
        let space = *b == b' ' || *b == b'\t';
        if prev_space && !space {
            starts.push(i);
        }
        prev_space = space;
    }
    starts
}

fn field(line: &[u8], start: usize) -> &[u8] {
    let end = line[start..].iter().position(|b| *b == b' ' || *b == b'\t').map_or(line.len(), |e| start + e);
    &line[start..end]
}

const MONTHS: [&[u8]; 12] =
    [b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"];

/// A Unix `ls -l` line: `-rw-r--r-- 1 owner group 1234 Dec  3 18:20 name` (the owner
/// and group may be missing, as some servers print them).
fn parse_unix(line: &[u8]) -> Option<Item> {
    let kind = match line.first()? {
        b'-' => Kind::File,
        b'd' => Kind::Dir,
        b'l' => Kind::Link,
        _ => return None,
    };
    if line.len() < 10 || !line[1..10].iter().all(|b| b"rwxsStTl-+.@".contains(b)) {
        return None;
    }
    let starts = field_starts(line);
    // Find the month: the size is the field before it, the name starts 3 fields after.
    let month = (2..starts.len()).find(|&i| {
        let f = field(line, starts[i]).to_ascii_lowercase();
        MONTHS.contains(&f.as_slice()) && field(line, starts[i - 1]).iter().all(u8::is_ascii_digit)
    })?;
    let name_field = *starts.get(month + 3)?;
    let size: i64 = std::str::from_utf8(field(line, starts[month - 1])).ok()?.parse().ok()?;
    // The name is everything after the time/year field and its one separating space.
    let after_time = starts[month + 2] + field(line, starts[month + 2]).len() + 1;
    let mut name = &line[after_time.min(name_field)..];
    if kind == Kind::Link
        && let Some(p) = name.windows(4).position(|w| w == b" -> ")
    {
        name = &name[..p];
    }
    if name.is_empty() {
        return None;
    }
    Some(Item { name: name.to_vec(), size: if kind == Kind::Dir { 0 } else { size }, kind, mtime: None })
}

/// A Windows/IIS line: `12-03-26  06:20PM       <DIR>          name` or with a size.
fn parse_windows(line: &[u8]) -> Option<Item> {
    let starts = field_starts(line);
    if starts.len() < 4 {
        return None;
    }
    let date = field(line, starts[0]);
    let time = field(line, starts[1]);
    if !(date.len() >= 8 && date[2] == b'-' && date[5] == b'-' && time.contains(&b':')) {
        return None;
    }
    let what = field(line, starts[2]);
    let name = &line[starts[3]..];
    let (kind, size) = if what.eq_ignore_ascii_case(b"<DIR>") {
        (Kind::Dir, 0)
    } else {
        (Kind::File, std::str::from_utf8(what).ok()?.replace(',', "").parse().ok()?)
    };
    Some(Item { name: name.to_vec(), kind, size, mtime: None })
}

/// A LIST answer: lines in either format; others (`total 12`) are skipped. Returns the
/// items and how many lines could not be read.
pub fn parse_list(data: &[u8]) -> (Vec<Item>, usize) {
    let mut items = Vec::new();
    let mut unreadable = 0;
    for line in lines(data) {
        if line.starts_with(b"total ") {
            continue;
        }
        match parse_unix(line).or_else(|| parse_windows(line)) {
            Some(i) if i.name == b"." || i.name == b".." => {}
            Some(i) => items.push(i),
            None if line.first().is_some_and(|b| b"-dl".contains(b))
                || line.first().is_some_and(u8::is_ascii_digit) =>
            {
                unreadable += 1
            }
            None => {}
        }
    }
    (items, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_both_ways() {
        let t = parse_time("20261203182001").unwrap();
        assert_eq!(format_time(t), "20261203182001");
        assert_eq!(parse_time("20261203182001.250").unwrap(), t + 250_000_000);
        assert_eq!(parse_time("19700101000000"), Some(0));
        assert_eq!(format_time(-NANOS_PER_SEC), "19691231235959");
        assert!(parse_time("2026120318200").is_none());
        assert!(parse_time("2026120318200x").is_none());
        assert!(parse_time("20261303182001").is_none());
    }

    #[test]
    fn mlsd_lines_as_servers_send_them() {
        let data = b"type=cdir;modify=20261203120000; /d\r\n\
type=pdir; ..\r\n\
type=file;size=12;modify=20261203120000;UNIX.mode=0644; name with ; semi\r\n\
Type=dir;Modify=20261203120001; sub\r\n\
type=OS.unix=slink:/x;size=1; ln\r\n\
type=file;size=3; raw\xe9\r\n\
type=file;sizd=9;modify=bogus; nomtime\r\n\
garbage\r\n";
        let items = parse_mlsd(data);
        let names: Vec<&[u8]> = items.iter().map(|i| i.name.as_slice()).collect();
        assert_eq!(names, vec![&b"name with ; semi"[..], b"sub", b"ln", b"raw\xe9", b"nomtime"]);
        assert_eq!(items[0].size, 12);
        assert_eq!(items[0].mtime, parse_time("20261203120000"));
        assert_eq!(items[1].kind, Kind::Dir);
        assert_eq!(items[2].kind, Kind::Link);
        assert_eq!((items[4].size, items[4].mtime), (9, None));
    }

    #[test]
    fn unix_and_windows_list_lines() {
        let data = b"total 12\r\n\
-rw-r--r--    1 1000     1000            3 Dec 03 18:20 a file  with spaces\r\n\
drwxr-xr-x    2 ftp      ftp          4096 Jan  1  2024 dir\r\n\
lrwxrwxrwx    1 0        0               7 Dec 03 18:20 link -> target\r\n\
-rw-r--r--    1 1000     1000     12345678 Dec 03 18:20 .hidden\r\n\
-rw-r--r-- 1 user 1 Dec 3 2025 nogroup\r\n\
drwxr-xr-x    2 ftp      ftp          4096 Jan  1  2024 .\r\n\
drwxr-xr-x    2 ftp      ftp          4096 Jan  1  2024 ..\r\n\
12-03-26  06:20PM       <DIR>          Win Dir\r\n\
12-03-26  06:21PM                 1,234 win file.txt\r\n\
-rw-r--r-- broken\r\n";
        let (items, bad) = parse_list(data);
        let got: Vec<(String, i64)> =
            items.iter().map(|i| (String::from_utf8_lossy(&i.name).into_owned(), i.size)).collect();
        assert_eq!(
            got,
            vec![
                ("a file  with spaces".to_string(), 3),
                ("dir".into(), 0),
                ("link".into(), 7),
                (".hidden".into(), 12345678),
                ("nogroup".into(), 1),
                ("Win Dir".into(), 0),
                ("win file.txt".into(), 1234),
            ]
        );
        assert_eq!(items[2].kind, Kind::Link);
        assert_eq!(items[5].kind, Kind::Dir);
        assert_eq!(bad, 1);
    }
}
