//! What the tests expect of BPF LSM on this kernel, decided without the agent's own probe
//! (`shrike_bpf::probe`), so that a wrong answer there cannot make the agent's hook choice look
//! right.
//!
//! - **In the kernel matrix** (`SHRIKE_VM_KERNEL` set) the boot configuration decides:
//!   `vm/matrix.sh` passes the LSM list the guest kernel was booted with in `SHRIKE_VM_LSM_LIST`
//!   (the `lsm=` it put on the command line, or the kernel's built-in `CONFIG_LSM` for
//!   `--lsm default`); BPF LSM is expected exactly when `bpf` is in it. The check below must
//!   agree with it there, which is what shows that the check can answer "yes".
//! - **Elsewhere** (a development machine, CI's host) a check of the harness's own: a
//!   ten-instruction LSM program on `file_open` that counts its calls in an array map, loaded
//!   with raw `bpf()` system calls (no libbpf, no object file; the hook's BTF id read from
//!   `/sys/kernel/btf/vmlinux` here), attached, and triggered by an open from this process.
//!   BPF LSM is active when the count moved. On this project's 6.18 machines the load is refused
//!   (BPF trampolines are), so the fallback is expected; where `bpf` is missing from the active
//!   LSM list the program attaches but is never called, and the fallback is expected too.

use std::ffi::CStr;
use std::io;

/// Whether the agent must take its BPF LSM paths here (see the module's comment).
pub fn expected() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if std::env::var_os("SHRIKE_VM_KERNEL").is_none() {
        return match fires() {
            Ok(()) => true,
            Err(why) => {
                eprintln!("harness BPF LSM check: not active here ({why})");
                false
            }
        };
    }
    let Ok(list) = std::env::var("SHRIKE_VM_LSM_LIST") else {
        let why = "SHRIKE_VM_KERNEL is set but SHRIKE_VM_LSM_LIST is not: vm/matrix.sh must pass the LSM list it booted the guest with";
        assert!(!ci, "{why}");
        eprintln!("harness BPF LSM check: {why}; using the harness's own check");
        return fires().is_ok();
    };
    let booted = list.split(',').any(|lsm| lsm.trim() == "bpf");
    let own = fires();
    assert_eq!(
        own.is_ok(),
        booted,
        "the guest was booted with LSM list {list:?}, but the harness's own BPF LSM check says {own:?}"
    );
    booted
}

/// Whether fentry programs work here (BPF trampolines allowed), by the harness's own check:
/// a counting fentry program on `__x64_sys_openat` (trivial calls such as getppid have no BTF
/// of their own), loaded with raw `bpf()`, attached and triggered by an open. Decides whether the file sensor must pick its fentry hook set where
/// BPF LSM is not active (the matrix's Debian kernels allow trampolines; this project's 6.18
/// machines refuse them with EPERM).
pub fn fentry_expected() -> bool {
    match attach_and_trigger(
        BPF_PROG_TYPE_TRACING,
        BPF_TRACE_FENTRY,
        "__x64_sys_openat",
        || {
            std::fs::File::open("/proc/self/stat")
                .map(drop)
                .map_err(|e| format!("the trigger open: {e}"))
        },
    ) {
        Ok(()) => true,
        Err(why) => {
            eprintln!("harness fentry check: not working here ({why})");
            false
        }
    }
}

/// Loads, attaches and triggers the counting LSM program: Ok when it was called, Err saying
/// why not.
fn fires() -> Result<(), String> {
    attach_and_trigger(BPF_PROG_TYPE_LSM, BPF_LSM_MAC, "bpf_lsm_file_open", || {
        std::fs::File::open("/proc/self/stat")
            .map(drop)
            .map_err(|e| format!("the trigger open: {e}"))
    })
    .map_err(|why| {
        if why.contains("never called") {
            "the LSM program attached but was never called: 'bpf' is not in the active LSM list"
                .into()
        } else {
            why
        }
    })
}

/// Loads the counting program as `prog_type`/`attach_type` on the kernel function `func`,
/// attaches it, runs `trigger` and says whether the program was called.
fn attach_and_trigger(
    prog_type: u32,
    attach_type: u32,
    func: &str,
    trigger: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let btf_id = func_btf_id(func)?;
    lift_memlock_limit();
    let map = Fd::new(bpf(BPF_MAP_CREATE, &mut map_attr()))
        .map_err(|e| format!("creating the counter map: {e}"))?;
    let insns = program(map.0);
    let license = c"GPL";
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, prog_type);
    put_u32(&mut attr, 4, insns.len() as u32);
    put_u64(&mut attr, 8, insns.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    attr[48..48 + 12].copy_from_slice(b"shrike_htest");
    put_u32(&mut attr, 68, attach_type);
    put_u32(&mut attr, 108, btf_id);
    let prog = Fd::new(bpf(BPF_PROG_LOAD, &mut attr))
        .map_err(|e| format!("the kernel refused to load a program on {func}: {e}"))?;
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 8, prog.0 as u32); // raw_tracepoint.name = NULL, .prog_fd
    let link = Fd::new(bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr))
        .map_err(|e| format!("the kernel refused to attach a program on {func}: {e}"))?;
    trigger()?;
    drop(link);
    let calls = counter(map.0).map_err(|e| format!("reading the counter: {e}"))?;
    if calls == 0 {
        return Err(format!(
            "the program on {func} attached but was never called"
        ));
    }
    Ok(())
}

