//! Manual pages and shell completions made from the real command line definition ([`Cli`]), for
//! the Debian package (`./dev package` runs `shrike __package-docs DIR`, which `main` handles
//! before parsing `Cli`, so the generator itself appears in no page and no completion).
//! Generating them from the binary that ships means the man page and the completions can never
//! describe options the binary does not have.
//!
//! Layout under DIR: `man8/shrike.8` and one `man8/shrike-<sub>.8` per (non-hidden) subcommand,
//! as git and cargo do; `completions/shrike.bash`, `completions/_shrike` (zsh) and
//! `completions/shrike.fish`.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Files the package installs, listed on the top page so `man shrike` says where things are.
/// Keep in step with packaging/ (the unit, /etc/default/shrike, policy.d).
const FILES_SECTION: &str = r#".SH FILES
.TP
\fI/etc/default/shrike\fR
The arguments the systemd unit passes to \fBshrike run\fR (SHRIKE_ARGS), and SHRIKE_LOG.
.TP
\fI/etc/shrike/policy.d/*.yaml\fR
Local policy files, loaded after the embedded default pack by the systemd unit. Checked with
\fBshrike policy validate\fR; the agent reloads them on SIGHUP (\fBsystemctl reload shrike\fR) and when they change.
.TP
\fI/usr/share/shrike/policies/default/\fR
The default pack as YAML (the agent carries the same pack embedded), to read and copy from.
.TP
\fI/sys/fs/bpf/shrike\fR
Pinned programs, links and rule maps while \fB\-\-keep\-enforcing\fR is set.
.SH SEE ALSO
\fBshrike\-run\fR(8), \fBshrike\-doctor\fR(8), \fBshrike\-policy\fR(8), \fBsystemctl\fR(1)
"#;

/// Writes every man page and completion script under `out` (created if missing).
pub fn generate(out: &Path) -> Result<()> {
    let man_dir = out.join("man8");
    let comp_dir = out.join("completions");
    for dir in [&man_dir, &comp_dir] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    // The package's description reads better as the page's NAME line than the crate's.
    let mut cmd = Cli::command()
        .disable_help_subcommand(true)
        .about("runtime security agent for Linux built on eBPF");
    cmd.build();
    write_man_pages(&cmd, &man_dir, true)?;

    for (shell, name) in [
        (Shell::Bash, "shrike.bash"),
        (Shell::Zsh, "_shrike"),
        (Shell::Fish, "shrike.fish"),
    ] {
        let path = comp_dir.join(name);
        let mut file =
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        clap_complete::generate(shell, &mut cmd.clone(), "shrike", &mut file);
        file.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One page per command, depth first, skipping hidden ones.
fn write_man_pages(cmd: &clap::Command, dir: &Path, top: bool) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man_pages(sub, dir, false)?;
    }
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("shrike {}", env!("CARGO_PKG_VERSION")));
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    let render = |page: &mut Vec<u8>| -> std::io::Result<()> {
        man.render_title(page)?;
        man.render_name_section(page)?;
        man.render_synopsis_section(page)?;
        man.render_description_section(page)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(page)?;
        }
        if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
            man.render_subcommands_section(page)?;
        }
        Ok(())
    };
    render(&mut page).with_context(|| format!("rendering {}", path.display()))?;
    if top {
        // The exit codes are `Cli`'s after_help text, kept as it is laid out.
        if let Some(codes) = cmd.get_after_help() {
            let body = codes.to_string();
            let body = body
                .split_once('\n')
                .map_or(body.as_str(), |(_, rest)| rest);
            page.extend_from_slice(b".SH \"EXIT STATUS\"\n.nf\n");
            page.extend_from_slice(body.replace('-', "\\-").as_bytes());
            page.extend_from_slice(b"\n.fi\n");
        }
        page.extend_from_slice(FILES_SECTION.as_bytes());
    }
    if cmd.get_version().is_some() {
        // Subcommands carry no version of their own (the footer names it on every page).
        man.render_version_section(&mut page)
            .with_context(|| format!("rendering {}", path.display()))?;
    }
    fs::write(&path, page).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The package's docs cover every subcommand and leave the generator out, so a subcommand
    /// added to `Cli` shows up in `man` and in tab completion without more work.
    #[test]
    fn pages_and_completions_cover_the_cli_and_leave_the_generator_out() {
        let dir = std::env::temp_dir().join(format!("shrike-docs-{}", std::process::id()));
        generate(&dir).unwrap();
        for page in [
            "shrike.8",
            "shrike-run.8",
            "shrike-doctor.8",
            "shrike-policy.8",
            "shrike-policy-validate.8",
            "shrike-policy-explain.8",
        ] {
            let text = fs::read_to_string(dir.join("man8").join(page)).unwrap();
            assert!(text.starts_with(".ie"), "{page} is roff");
        }
        let run = fs::read_to_string(dir.join("man8/shrike-run.8")).unwrap();
        assert!(run.contains("keep\\-enforcing"), "{run}");
        let top = fs::read_to_string(dir.join("man8/shrike.8")).unwrap();
        assert!(top.contains("/etc/default/shrike"));
        assert!(top.contains("EXIT STATUS") && top.contains("invalid command line"));
        for name in ["shrike.bash", "_shrike", "shrike.fish"] {
            let text = fs::read_to_string(dir.join("completions").join(name)).unwrap();
            assert!(
                text.contains("keep-enforcing"),
                "{name} completes run's flags"
            );
            assert!(
                !text.contains("package-docs"),
                "{name} leaves the generator out"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
