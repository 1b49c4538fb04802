//! rclone-compatible path filter rules (`--include`, `--exclude`, `--filter`,
//! their `-from` file variants, `--ignore-case`) and the TrueNAS task rule list.
//!
//! This module owns three things:
//!
//! * the glob → regular expression conversion of rclone's `fs/filter/glob.go`
//!   ([`glob_to_regex`]); the returned text is byte-for-byte the regexp rclone
//!   would build, so it can be shown to users and compared with rclone's
//!   `--dump filters` output;
//! * the rule lists and their evaluation ([`Filter`], built by [`FilterBuilder`]):
//!   file rules decide whether a file is transferred, directory rules (explicit
//!   `dir/` rules plus the ones rclone derives from file rules) decide whether a
//!   directory is worth descending into (one deliberate difference: an
//!   unanchored include keeps every directory, see `derived_dir_globs`);
//! * the TrueNAS Cloud Sync rule set ([`Filter::truenas`]).
//!
//! rclone compiles those regexps with Go's RE2 dialect. Rust's `regex` crate
//! differs in places that matter for globs (`[` and `&&`/`--`/`~~` inside
//! classes, `\d`/`\w`/`\s`/`\b` being Unicode-aware, octal escapes, `\Q…\E`,
//! a bare `{`), so every regexp is translated from Go syntax into an
//! equivalent Rust one before compiling. Paths are matched as bytes; invalid
//! UTF-8 is decoded the way Go decodes it (each bad byte becomes U+FFFD), so a
//! non-UTF-8 name matches exactly the globs it would match in rclone.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::fmt::Write as _;

use regex::bytes::{Regex, RegexBuilder};

/// A filter rule or glob that rclone would reject. The message is one of
/// rclone's texts without the glob appended (`too many stars`,
/// `mismatched ']'`, `mismatched '[' and ']'`, `mismatched '{' and '}'`,
/// `mismatched '{{' and '}}'`, `bad glob pattern`) or `malformed rule "<rule>"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

fn err(msg: &str) -> FilterError {
    FilterError(msg.to_string())
}

/// Converts an rclone path glob into the regexp text rclone builds for it
/// (`(^|/)…$`, or `^…$` for a glob starting with `/`; `(?i)` first when
/// `ignore_case`). The glob is also compiled, so an `Ok` here means the glob
/// is usable as a rule.
pub fn glob_to_regex(glob: &str, ignore_case: bool) -> Result<String, FilterError> {
    compile_glob(glob, ignore_case).map(|(text, _)| text)
}

fn compile_glob(glob: &str, ignore_case: bool) -> Result<(String, Regex), FilterError> {
    let text = glob_to_go_regex(glob, ignore_case)?;
    let re = compile_go_regex(&text).ok_or_else(|| err("bad glob pattern"))?;
    Ok((text, re))
}

/// Compiles a Go (RE2) regexp with Rust semantics that match Go's.
fn compile_go_regex(go: &str) -> Option<Regex> {
    let rust = translate_go_regex(go)?;
    RegexBuilder::new(&rust).build().ok()
}

