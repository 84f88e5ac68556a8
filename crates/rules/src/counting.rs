//! Counting rules: a rule with `rate:` alerts when N of its matching events (or N *distinct* values
//! of some fields) come from one group within T seconds, rather than on every match.
//!
//! ```yaml
//! rate:
//!   count: 20                      # N, 2..=500
//!   within: 10s                    # T: 1s..=1h, written 10s, 2m, 1h or plain seconds
//!   by: [parent]                   # the group: process | parent | any field (default process)
//!   distinct: [network.dport]      # optional: count distinct values instead of events
//! ```
//!
//! `process` groups by the acting process image (`exec_id`), `parent` by the image that started
//! it, so a loop that runs one `nc` per port counts in its shell's group, and the shell's own
//! connections count there too. A field in `by` adds its value to the group (e.g.
//! `dns.parent_domain`: distinct names per parent domain per process).
//!
//! **Memory is bounded**: at most [`MAX_WINDOWS`] groups and [`MAX_ENTRIES`] remembered events
//! over all of them (16 bytes each: a time and a hash of the distinct values). When either is
//! full, the oldest group is forgotten (counted in [`RateState::evicted`]): under a flood of new
//! groups a rate can be missed, never invented. When a group reaches N it alerts once and starts
//! counting again from zero. Time is the events' own timestamps, so a replay (`policy test`)
//! decides the same way as the agent.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use shrike_event::Event;

use crate::cond::FieldRef;
use crate::diag::Diags;
use crate::document::RateDecl;
use crate::fields::{self, Value, FIELDS};
use crate::kinds::KindSet;
use crate::meta::Action;
use crate::suggest;

/// Most groups remembered at once.
pub const MAX_WINDOWS: usize = 8192;
/// Most events remembered over all groups.
pub const MAX_ENTRIES: usize = 65_536;
/// Largest `count` a rule may ask for.
pub const MAX_COUNT: u32 = 500;
/// Longest `within`, in seconds.
pub const MAX_WITHIN_SECS: u64 = 3600;

/// What a group is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RateKey {
    Process,
    Parent,
    Field(FieldRef),
}

/// A rule's `rate:`.
#[derive(Debug, Clone)]
pub(crate) struct RateSpec {
    pub count: u32,
    pub window_ns: u64,
    pub by: Vec<RateKey>,
    pub distinct: Vec<FieldRef>,
}

impl RateSpec {
    /// `rate: 20 within 10s by parent distinct network.dport`, for listings.
    pub fn describe(&self) -> String {
        let by: Vec<String> = self
            .by
            .iter()
            .map(|k| match k {
                RateKey::Process => "process".to_string(),
                RateKey::Parent => "parent".to_string(),
                RateKey::Field(f) => f.name(),
            })
            .collect();
        let mut out = format!(
            "{} within {}s by {}",
            self.count,
            self.window_ns / 1_000_000_000,
            by.join(", ")
        );
        if !self.distinct.is_empty() {
            let d: Vec<String> = self.distinct.iter().map(FieldRef::name).collect();
            out.push_str(&format!(" distinct {}", d.join(", ")));
        }
        out
    }

    fn key(&self, rule: u16, e: &Event) -> u64 {
        let mut h = DefaultHasher::new();
        rule.hash(&mut h);
        for k in &self.by {
            match k {
                RateKey::Process => e.process.exec_id.0.hash(&mut h),
                RateKey::Parent => e
                    .process
                    .parent_exec_id
                    .map(|p| p.0)
                    .unwrap_or(e.process.exec_id.0)
                    .hash(&mut h),
                RateKey::Field(f) => hash_field(f, e, &mut h),
            }
        }
        h.finish()
    }

    fn distinct_hash(&self, e: &Event) -> Option<u64> {
        if self.distinct.is_empty() {
            return None;
        }
        let mut h = DefaultHasher::new();
        for f in &self.distinct {
            hash_field(f, e, &mut h);
        }
        Some(h.finish())
    }
}

/// Feeds every value of a field (and a marker for "absent") into `h`.
fn hash_field(f: &FieldRef, e: &Event, h: &mut DefaultHasher) {
    let mut visit = |v: Value<'_>| {
        match v {
            Value::Str(s) => s.hash(h),
            Value::Num(n) => n.hash(h),
            Value::Bool(b) => b.hash(h),
        }
        false
    };
    let present = match f {
        FieldRef::Table(i) => FIELDS.get(*i).and_then(|x| (x.get)(e, &mut visit)),
        FieldRef::Env(name) => fields::get_env(e, name, &mut visit),
        FieldRef::Label(of, key) => fields::get_label(e, *of, key, &mut visit),
    };
    present.is_some().hash(h);
}

