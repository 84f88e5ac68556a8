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

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::ast::{Expr, Lit, Name, Op, Operand};
use crate::cidr::{canonical, Cidr};
use crate::cond::{CmpOp, Cond, FieldRef, Pred, Test};
use crate::diag::{Diagnostic, Diags, Loc};
use crate::document::{self, Item, ListDecl, MacroDecl, Merge, RuleDecl, Text};
use crate::fields::{self, Base, FieldType, FIELDS};
use crate::glob::Glob;
use crate::kinds::{self, parse_kind, KindSet, ALL_KINDS};
use crate::parser;
use crate::policy::{CompiledRule, Policy, RuleInfo};
use crate::source::SourceFile;
use crate::suggest;
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

fn allowed_ops(base: Base) -> &'static [Op] {
    match base {
        Base::Str => &[
            Op::Eq,
            Op::Ne,
            Op::In,
            Op::Contains,
            Op::StartsWith,
            Op::EndsWith,
            Op::Glob,
        ],
        Base::Num => &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::In],
        Base::Bool => &[Op::Eq, Op::Ne],
        Base::Addr => &[Op::Eq, Op::Ne, Op::In, Op::Cidr],
        Base::Kind => &[Op::Eq, Op::Ne, Op::In],
    }
}

/// Parses an integer: decimal (optionally negative), `0x…` hex, `0o…` octal or `0b…` binary.
pub(crate) fn parse_number(text: &str) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = if let Some(h) = digits.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = digits.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else {
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -value } else { value })
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value to compare with, and where it was written.
struct Val {
    text: String,
    loc: Loc,
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

    fn define_lists(&mut self, decls: Vec<ListDecl>) {
        let mut defined_at: HashMap<String, Loc> = HashMap::new();
        for decl in decls {
            let name = decl.name.value.clone();
            match (self.lists.contains_key(&name), decl.merge) {
                (true, None) => {
                    let (f, l, c) = defined_at
                        .get(&name)
                        .map(|loc| self.position(*loc))
                        .unwrap_or_default();
                    self.diags.error(
                        decl.name.loc,
                        format!("list '{name}' is already defined"),
                        Some(format!(
                            "first defined at {f}:{l}:{c}; add `append: true` to extend it"
                        )),
                    );
                }
                (false, Some(_)) => {
                    self.diags.error(
                        decl.name.loc,
                        format!(
                            "cannot override list '{name}': it is not defined before this item"
                        ),
                        Some("remove `append`/`override` to define it".into()),
                    );
                }
                (true, Some(Merge::Append)) => {
                    if let Some(items) = self.lists.get_mut(&name) {
                        items.extend(decl.items);
                    }
                }
                (true, Some(Merge::Replace)) => {
                    self.lists.insert(name, decl.items);
                }
                (false, None) => {
                    defined_at.insert(name.clone(), decl.name.loc);
                    self.lists.insert(name, decl.items);
                }
            }
        }
        self.resolve_lists(&defined_at);
    }

