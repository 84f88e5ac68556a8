//! Compiles every `bpf/*.bpf.c` twice into BPF objects with clang and generates one libbpf-rs
//! skeleton per source, which embeds both objects in the binary (CO-RE: no kernel headers, no
//! compiler on the target). The compiler is `$SHRIKE_CLANG`, else `clang-19`, else `clang`.
//!
//! The main build is for kernels with `bpf_loop()` (5.17 and later); the legacy build
//! (`-DSHRIKE_LEGACY`, see `bpf/lib/build.h`) is for 5.8–5.16. Both come from the same source and
//! must declare the same maps, programs and global variables, because one skeleton serves both:
//! the build fails when their generated skeletons differ in anything but the object bytes.
//! Both objects are embedded gzip-compressed (6.4 MB of objects, mostly BTF line information,
//! become 1.1 MB); `crate::variant` picks one and inflates it while a lease on it is out.

use std::env;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use libbpf_cargo::SkeletonBuilder;

/// Programs that get a skeleton; each is `bpf/<name>.bpf.c`.
const PROGRAMS: &[&str] = &["process", "probe", "net", "file", "protect"];

/// The line of a generated skeleton that hands libbpf the object bytes.
const OPEN_LINE: &str = "ObjectSkeletonConfigBuilder::new(&DATA)";

fn main() -> Result<()> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let bpf_dir = manifest
        .join("../../bpf")
        .canonicalize()
        .context("bpf/ directory")?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let legacy_dir = out_dir.join("legacy");
    fs::create_dir_all(&legacy_dir).context("creating OUT_DIR/legacy")?;
    let clang = find_clang()?;

    for dir in ["include", "abi", "lib"] {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=SHRIKE_CLANG");
    let includes = ["include", "abi", "lib"].map(|d| format!("-I{}", bpf_dir.join(d).display()));
    for name in PROGRAMS {
        println!(
            "cargo:rerun-if-changed={}",
            bpf_dir.join(format!("{name}.bpf.c")).display()
        );
    }
    // The ten builds (five sources, main and legacy) are independent: one thread each, so that
    // the clang runs share the cores (80 s one after the other in a release build).
    let dir_of = |legacy: bool| if legacy { &legacy_dir } else { &out_dir };
    let objects: Vec<(PathBuf, usize)> = std::thread::scope(|scope| {
        let builds: Vec<_> = PROGRAMS
            .iter()
            .flat_map(|name| [(*name, false), (*name, true)])
            .map(|(name, legacy)| {
                let src = bpf_dir.join(format!("{name}.bpf.c"));
                let dir = dir_of(legacy);
                let (clang, includes) = (&clang, &includes);
                scope.spawn(move || build_object(&src, dir, name, legacy, clang, includes))
            })
            .collect();
        builds
            .into_iter()
            .map(|b| {
                b.join()
                    .unwrap_or_else(|_| bail!("a BPF build thread panicked"))
            })
            .collect::<Result<_>>()
    })?;
    for (name, pair) in PROGRAMS.iter().zip(objects.chunks(2)) {
        let skel = out_dir.join(format!("{name}.skel.rs"));
        let legacy_skel = legacy_dir.join(format!("{name}.skel.rs"));
        join_skeletons(name, &skel, &legacy_skel, pair.try_into()?)?;
    }
    Ok(())
}

/// Compiles `src` into `dir/<name>.o` (the legacy build with `-DSHRIKE_LEGACY`), generates its
/// skeleton `dir/<name>.skel.rs` and compresses the object; returns what [`compress`] returns.
fn build_object(
    src: &Path,
    dir: &Path,
    name: &str,
    legacy: bool,
    clang: &Path,
    includes: &[String],
) -> Result<(PathBuf, usize)> {
    let mut args: Vec<String> = includes.to_vec();
    args.extend(["-Wall".to_string(), "-Werror".to_string()]);
    if legacy {
        args.push("-DSHRIKE_LEGACY".to_string());
    }
    let obj = dir.join(format!("{name}.o"));
    SkeletonBuilder::new()
        .source(src)
        .obj(&obj)
        .clang(clang)
        .clang_args(&args)
        .reference_obj(true)
        .build_and_generate(dir.join(format!("{name}.skel.rs")))
        .with_context(|| {
            let which = if legacy { "the legacy build of " } else { "" };
            format!("building {which}BPF program {}", src.display())
        })?;
    compress(&obj)
}

