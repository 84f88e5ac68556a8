//! shrike, the agent: the pipeline from kernel records to events with full process context, the
//! sinks, `doctor`, and the command line. The binary (`main.rs`) is a thin shell over this
//! library so tests can run the agent with their own shutdown and output.

pub mod accept;
pub mod agent;
pub mod api;
pub mod cgroups;
pub mod cli;
pub mod clock;
pub mod config_file;
pub mod detect;
pub mod doctor;
pub mod enforcement;
pub mod exclusion;
pub mod file_watch;
pub mod health;
pub mod learn;
pub mod metrics;
pub mod netconfig;
pub mod observe;
pub mod output;
pub mod outputs;
pub mod package_docs;
pub mod pipeline;
pub mod policy_cmd;
pub mod policy_source;
pub mod self_memory;
pub mod selfprotect;
pub mod shaping;
pub mod shutdown;
pub mod workload;

pub use agent::{run, RunConfig};
pub use shutdown::Shutdown;