    /// Replaces items that name another list by that list's items, within bounds: lists nest
    /// at most [`MAX_LIST_DEPTH`] deep, one list expands to at most [`MAX_LIST_ITEMS`] items
    /// and all of them together to [`MAX_LIST_ITEMS_TOTAL`]. Lists that include another list
    /// several times grow exponentially (63 lists each naming the previous one twice would be
    /// 2^63 items), so sizes are counted first and only lists within bounds are built, each
    /// once. An error names the first list past a bound (the ones that include it are not
    /// repeated); lists past a bound, or in error, become empty so nothing else reports them.
    fn resolve_lists(&mut self, defined_at: &HashMap<String, Loc>) {
        let mut names: Vec<String> = self.lists.keys().cloned().collect();
        names.sort();
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let raw: Vec<Vec<Text>> = names
            .iter()
            .map(|n| self.lists.get(n).cloned().unwrap_or_default())
            .collect();
        // Per item: the list it names, if any (None for a literal or a cycle's back edge).
        let mut edges: Vec<Vec<Option<usize>>> = raw
            .iter()
            .map(|items| {
                items
                    .iter()
                    .map(|t| index.get(t.value.as_str()).copied())
                    .collect()
            })
            .collect();
        let n = names.len();
        const NEW: u8 = 0;
        const OPEN: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![NEW; n];
        let mut depth = vec![0usize; n];
        let mut size = vec![0u64; n];
        let mut bad = vec![false; n];
        let mut order = Vec::with_capacity(n);
        // Depth-first, with an explicit stack: 10,000 chained lists must not overflow ours.
        for root in 0..n {
            if state[root] != NEW {
                continue;
            }
            state[root] = OPEN;
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            while let Some(top) = stack.last_mut() {
                let (v, next) = (top.0, top.1);
                if next < edges[v].len() {
                    top.1 += 1;
                    let Some(c) = edges[v][next] else { continue };
                    match state[c] {
                        NEW => {
                            state[c] = OPEN;
                            stack.push((c, 0));
                        }
                        OPEN => {
                            let from = stack.iter().position(|&(x, _)| x == c).unwrap_or(0);
                            let path: Vec<&str> = stack[from..]
                                .iter()
                                .map(|&(x, _)| names[x].as_str())
                                .collect();
                            self.diags.error(
                                raw[v][next].loc,
                                format!("list cycle: {} -> {}", path.join(" -> "), names[c]),
                                Some("a list cannot contain itself".into()),
                            );
                            edges[v][next] = None;
                            bad[v] = true;
                        }
                        _ => {}
                    }
                    continue;
                }
                stack.pop();
                state[v] = DONE;
                order.push(v);
                let mut d = 1usize;
                let mut items = 0u64;
                let mut inherited = bad[v];
                for (item, edge) in edges[v].iter().enumerate() {
                    match edge {
                        Some(c) => {
                            d = d.max(depth[*c].saturating_add(1));
                            items = items.saturating_add(size[*c]);
                            inherited |= bad[*c];
                        }
                        // A cycle's back edge was an item naming a list: it adds nothing.
                        None if index.contains_key(raw[v][item].value.as_str()) => {}
                        None => items = items.saturating_add(1),
                    }
                }
                depth[v] = d.min(MAX_LIST_DEPTH + 1);
                size[v] = items;
                bad[v] = inherited;
                if inherited {
                    continue;
                }
                let at = defined_at
                    .get(&names[v])
                    .copied()
                    .or_else(|| raw[v].first().map(|t| t.loc))
                    .unwrap_or(Loc::new(0, 0));
                if d > MAX_LIST_DEPTH {
                    self.diags.error(
                        at,
                        format!(
                            "list '{}' nests lists more than {MAX_LIST_DEPTH} levels deep",
                            names[v]
                        ),
                        Some("include the items instead of a chain of lists".into()),
                    );
                    bad[v] = true;
                } else if items > MAX_LIST_ITEMS as u64 {
                    self.diags.error(
                        at,
                        format!(
                            "list '{}' expands to {items} items: at most {MAX_LIST_ITEMS} are supported",
                            names[v]
                        ),
                        Some("a list that names another list several times repeats its items: name it once".into()),
                    );
                    bad[v] = true;
                }
            }
        }
        // Build the lists within bounds, each once, included lists first.
        let mut built: Vec<Vec<Text>> = vec![Vec::new(); n];
        let mut total = 0usize;
        for v in order {
            if bad[v] {
                continue;
            }
            if total.saturating_add(size[v] as usize) > MAX_LIST_ITEMS_TOTAL {
                let at = defined_at.get(&names[v]).copied().unwrap_or(Loc::new(0, 0));
                self.diags.error(
                    at,
                    format!(
                        "the lists expand to more than {MAX_LIST_ITEMS_TOTAL} items in all (at list '{}')",
                        names[v]
                    ),
                    Some("lists that include other lists copy their items: include fewer".into()),
                );
                break;
            }
            let mut items = Vec::with_capacity(size[v] as usize);
            for (item, edge) in raw[v].iter().zip(&edges[v]) {
                match edge {
                    Some(c) => items.extend(built[*c].iter().cloned()),
                    None if index.contains_key(item.value.as_str()) => {}
                    None => items.push(item.clone()),
                }
            }
            total += items.len();
            built[v] = items;
        }
        self.lists = names.into_iter().zip(built).collect();
    }

