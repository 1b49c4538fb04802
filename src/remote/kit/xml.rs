//! A tiny XML element tree for the XML APIs (S3, Azure, WebDAV), and escaping.
//!
//! Their answers are small (one listing page is at most a few thousand entries), so a
//! tree is simpler and safer than a streaming state machine. Malformed XML is an error of
//! kind [`Kind::Protocol`] (retryable: proxies cut bodies); it never panics.

use crate::error::{Error, Kind, Result};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

#[derive(Debug, Default)]
pub struct Element {
    /// The local name (without prefix).
    pub name: String,
    /// The namespace the element's prefix resolves to ("" = none): WebDAV servers spell
    /// `DAV:` as `d:`, `D:`, `lp1:` or a default namespace, so only the resolved name counts.
    pub ns: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
    /// The first child with this namespace and local name.
    pub fn child_ns(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }
    pub fn children_ns<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.ns == ns && c.name == name)
    }
    /// Whether this element is `name` in namespace `ns`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }
}

/// A malformed answer (retryable).
pub fn bad(msg: impl std::fmt::Display) -> Error {
    Error::new(Kind::Protocol, format!("malformed XML from the server: {msg}")).with_retryable(true)
}

/// Parse a whole document into its root element.
pub fn parse(body: &[u8]) -> Result<Element> {
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (resolved, ev) = reader.read_resolved_event().map_err(bad)?;
        let ns = match resolved {
            ResolveResult::Bound(n) => n.into_inner().to_string(),
            _ => String::new(),
        };
        match ev {
            Event::Start(s) => {
                if stack.len() > 64 {
                    return Err(bad("nesting too deep"));
                }
                let name = s.local_name().as_ref().to_string();
                stack.push(Element { name, ns, ..Element::default() });
            }
            Event::Empty(s) => {
                let name = s.local_name().as_ref().to_string();
                let el = Element { name, ns, ..Element::default() };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| bad("unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let resolved = match r.resolve_char_ref().map_err(bad)? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_xml_entity(&name)
                        .ok_or_else(|| bad(format!("unknown entity &{name};")))?
                        .to_string(),
                };
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(bad("document ended inside an element"));
    }
    root.ok_or_else(|| bad("empty document"))
}

/// Text escaped for an XML element or attribute.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}
