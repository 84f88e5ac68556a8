//! Containers noticed when their cgroup is made, before anything runs in them.
//!
//! Runtimes make a container's cgroup (`runc create`) before they start its first process
//! (`runc start`, a separate step: containerd's StartContainer, podman's start). This thread
//! watches the cgroup2 hierarchy with inotify (each directory, added as it appears) and, for a
//! directory whose path names a container, asks the resolver about it at once, so the
//! identity — and a workload-scoped kernel rule's cgroup set ([`super::scope`]) — is usually
//! in place before the container's first exec. That is a race, usually won: the runtime
//! lookup (a few milliseconds) has to finish between the two steps; when it does not, the
//! kernel holds the exec until it has ([`crate::agent`]'s holds). Containers present when the
//! agent starts are asked about during the first walk. A directory below a container's is the
//! container's (its scoped rules cover it too); every other directory is placed with the scope
//! keeper as it is noticed (it holds no container of its own), so only execs in cgroups not
//! heard of yet are held.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use shrike_event::ContainerIdentity;
use shrike_proctree::container::from_cgroup_path;
use tracing::{debug, warn};

use super::cache::{Cache, Lookup};
use super::scope::ScopeKeeper;
use super::Request;

/// Deepest directory watched below the cgroup2 root (as [`crate::cgroups`] walks).
const MAX_DEPTH: usize = 16;

/// Starts the watcher over the cgroup2 mount at `root`.
pub fn spawn(
    root: PathBuf,
    cache: Arc<Mutex<Cache>>,
    requests: SyncSender<Request>,
    scopes: Option<Arc<ScopeKeeper>>,
) -> std::io::Result<()> {
    // SAFETY: inotify_init1 takes flags only; the descriptor is owned by the watcher below.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut watcher = Watcher {
        fd,
        root,
        dirs: HashMap::new(),
        cache,
        requests,
        scopes,
    };
    std::thread::Builder::new()
        .name("shrike-cgroups".into())
        .spawn(move || {
            let root = watcher.root.clone();
            watcher.add_tree(&root, 0);
            watcher.run();
        })
        .map(|_| ())
}

struct Watcher {
    fd: i32,
    root: PathBuf,
    /// Watch descriptor → (directory, depth).
    dirs: HashMap<i32, (PathBuf, usize)>,
    cache: Arc<Mutex<Cache>>,
    requests: SyncSender<Request>,
    scopes: Option<Arc<ScopeKeeper>>,
}

