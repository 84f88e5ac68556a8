//! shrike's policy language and rule engine.
//!
//! YAML files of rules, lists and macros ([`document`] describes the layout) are compiled into a
//! [`Policy`]: every condition parsed, every field type-checked against the event kinds it can
//! exist on (the [`fields`] table), every error collected with `file:line:col` and a suggestion.
//! The compiled policy evaluates events ([`Policy::evaluate`]) and says what the kernel can
//! decide on its own ([`KernelPlan`]); [`text`] renders what `shrike policy validate|test|list|
//! explain` print. The default pack is embedded ([`Policy::default_pack`]).
//!
//! ```
//! let policy = shrike_rules::Policy::compile([("p.yaml", r#"
//! - rule: Shadow read
//!   id: EX-1
//!   severity: high
//!   mitre: [T1003.008]
//!   condition: kind = file_open and file.path = /etc/shadow
//! "#)]).unwrap();
//! assert_eq!(policy.rules().count(), 1);
//! ```
//!
//! Conditions: `= != < <= > >= in contains startswith endswith glob cidr exists`, `and or not`,
//! parentheses, list literals `(a, b)`, list and macro names; see [`cond`] for how list-valued
//! fields compare and [`lexer`] for when values need quotes.

pub mod ast;
pub mod cidr;
mod compile;
pub mod cond;
pub mod counting;
pub mod derived;
pub mod diag;
pub mod document;
pub mod fields;
pub mod glob;
pub mod kinds;
pub mod lexer;
mod load;
pub mod meta;
mod overrides;
pub mod pack;
pub mod parser;
pub mod policy;
pub mod pushdown;
pub mod rate;
pub mod scope;
pub mod source;
pub mod suggest;
pub mod text;
mod yaml;

pub use counting::RateState;
pub use diag::Diagnostic;
pub use meta::{Action, Mode, Outcome, Severity};
pub use policy::{KernelAction, Match, Policy, RuleInfo, Summary};
pub use pushdown::{
    Dim, DimConstraint, Enforcement, KernelPlan, KindPlan, KindRule, PathSet, RulePlan, ValueSet,
};
pub use rate::Rate;
pub use scope::WorkloadScope;
