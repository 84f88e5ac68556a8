//! The special file systems shrike needs, found or mounted.
//!
//! A fresh machine may mount none of tracefs, bpffs, securityfs or debugfs. shrike mounts what
//! it needs at start (securityfs to read the active LSM list, bpffs to pin objects, tracefs for
//! classic tracepoints), says so in its log and in `doctor`, and never assumes they exist.
//!
//! What shrike mounts is marked as its own (the mount's source is `shrike`, visible in
//! /proc/mounts), root-only where the file system takes a mode (bpffs: `mode=0700`; the kernel's
//! default is 1777, which lets every user create and remove entries beside shrike's pins), and
//! unmounted again when nothing needs it: [`unmount_if_ours`] for bpffs once no pin is left,
//! [`release_run_dir`] for what shrike mounted under [`RUN_DIR`] (cgroup2, where the system had
//! none).

use std::ffi::CString;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mount source shrike gives the file systems it mounts, so they can be told apart later.
pub const SOURCE: &str = "shrike";

/// shrike's own directory for mount points (root-only).
pub const RUN_DIR: &str = "/run/shrike";

/// A special file system shrike may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialFs {
    Tracefs,
    Bpffs,
    Securityfs,
    Debugfs,
}

impl SpecialFs {
    /// The file-system type as /proc/mounts names it.
    pub fn fstype(self) -> &'static str {
        match self {
            SpecialFs::Tracefs => "tracefs",
            SpecialFs::Bpffs => "bpf",
            SpecialFs::Securityfs => "securityfs",
            SpecialFs::Debugfs => "debugfs",
        }
    }

    /// Where it is conventionally mounted.
    pub fn default_path(self) -> &'static Path {
        Path::new(match self {
            SpecialFs::Tracefs => "/sys/kernel/tracing",
            SpecialFs::Bpffs => "/sys/fs/bpf",
            SpecialFs::Securityfs => "/sys/kernel/security",
            SpecialFs::Debugfs => "/sys/kernel/debug",
        })
    }
}

/// Where a file system is, and whether this process mounted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    pub path: PathBuf,
    pub mounted_now: bool,
}

/// The first mount point of a file system of type `fstype`, from /proc/self/mounts.
pub fn find_mount(fstype: &str) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mount_point_in(&mounts, fstype)
}

/// The mount point of `fstype` in a /proc/mounts text; octal escapes (`\040`) are undone.
pub fn mount_point_in(mounts: &str, fstype: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_dev, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
        (kind == fstype).then(|| PathBuf::from(unescape_octal(point)))
    })
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a file system of type `fs` is mounted exactly at its default path; mounts it there
/// if not. For state that must be found again at a known place (pins), unlike [`ensure`], which
/// accepts a mount anywhere.
pub fn ensure_at_default(fs: SpecialFs) -> io::Result<Mounted> {
    let path = fs.default_path();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let here = mounts.lines().any(|line| {
        let mut f = line.split_whitespace();
        let (_dev, point, kind) = (f.next(), f.next(), f.next());
        kind == Some(fs.fstype())
            && point.map(unescape_octal).as_deref() == Some(&*path.to_string_lossy())
    });
    if here {
        return Ok(Mounted {
            path: path.to_path_buf(),
            mounted_now: false,
        });
    }
    mount_at(fs, path)
}

/// Returns where `fs` is mounted, mounting it at its default path first if it is not.
pub fn ensure(fs: SpecialFs) -> io::Result<Mounted> {
    if let Some(path) = find_mount(fs.fstype()) {
        return Ok(Mounted {
            path,
            mounted_now: false,
        });
    }
    mount_at(fs, fs.default_path())
}

fn mount_at(fs: SpecialFs, path: &Path) -> io::Result<Mounted> {
    std::fs::create_dir_all(path)?;
    let c = |s: &str| CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let source = c(SOURCE)?;
    let fstype = c(fs.fstype())?;
    let target = c(&path.to_string_lossy())?;
    // Root-only: bpffs would otherwise be 1777.
    let data = (fs == SpecialFs::Bpffs)
        .then(|| c("mode=0700"))
        .transpose()?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; data is
    // NULL or a NUL-terminated option string, which mount(2) accepts for these file systems.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!(
                "mounting {} at {}: {err} (shrike must run as root)",
                fs.fstype(),
                path.display()
            ),
        ));
    }
    Ok(Mounted {
        path: path.to_path_buf(),
        mounted_now: true,
    })
}

/// The (source, mount point, type) of every mount, from /proc/self/mounts.
fn mount_table() -> Vec<(String, PathBuf, String)> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (source, point, kind) = (f.next()?, f.next()?, f.next()?);
            Some((
                unescape_octal(source),
                PathBuf::from(unescape_octal(point)),
                kind.to_string(),
            ))
        })
        .collect()
}

fn unmount(path: &Path) -> io::Result<()> {
    let target = CString::new(path.to_string_lossy().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: target is a valid NUL-terminated string that outlives the call. MNT_DETACH: what
    // still holds the mount (an open descriptor) keeps it until it lets go.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("unmounting {}: {err}", path.display()),
        ));
    }
    Ok(())
}

