//! Lists: declarations merged across files (`append`, `override`), then lists that name other
//! lists expanded in place, within bounds on depth and size, with cycles reported.

use std::collections::HashMap;

use super::{Compiler, MAX_LIST_DEPTH, MAX_LIST_ITEMS, MAX_LIST_ITEMS_TOTAL};
use crate::diag::Loc;
use crate::document::{ListDecl, Merge, Text};

impl Compiler<'_, '_> {
    pub(super) fn define_lists(&mut self, decls: Vec<ListDecl>) {
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
}