/// The textual glob conversion (rclone `globToRegexp` in path mode, anchored).
fn glob_to_go_regex(glob: &str, ignore_case: bool) -> Result<String, FilterError> {
    let mut out = String::with_capacity(glob.len() * 2 + 8);
    if ignore_case {
        out.push_str("(?i)");
    }
    let body = match glob.strip_prefix('/') {
        Some(rest) => {
            out.push('^');
            rest
        }
        None => {
            out.push_str("(^|/)");
            glob
        }
    };

    let mut stars = 0u32;
    let mut brace_depth = 0i32;
    let mut in_brackets = 0i32;
    let mut escaped = false;
    let mut in_raw = false;
    let mut raw_closing = false;
    let mut prev: Option<char> = None;

    fn flush_stars(out: &mut String, stars: &mut u32) -> Result<(), FilterError> {
        match *stars {
            0 => {}
            1 => out.push_str("[^/]*"),
            2 => out.push_str(".*"),
            _ => return Err(err("too many stars")),
        }
        *stars = 0;
        Ok(())
    }
    fn replace_last(out: &mut String, c: char) {
        out.pop();
        out.push(c);
    }

    for c in body.chars() {
        let last = prev;
        prev = Some(c);
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        if raw_closing {
            if c == '}' {
                // A run of three or more '}' ends the raw section on the last
                // pair, so the earlier '}' belong to the regexp itself.
                replace_last(&mut out, '}');
                out.push(')');
                continue;
            }
            raw_closing = false;
        }
        if in_raw {
            if c == '}' && last == Some('}') {
                in_raw = false;
                raw_closing = true;
                replace_last(&mut out, ')');
            } else {
                out.push(c);
            }
            continue;
        }
        if c != '*' {
            flush_stars(&mut out, &mut stars)?;
        }
        if in_brackets > 0 {
            out.push(c);
            match c {
                '[' => in_brackets += 1,
                ']' => in_brackets -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '\\' => {
                out.push(c);
                escaped = true;
            }
            '*' => stars += 1,
            '?' => out.push_str("[^/]"),
            '[' => {
                out.push(c);
                in_brackets += 1;
            }
            ']' => return Err(err("mismatched ']'")),
            '{' => {
                // "{{" opens a raw regexp; the '(' the first '{' wrote wraps it.
                // Requiring an open brace keeps an escaped "\{" followed by
                // "{" from being read as "{{".
                if brace_depth > 0 && last == Some('{') {
                    in_raw = true;
                    brace_depth -= 1;
                } else {
                    brace_depth += 1;
                    out.push('(');
                }
            }
            '}' => {
                if brace_depth <= 0 {
                    return Err(err("mismatched '{' and '}'"));
                }
                out.push(')');
                brace_depth -= 1;
            }
            ',' => out.push(if brace_depth > 0 { '|' } else { ',' }),
            '.' | '+' | '(' | ')' | '|' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    flush_stars(&mut out, &mut stars)?;
    if in_brackets > 0 {
        return Err(err("mismatched '[' and ']'"));
    }
    if brace_depth != 0 {
        return Err(err("mismatched '{' and '}'"));
    }
    if in_raw {
        return Err(err("mismatched '{{' and '}}'"));
    }
    out.push('$');
    Ok(out)
}

// ---------------------------------------------------------------------------
// Go (RE2) → Rust regex translation.
//
// Only constructs whose meaning differs are rewritten; everything else is
// copied. Literal characters that came from escapes are re-emitted as
// `\x{…}` so that no character can take on a Rust-only meaning. `None`
// means Go would reject the expression.
// ---------------------------------------------------------------------------

const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "word",
    "xdigit",
];

fn translate_go_regex(src: &str) -> Option<String> {
    let s: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() * 2);
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            '\\' => i = translate_escape(&s, i, &mut out)?,
            '[' => i = translate_class(&s, i, &mut out)?,
            '{' => match parse_repeat(&s, i)? {
                Some(end) => {
                    out.extend(&s[i..end]);
                    i = end;
                }
                None => {
                    // Go reads a '{' that does not start a valid repeat as a
                    // literal; Rust would reject it.
                    out.push_str("\\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            '(' => i = translate_group_open(&s, i, &mut out)?,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

fn push_literal(out: &mut String, c: char) {
    let _ = write!(out, "\\x{{{:X}}}", c as u32);
}

/// Go's Perl classes are ASCII-only; Rust's are Unicode unless told otherwise.
fn perl_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => "[\\t\\n\\x0C\\r ]",
        'S' => "[^\\t\\n\\x0C\\r ]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        _ => return None,
    })
}

/// `\` outside a class at `s[i]`; returns the index after it.
fn translate_escape(s: &[char], i: usize, out: &mut String) -> Option<usize> {
    let next = *s.get(i + 1)?;
    match next {
        'A' => out.push_str("\\A"),
        'z' => out.push_str("\\z"),
        // Go's word boundaries are ASCII ones.
        'b' => out.push_str("(?-u:\\b)"),
        'B' => out.push_str("(?-u:\\B)"),
        'C' => return None,
        'Q' => {
            let mut j = i + 2;
            while j < s.len() {
                if s[j] == '\\' && s.get(j + 1) == Some(&'E') {
                    return Some(j + 2);
                }
                push_literal(out, s[j]);
                j += 1;
            }
            return Some(j);
        }
        'p' | 'P' => return translate_unicode_class(s, i, out),
        c => {
            if let Some(class) = perl_class(c) {
                out.push_str(class);
            } else {
                let (lit, j) = parse_go_escape(s, i)?;
                push_literal(out, lit);
                return Some(j);
            }
        }
    }
    Some(i + 2)
}

/// `\pX`, `\p{Name}`, `\p{^Name}` and the `\P` forms at `s[i]`.
fn translate_unicode_class(s: &[char], i: usize, out: &mut String) -> Option<usize> {
    let mut negated = s.get(i + 1) == Some(&'P');
    let first = *s.get(i + 2)?;
    let (mut name, end): (String, usize) = if first == '{' {
        let close = (i + 3..s.len()).find(|&k| s[k] == '}')?;
        (s[i + 3..close].iter().collect(), close + 1)
    } else {
        (first.to_string(), i + 3)
    };
    if let Some(rest) = name.strip_prefix('^') {
        negated = !negated;
        name = rest.to_string();
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    out.push_str(if negated { "\\P{" } else { "\\p{" });
    out.push_str(&name);
    out.push('}');
    Some(end)
}

/// A single-character escape at `s[i]` (Go `parseEscape`).
fn parse_go_escape(s: &[char], i: usize) -> Option<(char, usize)> {
    let c = *s.get(i + 1)?;
    let mut j = i + 2;
    let is_octal = |k: usize| s.get(k).is_some_and(|d| ('0'..='7').contains(d));
    match c {
        '1'..='7' | '0' => {
            // A lone non-zero digit would be a backreference, which RE2 lacks.
            if c != '0' && !is_octal(j) {
                return None;
            }
            let mut v = c as u32 - '0' as u32;
            for _ in 0..2 {
                if !is_octal(j) {
                    break;
                }
                v = v * 8 + (s[j] as u32 - '0' as u32);
                j += 1;
            }
            char::from_u32(v).map(|ch| (ch, j))
        }
        'x' => {
            let first = *s.get(j)?;
            if first == '{' {
                j += 1;
                let mut v: u32 = 0;
                let mut digits = 0;
                loop {
                    let d = *s.get(j)?;
                    j += 1;
                    if d == '}' {
                        break;
                    }
                    v = v.checked_mul(16)? + d.to_digit(16)?;
                    if v > 0x10FFFF {
                        return None;
                    }
                    digits += 1;
                }
                if digits == 0 {
                    return None;
                }
                char::from_u32(v).map(|ch| (ch, j))
            } else {
                let hi = first.to_digit(16)?;
                let lo = s.get(j + 1)?.to_digit(16)?;
                char::from_u32(hi * 16 + lo).map(|ch| (ch, j + 2))
            }
        }
        'a' => Some(('\x07', j)),
        'f' => Some(('\x0C', j)),
        'n' => Some(('\n', j)),
        'r' => Some(('\r', j)),
        't' => Some(('\t', j)),
        'v' => Some(('\x0B', j)),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Some((c, j)),
        _ => None,
    }
}

/// A bracket expression at `s[i]`, re-emitted in a form whose meaning is the
/// same in Rust: every character as `\x{…}`, so Rust's nested classes and
/// `&&`/`--`/`~~` operators can never be triggered.
fn translate_class(s: &[char], i: usize, out: &mut String) -> Option<usize> {
    let mut j = i + 1;
    out.push('[');
    if s.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    let mut first = true;
    loop {
        let c = *s.get(j)?;
        if c == ']' && !first {
            j += 1;
            break;
        }
        first = false;
        if c == '[' && s.get(j + 1) == Some(&':') {
            // Go searches for ":]" anywhere further on, as we do.
            if let Some(k) = (j + 2..s.len().saturating_sub(1)).find(|&k| s[k] == ':' && s[k + 1] == ']') {
                let name: String = s[j + 2..k].iter().collect();
                let bare = name.strip_prefix('^').unwrap_or(&name);
                if !POSIX_CLASSES.contains(&bare) {
                    return None;
                }
                out.push_str("[:");
                out.push_str(&name);
                out.push_str(":]");
                j = k + 2;
                continue;
            }
        }
        if c == '\\' {
            match s.get(j + 1) {
                Some('p' | 'P') => {
                    j = translate_unicode_class(s, j, out)?;
                    continue;
                }
                Some(&p) if perl_class(p).is_some() => {
                    out.push_str(perl_class(p)?);
                    j += 2;
                    continue;
                }
                _ => {}
            }
        }
        let (lo, nj) = class_char(s, j)?;
        j = nj;
        push_literal(out, lo);
        if s.get(j) == Some(&'-') && s.get(j + 1).is_some_and(|&n| n != ']') {
            let (hi, nj) = class_char(s, j + 1)?;
            if hi < lo {
                return None;
            }
            j = nj;
            out.push('-');
            push_literal(out, hi);
        }
    }
    out.push(']');
    Some(j)
}

fn class_char(s: &[char], j: usize) -> Option<(char, usize)> {
    match *s.get(j)? {
        '\\' => parse_go_escape(s, j),
        c => Some((c, j + 1)),
    }
}

/// A `{n}`, `{n,}` or `{n,m}` repeat at `s[i]`: `Some(Some(end))` when
/// valid, `Some(None)` when Go reads the '{' as a literal, `None` when Go
/// rejects the counts.
fn parse_repeat(s: &[char], i: usize) -> Option<Option<usize>> {
    // Go takes a '{' literally unless digits follow; leading zeros also make
    // it a literal.
    fn number(s: &[char], j: usize) -> Option<(u64, usize)> {
        let end = (j..s.len()).find(|&k| !s[k].is_ascii_digit()).unwrap_or(s.len());
        if end == j || (end - j >= 2 && s[j] == '0') {
            return None;
        }
        let value =
            s[j..end].iter().fold(0u64, |v, d| v.saturating_mul(10).saturating_add(u64::from(*d as u32 - '0' as u32)));
        Some((value, end))
    }
    let Some((min, mut j)) = number(s, i + 1) else {
        return Some(None);
    };
    let mut max = Some(min);
    if s.get(j) == Some(&',') {
        j += 1;
        if s.get(j) == Some(&'}') {
            max = None;
        } else {
            let Some((m, end)) = number(s, j) else {
                return Some(None);
            };
            max = Some(m);
            j = end;
        }
    }
    if s.get(j) != Some(&'}') {
        return Some(None);
    }
    if min > 1000 || max.is_some_and(|m| m > 1000 || m < min) {
        return None;
    }
    Some(Some(j + 1))
}

/// `(` at `s[i]`: plain groups are copied; `(?…` groups are checked against
/// what Go accepts (flags `imsU`, named captures) so that Rust-only flags
/// such as `x` cannot change the meaning.
fn translate_group_open(s: &[char], i: usize, out: &mut String) -> Option<usize> {
    if s.get(i + 1) != Some(&'?') {
        out.push('(');
        return Some(i + 1);
    }
    let mut j = i + 2;
    let named = match (s.get(j), s.get(j + 1)) {
        (Some('P'), Some('<')) => {
            j += 2;
            true
        }
        (Some('P'), _) => return None,
        (Some('<'), _) => {
            j += 1;
            true
        }
        _ => false,
    };
    if named {
        let close = (j..s.len()).find(|&k| s[k] == '>')?;
        let name: String = s[j..close].iter().collect();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        out.push_str("(?P<");
        out.push_str(&name);
        out.push('>');
        return Some(close + 1);
    }
    let end = (j..s.len()).find(|&k| s[k] == ')' || s[k] == ':')?;
    if !s[j..end].iter().all(|c| matches!(c, 'i' | 'm' | 's' | 'U' | '-')) {
        return None;
    }
    out.extend(&s[i..=end]);
    Some(end + 1)
}

/// The bytes a Go regexp sees for `path`: valid UTF-8 is unchanged; every
/// byte of an invalid sequence becomes U+FFFD, as Go's decoder does.
fn go_text(path: &[u8]) -> Cow<'_, [u8]> {
    if std::str::from_utf8(path).is_ok() {
        return Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(path.len() + 16);
    let mut rest = path;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.extend_from_slice(valid.as_bytes());
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.extend_from_slice(&rest[..good]);
                let bad = e.error_len().unwrap_or(rest.len() - good);
                for _ in 0..bad {
                    out.extend_from_slice("\u{FFFD}".as_bytes());
                }
                rest = &rest[good + bad..];
            }
        }
    }
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------
// Directory globs derived from file globs (rclone `globToDirGlobs`).
// ---------------------------------------------------------------------------

/// Braces holding "/" or "**", raw "{{…}}" sections and nested braces cannot
/// be split into per-directory globs (rclone's `tooHardRe`).
fn too_hard_for_dir_globs(glob: &str) -> bool {
    if glob.contains("{{") || glob.contains("}}") {
        return true;
    }
    let b = glob.as_bytes();
    b.iter().enumerate().filter(|&(_, &c)| c == b'{').any(|(i, _)| {
        let rest = &b[i + 1..];
        match rest.iter().position(|&c| c == b'{' || c == b'}') {
            Some(k) if rest[k] == b'{' => true,
            Some(k) => rest[..k].contains(&b'/') || rest[..k].windows(2).any(|w| w == b"**"),
            None => false,
        }
    })
}

/// For a file glob, the globs that a directory (with a trailing `/`) must
/// match for the file glob to possibly match something inside it.
fn glob_to_dir_globs(glob: &str) -> Vec<String> {
    if too_hard_for_dir_globs(glob) {
        return vec!["/**".to_string()];
    }
    let mut g = String::with_capacity(glob.len());
    for c in glob.chars() {
        if !(c == '/' && g.ends_with('/')) {
            g.push(c);
        }
    }
    let mut out: Vec<String> = Vec::new();
    loop {
        let slash = g.rfind('/');
        let stars = g.rfind("**");
        let (cut, what) = match (slash, stars) {
            (s, Some(j)) if s.is_none_or(|s| j > s) => (Some(j), "**"),
            (s, _) => (s, ""),
        };
        let Some(cut) = cut else {
            if out.is_empty() {
                out.push("/**".to_string());
            }
            break;
        };
        g.truncate(cut);
        let dir_glob = format!("{g}{what}/");
        if out.last() != Some(&dir_glob) {
            out.push(dir_glob);
        }
    }
    out
}

/// The directory globs a file rule contributes. rclone derives them from the
/// glob's path prefixes, which for an unanchored include are unanchored too:
/// for `+ a/b` it keeps only directories named `a`, so `x/` is pruned
/// although `x/a/b` matches the file rule (and is found with `--fast-list`).
/// Any directory can hold a match of an unanchored glob, so all are kept.
fn derived_dir_globs(include: bool, glob: &str) -> Vec<String> {
    if include && !glob.starts_with('/') {
        return vec!["/**".to_string()];
    }
    glob_to_dir_globs(glob)
}

// ---------------------------------------------------------------------------
// Rule lists.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Rule {
    include: bool,
    text: String,
    re: Regex,
}

