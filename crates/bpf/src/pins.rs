//! Enforcement that outlives the agent: pins under bpffs.
//!
//! With `--keep-enforcing` the agent pins its links and its lineage and rule maps under
//! `/sys/fs/bpf/shrike`, so the kernel keeps enforcing while the agent is stopped, restarting or
//! crashed (a pinned link stays attached with no process holding it). The next start *adopts*
//! what it finds: it loads its programs on the pinned maps (same lineage, same rules), attaches
//! its own links, and only then removes the old link pins — both sets run for a moment, so
//! there is no gap. Without the flag, a start that finds pins adopts them the same way and then
//! removes them all, and a stop detaches everything.
//!
//! **Root-only.** Whoever can write to the pin directory can remove enforcement (unlinking a
//! link pin detaches it) or make the next agent adopt what they left there. The directory and
//! its `maps/` and `links/` are created 0700 and pins are 0600 (the kernel's default for a pin);
//! a directory found there that another user owns, that others can write to, or that is a
//! symlink — and a pin another user owns or can write — is refused loudly: no adoption, and
//! `--keep-enforcing` does not start. bpffs is mounted `mode=0700` when shrike mounts it, and
//! unmounted again when the last pin is removed (unless something else put files in it).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use libbpf_rs::{OpenMapMut, OpenObject};

use crate::mounts::{self, SpecialFs};

/// Where the pins live, under the bpffs mount.
pub const PIN_DIR: &str = "shrike";

/// Maps whose contents carry over from one agent to the next: lineage, counters and the
/// enforcement rules (the ring buffer and scratch maps are the new agent's own).
pub const ADOPTED_MAPS: &[&str] = &[
    "procs",
    "counters",
    "enforce_state",
    "exec_rule_paths",
    "exec_rule_names",
    "exec_rule_slots",
    "exec_rule_values",
];

/// A pin directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    dir: PathBuf,
}

impl Pins {
    /// The pins a previous run left in /sys/fs/bpf/shrike, if that is a bpffs and they exist
    /// (without a bpffs mounted there, no pins can have survived). A pin directory that is not
    /// root's alone is refused: logged as an error, and not adopted.
    pub fn existing() -> Option<Pins> {
        let dir = SpecialFs::Bpffs.default_path().join(PIN_DIR);
        let mounted = std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.split_whitespace().nth(1) == Some("/sys/fs/bpf")
                    && l.split_whitespace().nth(2) == Some("bpf")
            });
        if !mounted || std::fs::symlink_metadata(&dir).is_err() {
            return None;
        }
        let pins = Pins { dir };
        match pins.check() {
            Ok(()) => Some(pins),
            Err(err) => {
                tracing::error!(%err, "pinned enforcement not adopted");
                None
            }
        }
    }

    /// The pin directory /sys/fs/bpf/shrike, mounting bpffs at /sys/fs/bpf (mode 0700) and
    /// creating the directories (0700) when needed. Always there, so the next agent finds it.
    /// Refused when what is there is not root's alone.
    pub fn create() -> io::Result<Pins> {
        let root = mounts::ensure_at_default(SpecialFs::Bpffs)?.path;
        check_bpffs_root(&root)?;
        let dir = root.join(PIN_DIR);
        for d in [dir.clone(), dir.join("maps"), dir.join("links")] {
            match std::fs::symlink_metadata(&d) {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    mounts::create_private_dir(&d)?
                }
                Err(err) => return Err(err),
            }
        }
        let pins = Pins { dir };
        pins.check()?;
        Ok(pins)
    }

    /// Checks the directory, its `maps/` and `links/` (when present) and every pin in them.
    fn check(&self) -> io::Result<()> {
        mounts::check_private_dir(&self.dir, "the pin directory")?;
        for sub in ["maps", "links"] {
            let d = self.dir.join(sub);
            if std::fs::symlink_metadata(&d).is_err() {
                continue;
            }
            mounts::check_private_dir(&d, "the pin directory")?;
            for pin in list(&d) {
                check_pin(&pin)?;
            }
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.dir.join("maps").join(name)
    }

    pub fn link(&self, name: &str) -> PathBuf {
        self.dir.join("links").join(name)
    }

    /// The link pins present now.
    pub fn links(&self) -> Vec<PathBuf> {
        list(&self.dir.join("links"))
    }

    /// Removes the link pins in `links`: each link detaches unless something else holds it.
    pub fn remove(links: &[PathBuf]) {
        for link in links {
            let _ = std::fs::remove_file(link);
        }
    }

    /// Removes every pin and the directory. Maps live on while programs or fds still use them.
    pub fn remove_all(&self) {
        Pins::remove(&self.links());
        for map in list(&self.dir.join("maps")) {
            let _ = std::fs::remove_file(map);
        }
        let _ = std::fs::remove_dir(self.dir.join("maps"));
        let _ = std::fs::remove_dir(self.dir.join("links"));
        let _ = std::fs::remove_dir(&self.dir);
        // bpffs was only needed for the pins: if shrike mounted it and it is empty, unmount it.
        if let Some(root) = self.dir.parent() {
            match mounts::unmount_if_ours(SpecialFs::Bpffs, root) {
                Ok(true) => {
                    tracing::info!(path = %root.display(), "unmounted the bpffs shrike had mounted for its pins")
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(%err, "could not unmount the bpffs shrike had mounted"),
            }
        }
    }
}

/// A pin must be root's and writable by root alone (the kernel makes pins 0600); one readable
/// by others is tightened to 0600.
fn check_pin(pin: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(pin)?;
    let refuse = |why: String| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing the pin {}: {why}; remove it as root (rm {}) and start again",
                pin.display(),
                pin.display()
            ),
        )
    };
    if meta.file_type().is_symlink() || meta.file_type().is_dir() {
        return Err(refuse("it is not a pinned object".into()));
    }
    mounts::check_root_only(pin, &meta, 0o600, refuse)
}

