//! Placeholder until the bwlimit module lands (unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)] pub struct BwPair { pub tx: Option<u64>, pub rx: Option<u64> }
#[derive(Clone, Debug, PartialEq)] pub struct BwTimetable;
impl BwTimetable {
    pub fn parse(_s: &str) -> Result<BwTimetable, String> { Ok(BwTimetable) }
    pub fn unlimited() -> Self { BwTimetable }
    pub fn limit_now(&self) -> BwPair { BwPair { tx: None, rx: None } }
    pub fn is_unlimited(&self) -> bool { true }
}
pub struct RateLimiter;
impl RateLimiter {
    pub fn new(_b: Option<u64>) -> Self { RateLimiter }
    pub fn set_rate(&self, _b: Option<u64>) {}
    pub fn acquire(&self, _n: usize, _s: &dyn Fn() -> bool) -> bool { true }
}