impl Rule {
    fn describe(&self) -> String {
        format!("{} {}", if self.include { '+' } else { '-' }, self.text)
    }
}

#[derive(Clone, Debug, Default)]
struct RuleList {
    rules: Vec<Rule>,
    seen: HashSet<String>,
}

impl RuleList {
    /// A rule identical to an earlier one could never be the first match.
    fn add(&mut self, include: bool, text: String, re: Regex) {
        let rule = Rule { include, text, re };
        if self.seen.insert(rule.describe()) {
            self.rules.push(rule);
        }
    }

    fn clear(&mut self) {
        self.rules.clear();
        self.seen.clear();
    }
}

/// Applies rules in order, as rclone's `Filter.Add` / `Filter.Clear` do.
#[derive(Default)]
struct Compiler {
    ignore_case: bool,
    file: RuleList,
    dir: RuleList,
}

impl Compiler {
    fn add(&mut self, include: bool, glob: &str) -> Result<(), FilterError> {
        let mut is_dir_rule = glob.ends_with('/');
        let mut is_file_rule = !is_dir_rule;
        let mut glob = Cow::Borrowed(glob);
        // Excluding "dir/" excludes everything below it too.
        if is_dir_rule && !include {
            glob = Cow::Owned(format!("{glob}**"));
        }
        if glob.contains("**") {
            is_dir_rule = true;
            is_file_rule = true;
        }
        let (text, re) = compile_glob(&glob, self.ignore_case)?;
        if is_file_rule {
            self.file.add(include, text.clone(), re.clone());
            // An exclude rule cannot rule out a directory unless it is "*",
            // which excludes every file anyway.
            if include || glob == "*" {
                for dir_glob in derived_dir_globs(include, &glob) {
                    // The root is always listed.
                    if dir_glob == "/" {
                        continue;
                    }
                    let (dtext, dre) = compile_glob(&dir_glob, self.ignore_case)?;
                    self.dir.add(include, dtext, dre);
                }
            }
        }
        if is_dir_rule {
            self.dir.add(include, text, re);
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.file.clear();
        self.dir.clear();
    }

    fn apply(&mut self, op: &Op) -> Result<(), FilterError> {
        match op {
            Op::Add { include, glob } => self.add(*include, glob),
            Op::Clear => {
                self.clear();
                Ok(())
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Add { include: bool, glob: String },
    Clear,
}

/// Parses one `--filter` rule: `+ glob`, `- glob` or `!`.
fn parse_rule(line: &str) -> Result<Op, FilterError> {
    if line == "!" {
        return Ok(Op::Clear);
    }
    if let Some(glob) = line.strip_prefix("- ") {
        return Ok(Op::Add { include: false, glob: glob.to_string() });
    }
    if let Some(glob) = line.strip_prefix("+ ") {
        return Ok(Op::Add { include: true, glob: glob.to_string() });
    }
    Err(FilterError(format!("malformed rule {}", go_quote(line))))
}

/// The lines rclone reads from a `-from` file: trimmed, without blank lines
/// and without lines starting with `#` or `;`.
fn rule_file_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
}

/// Go's `%q` for the messages that quote user input.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Collects filter rules by kind and compiles them in rclone's fixed order:
/// include, include-from, exclude, exclude-from, filter, filter-from —
/// whatever order the methods were called in. Within one kind, rules keep
/// their call order. If any include or include-from rule was given, a final
/// `- /**` (rclone's implicit exclude, regexp `^.*$`) is appended, even after
/// a `!` in a filter list.
///
/// Every rule is validated when added, so `build` only fails if something
/// changed in between (it cannot, but the signature leaves room).
#[derive(Clone, Debug, Default)]
pub struct FilterBuilder {
    ignore_case: bool,
    include: Vec<String>,
    include_from: Vec<String>,
    include_from_files: usize,
    exclude: Vec<String>,
    exclude_from: Vec<String>,
    filter: Vec<Op>,
    filter_from: Vec<Op>,
}

impl FilterBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// `--ignore-case`: every rule, including those already added, matches
    /// case-insensitively (`(?i)` prefix).
    pub fn ignore_case(&mut self, yes: bool) -> &mut Self {
        self.ignore_case = yes;
        self
    }

    fn validate(&self, op: &Op) -> Result<(), FilterError> {
        let mut scratch = Compiler { ignore_case: self.ignore_case, ..Compiler::default() };
        scratch.apply(op)
    }

    fn checked_glob(&self, include: bool, glob: &str) -> Result<String, FilterError> {
        self.validate(&Op::Add { include, glob: glob.to_string() })?;
        Ok(glob.to_string())
    }

    /// `--include glob`.
    pub fn add_include(&mut self, glob: &str) -> Result<&mut Self, FilterError> {
        let glob = self.checked_glob(true, glob)?;
        self.include.push(glob);
        Ok(self)
    }

    /// `--exclude glob`.
    pub fn add_exclude(&mut self, glob: &str) -> Result<&mut Self, FilterError> {
        let glob = self.checked_glob(false, glob)?;
        self.exclude.push(glob);
        Ok(self)
    }

    /// `--filter "+ glob"`, `--filter "- glob"` or `--filter "!"` (clear).
    /// The rule is taken verbatim, as rclone does on the command line.
    pub fn add_rule(&mut self, line: &str) -> Result<&mut Self, FilterError> {
        let op = parse_rule(line)?;
        self.validate(&op)?;
        self.filter.push(op);
        Ok(self)
    }

    /// The contents of one `--filter-from` file. Nothing is added if any line
    /// is invalid.
    pub fn add_rules_file_lines(&mut self, text: &str) -> Result<&mut Self, FilterError> {
        let ops = rule_file_lines(text)
            .map(|line| {
                let op = parse_rule(line)?;
                self.validate(&op)?;
                Ok(op)
            })
            .collect::<Result<Vec<_>, FilterError>>()?;
        self.filter_from.extend(ops);
        Ok(self)
    }

    /// The contents of one `--include-from` file. Like rclone, a file counts
    /// as an include (and brings the implicit `- /**`) even when it is empty.
    pub fn add_include_file_lines(&mut self, text: &str) -> Result<&mut Self, FilterError> {
        let globs = rule_file_lines(text).map(|l| self.checked_glob(true, l)).collect::<Result<Vec<_>, _>>()?;
        self.include_from.extend(globs);
        self.include_from_files += 1;
        Ok(self)
    }

    /// The contents of one `--exclude-from` file.
    pub fn add_exclude_file_lines(&mut self, text: &str) -> Result<&mut Self, FilterError> {
        let globs = rule_file_lines(text).map(|l| self.checked_glob(false, l)).collect::<Result<Vec<_>, _>>()?;
        self.exclude_from.extend(globs);
        Ok(self)
    }

    pub fn build(&self) -> Result<Filter, FilterError> {
        let mut c = Compiler { ignore_case: self.ignore_case, ..Compiler::default() };
        for glob in self.include.iter().chain(&self.include_from) {
            c.add(true, glob)?;
        }
        for glob in self.exclude.iter().chain(&self.exclude_from) {
            c.add(false, glob)?;
        }
        for op in self.filter.iter().chain(&self.filter_from) {
            c.apply(op)?;
        }
        if !self.include.is_empty() || self.include_from_files > 0 {
            c.add(false, "/**")?;
        }
        Ok(Filter { file_rules: c.file.rules, dir_rules: c.dir.rules })
    }
}

/// A compiled rule set. Immutable, `Send + Sync`; share it with `Arc`.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    file_rules: Vec<Rule>,
    dir_rules: Vec<Rule>,
}

impl Filter {
    /// No rules: everything is included.
    pub fn empty() -> Filter {
        Filter::default()
    }