/// One group's remembered events: (time, distinct-value hash), oldest first.
#[derive(Debug, Default)]
struct Window {
    entries: VecDeque<(u64, u64)>,
}

/// The counting state of a policy's rate rules. Start a new one when the policy changes (rule
/// indexes are part of the keys).
#[derive(Debug, Default)]
pub struct RateState {
    windows: HashMap<u64, Window>,
    /// Groups in creation order, for eviction.
    order: VecDeque<u64>,
    entries: usize,
    evicted: u64,
}

impl RateState {
    pub fn new() -> RateState {
        RateState::default()
    }

    /// Groups forgotten to stay within the bounds.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Groups remembered now.
    pub fn groups(&self) -> usize {
        self.windows.len()
    }

    /// Records a match of rule `rule` and says whether its group just reached the threshold.
    pub(crate) fn hit(&mut self, rule: u16, spec: &RateSpec, e: &Event) -> bool {
        let key = spec.key(rule, e);
        let now = e.time.0;
        let distinct = spec.distinct_hash(e);
        if !self.windows.contains_key(&key) {
            while self.windows.len() >= MAX_WINDOWS || self.entries >= MAX_ENTRIES {
                if !self.evict_oldest() {
                    break;
                }
            }
            self.windows.insert(key, Window::default());
            self.order.push_back(key);
        }
        while self.entries >= MAX_ENTRIES {
            if !self.evict_oldest() {
                break;
            }
        }
        let Some(w) = self.windows.get_mut(&key) else {
            return false;
        };
        let before = w.entries.len();
        let start = now.saturating_sub(spec.window_ns);
        w.entries.retain(|(t, _)| *t >= start);
        if let Some(d) = distinct {
            w.entries.retain(|(_, x)| *x != d);
        }
        w.entries.push_back((now, distinct.unwrap_or(0)));
        let fired = w.entries.len() >= spec.count as usize;
        if fired {
            w.entries.clear();
        }
        let after = w.entries.len();
        self.entries = (self.entries + after).saturating_sub(before);
        fired
    }

    /// Forgets the oldest group; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some(k) = self.order.pop_front() {
            if let Some(w) = self.windows.remove(&k) {
                self.entries -= w.entries.len().min(self.entries);
                self.evicted += 1;
                return true;
            }
        }
        false
    }
}

/// Resolves a rule's `rate:`: every field named must exist on some kind the rule matches, and
/// the rule must only alert (a threshold is reached in user space, after the kernel let the
/// events through, so there is nothing left to deny).
pub(crate) fn resolve(
    decl: &RateDecl,
    kinds: KindSet,
    action: Action,
    diags: &mut Diags<'_>,
) -> Option<RateSpec> {
    let mut ok = true;
    if action != Action::Alert {
        diags.error(
            decl.loc,
            format!("a rate rule can only alert, not {}", action.as_str()),
            Some("remove `action:` or `rate:`".into()),
        );
        ok = false;
    }
    let field = |t: &crate::document::Text, diags: &mut Diags<'_>| -> Option<FieldRef> {
        let f = match fields::lookup(&t.value) {
            Some(i) => FieldRef::Table(i),
            None => match t.value.strip_prefix(fields::ENV_PREFIX) {
                Some(var) if !var.is_empty() => FieldRef::Env(var.into()),
                _ if fields::label_field(&t.value).is_some() => {
                    let (of, key) = fields::label_field(&t.value)?;
                    FieldRef::Label(of, key.into())
                }
                _ => {
                    let hint = suggest::hint(&t.value, fields::all_names());
                    diags.error(t.loc, format!("unknown field '{}'", t.value), hint);
                    return None;
                }
            },
        };
        if f.kinds().intersect(kinds).is_empty() {
            diags.error(
                t.loc,
                format!("field '{}' does not exist for kinds {kinds}", t.value),
                Some(format!("it exists for {}", f.kinds())),
            );
            return None;
        }
        Some(f)
    };
    let mut by = Vec::new();
    for t in &decl.by {
        match t.value.as_str() {
            "process" => by.push(RateKey::Process),
            "parent" => by.push(RateKey::Parent),
            _ => match field(t, diags) {
                Some(f) => by.push(RateKey::Field(f)),
                None => ok = false,
            },
        }
    }
    if by.is_empty() {
        by.push(RateKey::Process);
    }
    let mut distinct = Vec::new();
    for t in &decl.distinct {
        match field(t, diags) {
            Some(f) => distinct.push(f),
            None => ok = false,
        }
    }
    ok.then(|| RateSpec {
        count: decl.count,
        window_ns: decl.within_secs * 1_000_000_000,
        by,
        distinct,
    })
}
