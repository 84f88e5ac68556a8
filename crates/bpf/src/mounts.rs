//! The special file systems shrike needs, found or mounted.
//!
//! A fresh machine may mount none of tracefs, bpffs, securityfs or debugfs. shrike mounts what
//! it needs at start (securityfs to read the active LSM list, bpffs to pin objects, tracefs for
//! classic tracepoints), says so in its log and in `doctor`, and never assumes they exist.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

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
    let source = c(fs.fstype())?;
    let target = c(&path.to_string_lossy())?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; data is
    // NULL, which mount(2) accepts for these file systems.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            0,
            std::ptr::null(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
