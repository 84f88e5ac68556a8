//! shrike's kernel side, seen from user space: the embedded BPF objects (built from `bpf/` by
//! build.rs into libbpf-rs skeletons), the contract types, the decoder, the loader, the
//! ring-buffer reader, the kernel-side counters, and the probes that decide which hooks the
//! running kernel offers.

pub mod abi;
pub mod capability;
pub mod counters;
pub mod decode;
pub mod enforce;
pub mod file;
mod generation;
pub mod lineage;
pub mod loader;
pub mod logging;
pub mod mounts;
pub mod net;
pub mod pins;
pub mod probe;
pub mod protect;
pub mod reader;
pub mod ringbuf;
pub mod variant;

pub mod skel {
    //! The generated libbpf-rs skeletons, one module per BPF object.
    #![allow(clippy::all, missing_docs)]
    pub mod process {
        include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
    }
    pub mod probe {
        include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
    }
    pub mod net {
        include!(concat!(env!("OUT_DIR"), "/net.skel.rs"));
    }
    pub mod file {
        include!(concat!(env!("OUT_DIR"), "/file.skel.rs"));
    }
    pub mod protect {
        include!(concat!(env!("OUT_DIR"), "/protect.skel.rs"));
    }
}

pub use counters::Counters;
pub use decode::{DecodeError, Record};
pub use lineage::{SeedLineage, Seeded};
pub use loader::{Family, LoadError, SensorOptions, Sensors, SharedMaps};
pub use reader::{Batch, Reader, ReaderOptions, ReaderStats};