    /// True when there are no file and no directory rules.
    pub fn is_empty(&self) -> bool {
        self.file_rules.is_empty() && self.dir_rules.is_empty()
    }

    /// Whether the file at `path` (relative to the transfer root,
    /// `/`-separated, no leading `/`, any bytes) passes the file rules:
    /// the first matching rule decides, no match means included.
    pub fn include_file(&self, path: &[u8]) -> bool {
        if self.file_rules.is_empty() {
            return true;
        }
        first_match(&self.file_rules, &go_text(path))
    }

    /// Whether the directory at `path` should be listed and descended into,
    /// judged by rclone's directory rules (explicit `dir/` rules plus the ones
    /// derived from file rules). The root (`""`) is always included. A `true`
    /// is not a promise that anything below is included; a `false` means rclone
    /// would not look inside. Parents are not consulted: the walker is expected
    /// not to descend into a pruned directory in the first place.
    pub fn include_dir(&self, path: &[u8]) -> bool {
        let trimmed = trim_slashes(path);
        if self.dir_rules.is_empty() || trimmed.is_empty() {
            return true;
        }
        let mut subject = go_text(trimmed).into_owned();
        subject.push(b'/');
        first_match(&self.dir_rules, &subject)
    }

    /// The rules in rclone's `--dump filters` layout.
    pub fn dump(&self) -> String {
        let mut lines = vec!["--- File filter rules ---".to_string()];
        lines.extend(self.file_rules.iter().map(Rule::describe));
        lines.push("--- Directory filter rules ---".to_string());
        lines.extend(self.dir_rules.iter().map(Rule::describe));
        lines.join("\n")
    }

