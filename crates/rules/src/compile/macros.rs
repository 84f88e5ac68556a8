//! Macros: declarations merged across files, each checked on its own, and a name used as a
//! condition expanded (a macro, a boolean field) or reported (a list, an unknown name), with
//! cycles and nesting depth bounded.

use std::collections::HashMap;
use std::rc::Rc;

use super::expr::join;
use super::{Compiler, CondSrc, MacroDef, MAX_EXPANSION, MAX_MACRO_DEPTH};
use crate::ast::Name;
use crate::cond::{Cond, FieldRef, Test};
use crate::diag::Loc;
use crate::document::{self, MacroDecl, Merge};
use crate::fields::{self, Base, FIELDS};
use crate::parser;
use crate::suggest;

impl Compiler<'_, '_> {
    pub(super) fn define_macros(&mut self, decls: &[MacroDecl]) {
        let mut defined_at: HashMap<String, Loc> = HashMap::new();
        for decl in decls {
            let name = &decl.name.value;
            if let Some(merge) = decl.merge {
                self.merge_macro(decl, merge);
                continue;
            }
            if let Some(first) = defined_at.get(name) {
                let (f, l, c) = self.position(*first);
                self.diags.error(
                    decl.name.loc,
                    format!("macro '{name}' is already defined"),
                    Some(format!("first defined at {f}:{l}:{c}")),
                );
                continue;
            }
            if self.lists.contains_key(name) {
                self.diags.error(
                    decl.name.loc,
                    format!("macro '{name}' has the same name as a list"),
                    Some("rename one of them".into()),
                );
            }
            defined_at.insert(name.clone(), decl.name.loc);
            let src = CondSrc::new(self.diags.sources(), &decl.condition);
            let parsed = match parser::parse(&decl.condition.value) {
                Ok(expr) => Some(expr),
                Err(e) => {
                    self.diags.error(src.loc(e.at), e.message, e.hint);
                    None
                }
            };
            self.macros.insert(
                name.clone(),
                Rc::new(MacroDef {
                    parsed,
                    src,
                    appended: Vec::new(),
                }),
            );
        }
        // Check every macro on its own, so mistakes in unused macros are reported too.
        let mut names: Vec<String> = self.macros.keys().cloned().collect();
        names.sort();
        for name in names {
            if let Some(def) = self.macros.get(&name).cloned() {
                let mut stack = vec![name.clone()];
                self.budget = MAX_EXPANSION;
                let _ = self.macro_body(&def, &mut stack, 1);
            }
        }
    }

    /// Appends to or replaces the condition of an earlier macro.
    fn merge_macro(&mut self, decl: &MacroDecl, merge: Merge) {
        let name = &decl.name.value;
        let Some(def) = self.macros.get(name).cloned() else {
            self.diags.error(
                decl.name.loc,
                format!("cannot override macro '{name}': it is not defined before this item"),
                Some("remove `append`/`override` to define it".into()),
            );
            return;
        };
        let src = CondSrc::new(self.diags.sources(), &decl.condition);
        let text = match merge {
            Merge::Append => document::blank_lead(&decl.condition.value),
            Merge::Replace => decl.condition.value.clone(),
        };
        let parsed = match parser::parse(&text) {
            Ok(expr) => Some(expr),
            Err(e) => {
                self.diags.error(src.loc(e.at), e.message, e.hint);
                None
            }
        };
        let mut def = (*def).clone();
        match merge {
            Merge::Append => def.appended.push((decl.and, parsed, src)),
            Merge::Replace => {
                def.parsed = parsed;
                def.src = src;
                def.appended.clear();
            }
        }
        self.macros.insert(name.clone(), Rc::new(def));
    }

    /// A macro's condition with its appended parts.
    fn macro_body(
        &mut self,
        def: &MacroDef,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Option<Cond> {
        let mut out = self.expr(def.parsed.as_ref()?, &def.src, stack, depth);
        for (and, part, src) in &def.appended {
            let extra = self.expr(part.as_ref()?, src, stack, depth);
            out = join(out, extra, *and);
        }
        out
    }

    pub(super) fn reference(
        &mut self,
        name: &Name,
        src: &CondSrc,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Option<Cond> {
        let loc = src.loc(name.at);
        if let Some(def) = self.macros.get(&name.text).cloned() {
            if stack.contains(&name.text) {
                let mut path = stack.clone();
                path.push(name.text.clone());
                self.diags.error(
                    loc,
                    format!("macro cycle: {}", path.join(" -> ")),
                    Some("a macro cannot use itself, directly or through others".into()),
                );
                return None;
            }
            if depth >= MAX_MACRO_DEPTH {
                self.diags.error(
                    loc,
                    format!("macros nest deeper than {MAX_MACRO_DEPTH} levels"),
                    None,
                );
                return None;
            }
            def.parsed.as_ref()?;
            stack.push(name.text.clone());
            let out = self.macro_body(&def, stack, depth + 1);
            stack.pop();
            return out;
        }
        if let Some(i) = fields::lookup(&name.text) {
            let ty = FIELDS[i].ty;
            if ty.base == Base::Bool {
                return Some(self.pred(FieldRef::Table(i), Test::Bool(true), loc));
            }
            self.diags.error(
                loc,
                format!(
                    "field '{}' is {} {}, not a condition",
                    name.text,
                    if ty.base == Base::Addr || ty.base == Base::Kind {
                        "an"
                    } else {
                        "a"
                    },
                    ty.describe()
                ),
                Some(format!(
                    "compare it, e.g. `{} {} …`",
                    name.text,
                    if ty.base == Base::Num { "=" } else { "in" }
                )),
            );
            return None;
        }
        if self.lists.contains_key(&name.text) {
            self.diags.error(
                loc,
                format!("'{}' is a list, not a condition", name.text),
                Some(format!(
                    "use it after an operator, e.g. `process.name in ({})`",
                    name.text
                )),
            );
            return None;
        }
        let mut candidates: Vec<String> = self.macros.keys().cloned().collect();
        candidates.sort();
        candidates.extend(fields::all_names().map(String::from));
        let hint = suggest::hint(&name.text, candidates.iter().map(String::as_str));
        self.diags
            .error(loc, format!("unknown macro or field '{}'", name.text), hint);
        None
    }
}
