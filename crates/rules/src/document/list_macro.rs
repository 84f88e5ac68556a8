//! `- list:` and `- macro:` items: a valid name, the list's items or the macro's condition, and
//! how they merge with an earlier item of the same name.

use super::scalars::{valid_name, value_of};
use super::{ListDecl, MacroDecl, Merge, Reader, Text, LIST_KEYS, MACRO_KEYS};
use crate::yaml::Node;

impl Reader<'_, '_> {
    fn name(&mut self, node: &Node, what: &str) -> Option<Text> {
        let t = self.text(node, what)?;
        if !valid_name(&t.value) {
            self.diags.error(
                t.loc,
                format!("invalid {what} '{}'", t.value),
                Some("use letters, digits, '_' and '-', starting with a letter (no '.', which fields use)".into()),
            );
            return None;
        }
        Some(t)
    }

    pub(super) fn list(&mut self, node: &Node) -> Option<ListDecl> {
        let entries = self.entries(node, LIST_KEYS, "a list");
        let get = |key: &str| value_of(&entries, key);
        let name = get("list").and_then(|v| self.name(v, "list name"));
        let items = match get("items") {
            Some(v) => self.strings(v, "items"),
            None => {
                self.error(
                    node,
                    "list is missing 'items'".into(),
                    Some("add `items: [a, b]`".into()),
                );
                None
            }
        };
        let merge = self.merge_of(&entries, &[("items", true)], "a list")?;
        let merge = match merge.as_slice() {
            [] => None,
            [(_, m)] => Some(*m),
            _ => None,
        };
        Some(ListDecl {
            name: name?,
            items: items?,
            merge,
        })
    }

    pub(super) fn macro_(&mut self, node: &Node) -> Option<MacroDecl> {
        let entries = self.entries(node, MACRO_KEYS, "a macro");
        let get = |key: &str| value_of(&entries, key);
        let name = get("macro").and_then(|v| self.name(v, "macro name"));
        let condition = match get("condition") {
            Some(v) => self.text(v, "condition"),
            None => {
                self.error(
                    node,
                    "macro is missing 'condition'".into(),
                    Some("add `condition: …`".into()),
                );
                None
            }
        };
        let merge = self.merge_of(&entries, &[("condition", true)], "a macro")?;
        let merge = merge.first().map(|(_, m)| *m);
        let mut condition = condition?;
        let mut and = true;
        if merge == Some(Merge::Append) {
            let (a, text) = self.appended(condition)?;
            and = a;
            condition = text;
        }
        Some(MacroDecl {
            name: name?,
            condition,
            merge,
            and,
        })
    }
}
