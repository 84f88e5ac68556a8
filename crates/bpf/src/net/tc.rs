//! tc ingress attachments of the network family's drop program: tcx where the kernel has it
//! (6.6+), else a clsact filter; dropping an attachment detaches it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use libbpf_rs::{TcHook, TcHookBuilder, TC_INGRESS};

use super::NetRuleError;

/// One interface's tc ingress attachment; dropping it detaches.
pub(super) enum TcAttachment {
    /// A tcx link (kernel 6.6+): closing the link fd detaches.
    Tcx { iface: String, _link: OwnedFd },
    /// A clsact filter (older kernels): detached on drop.
    Clsact {
        iface: String,
        ifindex: i32,
        prog: OwnedFd,
    },
}

impl TcAttachment {
    pub(super) fn describe(&self) -> String {
        match self {
            TcAttachment::Tcx { iface, .. } => format!("tcx/ingress {iface}"),
            TcAttachment::Clsact { iface, .. } => format!("tc clsact ingress {iface}"),
        }
    }
}

/// The clsact filter this sensor installs: its handle and priority identify it for detach.
const TC_HANDLE: u32 = 0x5348; // "SH"
const TC_PRIORITY: u32 = 1;

fn clsact_hook(prog: &OwnedFd, ifindex: i32) -> TcHook {
    let mut builder = TcHookBuilder::new(prog.as_fd());
    builder
        .ifindex(ifindex)
        .replace(true)
        .handle(TC_HANDLE)
        .priority(TC_PRIORITY);
    builder.hook(TC_INGRESS)
}

impl Drop for TcAttachment {
    fn drop(&mut self) {
        if let TcAttachment::Clsact {
            iface,
            ifindex,
            prog,
        } = self
        {
            if let Err(err) = clsact_hook(prog, *ifindex).detach() {
                tracing::warn!(%iface, %err, "detaching the tc ingress filter");
            }
        }
    }
}

/// Every network interface of this network namespace.
pub(super) fn all_interfaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn if_index(iface: &str) -> Result<u32, NetRuleError> {
    let name = CString::new(iface).map_err(|_| NetRuleError::Tc {
        iface: iface.to_string(),
        why: "not an interface name".into(),
    })?;
    // SAFETY: name is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(NetRuleError::Tc {
            iface: iface.to_string(),
            why: format!("no such interface ({})", std::io::Error::last_os_error()),
        });
    }
    Ok(index)
}

/// tcx where the kernel has it (6.6+), else a clsact filter.
pub(super) fn attach_tc_ingress(prog: &OwnedFd, iface: &str) -> Result<TcAttachment, NetRuleError> {
    let ifindex = if_index(iface)?;
    // SAFETY: a zeroed bpf_link_create_opts with its size set is the documented default.
    let mut opts: libbpf_rs::libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_link_create_opts>() as _;
    // SAFETY: prog is an open BPF program fd; opts is initialised above and outlives the call.
    let fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_link_create(
            prog.as_raw_fd(),
            ifindex as i32,
            libbpf_rs::libbpf_sys::BPF_TCX_INGRESS,
            &opts,
        )
    };
    if fd >= 0 {
        // SAFETY: bpf_link_create returned a new fd that nothing else owns.
        let link = unsafe { OwnedFd::from_raw_fd(fd) };
        return Ok(TcAttachment::Tcx {
            iface: iface.to_string(),
            _link: link,
        });
    }
    let tcx_err = std::io::Error::from_raw_os_error(-fd);
    let mut hook = clsact_hook(prog, ifindex as i32);
    // The clsact qdisc may already exist (EEXIST): that is fine.
    let _ = hook.create();
    match hook.attach() {
        Ok(_) => Ok(TcAttachment::Clsact {
            iface: iface.to_string(),
            ifindex: ifindex as i32,
            prog: prog.try_clone().map_err(|e| NetRuleError::Tc {
                iface: iface.to_string(),
                why: format!("duplicating the program fd: {e}"),
            })?,
        }),
        Err(err) => Err(NetRuleError::Tc {
            iface: iface.to_string(),
            why: format!("tcx: {tcx_err}; clsact: {err}"),
        }),
    }
}
