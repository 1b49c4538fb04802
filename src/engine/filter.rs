//! Placeholder until the filter module lands (include everything).
pub struct FilterError(pub String);
impl std::fmt::Display for FilterError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.0) } }
pub struct Filter;
impl Filter {
    pub fn empty() -> Filter { Filter }
    pub fn is_empty(&self) -> bool { true }
    pub fn include_file(&self, _p: &[u8]) -> bool { true }
    pub fn include_dir(&self, _p: &[u8]) -> bool { true }
}
pub struct FilterBuilder;
impl FilterBuilder {
    pub fn new() -> Self { FilterBuilder }
    pub fn add_include(&mut self, _g: &str) -> Result<&mut Self, FilterError> { Ok(self) }
    pub fn add_exclude(&mut self, _g: &str) -> Result<&mut Self, FilterError> { Ok(self) }
    pub fn build(&self) -> Result<Filter, FilterError> { Ok(Filter) }
}