/// Writes `<object>.gz` beside an object; returns its path and size.
fn compress(object: &Path) -> Result<(PathBuf, usize)> {
    let bytes = fs::read(object).with_context(|| format!("{}", object.display()))?;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&bytes)?;
    let packed = encoder.finish()?;
    let path = object.with_extension("o.gz");
    fs::write(&path, &packed).with_context(|| format!("{}", path.display()))?;
    Ok((path, packed.len()))
}

/// Checks that the two builds' skeletons agree apart from their object bytes, then makes the main
/// skeleton embed both compressed objects (`[main, legacy]`) and hand libbpf whichever
/// `crate::variant` picks.
fn join_skeletons(
    name: &str,
    main: &Path,
    legacy: &Path,
    objects: &[(PathBuf, usize); 2],
) -> Result<()> {
    let main_text = fs::read_to_string(main).with_context(|| format!("{}", main.display()))?;
    let legacy_text =
        fs::read_to_string(legacy).with_context(|| format!("{}", legacy.display()))?;
    let (main_rest, main_data) = split_data(&main_text, main)?;
    let (legacy_rest, _) = split_data(&legacy_text, legacy)?;
    // The order in which clang emits maps and the numbering of anonymous types may differ
    // between the builds (libbpf finds each map by name); the lines themselves may not.
    let main_norm = strip_anon_numbers(&main_rest);
    let legacy_norm = strip_anon_numbers(&legacy_rest);
    let mut main_lines: Vec<&str> = main_norm.lines().collect();
    let mut legacy_lines: Vec<&str> = legacy_norm.lines().collect();
    main_lines.sort_unstable();
    legacy_lines.sort_unstable();
    if main_lines != legacy_lines {
        let only = main_lines
            .iter()
            .find(|l| !legacy_lines.contains(l))
            .or_else(|| legacy_lines.iter().find(|l| !main_lines.contains(l)))
            .map_or("", |l| l.trim());
        bail!(
            "bpf/{name}.bpf.c: the legacy build (-DSHRIKE_LEGACY) declares different maps, programs \
             or globals from the main build (its skeleton and the main one's differ at `{only}`): \
             keep every declaration outside #ifdef SHRIKE_LEGACY"
        );
    }
    if !main_text.contains(OPEN_LINE) {
        bail!(
            "{}: libbpf-cargo's skeleton no longer contains `{OPEN_LINE}`",
            main.display()
        );
    }
    // The generator's `static DATA` (after its link-section attribute) becomes the two
    // compressed objects, side by side in that section, and the `variant::Object` that leases
    // out the inflated one.
    let [(main_gz, main_len), (legacy_gz, legacy_len)] = objects;
    let statics = format!(
        "    static DATA: [u8; {main_len}] = *include_bytes!({main_gz:?});\n    \
         #[unsafe(link_section = \".bpf.objs\")]\n    \
         static LEGACY_DATA: [u8; {legacy_len}] = *include_bytes!({legacy_gz:?});\n    \
         pub static OBJECT: crate::variant::Object = crate::variant::Object::new(&DATA, &LEGACY_DATA);\n"
    );
    let joined = main_text
        .replacen(
            OPEN_LINE,
            "ObjectSkeletonConfigBuilder::new(\
             /* SAFETY: a skeleton is opened under a lease on OBJECT that outlives it \
             (capability::open_skel's Leased; the probe and the tests hold one across their \
             skeleton's scope). */ \
             unsafe { OBJECT.leased_bytes() })",
            1,
        )
        .replacen(&main_data, &statics, 1);
    let joined = linear_attach(&joined).with_context(|| format!("{}", main.display()))?;
    fs::write(main, joined).with_context(|| format!("{}", main.display()))
}

