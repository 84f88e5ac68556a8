//! The process tree: who started whom, for every process image on the node.
//!
//! Every event carries its process, its parent and its ancestors; this crate is where they
//! come from. The tree is seeded from /proc when the agent starts, so processes older than the
//! agent have ancestry too, and is kept current from exec, fork and exit records. It holds
//! `Arc<Process>` images linked by `Arc` parent pointers, so an exited ancestor stays reachable
//! exactly as long as a live descendant needs it; its memory bound is documented on
//! [`TreeOptions`].

pub mod container;
pub mod listeners;
pub mod procfs;
pub mod tree;

pub use tree::{Node, ProcessTree, TreeOptions, TreeStats};