    fn define_macros(&mut self, decls: &[MacroDecl]) {
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

    /// Parses and compiles one condition text.
    fn condition(&mut self, text: &Text) -> Option<Cond> {
        self.condition_parsed(text, &text.value)
    }

    /// Compiles `parse_text`, which has the offsets of `text` (an appended condition with its
    /// leading `and`/`or` blanked out).
    fn condition_parsed(&mut self, text: &Text, parse_text: &str) -> Option<Cond> {
        self.budget = MAX_EXPANSION;
        let src = CondSrc::new(self.diags.sources(), text);
        match parser::parse(parse_text) {
            Ok(expr) => self.expr(&expr, &src, &mut Vec::new(), 0),
            Err(e) => {
                self.diags.error(src.loc(e.at), e.message, e.hint);
                None
            }
        }
    }

    fn rule(&mut self, decl: RuleDecl, index: usize) -> Option<CompiledRule> {
        let mut cond = self.condition(&decl.condition);
        for (and, text) in &decl.appended {
            let extra = self.condition_parsed(text, &document::blank_lead(&text.value));
            cond = join(cond, extra, *and);
        }
        let exceptions: Vec<Option<Cond>> =
            decl.exceptions.iter().map(|e| self.condition(e)).collect();
        let cond = cond?;
        let mut errors = false;
        let possible = possible_kinds(&cond);
        if constraint(&cond) == KindSet::ALL {
            let hint = if possible == KindSet::ALL || possible.len() > 8 {
                "add e.g. `kind = process_exec and …`".to_string()
            } else {
                format!(
                    "add e.g. `kind = {} and …`; its fields exist for: {possible}",
                    possible
                        .iter()
                        .next()
                        .map(|k| k.as_str())
                        .unwrap_or("process_exec")
                )
            };
            self.diags.error(
                decl.condition.loc,
                format!("rule '{}' does not constrain `kind`", decl.id.value),
                Some(hint),
            );
            errors = true;
        }
        if !check_kinds(&cond, KindSet::ALL, self.diags) {
            errors = true;
        } else if possible.is_empty() && !errors {
            self.diags.error(
                decl.condition.loc,
                format!(
                    "rule '{}' can never match: its `kind` comparisons exclude each other",
                    decl.id.value
                ),
                None,
            );
            errors = true;
        }
        let mut compiled_exceptions = Vec::new();
        for exc in exceptions {
            match exc {
                Some(c) => {
                    if !check_kinds(&c, possible, self.diags) {
                        errors = true;
                    }
                    compiled_exceptions.push(c);
                }
                None => errors = true,
            }
        }
        let rate = match &decl.rate {
            Some(r) => match crate::counting::resolve(r, possible, decl.action, self.diags) {
                Some(spec) => Some(spec),
                None => {
                    errors = true;
                    None
                }
            },
            None => None,
        };
        if errors || !decl.valid {
            return None;
        }
        let (file, line, col) = self.position(decl.id.loc);
        let condition = crate::overrides::condition_text(&decl);
        let info = RuleInfo {
            index: index as u16,
            id: decl.id.value,
            name: decl.name.value,
            description: decl.description,
            severity: decl.severity,
            mitre: decl.mitre,
            action: decl.action,
            mode: decl.mode,
            enabled: decl.enabled,
            tags: decl.tags,
            throttle: decl.throttle,
            kinds: possible.iter().collect(),
            condition,
            rate: rate.as_ref().map(crate::counting::RateSpec::describe),
            exceptions: decl
                .exceptions
                .iter()
                .map(|e| e.value.trim().to_string())
                .collect(),
            file,
            line,
            col,
        };
        Some(CompiledRule::new(
            Arc::new(info),
            cond,
            compiled_exceptions,
            possible,
            rate,
        ))
    }

    fn expr(
        &mut self,
        e: &Expr,
        src: &CondSrc,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Option<Cond> {
        if self.budget == 0 || self.over_total {
            return None;
        }
        if let Expr::Cmp { field, .. } | Expr::Exists { field } | Expr::Ref(field) = e {
            if self.comparisons_left == 0 {
                self.total_exceeded(src.loc(field.at), "comparisons", MAX_EXPANSION_TOTAL);
                return None;
            }
            self.comparisons_left -= 1;
            self.budget -= 1;
            if self.budget == 0 {
                self.diags.error(
                    src.loc(field.at),
                    format!(
                        "condition expands to more than {MAX_EXPANSION} comparisons through macros"
                    ),
                    Some("use lists instead of macros that repeat other macros".into()),
                );
                return None;
            }
        }
        match e {
            Expr::And(items) | Expr::Or(items) => {
                let parts: Vec<Option<Cond>> = items
                    .iter()
                    .map(|i| self.expr(i, src, stack, depth))
                    .collect();
                let parts: Option<Vec<Cond>> = parts.into_iter().collect();
                let parts = parts?;
                Some(if matches!(e, Expr::And(_)) {
                    Cond::And(flatten(parts, true))
                } else {
                    Cond::Or(flatten(parts, false))
                })
            }
            Expr::Not(inner) => Some(Cond::Not(Box::new(self.expr(inner, src, stack, depth)?))),
            Expr::Exists { field } => {
                let (fref, ty) = self.field(field, src)?;
                if ty.base == Base::Kind {
                    self.diags.error(
                        src.loc(field.at),
                        "'kind exists' is always true".to_string(),
                        Some("compare kind with a value, e.g. `kind = file_open`".into()),
                    );
                    return None;
                }
                Some(self.pred(fref, Test::Exists, src.loc(field.at)))
            }
            Expr::Ref(name) => self.reference(name, src, stack, depth),
            Expr::Cmp {
                field,
                op,
                op_at,
                value,
            } => self.compare(field, *op, *op_at, value, src),
        }
    }

    /// Reports, once, that the whole policy expands past a bound.
    fn total_exceeded(&mut self, loc: Loc, what: &str, bound: usize) {
        if !self.over_total {
            self.over_total = true;
            self.diags.error(
                loc,
                format!("the policy's conditions expand to more than {bound} {what} through lists and macros"),
                Some("use a list once in one rule instead of repeating large lists or macros in many rules".into()),
            );
        }
    }

    /// Takes `n` values from the policy-wide budget; false (reported) when it is spent.
    fn take_values(&mut self, n: usize, loc: Loc) -> bool {
        if self.over_total {
            return false;
        }
        if n > self.values_left {
            self.total_exceeded(loc, "values", MAX_VALUES_TOTAL);
            return false;
        }
        self.values_left -= n;
        true
    }

    fn pred(&self, field: FieldRef, test: Test, loc: Loc) -> Cond {
        Cond::Pred(Box::new(Pred { field, test, loc }))
    }

    fn reference(
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

    fn field(&mut self, name: &Name, src: &CondSrc) -> Option<(FieldRef, FieldType)> {
        if let Some(i) = fields::lookup(&name.text) {
            return Some((FieldRef::Table(i), FIELDS[i].ty));
        }
        if let Some(var) = name.text.strip_prefix(fields::ENV_PREFIX) {
            if valid_env_name(var) {
                return Some((
                    FieldRef::Env(var.into()),
                    FieldType {
                        base: Base::Str,
                        list: false,
                    },
                ));
            }
        }
        if let Some((of, key)) = fields::label_field(&name.text) {
            return Some((
                FieldRef::Label(of, key.into()),
                FieldType {
                    base: Base::Str,
                    list: false,
                },
            ));
        }
        let hint = if self.macros.contains_key(&name.text) {
            Some(format!(
                "'{}' is a macro: use it on its own, not with an operator",
                name.text
            ))
        } else {
            suggest::hint(&name.text, fields::all_names())
        };
        self.diags.error(
            src.loc(name.at),
            format!("unknown field '{}'", name.text),
            hint,
        );
        None
    }

    /// The values of an operand, with list names expanded.
    fn values(&mut self, op: Op, value: &Operand, src: &CondSrc) -> Option<Vec<Val>> {
        let lit = |l: &Lit| Val {
            text: l.text.clone(),
            loc: src.loc(l.at),
        };
        match value {
            Operand::One(l) if op == Op::In => {
                if !l.quoted {
                    let size = self.lists.get(&l.text).map(Vec::len);
                    if let Some(size) = size {
                        if !self.take_values(size, src.loc(l.at)) {
                            return None;
                        }
                    }
                    if let Some(items) = self.lists.get(&l.text) {
                        return Some(
                            items
                                .iter()
                                .map(|t| Val {
                                    text: t.value.clone(),
                                    loc: t.loc,
                                })
                                .collect(),
                        );
                    }
                }
                let mut names: Vec<&str> = self.lists.keys().map(String::as_str).collect();
                names.sort();
                let hint = suggest::hint(&l.text, names)
                    .unwrap_or_else(|| format!("write a list: `in ({})`", l.text));
                self.diags.error(
                    src.loc(l.at),
                    format!("unknown list '{}'", l.text),
                    Some(hint),
                );
                None
            }
            Operand::One(l) => Some(vec![lit(l)]),
            Operand::List(items, _) => {
                let mut out = Vec::new();
                for item in items {
                    let size = match self.lists.get(&item.text) {
                        Some(list) if !item.quoted => list.len(),
                        _ => 1,
                    };
                    if !self.take_values(size, src.loc(item.at)) {
                        return None;
                    }
                    match self.lists.get(&item.text) {
                        Some(list) if !item.quoted => out.extend(list.iter().map(|t| Val {
                            text: t.value.clone(),
                            loc: t.loc,
                        })),
                        _ => out.push(lit(item)),
                    }
                }
                Some(out)
            }
        }
    }

    fn compare(
        &mut self,
        field: &Name,
        op: Op,
        op_at: usize,
        value: &Operand,
        src: &CondSrc,
    ) -> Option<Cond> {
        let (fref, ty) = self.field(field, src)?;
        let op_loc = src.loc(op_at);
        if !allowed_ops(ty.base).contains(&op) {
            let ops: Vec<&str> = allowed_ops(ty.base).iter().map(|o| o.as_str()).collect();
            let hint = if op == Op::Cidr {
                "cidr applies to address fields: network.saddr, network.daddr, process.stdio_sockets.peer_addr".to_string()
            } else {
                format!("a {} field takes {}", ty.describe(), ops.join(" "))
            };
            self.diags.error(
                op_loc,
                format!(
                    "operator '{}' does not apply to {} field '{}'",
                    op.as_str(),
                    ty.describe(),
                    field.text
                ),
                Some(hint),
            );
            return None;
        }
        let vals = self.values(op, value, src)?;
        let single =
            matches!(op, Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge) || ty.base == Base::Bool;
        if single && vals.len() != 1 {
            let hint = if op == Op::Ne {
                "use `not … in (…)` to exclude several values"
            } else {
                "compare with one value"
            };
            self.diags.error(
                op_loc,
                format!("'{}' takes a single value, found a list", op.as_str()),
                Some(hint.into()),
            );
            return None;
        }
        let floc = src.loc(field.at);
        match ty.base {
            Base::Kind => self.kind_compare(op, &vals),
            Base::Str => {
                let texts = || vals.iter().map(|v| Box::<str>::from(v.text.as_str()));
                let test = match op {
                    Op::Eq if vals.len() == 1 => Test::StrEq(vals[0].text.as_str().into()),
                    Op::Eq | Op::In => Test::StrIn(texts().collect()),
                    Op::Ne => Test::StrNe(vals[0].text.as_str().into()),
                    Op::Contains => Test::Contains(texts().collect()),
                    Op::StartsWith => Test::StartsWith(texts().collect()),
                    Op::EndsWith => Test::EndsWith(texts().collect()),
                    Op::Glob => {
                        let mut globs = Vec::new();
                        let mut ok = true;
                        for v in &vals {
                            match Glob::new(&v.text) {
                                Ok(g) => globs.push(g),
                                Err(e) => {
                                    self.diags.error(
                                        v.loc,
                                        format!("invalid glob: {e}"),
                                        Some("escape a literal '[' as '\\['".into()),
                                    );
                                    ok = false;
                                }
                            }
                        }
                        if !ok {
                            return None;
                        }
                        Test::Glob(globs.into())
                    }
                    _ => return None,
                };
                Some(self.pred(fref, test, floc))
            }
            Base::Num => {
                let mut nums = Vec::new();
                for v in &vals {
                    match parse_number(&v.text) {
                        Some(n) => nums.push(n),
                        None => self.diags.error(
                            v.loc,
                            format!(
                                "'{}' is not a number (field '{}' is a {})",
                                v.text,
                                field.text,
                                ty.describe()
                            ),
                            Some("write e.g. 0, 1000, 0x10 or 0o4000".into()),
                        ),
                    }
                }
                if nums.len() != vals.len() {
                    return None;
                }
                let test = match op {
                    Op::Eq if nums.len() == 1 => Test::Num(CmpOp::Eq, nums[0]),
                    Op::Eq | Op::In => Test::NumIn(nums.into_iter().collect()),
                    Op::Ne => Test::Num(CmpOp::Ne, nums[0]),
                    Op::Lt => Test::Num(CmpOp::Lt, nums[0]),
                    Op::Le => Test::Num(CmpOp::Le, nums[0]),
                    Op::Gt => Test::Num(CmpOp::Gt, nums[0]),
                    Op::Ge => Test::Num(CmpOp::Ge, nums[0]),
                    _ => return None,
                };
                Some(self.pred(fref, test, floc))
            }
            Base::Bool => {
                let v = &vals[0];
                let b = match v.text.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        self.diags.error(
                            v.loc,
                            format!(
                                "'{}' is not true or false (field '{}' is a boolean)",
                                v.text, field.text
                            ),
                            None,
                        );
                        return None;
                    }
                };
                Some(self.pred(fref, Test::Bool(if op == Op::Ne { !b } else { b }), floc))
            }
            Base::Addr => {
                if op == Op::Cidr {
                    let mut nets = Vec::new();
                    for v in &vals {
                        match Cidr::parse(&v.text) {
                            Ok(n) => nets.push(n),
                            Err(e) => {
                                self.diags
                                    .error(v.loc, format!("invalid network: {e}"), e.hint())
                            }
                        }
                    }
                    if nets.len() != vals.len() {
                        return None;
                    }
                    return Some(self.pred(fref, Test::Cidr(nets.into()), floc));
                }
                let mut addrs = Vec::new();
                for v in &vals {
                    match v.text.parse::<std::net::IpAddr>() {
                        Ok(a) => addrs.push(canonical(a)),
                        Err(_) => {
                            let hint = if v.text.contains('/') {
                                "use `cidr` to compare with a network"
                            } else {
                                "write e.g. 10.0.0.1 or ::1"
                            };
                            self.diags.error(
                                v.loc,
                                format!("'{}' is not an IP address", v.text),
                                Some(hint.into()),
                            );
                        }
                    }
                }
                if addrs.len() != vals.len() {
                    return None;
                }
                let test = match op {
                    Op::Eq if addrs.len() == 1 => Test::AddrEq(addrs[0]),
                    Op::Eq | Op::In => Test::AddrIn(addrs.into_iter().collect()),
                    Op::Ne => Test::AddrNe(addrs[0]),
                    _ => return None,
                };
                Some(self.pred(fref, test, floc))
            }
        }
    }

    fn kind_compare(&mut self, op: Op, vals: &[Val]) -> Option<Cond> {
        let mut set = KindSet::EMPTY;
        let mut ok = true;
        for v in vals {
            match parse_kind(&v.text) {
                Some(k) => set = set.union(kinds::one(k)),
                None => {
                    let hint = suggest::hint(&v.text, ALL_KINDS.iter().map(|k| k.as_str()));
                    self.diags
                        .error(v.loc, format!("unknown event kind '{}'", v.text), hint);
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        Some(Cond::Kind(if op == Op::Ne {
            KindSet::ALL.without(set)
        } else {
            set
        }))
    }
}

/// `a and b` (or `a or b`), when both compiled.
fn join(a: Option<Cond>, b: Option<Cond>, and: bool) -> Option<Cond> {
    let (a, b) = (a?, b?);
    Some(if and {
        Cond::And(flatten(vec![a, b], true))
    } else {
        Cond::Or(vec![a, b])
    })
}

/// Merges nested `and`s into one list (and nested `or`s), so long chains do not nest.
fn flatten(parts: Vec<Cond>, and: bool) -> Vec<Cond> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Cond::And(inner) if and => out.extend(inner),
            Cond::Or(inner) if !and => out.extend(inner),
            other => out.push(other),
        }
    }
    out
}

/// The exact kind set of a condition that depends on `kind` alone, or `None`.
pub(crate) fn kind_only(c: &Cond) -> Option<KindSet> {
    match c {
        Cond::Kind(s) => Some(*s),
        Cond::Pred(_) => None,
        Cond::Not(x) => kind_only(x).map(|s| KindSet::ALL.without(s)),
        Cond::And(cs) => cs
            .iter()
            .try_fold(KindSet::ALL, |acc, c| Some(acc.intersect(kind_only(c)?))),
        Cond::Or(cs) => cs
            .iter()
            .try_fold(KindSet::EMPTY, |acc, c| Some(acc.union(kind_only(c)?))),
    }
}

/// The kinds a condition's `kind` comparisons allow (fields ignored).
pub(crate) fn constraint(c: &Cond) -> KindSet {
    if let Some(s) = kind_only(c) {
        return s;
    }
    match c {
        Cond::And(cs) => cs
            .iter()
            .fold(KindSet::ALL, |acc, c| acc.intersect(constraint(c))),
        Cond::Or(cs) => cs
            .iter()
            .fold(KindSet::EMPTY, |acc, c| acc.union(constraint(c))),
        _ => KindSet::ALL,
    }
}

/// The kinds on which a condition can be true: its `kind` comparisons, narrowed by the fields
/// it requires (a comparison on a field is false where the field does not exist).
pub(crate) fn possible_kinds(c: &Cond) -> KindSet {
    match c {
        Cond::Kind(s) => *s,
        Cond::Pred(p) => p.field.kinds(),
        Cond::Not(x) => kind_only(x)
            .map(|s| KindSet::ALL.without(s))
            .unwrap_or(KindSet::ALL),
        Cond::And(cs) => cs
            .iter()
            .fold(KindSet::ALL, |acc, c| acc.intersect(possible_kinds(c))),
        Cond::Or(cs) => cs
            .iter()
            .fold(KindSet::EMPTY, |acc, c| acc.union(possible_kinds(c))),
    }
}

/// Reports each field used where none of the allowed kinds has it. Returns false on an error.
fn check_kinds(c: &Cond, allowed: KindSet, diags: &mut Diags<'_>) -> bool {
    match c {
        Cond::And(cs) => {
            let narrowed = cs
                .iter()
                .fold(allowed, |acc, c| acc.intersect(constraint(c)));
            let mut ok = true;
            for c in cs {
                ok &= check_kinds(c, narrowed, diags);
            }
            ok
        }
        Cond::Or(cs) => {
            let mut ok = true;
            for c in cs {
                ok &= check_kinds(c, allowed, diags);
            }
            ok
        }
        Cond::Not(x) => check_kinds(x, allowed, diags),
        Cond::Pred(p) => {
            let kinds = p.field.kinds();
            if !allowed.is_empty() && kinds.intersect(allowed).is_empty() {
                let shown = if kinds.len() > 6 {
                    format!("{} kinds", kinds.len())
                } else {
                    kinds.to_string()
                };
                diags.error(
                    p.loc,
                    format!(
                        "field '{}' does not exist for kind{} {}",
                        p.field.name(),
                        if allowed.len() == 1 { "" } else { "s" },
                        allowed
                    ),
                    Some(format!("it exists for {shown}")),
                );
                return false;
            }
            true
        }
        Cond::Kind(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_every_base() {
        assert_eq!(parse_number("1000"), Some(1000));
        assert_eq!(parse_number("-1"), Some(-1));
        assert_eq!(parse_number("0x10"), Some(16));
        assert_eq!(parse_number("0o4000"), Some(2048));
        assert_eq!(parse_number("0b101"), Some(5));
        assert_eq!(parse_number("12a"), None);
        assert_eq!(parse_number("+1"), None);
    }
}