/// The bpffs root: shrike's pin directory is safe in it only if other users cannot rename or
/// remove entries they do not own (not writable by them, or sticky). A root that everybody can
/// write to (the kernel's default 1777 where someone else mounted it) is worth a warning.
fn check_bpffs_root(root: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(root)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to pin under {}: its mode {mode:04o} lets other users rename or remove shrike's pin directory; remount it root-only (mount -o remount,mode=0700 {})",
                root.display(),
                root.display()
            ),
        ));
    }
    if mode & 0o002 != 0 {
        tracing::warn!(
            path = %root.display(),
            mode = format!("{mode:04o}"),
            "bpffs is writable by every user (sticky: they cannot touch shrike's pins, but can create entries beside them); mounting it with mode=0700 keeps it root-only"
        );
    }
    Ok(())
}

fn list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Points the object's adoptable maps at the pinned ones; returns the names adopted. A map whose
/// pin does not fit (a different layout after an upgrade) is created anew, its pin replaced
/// (`Sensors::pins`), and the old enforcement ends when its links are removed.
pub(crate) fn adopt_maps(object: &mut OpenObject, pins: &Pins) -> Vec<String> {
    let mut adopted = Vec::new();
    for mut map in object.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        let path = pins.map(&name);
        if !ADOPTED_MAPS.contains(&name.as_str()) || !path.exists() {
            continue;
        }
        match pinned_map_that_fits(&map, &path) {
            Ok(fd) => match map.reuse_fd(fd.as_fd()) {
                Ok(()) => adopted.push(name),
                Err(err) => {
                    tracing::warn!(map = %name, %err, "a pinned map could not be adopted; starting it empty")
                }
            },
            Err(why) => {
                tracing::warn!(map = %name, "a pinned map does not fit this version ({why}); starting it empty")
            }
        }
    }
    adopted
}

/// The pinned map at `path`, if its type, key and value sizes and flags are the object's.
/// libbpf's reuse takes the pinned map's layout for the object's own, so a map pinned by an
/// older version (`enforce_state` grew) would make the verifier refuse every program that uses
/// it, and the sensor would not load at all. (`max_entries` may differ: `--procs-max` changed.)
fn pinned_map_that_fits(map: &OpenMapMut<'_>, path: &Path) -> Result<OwnedFd, String> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: c_path is a valid NUL-terminated string for the duration of the call.
    let raw = unsafe { libbpf_rs::libbpf_sys::bpf_obj_get(c_path.as_ptr()) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: bpf_obj_get returned a new file descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let info = libbpf_rs::MapInfo::new(fd.as_fd()).map_err(|e| e.to_string())?;
    let pinned = (
        info.map_type(),
        info.info.key_size,
        info.info.value_size,
        info.info.map_flags,
    );
    let ours = (
        map.map_type(),
        map.key_size(),
        map.value_size(),
        map.map_flags(),
    );
    if pinned != ours {
        return Err(format!(
            "pinned {:?} key {} value {} flags {:#x}, this version {:?} key {} value {} flags {:#x}",
            pinned.0, pinned.1, pinned.2, pinned.3, ours.0, ours.1, ours.2, ours.3
        ));
    }
    Ok(fd)
}
