//! YAML to a small tree that remembers where every node was written.
//!
//! serde-style deserialization loses positions, and positions are the point of a policy
//! compiler's errors, so the files are read with yaml-rust2's event parser into [`Node`]s that
//! carry the char index of their first character. Anchors and aliases are refused: a policy
//! should read top to bottom.

use yaml_rust2::parser::{Event as YamlEvent, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::source::SourceFile;

/// One YAML node and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub value: NodeValue,
    /// Char index of the node's first character in its source.
    pub at: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeValue {
    /// A scalar and whether it was written quoted or as a block (`|`, `>`).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar's text, when this is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for an empty value (`key:` with nothing after it) or `~`/`null`.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, NodeValue::Scalar { text, plain: true }
            if text.is_empty() || text == "~" || text == "null")
    }

    /// What the node is, for messages: `a scalar`, `a list`, `a mapping`.
    pub fn describe(&self) -> &'static str {
        match self.value {
            NodeValue::Scalar { .. } => "a scalar",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error: 1-based line and column and the parser's message.
#[derive(Debug, Clone)]
pub(crate) struct YamlError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

enum Frame {
    Seq(usize, Vec<Node>),
    Map(usize, Vec<(Node, Node)>, Option<Node>),
}

/// Deepest YAML nesting accepted; policies need four levels.
pub(crate) const MAX_YAML_DEPTH: usize = 32;

struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    alias_at: Option<usize>,
    /// Levels being skipped because they are nested too deep, and where that started.
    skipped: usize,
    too_deep_at: Option<usize>,
}

impl Builder {
    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, key)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => self.docs.push(node),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: YamlEvent, mark: Marker) {
        let at = mark.index();
        if self.skipped > 0
            || (self.stack.len() >= MAX_YAML_DEPTH
                && matches!(
                    ev,
                    YamlEvent::SequenceStart(..) | YamlEvent::MappingStart(..)
                ))
        {
            // Too deep: count levels instead of building nodes (a deep tree would also be
            // dropped recursively).
            match ev {
                YamlEvent::SequenceStart(..) | YamlEvent::MappingStart(..) => {
                    self.skipped += 1;
                    self.too_deep_at.get_or_insert(at);
                }
                YamlEvent::SequenceEnd | YamlEvent::MappingEnd => self.skipped -= 1,
                _ => {}
            }
            return;
        }
        match ev {
            YamlEvent::Scalar(text, style, _, _) => self.push_node(Node {
                value: NodeValue::Scalar {
                    text,
                    plain: style == TScalarStyle::Plain,
                },
                at,
            }),
            YamlEvent::SequenceStart(..) => self.stack.push(Frame::Seq(at, Vec::new())),
            YamlEvent::MappingStart(..) => self.stack.push(Frame::Map(at, Vec::new(), None)),
            YamlEvent::SequenceEnd => {
                if let Some(Frame::Seq(start, items)) = self.stack.pop() {
                    self.push_node(Node {
                        value: NodeValue::Seq(items),
                        at: start,
                    });
                }
            }
            YamlEvent::MappingEnd => {
                if let Some(Frame::Map(start, entries, _)) = self.stack.pop() {
                    // A block mapping's start mark is after its first key; its first key is
                    // where a reader sees it begin.
                    let at = entries.first().map(|(k, _)| k.at).unwrap_or(start);
                    self.push_node(Node {
                        value: NodeValue::Map(entries),
                        at,
                    });
                }
            }
            YamlEvent::Alias(_) if self.alias_at.is_none() => self.alias_at = Some(at),
            _ => {}
        }
    }
}

/// Parses every document of `src`.
pub(crate) fn parse(src: &SourceFile) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder {
        stack: Vec::new(),
        docs: Vec::new(),
        alias_at: None,
        skipped: 0,
        too_deep_at: None,
    };
    let mut parser = Parser::new_from_str(&src.text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(YamlError {
            line: m.line() as u32,
            col: m.col() as u32 + 1,
            message: format!("invalid YAML: {}", e.info()),
        });
    }
    if let Some(at) = builder.too_deep_at {
        let (line, col) = src.line_col(at);
        return Err(YamlError {
            line,
            col,
            message: format!("YAML nests deeper than {MAX_YAML_DEPTH} levels"),
        });
    }
    if let Some(at) = builder.alias_at {
        let (line, col) = src.line_col(at);
        return Err(YamlError {
            line,
            col,
            message: "YAML aliases (*name) are not supported in policies: write the value out"
                .to_string(),
        });
    }
    Ok(builder.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_positions() {
        let src = SourceFile::new("f", "- rule: x\n  items: [a, 'b']\n");
        let docs = parse(&src).unwrap();
        let NodeValue::Seq(items) = &docs[0].value else {
            panic!("expected a sequence")
        };
        let NodeValue::Map(entries) = &items[0].value else {
            panic!("expected a mapping")
        };
        assert_eq!(src.line_col(entries[0].0.at), (1, 3));
        let NodeValue::Seq(list) = &entries[1].1.value else {
            panic!("expected a list")
        };
        assert_eq!(src.line_col(list[1].at), (2, 14));
        assert_eq!(list[1].as_scalar(), Some("b"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let src = SourceFile::new("f", "a: [b\n c: : d");
        let err = parse(&src).unwrap_err();
        assert_eq!((err.line, err.col), (2, 3));
    }

    #[test]
    fn deep_nesting_is_refused_without_building_it() {
        let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let err = parse(&SourceFile::new("f", text)).unwrap_err();
        assert_eq!((err.line, err.col), (1, 33));
        assert!(err.message.contains("deeper than 32"), "{}", err.message);
        // Far deeper input is refused by the YAML parser itself.
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&SourceFile::new("f", text)).is_err());
    }

    #[test]
    fn aliases_are_refused() {
        let src = SourceFile::new("f", "a: &x 1\nb: *x\n");
        let err = parse(&src).unwrap_err();
        assert!(err.message.contains("aliases"), "{}", err.message);
    }
}
