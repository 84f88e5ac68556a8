//! The compiler: declarations to a [`Policy`]. Resolves lists and macros, type-checks every
//! comparison against the field table, checks every field against the event kinds the rule can
//! see, and collects every error with its position instead of stopping at the first.
//!
//! **Event kinds of a rule.** A rule must constrain `kind` explicitly (`kind = file_open`,
//! `kind in (…)`), so that it is evaluated, and armed in the kernel, only for those kinds. Its
//! kinds are then narrowed by the fields it requires: `kind in (file_open, process_exec) and
//! file.path = /x` only ever matches `file_open`. A field that cannot exist for any kind allowed
//! where it is used is an error (`kind = process_exec and file.path = /x`). Inside `or`
//! branches, each branch is checked against the kinds its own `kind` comparisons allow.
//!
//! This file holds the compiler's state, its bounds and the entry point; [`lists`] and
//! [`macros`] resolve declarations, [`rule`] compiles one rule, [`expr`] and [`compare`] turn
//! expressions into conditions, and [`kind_check`] works out the kinds a condition can see.

mod compare;
mod expr;
mod kind_check;
mod lists;
mod macros;
mod rule;

use std::collections::HashMap;
use std::rc::Rc;

use crate::ast::Expr;
use crate::diag::{Diagnostic, Diags, Loc};
use crate::document::{self, Item, Text};
use crate::policy::Policy;
use crate::source::SourceFile;
use crate::yaml;

/// How deep macros may use macros.
const MAX_MACRO_DEPTH: usize = 32;

/// How many comparisons one condition may expand to through macros (macros that use other
/// macros several times grow exponentially).
const MAX_EXPANSION: usize = 20_000;

/// How deep lists may include lists.
const MAX_LIST_DEPTH: usize = 32;

/// How many items one list may expand to.
const MAX_LIST_ITEMS: usize = 500_000;

/// How many items all lists together may expand to (the memory they take).
const MAX_LIST_ITEMS_TOTAL: usize = 1_000_000;

/// How many values (list items and literals) and comparisons all conditions of a policy may
/// expand to through lists and macros together: each condition is bounded by
/// [`MAX_EXPANSION`], but thousands of rules using one large list or macro would still take
/// minutes and gigabytes to compile.
const MAX_VALUES_TOTAL: usize = 2_000_000;
const MAX_EXPANSION_TOTAL: usize = 2_000_000;

/// Maps byte offsets of one condition's text to places in its file.
#[derive(Clone)]
struct CondSrc {
    file: usize,
    map: Vec<usize>,
}

impl CondSrc {
    fn new(sources: &[SourceFile], text: &Text) -> CondSrc {
        let file = text.loc.file as usize;
        let map = match sources.get(file) {
            Some(src) => src.scalar_map(text.loc.at as usize, &text.value),
            None => vec![text.loc.at as usize],
        };
        CondSrc { file, map }
    }

    fn loc(&self, offset: usize) -> Loc {
        let at = self
            .map
            .get(offset)
            .or(self.map.last())
            .copied()
            .unwrap_or(0);
        Loc::new(self.file, at)
    }
}

#[derive(Clone)]
struct MacroDef {
    parsed: Option<Expr>,
    src: CondSrc,
    /// Parts later files appended: `and` (true) or `or`, and the part.
    appended: Vec<(bool, Option<Expr>, CondSrc)>,
}

struct Compiler<'d, 's> {
    diags: &'d mut Diags<'s>,
    lists: HashMap<String, Vec<Text>>,
    macros: HashMap<String, Rc<MacroDef>>,
    /// Comparisons the current condition may still expand to.
    budget: usize,
    /// Comparisons and values the whole policy may still expand to.
    comparisons_left: usize,
    values_left: usize,
    /// The policy-wide bound was reported (once).
    over_total: bool,
}

/// Compiles parsed sources into a policy, or every diagnostic found.
pub(crate) fn compile(sources: Vec<SourceFile>) -> Result<Policy, Vec<Diagnostic>> {
    let mut diags = Diags::new(&sources);
    let mut items = Vec::new();
    for (file, src) in sources.iter().enumerate() {
        match yaml::parse(src) {
            Ok(docs) => items.extend(document::read(file, &docs, &mut diags)),
            Err(e) => diags.error_at_line(file, e.line, e.col, e.message),
        }
    }
    let mut c = Compiler {
        diags: &mut diags,
        lists: HashMap::new(),
        macros: HashMap::new(),
        budget: MAX_EXPANSION,
        comparisons_left: MAX_EXPANSION_TOTAL,
        values_left: MAX_VALUES_TOTAL,
        over_total: false,
    };
    let mut rules = Vec::new();
    let mut list_decls = Vec::new();
    let mut macro_decls = Vec::new();
    for item in items {
        match item {
            Item::Rule(r) => rules.push(*r),
            Item::RuleOverride(o) => crate::overrides::apply(&mut rules, *o, c.diags),
            Item::List(l) => list_decls.push(l),
            Item::Macro(m) => macro_decls.push(m),
        }
    }
    c.define_lists(list_decls);
    c.define_macros(&macro_decls);
    let mut compiled = Vec::new();
    let mut ids: HashMap<String, Loc> = HashMap::new();
    for decl in rules {
        if decl.id.value.is_empty() {
            let _ = c.rule(decl, 0);
            continue;
        }
        if let Some(first) = ids.get(&decl.id.value) {
            let (f, l, col) = c.position(*first);
            c.diags.error(
                decl.id.loc,
                format!("duplicate rule id '{}'", decl.id.value),
                Some(format!(
                    "first defined at {f}:{l}:{col}; give this rule its own id"
                )),
            );
            continue;
        }
        ids.insert(decl.id.value.clone(), decl.id.loc);
        if let Some(rule) = c.rule(decl, compiled.len()) {
            compiled.push(rule);
        }
    }
    let list_count = c.lists.len();
    let macro_count = c.macros.len();
    if !diags.is_empty() {
        return Err(diags.into_vec());
    }
    if compiled.len() > usize::from(u16::MAX) {
        // Blamed on the first rule past the limit, in the file that has it.
        let first_over = &compiled[usize::from(u16::MAX)].info;
        return Err(vec![Diagnostic {
            file: first_over.file.clone(),
            line: Some(first_over.line),
            col: Some(first_over.col),
            message: format!(
                "{} rules: at most {} are supported (this is rule {})",
                compiled.len(),
                u16::MAX,
                usize::from(u16::MAX) + 1
            ),
            hint: Some("use fewer rules: one rule matches many values through a list".into()),
        }]);
    }
    Ok(Policy::new(compiled, sources, list_count, macro_count))
}

impl Compiler<'_, '_> {
    fn position(&self, loc: Loc) -> (String, u32, u32) {
        match self.diags.sources().get(loc.file as usize) {
            Some(src) => {
                let (l, c) = src.line_col(loc.at as usize);
                (src.name.clone(), l, c)
            }
            None => (String::new(), 0, 0),
        }
    }
}