    /// The TrueNAS Cloud Sync task rules (truenas-cloudsync.md §9.1), compiled
    /// as the `--filter-from` file TrueNAS writes: `- .zfs`, `- .zfs/**`, the
    /// ix-apps rules when the task covers a whole pool (`pool_root`), then
    /// `- <exclude>` for each exclude, then `+ <include>` for each include and
    /// `- *` when there are includes. `Filter::truenas(&[], &[], false)` is the
    /// set `list_directory` uses.
    pub fn truenas(excludes: &[String], includes: &[String], pool_root: bool) -> Result<Filter, FilterError> {
        let mut lines: Vec<String> = vec!["- .zfs".into(), "- .zfs/**".into()];
        if pool_root {
            for rule in ["- /ix-applications", "- /ix-apps", "- /ix-applications/**", "- /ix-apps/**"] {
                lines.push(rule.into());
            }
        }
        lines.extend(excludes.iter().map(|e| format!("- {e}")));
        if !includes.is_empty() {
            lines.extend(includes.iter().map(|i| format!("+ {i}")));
            lines.push("- *".into());
        }
        FilterBuilder::new().add_rules_file_lines(&lines.join("\n"))?.build()
    }
}

fn first_match(rules: &[Rule], subject: &[u8]) -> bool {
    rules.iter().find(|r| r.re.is_match(subject)).is_none_or(|r| r.include)
}

fn trim_slashes(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    let end = path.iter().rposition(|&b| b != b'/').map_or(start, |e| e + 1);
    &path[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// §9.3 vectors: glob, regexp or "error: <text>".
    const GLOB_VECTORS: &[(&str, &str)] = &[
        ("", "(^|/)$"),
        ("potato", "(^|/)potato$"),
        ("potato,sausage", "(^|/)potato,sausage$"),
        ("/potato", "^potato$"),
        ("potato?sausage", "(^|/)potato[^/]sausage$"),
        ("potat[oa]", "(^|/)potat[oa]$"),
        ("potat[a-z]or", "(^|/)potat[a-z]or$"),
        ("potat[[:alpha:]]or", "(^|/)potat[[:alpha:]]or$"),
        ("'.' '+' '(' ')' '|' '^' '$'", r"(^|/)'\.' '\+' '\(' '\)' '\|' '\^' '\$'$"),
        ("*.jpg", r"(^|/)[^/]*\.jpg$"),
        ("a{b,c,d}e", "(^|/)a(b|c|d)e$"),
        ("a{b,{c,d}}e", "(^|/)a(b|(c|d))e$"),
        ("{a,b/{c,d}/**}", "(^|/)(a|b/(c|d)/.*)$"),
        ("potato**", "(^|/)potato.*$"),
        ("potato**sausage", "(^|/)potato.*sausage$"),
        ("*.p[lm]", r"(^|/)[^/]*\.p[lm]$"),
        (r"[\[\]]", r"(^|/)[\[\]]$"),
        ("***potato", "error: too many stars"),
        ("***", "error: too many stars"),
        ("ab]c", "error: mismatched ']'"),
        ("ab[c", "error: mismatched '[' and ']'"),
        ("ab{x{cd", "error: mismatched '{' and '}'"),
        ("ab{}}cd", "error: mismatched '{' and '}'"),
        ("ab}c", "error: mismatched '{' and '}'"),
        ("ab{c", "error: mismatched '{' and '}'"),
        ("*.{jpg,png,gif}", r"(^|/)[^/]*\.(jpg|png|gif)$"),
        ("[a--b]", "error: bad glob pattern"),
        (r"a\*b", r"(^|/)a\*b$"),
        (r"a\\b", r"(^|/)a\\b$"),
        ("a{{.*}}b", "(^|/)a(.*)b$"),
        ("a{{.*}", "error: mismatched '{{' and '}}'"),
        ("{{regexp}}", "(^|/)(regexp)$"),
        (r"\{{{regexp}}", r"(^|/)\{(regexp)$"),
        ("/{{regexp}}", "^(regexp)$"),
        (r"/{{\d{8}}}", r"^(\d{8})$"),
        (r"/{{\}}}", r"^(\})$"),
        ("{{(?i)regexp}}", "(^|/)((?i)regexp)$"),
    ];

    #[test]
    fn glob_vectors() {
        for &(glob, want) in GLOB_VECTORS {
            for ignore_case in [false, true] {
                let got = glob_to_regex(glob, ignore_case);
                match want.strip_prefix("error: ") {
                    Some(msg) => {
                        assert_eq!(got, Err(FilterError(msg.to_string())), "glob {glob:?}")
                    }
                    None => {
                        let prefix = if ignore_case { "(?i)" } else { "" };
                        assert_eq!(got, Ok(format!("{prefix}{want}")), "glob {glob:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn error_display_is_the_bare_message() {
        let e = glob_to_regex("***", false).unwrap_err();
        assert_eq!(e.to_string(), "too many stars");
    }

    fn matches(glob: &str, path: &[u8]) -> bool {
        let (_, re) = compile_glob(glob, false).unwrap();
        re.is_match(&go_text(path))
    }

    /// Paths each glob must accept or reject, including the places where Go's
    /// and Rust's regexp dialects differ.
    #[test]
    fn glob_matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "a/", true),
            ("", "a", false),
            ("potato", "potato", true),
            ("potato", "dir/potato", true),
            ("potato", "xpotato", false),
            ("potato", "potato/x", false),
            ("/potato", "dir/potato", false),
            ("potato?sausage", "potatoXsausage", true),
            ("potato?sausage", "potato/sausage", false),
            ("potato?sausage", "potatoésausage", true),
            ("potat[a-z]or", "potatqor", true),
            ("potat[a-z]or", "potatQor", false),
            ("potat[[:alpha:]]or", "potatXor", true),
            ("potat[[:alpha:]]or", "potat1or", false),
            ("potat[[:alpha:]]or", "potatéor", false),
            ("'.' '+' '(' ')' '|' '^' '$'", "'.' '+' '(' ')' '|' '^' '$'", true),
            ("*.jpg", "a/b/c.jpg", true),
            ("*.jpg", "c.jpgx", false),
            ("*.jpg", "cxjpg", false),
            ("a{b,{c,d}}e", "ace", true),
            ("a{b,{c,d}}e", "afe", false),
            ("{a,b/{c,d}/**}", "x/b/d/y/z", true),
            ("{a,b/{c,d}/**}", "b/e/y", false),
            ("potato**", "potato/x/y", true),
            ("*.p[lm]", "x.pm", true),
            ("*.p[lm]", "x.pn", false),
            (r"[\[\]]", "[", true),
            (r"[\[\]]", "]", true),
            (r"[\[\]]", "x", false),
            (r"a\*b", "a*b", true),
            (r"a\*b", "axb", false),
            (r"a\\b", r"a\b", true),
            ("a{{.*}}b", "a/x/b", true),
            (r"/{{\d{8}}}", "20240101", true),
            (r"/{{\d{8}}}", "2024010", false),
            // Go's \d is ASCII only; Rust's would take Arabic-Indic digits.
            (r"/{{\d{8}}}", "٠١٢٣٤٥٦٧", false),
            (r"/{{\}}}", "}", true),
            ("{{(?i)regexp}}", "REGEXP", true),
            // Inside a class Go takes '&&', '--', '~~' and '[' literally.
            ("x[a&&b]", "x&", true),
            ("x[a&&b]", "xa", true),
            ("x[a~~b]", "x~", true),
            ("x[a[]]", "x[]", true),
            ("x[a[]]", "xa]", true),
            ("x[a[]]", "xa", false),
            // Go octal escapes and \Q…\E.
            (r"{{\101}}", "A", true),
            (r"{{\Qa.b\E}}", "a.b", true),
            (r"{{\Qa.b\E}}", "axb", false),
            // A '{' that is not a repeat is a literal in Go.
            ("{{a{,2}}}", "a{,2}", true),
            ("{{a{02}}}", "a{02}", true),
        ];
        for &(glob, path, want) in cases {
            assert_eq!(matches(glob, path.as_bytes()), want, "glob {glob:?} path {path:?}");
        }
    }

    #[test]
    fn go_rejections_are_bad_glob_patterns() {
        for glob in [
            r"{{\1}}",
            r"{{\C}}",
            r"{{\e}}",
            r"{{a{1001}}}",
            r"{{a{3,2}}}",
            "{{(?x)a}}",
            "{{[[:foo:]]}}",
            "{{(?P=n)}}",
            r"{{\p{}}}",
        ] {
            assert_eq!(glob_to_regex(glob, false), Err(err("bad glob pattern")), "glob {glob:?}");
        }
    }

    #[test]
    fn non_utf8_paths() {
        assert!(matches("*.jpg", b"dir/\xFF.jpg"));
        assert!(matches("a?b", b"a\xFFb"));
        assert!(matches("**", b"\xFF/\xFE"));
        assert!(!matches("/*", b"\xFF/\xFE"));
        assert!(matches("*", b"\xFF/\xFE"));
        assert!(matches("/*/x", b"\xFF\xFE/x"));
        // One '?' per invalid byte, as in Go: a truncated sequence is two.
        assert!(matches("a??b", b"a\xE2\x82b"));
        assert!(!matches("a?b", b"a\xE2\x82b"));
        // A valid multi-byte character is still one '?'.
        assert!(matches("a?b", "aéb".as_bytes()));
        assert!(!matches("a??b", "aéb".as_bytes()));

        let mut b = FilterBuilder::new();
        b.add_exclude("*.tmp").unwrap();
        let f = b.build().unwrap();
        assert!(!f.include_file(b"x/\xFF\xFE.tmp"));
        assert!(f.include_file(b"x/\xFF\xFE.txt"));
    }

    #[test]
    fn dir_glob_vectors() {
        let cases: &[(&str, &[&str])] = &[
            ("*", &["/**"]),
            ("/*", &["/"]),
            ("*.jpg", &["/**"]),
            ("/*.jpg", &["/"]),
            ("//*.jpg", &["/"]),
            ("///*.jpg", &["/"]),
            ("/a/*.jpg", &["/a/", "/"]),
            ("/a//*.jpg", &["/a/", "/"]),
            ("/a///*.jpg", &["/a/", "/"]),
            ("/a/b/*.jpg", &["/a/b/", "/a/", "/"]),
            ("a/*.jpg", &["a/"]),
            ("a/b/*.jpg", &["a/b/", "a/"]),
            ("*/*/*.jpg", &["*/*/", "*/"]),
            ("a/b/", &["a/b/", "a/"]),
            ("a/b", &["a/"]),
            ("a/b/*.{jpg,png,gif}", &["a/b/", "a/"]),
            ("/a/{jpg,png,gif}/*.{jpg,png,gif}", &["/a/{jpg,png,gif}/", "/a/", "/"]),
            ("a/{a,a*b,a**c}/d/", &["/**"]),
            ("/a/{a,a*b,a/c,d}/d/", &["/**"]),
            ("**", &["**/"]),
            ("a**", &["a**/"]),
            ("a**b", &["a**/"]),
            ("a**b**c**d", &["a**b**c**/", "a**b**/", "a**/"]),
            ("a**b/c**d", &["a**b/c**/", "a**b/", "a**/"]),
            (
                "/A/a**b/B/c**d/C/",
                &[
                    "/A/a**b/B/c**d/C/",
                    "/A/a**b/B/c**d/",
                    "/A/a**b/B/c**/",
                    "/A/a**b/B/",
                    "/A/a**b/",
                    "/A/a**/",
                    "/A/",
                    "/",
                ],
            ),
            ("/var/spool/**/ncw", &["/var/spool/**/", "/var/spool/", "/var/", "/"]),
            ("var/spool/**/ncw/", &["var/spool/**/ncw/", "var/spool/**/", "var/spool/", "var/"]),
            ("/sausage3**", &["/sausage3**/", "/"]),
            ("{{regexp}}", &["/**"]),
            ("{a,{b,c}}/d", &["/**"]),
        ];
        for &(glob, want) in cases {
            assert!(glob_to_regex(glob, false).is_ok(), "{glob}");
            assert_eq!(glob_to_dir_globs(glob), want, "{glob}");
        }
    }

    fn build(rules: &[&str]) -> Filter {
        let mut b = FilterBuilder::new();
        for r in rules {
            b.add_rule(r).unwrap();
        }
        b.build().unwrap()
    }

    fn check(f: &Filter, files: &[(&str, bool)], dirs: &[(&str, bool)]) {
        for &(p, want) in files {
            assert_eq!(f.include_file(p.as_bytes()), want, "file {p:?}\n{}", f.dump());
        }
        for &(p, want) in dirs {
            assert_eq!(f.include_dir(p.as_bytes()), want, "dir {p:?}\n{}", f.dump());
        }
    }

    #[test]
    fn empty_filter_includes_everything() {
        let f = Filter::empty();
        assert!(f.is_empty());
        check(&f, &[("a", true), ("a/b/c", true)], &[("", true), ("a", true)]);
        let f = FilterBuilder::new().build().unwrap();
        assert!(f.is_empty());
        assert!(!build(&["- x"]).is_empty());
    }

    /// rclone `TestNewFilterMatches`.
    #[test]
    fn rclone_filter_matches() {
        let f = build(&[
            "+ cleared",
            "!",
            "- /file1.jpg",
            "+ /file2.png",
            "+ /*.jpg",
            "- /*.png",
            "- /potato",
            "+ /sausage1",
            "+ /sausage2*",
            "+ /sausage3**",
            "+ /a/*.jpg",
            "- *",
        ]);
        check(
            &f,
            &[
                ("cleared", false),
                ("file1.jpg", false),
                ("file2.png", true),
                ("FILE2.png", false),
                ("afile2.png", false),
                ("file3.jpg", true),
                ("file4.png", false),
                ("potato", false),
                ("sausage1", true),
                ("sausage1/potato", false),
                ("sausage2potato", true),
                ("sausage2/potato", false),
                ("sausage3/potato", true),
                ("a/one.jpg", true),
                ("a/one.png", false),
                ("unicorn", false),
            ],
            &[
                ("sausage1", false),
                ("sausage2", false),
                ("sausage2/sub", false),
                ("sausage2/sub/dir", false),
                ("sausage3", true),
                ("SAUSAGE3", false),
                ("sausage3/sub", true),
                ("sausage3/sub/dir", true),
                ("sausage4", false),
                ("a", true),
            ],
        );
    }

    /// rclone `TestNewFilterMatchesIgnoreCase`.
    #[test]
    fn rclone_filter_matches_ignore_case() {
        let mut b = FilterBuilder::new();
        b.ignore_case(true);
        for r in ["+ /file2.png", "+ /sausage3**", "- *"] {
            b.add_rule(r).unwrap();
        }
        let f = b.build().unwrap();
        check(&f, &[("file2.png", true), ("FILE2.png", true)], &[("sausage3", true), ("SAUSAGE3", true)]);
        assert!(f.dump().contains("+ (?i)^file2\\.png$"));
    }

    /// rclone `TestNewFilterMatchesRegexp`.
    #[test]
    fn rclone_filter_matches_regexp() {
        let f = build(&[r"+ /{{file\d+\.png}}", "+ *.{{(?i)jpg}}", "- *"]);
        check(
            &f,
            &[
                ("file2.png", true),
                ("sub/file2.png", false),
                ("file123.png", true),
                ("File123.png", false),
                ("something.jpg", true),
                ("deep/path/something.JPG", true),
                ("something.gif", false),
            ],
            &[("anything at all", true)],
        );
    }

    /// rclone `TestFilterAddDirRuleOrFileRule`.
    #[test]
    fn rclone_dir_rule_or_file_rule() {
        let cases: &[(bool, &str, &str)] = &[
            (false, "potato", "--- File filter rules ---\n- (^|/)potato$\n--- Directory filter rules ---"),
            (true, "potato", "--- File filter rules ---\n+ (^|/)potato$\n--- Directory filter rules ---\n+ ^.*$"),
            (
                false,
                "potato/",
                "--- File filter rules ---\n- (^|/)potato/.*$\n--- Directory filter rules ---\n- (^|/)potato/.*$",
            ),
            (true, "potato/", "--- File filter rules ---\n--- Directory filter rules ---\n+ (^|/)potato/$"),
            (false, "*", "--- File filter rules ---\n- (^|/)[^/]*$\n--- Directory filter rules ---\n- ^.*$"),
            (true, "*", "--- File filter rules ---\n+ (^|/)[^/]*$\n--- Directory filter rules ---\n+ ^.*$"),
            (
                false,
                ".*{,/**}",
                "--- File filter rules ---\n- (^|/)\\.[^/]*(|/.*)$\n--- Directory filter rules ---\n- (^|/)\\.[^/]*(|/.*)$",
            ),
            // rclone gives "+ (^|/)a/b/c/$", "+ (^|/)a/b/$", "+ (^|/)a/$" here,
            // which prunes "x/" although "x/a/b/c/d" matches: see
            // derived_dir_globs.
            (true, "a/b/c/d", "--- File filter rules ---\n+ (^|/)a/b/c/d$\n--- Directory filter rules ---\n+ ^.*$"),
            (
                true,
                "/a/b/c/d",
                "--- File filter rules ---\n+ ^a/b/c/d$\n--- Directory filter rules ---\n+ ^a/b/c/$\n+ ^a/b/$\n+ ^a/$",
            ),
        ];
        for &(include, glob, want) in cases {
            let mut c = Compiler::default();
            c.add(include, glob).unwrap();
            let f = Filter { file_rules: c.file.rules, dir_rules: c.dir.rules };
            assert_eq!(f.dump(), want, "add({include}, {glob:?})");
        }
    }

    /// rclone `TestNewFilterFullExceptFilesFromOpt`: fixed kind order and the
    /// implicit exclude, whatever the call order.
    #[test]
    fn fixed_rule_kind_order() {
        let mut b = FilterBuilder::new();
        b.add_rules_file_lines("#comment\n+ filter2\n- filter3\n").unwrap();
        b.add_rule("- filter1").unwrap();
        b.add_rule("- filter1b").unwrap();
        b.add_exclude_file_lines("#comment\nexclude2\nexclude3\n").unwrap();
        b.add_exclude("exclude1").unwrap();
        b.add_include_file_lines("#comment\ninclude2\ninclude3\n").unwrap();
        b.add_include("include1").unwrap();
        let f = b.build().unwrap();
        let want = "--- File filter rules ---
+ (^|/)include1$
+ (^|/)include2$
+ (^|/)include3$
- (^|/)exclude1$
- (^|/)exclude2$
- (^|/)exclude3$
- (^|/)filter1$
- (^|/)filter1b$
+ (^|/)filter2$
- (^|/)filter3$
- ^.*$
--- Directory filter rules ---
+ ^.*$
- ^.*$";
        assert_eq!(f.dump(), want);
    }

    #[test]
    fn include_wins_over_exclude_added_earlier() {
        let mut b = FilterBuilder::new();
        b.add_exclude("*.jpg").unwrap();
        b.add_include("keep.jpg").unwrap();
        let f = b.build().unwrap();
        check(&f, &[("keep.jpg", true), ("other.jpg", false), ("other.txt", false)], &[]);

        // Without includes there is no implicit exclude.
        let mut b = FilterBuilder::new();
        b.add_exclude("*.jpg").unwrap();
        let f = b.build().unwrap();
        check(&f, &[("a.jpg", false), ("a.txt", true)], &[("d", true)]);

        // An empty include-from file still brings the implicit exclude.
        let mut b = FilterBuilder::new();
        b.add_include_file_lines("# nothing\n").unwrap();
        check(&b.build().unwrap(), &[("a", false)], &[("d", false)]);
    }

    #[test]
    fn clear_rule() {
        let f = build(&["- a", "!", "- b"]);
        check(&f, &[("a", true), ("b", false)], &[]);
        // "!" in filter rules also drops earlier --include/--exclude rules, but
        // the implicit exclude of --include is added afterwards.
        let mut b = FilterBuilder::new();
        b.add_include("x").unwrap();
        b.add_exclude("y").unwrap();
        b.add_rule("!").unwrap();
        b.add_rule("+ z").unwrap();
        check(&b.build().unwrap(), &[("x", false), ("y", false), ("z", true), ("w", false)], &[]);
    }

    #[test]
    fn rule_file_lines_are_trimmed_and_comments_skipped() {
        let text = "; comment\n- one\n# another comment\n\n\n- two\n # indented comment\n- three  \n- four    \n- five\r\n  - six  ";
        let mut b = FilterBuilder::new();
        b.add_rules_file_lines(text).unwrap();
        let f = b.build().unwrap();
        let want: Vec<String> =
            ["one", "two", "three", "four", "five", "six"].iter().map(|w| format!("- (^|/){w}$")).collect();
        let dump = f.dump();
        let got: Vec<&str> = dump.lines().filter(|l| l.starts_with("- ")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn malformed_rules() {
        let mut b = FilterBuilder::new();
        assert_eq!(b.add_rule("potato").unwrap_err().to_string(), "malformed rule \"potato\"");
        assert_eq!(b.add_rule("+potato").unwrap_err().to_string(), "malformed rule \"+potato\"");
        assert_eq!(b.add_rule("").unwrap_err().to_string(), "malformed rule \"\"");
        assert_eq!(b.add_rule("# c").unwrap_err().to_string(), "malformed rule \"# c\"");
        assert_eq!(b.add_rules_file_lines("- ok\nbad\n").unwrap_err().to_string(), "malformed rule \"bad\"");
        assert_eq!(b.add_rule("- a[").unwrap_err().to_string(), "mismatched '[' and ']'");
        assert_eq!(b.add_include("***").unwrap_err().to_string(), "too many stars");
        assert_eq!(b.add_exclude("{").unwrap_err().to_string(), "mismatched '{' and '}'");
        // Failed additions leave nothing behind.
        assert!(b.build().unwrap().is_empty());
    }

    /// rclone `TestFilterMatchesFromDocs`.
    #[test]
    fn rclone_matches_from_docs() {
        let cases: &[(&str, bool, &str, bool)] = &[
            ("file.jpg", true, "file.jpg", false),
            ("file.jpg", true, "directory/file.jpg", false),
            ("file.jpg", false, "afile.jpg", false),
            ("file.jpg", false, "directory/afile.jpg", false),
            ("/file.jpg", true, "file.jpg", false),
            ("/file.jpg", false, "afile.jpg", false),
            ("/file.jpg", false, "directory/file.jpg", false),
            ("*.jpg", true, "file.jpg", false),
            ("*.jpg", true, "directory/file.jpg", false),
            ("*.jpg", false, "file.jpg/anotherfile.png", false),
            ("dir/**", true, "dir/file.jpg", false),
            ("dir/**", true, "dir/dir1/dir2/file.jpg", false),
            ("dir/**", false, "directory/file.jpg", false),
            ("dir/**", false, "adir/file.jpg", false),
            ("l?ss", true, "less", false),
            ("l?ss", true, "lass", false),
            ("l?ss", false, "floss", false),
            ("h[ae]llo", true, "hello", false),
            ("h[ae]llo", true, "hallo", false),
            ("h[ae]llo", false, "hullo", false),
            ("{one,two}_potato", true, "one_potato", false),
            ("{one,two}_potato", true, "two_potato", false),
            ("{one,two}_potato", false, "three_potato", false),
            ("{one,two}_potato", false, "_potato", false),
            (r"\*.jpg", true, "*.jpg", false),
            (r"\\.jpg", true, r"\.jpg", false),
            (r"\[one\].jpg", true, "[one].jpg", false),
            ("potato", true, "potato", false),
            ("potato", false, "POTATO", false),
            ("potato", true, "potato", true),
            ("potato", true, "POTATO", true),
        ];
        for &(glob, want, file, ignore_case) in cases {
            let mut c = Compiler { ignore_case, ..Compiler::default() };
            c.add(true, glob).unwrap();
            c.add(false, "*").unwrap();
            let f = Filter { file_rules: c.file.rules, dir_rules: c.dir.rules };
            assert_eq!(f.include_file(file.as_bytes()), want, "{glob:?} vs {file:?}");
        }
    }

    #[test]
    fn ignore_case_prefix() {
        let mut b = FilterBuilder::new();
        b.add_exclude("*.JPG").unwrap();
        b.ignore_case(true);
        let f = b.build().unwrap();
        assert!(f.dump().contains("- (?i)(^|/)[^/]*\\.JPG$"));
        check(&f, &[("a.jpg", false), ("b/A.Jpg", false), ("a.png", true)], &[]);
    }

    #[test]
    fn directory_pruning_from_include_rules() {
        let f = build(&["+ /office/**", "- *"]);
        check(
            &f,
            &[("office/a.doc", true), ("office/x/y.doc", true), ("other/a", false), ("rootfile", false)],
            &[("office", true), ("office/x", true), ("office/x/y", true), ("other", false), ("other/deep", false)],
        );
        // Deeper include: only the directories on the way are kept.
        let f = build(&["+ /a/b/*.jpg", "- *"]);
        check(
            &f,
            &[("a/b/x.jpg", true), ("a/x.jpg", false)],
            &[("a", true), ("a/b", true), ("a/c", false), ("z", false)],
        );
        // Unanchored include: any directory may hold a match.
        let f = build(&["+ *.jpg", "- *"]);
        check(&f, &[("q/r/x.jpg", true), ("q/r/x.png", false)], &[("q", true), ("q/r", true)]);
        // Pure exclude rules never prune (except "*", "dir/" and "**" rules).
        let f = build(&["- *.jpg"]);
        check(&f, &[], &[("q", true)]);
        let f = build(&["- secret/"]);
        check(
            &f,
            &[("secret/a", false), ("x/secret/a", false), ("secretive", true)],
            &[("secret", false), ("x/secret", false), ("secretive", true)],
        );
        // "+ dir/" is a directory-only rule.
        let f = build(&["+ keep/", "- *"]);
        check(&f, &[("keep/a", false)], &[("keep", true), ("x/keep", true), ("other", false)]);
    }

    #[test]
    fn unanchored_includes_keep_every_directory() {
        let f = build(&["+ office/**", "- *"]);
        check(
            &f,
            &[("office/a", true), ("home/office/a", true), ("home/a", false)],
            &[("office", true), ("home", true), ("home/office", true)],
        );
        let f = build(&["+ a/b", "- *"]);
        check(&f, &[("x/a/b", true), ("x/a/c", false)], &[("x", true), ("x/a", true)]);
    }

    #[test]
    fn too_hard_globs() {
        for (glob, want) in [
            ("{a,b}", false),
            ("{a,b}/c", false),
            ("a/{b,c}/**", false),
            ("{a,b/c}", true),
            ("{a,b**}", true),
            ("{{re}}", true),
            ("a}}", true),
            ("{a,{b,c}}", true),
            ("{a", false),
            ("a/b", false),
        ] {
            assert_eq!(too_hard_for_dir_globs(glob), want, "{glob}");
        }
    }

    #[test]
    fn include_dir_accepts_slashes() {
        let f = build(&["+ /office/**", "- *"]);
        for p in ["office", "office/", "/office", "/office/"] {
            assert!(f.include_dir(p.as_bytes()), "{p}");
        }
        assert!(f.include_dir(b""));
        assert!(f.include_dir(b"/"));
        assert!(!f.include_dir(b"/other/"));
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn truenas_includes() {
        let f = Filter::truenas(&[], &strings(&["/office/**", "/photos/**"]), false).unwrap();
        check(
            &f,
            &[
                ("office/a.doc", true),
                ("office/sub/b.doc", true),
                ("photos/2024/x.jpg", true),
                ("other/deep/w", false),
                ("rootfile", false),
                ("office/.zfs/snapshot/s/a", false),
            ],
            &[("office", true), ("photos", true), ("photos/2024", true), ("other", false), ("other/deep", false)],
        );
        let f = Filter::truenas(&[], &strings(&["/office/**", "/work/**"]), false).unwrap();
        check(&f, &[("office/a", true), ("work/b", true), ("home/c", false)], &[("home", false)]);
    }

    #[test]
    fn truenas_zfs_rules() {
        let f = Filter::truenas(&[], &[], false).unwrap();
        check(
            &f,
            &[
                (".zfs/snapshot/auto-1/file", false),
                (".zfs", false),
                ("sub/.zfs/g", false),
                (".zfs_not", true),
                ("sub/.zfs_not/x", true),
                ("plain", true),
            ],
            &[(".zfs", false), (".zfs/snapshot", false), ("sub/.zfs", false), (".zfs_not", true), ("sub", true)],
        );
    }

    #[test]
    fn truenas_excludes_and_pool_root() {
        let f = Filter::truenas(&strings(&["$RECYCLE.BIN/", "*.tmp"]), &[], true).unwrap();
        check(
            &f,
            &[
                ("$RECYCLE.BIN/x", false),
                ("a/$RECYCLE.BIN/y", false),
                ("$RECYCLE.BINx", true),
                ("a.tmp", false),
                ("ix-apps/cfg", false),
                ("ix-applications/k", false),
                ("ix-apps", false),
                ("data/ix-apps/x", true),
                ("data/f", true),
            ],
            &[
                ("$RECYCLE.BIN", false),
                ("ix-apps", false),
                ("ix-applications", false),
                ("data", true),
                ("data/ix-apps", true),
            ],
        );
        let f = Filter::truenas(&[], &[], false).unwrap();
        assert!(f.include_file(b"ix-apps/cfg"));
        assert!(Filter::truenas(&strings(&["a["]), &[], false).is_err());
        // The rule list is that of TrueNAS, in its order.
        let f = Filter::truenas(&strings(&["x"]), &strings(&["/y/**"]), true).unwrap();
        let dump = f.dump();
        let files: Vec<&str> = dump.lines().skip(1).take_while(|l| !l.starts_with("---")).collect();
        assert_eq!(
            files,
            [
                r"- (^|/)\.zfs$",
                r"- (^|/)\.zfs/.*$",
                "- ^ix-applications$",
                "- ^ix-apps$",
                "- ^ix-applications/.*$",
                "- ^ix-apps/.*$",
                "- (^|/)x$",
                "+ ^y/.*$",
                "- (^|/)[^/]*$",
            ]
        );
    }

    #[test]
    fn filter_is_send_sync_and_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Filter>();
        let f = Arc::new(build(&["- *.tmp"]));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let f = Arc::clone(&f);
                std::thread::spawn(move || f.include_file(format!("d{i}/x.tmp").as_bytes()))
            })
            .collect();
        for h in handles {
            assert!(!h.join().unwrap());
        }
    }
}
