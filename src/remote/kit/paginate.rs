//! The guard every paginated listing runs its page loop through, so that a server's
//! answer can never make a listing run forever.
//!
//! A listing ends when the server says so. A hostile or broken server can instead send a
//! continuation token it already sent (a loop), a truncated page without a token, or an
//! endless run of empty pages; each of those ends the listing with an error here, never
//! with a partial listing that a SYNC would take as complete.

use crate::error::{Error, Kind, Result};
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

/// Empty pages in a row after which a listing is taken to make no progress. Servers may
/// send the odd empty page (S3 does, around delete markers); a hundred in a row is a loop.
pub const MAX_EMPTY_PAGES: u32 = 100;

/// Follows one listing's pages. Keeps a 64-bit fingerprint per token: a million-page
/// listing costs 8 MB at most, and usual ones a few KiB.
pub struct PageGuard {
    seen: HashSet<u64>,
    hasher: RandomState,
    empty_in_a_row: u32,
    pages: u64,
}

impl Default for PageGuard {
    fn default() -> Self {
        PageGuard::new()
    }
}

impl PageGuard {
    pub fn new() -> PageGuard {
        PageGuard { seen: HashSet::new(), hasher: RandomState::new(), empty_in_a_row: 0, pages: 0 }
    }

    /// Pages accepted so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Account for one page with `items` entries. `more` says whether the server announced
    /// another page, `token` is what it gave to ask for it. Returns the token to send next,
    /// `None` when the listing is complete.
    pub fn next(&mut self, more: bool, items: usize, token: Option<&str>) -> Result<Option<String>> {
        self.pages += 1;
        if !more {
            return Ok(None);
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(endless("the listing is truncated but has no continuation token"));
        };
        if !self.seen.insert(self.hasher.hash_one(token)) {
            return Err(endless(&format!(
                "the server sent a continuation token again after {} pages: the listing would never end",
                self.pages
            )));
        }
        if items == 0 {
            self.empty_in_a_row += 1;
            if self.empty_in_a_row >= MAX_EMPTY_PAGES {
                return Err(endless(&format!(
                    "{MAX_EMPTY_PAGES} listing pages in a row were empty: the listing makes no progress"
                )));
            }
        } else {
            self.empty_in_a_row = 0;
        }
        Ok(Some(token.to_string()))
    }
}

fn endless(msg: &str) -> Error {
    Error::new(Kind::Protocol, msg).with_retryable(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_listing_ends() {
        let mut g = PageGuard::new();
        assert_eq!(g.next(true, 10, Some("a")).unwrap().as_deref(), Some("a"));
        assert_eq!(g.next(true, 10, Some("b")).unwrap().as_deref(), Some("b"));
        assert_eq!(g.next(false, 3, None).unwrap(), None);
        assert_eq!(g.pages(), 3);
    }

    #[test]
    fn a_repeated_token_is_a_loop() {
        let mut g = PageGuard::new();
        g.next(true, 1, Some("a")).unwrap();
        g.next(true, 1, Some("b")).unwrap();
        let e = g.next(true, 1, Some("a")).unwrap_err();
        assert_eq!(e.kind(), Kind::Protocol);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("would never end"), "{e}");
    }

    #[test]
    fn truncated_without_token_is_an_error() {
        let mut g = PageGuard::new();
        assert!(g.next(true, 5, None).unwrap_err().to_string().contains("no continuation token"));
        let mut g = PageGuard::new();
        assert!(g.next(true, 5, Some("")).is_err());
    }

    #[test]
    fn endless_empty_pages_are_no_progress() {
        let mut g = PageGuard::new();
        for i in 0..MAX_EMPTY_PAGES - 1 {
            g.next(true, 0, Some(&format!("t{i}"))).unwrap();
        }
        // One page with entries resets the count.
        g.next(true, 1, Some("x")).unwrap();
        for i in 0..MAX_EMPTY_PAGES - 1 {
            g.next(true, 0, Some(&format!("u{i}"))).unwrap();
        }
        let e = g.next(true, 0, Some("last")).unwrap_err();
        assert!(e.to_string().contains("no progress"), "{e}");
    }
}