/// The generator's `Skel::attach` fills its links struct with one expression per program, each
/// inlining `prog_link_ptr`'s error formatting and an early return: for the file object's 248
/// programs one 1.7 MB function that took LLVM 160 of the crate's 170 s in a release build
/// (block placement, debug-value analysis, register allocation are superlinear in its size),
/// and longer in the sanitizer build of the fuzz targets. Rewritten as one loop that collects the
/// links in program order and a struct literal that takes them one by one: the same links, the
/// same error, the code of one program.
fn linear_attach(text: &str) -> Result<String> {
    const LINK: &str = "core::ptr::NonNull::new(self.skel_config.prog_link_ptr(";
    let Some(start) = text.find("self.links = ") else {
        bail!("libbpf-cargo's skeleton no longer assigns `self.links` in `attach`");
    };
    let Some(len) = text[start..].find("};") else {
        bail!("the links struct literal in `attach` has no end");
    };
    let block = &text[start..start + len + 2];
    let compact: String = block.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = compact.find('{') else {
        bail!("the links struct literal in `attach` has no body");
    };
    let ty = &compact["self.links=".len()..open];
    let mut fields = Vec::new();
    for field in compact[open + 1..compact.len() - 2].split("}),") {
        if field.is_empty() {
            continue;
        }
        let Some((name, value)) = field.split_once(':') else {
            bail!("unexpected field `{field}` in the links struct literal");
        };
        let index = value
            .strip_prefix(LINK)
            .and_then(|v| v.split_once(")?"))
            .and_then(|(i, _)| i.parse::<usize>().ok());
        if index != Some(fields.len()) {
            bail!(
                "link `{name}` is not program {} of the skeleton",
                fields.len()
            );
        }
        fields.push(name.to_string());
    }
    let mut out = format!(
        "let mut links = (0..{n})\n                \
         .map(|i| {{\n                    \
         Ok({LINK}i)?).map(|ptr| {{\n                        \
         // SAFETY: libbpf made this link for program i in bpf_object__attach_skeleton \
         above, and it is handed over once, as the generator's code did.\n                        \
         unsafe {{ libbpf_rs::Link::from_ptr(ptr) }}\n                    \
         }}))\n                }})\n                \
         .collect::<libbpf_rs::Result<Vec<_>>>()?\n                \
         .into_iter();\n            \
         self.links = {ty} {{\n",
        n = fields.len()
    );
    for name in &fields {
        out.push_str(&format!(
            "                {name}: links.next().flatten(),\n"
        ));
    }
    out.push_str("            };");
    Ok(text.replacen(block, &out, 1))
}

/// `__anon_12` → `__anon_`, `__anon_sock_5` → `__anon_sock_`: the generator numbers anonymous
/// types in BTF order, which differs when the builds read different kernel fields.
fn strip_anon_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("__anon_") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        out.push_str(rest[..end].trim_end_matches(|c: char| c.is_ascii_digit()));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Splits a skeleton into its text without the `static DATA` item (which rustfmt may spread over
/// several lines), and that item.
fn split_data(text: &str, path: &Path) -> Result<(String, String)> {
    let mut rest = String::with_capacity(text.len());
    let mut data = String::new();
    let mut inside = false;
    for line in text.lines() {
        inside |= line.trim_start().starts_with("static DATA:");
        if inside {
            data.push_str(line);
            data.push('\n');
            inside = !line.trim_end().ends_with(';');
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    if data.is_empty() {
        bail!(
            "{}: no `static DATA` item in the generated skeleton",
            path.display()
        );
    }
    Ok((rest, data))
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