/// Unmounts the `fs` at `path` if shrike mounted it (its source is [`SOURCE`]) and nothing is
/// left in it (but what the kernel itself puts there); true when it did.
pub fn unmount_if_ours(fs: SpecialFs, path: &Path) -> io::Result<bool> {
    let ours = mount_table()
        .iter()
        .any(|(source, point, kind)| source == SOURCE && point == path && kind == fs.fstype());
    // The kernel's bpf_preload puts maps.debug and progs.debug in every new bpffs.
    let preloaded = |name: &std::ffi::OsStr| {
        fs == SpecialFs::Bpffs && (name == "maps.debug" || name == "progs.debug")
    };
    let empty = std::fs::read_dir(path)?
        .flatten()
        .all(|entry| preloaded(&entry.file_name()));
    if !ours || !empty {
        return Ok(false);
    }
    unmount(path)?;
    Ok(true)
}

/// Makes [`RUN_DIR`] exist as a root-only directory (0700); a directory there that another user
/// owns or can write to is refused.
pub fn prepare_run_dir() -> io::Result<PathBuf> {
    let dir = PathBuf::from(RUN_DIR);
    match std::fs::symlink_metadata(&dir) {
        Ok(_) => check_private_dir(&dir, "shrike's run directory")?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => create_private_dir(&dir)?,
        Err(err) => return Err(err),
    }
    Ok(dir)
}

/// Unmounts every file system mounted under [`RUN_DIR`] (only shrike mounts there) and removes
/// the directories left empty. Returns the mount points it unmounted.
pub fn release_run_dir() -> io::Result<Vec<PathBuf>> {
    let run = Path::new(RUN_DIR);
    let mut unmounted = Vec::new();
    for (_, point, _) in mount_table() {
        if point.starts_with(run) && point != run {
            unmount(&point)?;
            let _ = std::fs::remove_dir(&point);
            unmounted.push(point);
        }
    }
    let _ = std::fs::remove_dir(run);
    Ok(unmounted)
}

/// Creates `dir` with mode 0700 whatever the umask.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Checks that `dir` is a real directory (not a symlink) owned by root that no other user can
/// write to, or says which of these it is not and how to fix it; a root-owned directory that
/// others can only read or enter is tightened to 0700.
pub fn check_private_dir(dir: &Path, what: &str) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let refuse = |why: String| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing {what} {}: {why}, so another user could add, replace or remove what shrike keeps there; remove it as root (rm -r {}) and start again",
                dir.display(),
                dir.display()
            ),
        )
    };
    if !meta.file_type().is_dir() {
        return Err(refuse("it is not a directory (a symlink or a file)".into()));
    }
    check_root_only(dir, &meta, 0o700, refuse)
}

/// The part of the checks a private directory and a pin share: owned by root, writable by
/// root alone (else `refuse` says why), and tightened to `mode` when others may read it.
pub(crate) fn check_root_only(
    path: &Path,
    meta: &std::fs::Metadata,
    mode: u32,
    refuse: impl Fn(String) -> io::Error,
) -> io::Result<()> {
    if meta.uid() != 0 {
        return Err(refuse(format!(
            "it is owned by uid {}, not root",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "its mode {:04o} lets other users write to it",
            meta.mode() & 0o7777
        )));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A directory another user owns, one others can write to, and a symlink are refused with
    /// the reason and the fix; a root-owned 0755 directory is tightened to 0700. (As root.)
    #[test]
    fn private_dirs_refuse_foreign_owners_and_writable_modes() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: needs root to chown");
            return;
        }
        let base = std::env::temp_dir().join(format!("shrike-private-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let mine = base.join("mine");
        create_private_dir(&mine).unwrap();
        assert_eq!(std::fs::metadata(&mine).unwrap().mode() & 0o7777, 0o700);
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_private_dir(&mine, "x").unwrap();
        assert_eq!(std::fs::metadata(&mine).unwrap().mode() & 0o7777, 0o700);

        let theirs = base.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let err = check_private_dir(&theirs, "the pin directory").unwrap_err();
        assert!(
            err.to_string().contains("owned by uid 65534, not root"),
            "{err}"
        );
        assert!(err.to_string().contains("rm -r"), "{err}");

        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private_dir(&open, "x").unwrap_err();
        assert!(err.to_string().contains("mode 0777"), "{err}");

        let link = base.join("link");
        std::os::unix::fs::symlink(&mine, &link).unwrap();
        let err = check_private_dir(&link, "x").unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn finds_mount_points_by_type_and_unescapes_spaces() {
        let mounts = "sysfs /sys sysfs rw 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n\
                      none /mnt/with\\040space tracefs rw 0 0\n";
        assert_eq!(
            mount_point_in(mounts, "cgroup2"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            mount_point_in(mounts, "tracefs"),
            Some(PathBuf::from("/mnt/with space"))
        );
        assert_eq!(mount_point_in(mounts, "bpf"), None);
    }
}