impl Watcher {
    /// Watches `dir` and the directories under it; asks about the containers among them.
    fn add_tree(&mut self, dir: &Path, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
            return;
        };
        // SAFETY: fd is our inotify descriptor; path is a NUL-terminated string that outlives
        // the call.
        let wd = unsafe {
            libc::inotify_add_watch(self.fd, path.as_ptr(), libc::IN_CREATE | libc::IN_ONLYDIR)
        };
        if wd < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENOSPC) {
                warn!(dir = %dir.display(), "cgroup watch: out of inotify watches (fs.inotify.max_user_watches); containers below are noticed at their first exec");
            }
            return;
        }
        self.dirs.insert(wd, (dir.to_path_buf(), depth));
        self.notice(dir);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                self.add_tree(&entry.path(), depth + 1);
            }
        }
    }

    /// Asks the resolver about the container `dir` belongs to, if it names one not known yet
    /// (a sub-cgroup of a described container joins the scope keeper with its identity at
    /// once); places any other directory with the scope keeper.
    fn notice(&self, dir: &Path) {
        let Ok(rel) = dir.strip_prefix(&self.root) else {
            return;
        };
        let Some(c) = from_cgroup_path(&format!("/{}", rel.display())) else {
            if let (Some(keeper), Ok(meta)) = (&self.scopes, std::fs::metadata(dir)) {
                keeper.place(meta.ino(), dir.to_path_buf());
            }
            return;
        };
        // A sub-cgroup a container made inside its own (runc, systemd in the container, or a
        // process that moves itself to slip out of the container's cgroup id) is the
        // container's: its processes carry the container's identity and a scoped rule covers
        // them as it covers the container.
        let own = dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains(&c.id));
        let Ok(meta) = std::fs::metadata(dir) else {
            return;
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.note_cgroup(meta.ino(), &c.id, &c.runtime);
        if let Lookup::Known(container, k8s) = cache.lookup(&c.id) {
            if own {
                return;
            }
            if container.resolved {
                if let Some(keeper) = &self.scopes {
                    let identity = super::Identity {
                        container: (*container).clone(),
                        k8s: k8s.as_deref().cloned(),
                    };
                    keeper.added(meta.ino(), dir.to_path_buf(), identity);
                }
                return;
            }
        }
        let request = Request {
            id: c.id.clone(),
            runtime_hint: c.runtime.clone(),
            cgroup_dir: Some(dir.to_path_buf()),
        };
        if !own {
            // Described on its own when the runtime answers (the container's own request may
            // still be under way); the cache keeps the container's own directory.
            let _ = self.requests.try_send(request);
            return;
        }
        let minimal = Arc::new(ContainerIdentity {
            id: c.id.clone(),
            runtime: c.runtime.clone(),
            ..ContainerIdentity::default()
        });
        match self.requests.try_send(request) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {
                debug!(container = %c.id, dir = %dir.display(), "cgroup watch: new container");
                cache.insert_pending(minimal, Some(dir.to_path_buf()));
            }
            // Full: its first exec asks again.
            Err(TrySendError::Full(_)) => {}
        }
    }

    fn run(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: buf is a live, writable buffer of buf.len() bytes.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                warn!(err = %std::io::Error::last_os_error(), "cgroup watch stopped; containers are noticed at their first exec");
                return;
            }
            let mut at = 0usize;
            let n = n as usize;
            let header = std::mem::size_of::<libc::inotify_event>();
            while at + header <= n {
                // SAFETY: the kernel wrote a whole inotify_event at `at` (checked against n);
                // read_unaligned copes with the byte buffer's alignment.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(at).cast()) };
                let name_start = at + header;
                let name_end = (name_start + ev.len as usize).min(n);
                let name = buf[name_start..name_end]
                    .split(|b| *b == 0)
                    .next()
                    .unwrap_or_default()
                    .to_vec();
                at = name_end;
                if ev.mask & libc::IN_IGNORED != 0 {
                    self.dirs.remove(&ev.wd);
                    continue;
                }
                if ev.mask & libc::IN_ISDIR == 0 || name.is_empty() {
                    continue;
                }
                if let Some((parent, depth)) = self.dirs.get(&ev.wd).cloned() {
                    let dir = parent.join(std::ffi::OsStr::from_bytes(&name));
                    self.add_tree(&dir, depth + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::mpsc::sync_channel;

    use shrike_event::PodIdentity;
    use shrike_rules::Policy;

    use super::*;
    use crate::workload::Identity;

    fn identity(id: &str, resolved: bool) -> ContainerIdentity {
        ContainerIdentity {
            id: id.into(),
            runtime: "docker".into(),
            resolved,
            ..ContainerIdentity::default()
        }
    }

    /// A sub-cgroup made inside a described container is covered by the scoped rules that
    /// cover the container (a process that moves itself there cannot slip out of a pod-scoped
    /// deny); one inside a container still being described is asked about on its own.
    #[test]
    fn a_containers_sub_cgroups_are_covered_as_the_container_is() {
        let policy = Policy::compile([(
            "p.yaml",
            "- rule: r\n  id: T\n  severity: high\n  condition: kind = process_exec and process.name = nc and k8s.namespace = prod\n  action: deny\n",
        )])
        .unwrap_or_else(|d| panic!("{}", shrike_rules::text::render_diagnostics(&d)));
        let root = std::env::temp_dir().join(format!("shrike-subcg-{}", std::process::id()));
        let (described, pending) = ("ab".repeat(32), "cd".repeat(32));
        let own = root.join(format!("docker/{described}"));
        let other = root.join(format!("docker/{pending}"));
        for d in [own.join("nested"), other.join("nested")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let ino = |d: &Path| std::fs::metadata(d).unwrap().ino();
        let keeper = ScopeKeeper::new(None);
        keeper
            .load(policy.workload_scopes(), policy.kernel_plan(), |c| {
                Ok::<_, ()>(c(0))
            })
            .unwrap();
        let prod = PodIdentity {
            namespace: "prod".into(),
            ..PodIdentity::default()
        };
        let mut cache = Cache::new(16);
        cache.insert_pending(Arc::new(identity(&described, false)), Some(own.clone()));
        cache.resolve(identity(&described, true), Some(prod.clone()));
        cache.insert_pending(Arc::new(identity(&pending, false)), Some(other.clone()));
        // What the resolver did when the runtime described the first container.
        keeper.added(
            ino(&own),
            own.clone(),
            Identity {
                container: identity(&described, true),
                k8s: Some(prod),
            },
        );
        let (tx, rx) = sync_channel(4);
        let watcher = Watcher {
            fd: -1,
            root: root.clone(),
            dirs: HashMap::new(),
            cache: Arc::new(Mutex::new(cache)),
            requests: tx,
            scopes: Some(keeper.clone()),
        };
        watcher.notice(&own.join("nested"));
        let nested = ino(&own.join("nested"));
        assert!(keeper.is_placed(nested) && keeper.covers(0, nested));
        assert_eq!(keeper.cgroups(0), BTreeSet::from([ino(&own), nested]));
        assert!(
            rx.try_recv().is_err(),
            "a described container is not asked about again"
        );
        watcher.notice(&other.join("nested"));
        let asked = rx
            .try_recv()
            .expect("the pending container's sub-cgroup is asked about");
        assert_eq!(
            (asked.id.as_str(), asked.cgroup_dir),
            (pending.as_str(), Some(other.join("nested")))
        );
        assert!(!keeper.is_placed(ino(&other.join("nested"))));
        let _ = std::fs::remove_dir_all(&root);
    }
}
