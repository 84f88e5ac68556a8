//! Compiles every `bpf/*.bpf.c` into a BPF object with clang and generates its libbpf-rs
//! skeleton, which embeds the object in the binary (CO-RE: no kernel headers, no compiler on
//! the target). The compiler is `$SHRIKE_CLANG`, else `clang-19`, else `clang`.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libbpf_cargo::SkeletonBuilder;

/// Programs that get a skeleton; each is `bpf/<name>.bpf.c`.
const PROGRAMS: &[&str] = &["process", "probe", "net", "file", "protect"];

fn main() -> Result<()> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let bpf_dir = manifest
        .join("../../bpf")
        .canonicalize()
        .context("bpf/ directory")?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let clang = find_clang()?;

    for dir in ["include", "abi", "lib"] {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=SHRIKE_CLANG");
    for name in PROGRAMS {
        let src = bpf_dir.join(format!("{name}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        let skel = out_dir.join(format!("{name}.skel.rs"));
        SkeletonBuilder::new()
            .source(&src)
            .clang(&clang)
            .clang_args([
                format!("-I{}", bpf_dir.join("include").display()),
                format!("-I{}", bpf_dir.join("abi").display()),
                format!("-I{}", bpf_dir.join("lib").display()),
                "-Wall".to_string(),
                "-Werror".to_string(),
            ])
            .build_and_generate(&skel)
            .with_context(|| format!("building BPF program {}", src.display()))?;
    }
    Ok(())
}

fn find_clang() -> Result<PathBuf> {
    if let Ok(path) = env::var("SHRIKE_CLANG") {
        return Ok(PathBuf::from(path));
    }
    for candidate in ["clang-19", "clang"] {
        if let Some(path) = which(candidate) {
            return Ok(path);
        }
    }
    bail!("no clang found: install clang-19 (apt-get install clang-19) or set SHRIKE_CLANG")
}

fn which(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata().map(|m| m.is_file()).unwrap_or(false)
}