const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_PROG_LOAD: u32 = 5;
const BPF_RAW_TRACEPOINT_OPEN: u32 = 17;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_PROG_TYPE_LSM: u32 = 29;
const BPF_TRACE_FENTRY: u32 = 24;
const BPF_LSM_MAC: u32 = 27;
const BTF_KIND_FUNC: u32 = 12;

/// `r0 = 0` after counting the call in `map[0]`:
/// `*(u32 *)(r10 - 4) = 0; r2 = r10 - 4; r1 = map; r0 = lookup(r1, r2);
/// if r0 { lock *(u64 *)r0 += 1 } return 0`.
fn program(map_fd: i32) -> Vec<u64> {
    let insn = |code: u8, dst: u8, src: u8, off: i16, imm: i32| -> u64 {
        u64::from(code)
            | u64::from(dst & 0xf) << 8
            | u64::from(src & 0xf) << 12
            | u64::from(off as u16) << 16
            | u64::from(imm as u32) << 32
    };
    vec![
        insn(0x62, 10, 0, -4, 0),    // *(u32 *)(r10 - 4) = 0
        insn(0xbf, 2, 10, 0, 0),     // r2 = r10
        insn(0x07, 2, 0, 0, -4),     // r2 += -4
        insn(0x18, 1, 1, 0, map_fd), // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD) ...
        insn(0, 0, 0, 0, 0),         // ... its upper half
        insn(0x85, 0, 0, 0, 1),      // call bpf_map_lookup_elem
        insn(0x15, 0, 0, 2, 0),      // if r0 == 0 goto +2
        insn(0xb7, 1, 0, 0, 1),      // r1 = 1
        insn(0xdb, 0, 1, 0, 0),      // lock *(u64 *)(r0 + 0) += r1
        insn(0xb7, 0, 0, 0, 0),      // r0 = 0 (allow)
        insn(0x95, 0, 0, 0, 0),      // exit
    ]
}

fn map_attr() -> [u8; 128] {
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, BPF_MAP_TYPE_ARRAY);
    put_u32(&mut attr, 4, 4); // key size
    put_u32(&mut attr, 8, 8); // value size
    put_u32(&mut attr, 12, 1); // entries
    attr
}

fn counter(map_fd: i32) -> io::Result<u64> {
    let key = 0u32;
    let mut value = 0u64;
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, map_fd as u32);
    put_u64(&mut attr, 8, &key as *const u32 as u64);
    put_u64(&mut attr, 16, &mut value as *mut u64 as u64);
    if bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

fn put_u32(attr: &mut [u8], at: usize, v: u32) {
    attr[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(attr: &mut [u8], at: usize, v: u64) {
    attr[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Kernels before 5.11 charge BPF maps and programs to the user's locked memory, checked against
/// RLIMIT_MEMLOCK: on 5.10, with an agent's maps already charged to root, the counter map was
/// refused with EPERM. libbpf lifts the limit the same way; later kernels ignore it.
fn lift_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct, which lives for the call. A failure leaves the
    // limit as it was, and the map creation below reports what that costs.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

/// `bpf(cmd, attr, sizeof attr)`: a file descriptor or 0 on success, -1 with errno set.
fn bpf(cmd: u32, attr: &mut [u8; 128]) -> i64 {
    // SAFETY: attr is a live, writable 128-byte buffer for the whole call; every pointer stored
    // in it (instructions, license, key, value) points at memory that outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.as_mut_ptr(),
            attr.len() as libc::c_long,
        )
    }
}

/// A file descriptor from `bpf()`, closed on drop.
struct Fd(i32);

impl Fd {
    fn new(rc: i64) -> io::Result<Fd> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(Fd(rc as i32))
        }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: closes a descriptor this struct owns and nothing else uses.
        unsafe { libc::close(self.0) };
    }
}

/// The BTF type id of the kernel function `name` in vmlinux's BTF.
fn func_btf_id(name: &str) -> Result<u32, String> {
    let btf = std::fs::read("/sys/kernel/btf/vmlinux")
        .map_err(|e| format!("reading /sys/kernel/btf/vmlinux: {e}"))?;
    let u32_at = |at: usize| -> Result<u32, String> {
        btf.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .ok_or_else(|| "vmlinux BTF is cut short".to_string())
    };
    if btf.get(0..2) != Some(&[0x9f, 0xeb][..]) {
        return Err("vmlinux BTF has no little-endian BTF magic".into());
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let str_off = u32_at(16)? as usize;
    let types = hdr_len + type_off;
    let strings = hdr_len + str_off;
    let (mut at, mut id) = (types, 1u32);
    while at < types + type_len {
        let (name_off, info) = (u32_at(at)? as usize, u32_at(at + 4)?);
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        if kind == BTF_KIND_FUNC {
            let found = btf
                .get(strings + name_off..)
                .and_then(|s| CStr::from_bytes_until_nul(s).ok())
                .is_some_and(|s| s.to_bytes() == name.as_bytes());
            if found {
                return Ok(id);
            }
        }
        // What follows each kind's 12-byte common part.
        at += 12
            + match kind {
                1 | 14 | 17 => 4,        // INT, VAR, DECL_TAG
                3 => 12,                 // ARRAY
                4 | 5 | 15 => 12 * vlen, // STRUCT, UNION, DATASEC
                6 | 13 => 8 * vlen,      // ENUM, FUNC_PROTO
                19 => 12 * vlen,         // ENUM64
                2 | 7..=12 | 16 | 18 => 0,
                other => {
                    return Err(format!(
                        "vmlinux BTF has a kind this check does not know: {other}"
                    ))
                }
            };
        id += 1;
    }
    Err(format!("vmlinux BTF has no function {name}"))
}
