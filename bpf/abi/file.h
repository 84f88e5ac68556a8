/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The file, privilege and kernel-integrity family's contract (bpf/file.bpf.c): its records, the
 * watch-set maps user space fills, and the syscall handler ids of the dispatch table.
 *
 * Decoded in crates/bpf/src/decode/file.rs; the maps are filled by crates/bpf/src/file/maps.rs
 * (both must match this file). Record kinds (100-199 file, 200-299 privilege and kernel
 * integrity) and counters (16-31) are numbered in bpf/abi/shrike_abi.h.
 */
#ifndef SHRIKE_FILE_H
#define SHRIKE_FILE_H

/*
 * What one syscall is, for the dispatch table `syscall_handlers` (indexed by the x86_64
 * syscall number; user space writes the handler id of every syscall whose event kind is
 * enabled, 0 elsewhere). Records carry the handler id as `syscall`, so names do not depend on
 * the architecture's numbering. Never renumber.
 */
enum shrike_sys {
	SHRIKE_SYS_NONE = 0,
	SHRIKE_SYS_OPEN = 1,
	SHRIKE_SYS_OPENAT = 2,
	SHRIKE_SYS_OPENAT2 = 3,
	SHRIKE_SYS_CREAT = 4,
	SHRIKE_SYS_UNLINK = 5,
	SHRIKE_SYS_UNLINKAT = 6,
	SHRIKE_SYS_RMDIR = 7,
	SHRIKE_SYS_RENAME = 8,
	SHRIKE_SYS_RENAMEAT = 9,
	SHRIKE_SYS_RENAMEAT2 = 10,
	SHRIKE_SYS_CHMOD = 11,
	SHRIKE_SYS_FCHMOD = 12,
	SHRIKE_SYS_FCHMODAT = 13,
	SHRIKE_SYS_FCHMODAT2 = 14,
	SHRIKE_SYS_CHOWN = 15,
	SHRIKE_SYS_FCHOWN = 16,
	SHRIKE_SYS_LCHOWN = 17,
	SHRIKE_SYS_FCHOWNAT = 18,
	SHRIKE_SYS_LINK = 19,
	SHRIKE_SYS_LINKAT = 20,
	SHRIKE_SYS_SYMLINK = 21,
	SHRIKE_SYS_SYMLINKAT = 22,
	SHRIKE_SYS_INIT_MODULE = 23,
	SHRIKE_SYS_FINIT_MODULE = 24,
	SHRIKE_SYS_BPF = 25,
	SHRIKE_SYS_PTRACE = 26,
	SHRIKE_SYS_SETUID = 27,
	SHRIKE_SYS_SETREUID = 28,
	SHRIKE_SYS_SETRESUID = 29,
	SHRIKE_SYS_SETGID = 30,
	SHRIKE_SYS_SETREGID = 31,
	SHRIKE_SYS_SETRESGID = 32,
	SHRIKE_SYS_SETFSUID = 33,
	SHRIKE_SYS_SETFSGID = 34,
	SHRIKE_SYS_CAPSET = 35,
	SHRIKE_SYS_MOUNT = 36,
	SHRIKE_SYS_UMOUNT2 = 37,
	SHRIKE_SYS_SETNS = 38,
	SHRIKE_SYS_UNSHARE = 39,
	SHRIKE_SYS_CLONE = 40,
	SHRIKE_SYS_CLONE3 = 41,
	SHRIKE_SYS_MEMFD_CREATE = 42,
	SHRIKE_SYS_PROCESS_VM_READV = 43,
	SHRIKE_SYS_PROCESS_VM_WRITEV = 44,
	SHRIKE_SYS_UTIMENSAT = 45, /* also futimens: utimensat(fd, NULL, ...) */
	SHRIKE_SYS_UTIMES = 46,
	SHRIKE_SYS_FUTIMESAT = 47,
	SHRIKE_SYS_UTIME = 48,
	SHRIKE_SYS_SOCKET = 49,
	/* No record of their own: they change directories' paths (bpf/lib/dir_cache.h). */
	SHRIKE_SYS_CHROOT = 50,
	SHRIKE_SYS_PIVOT_ROOT = 51,
	SHRIKE_SYS_MOVE_MOUNT = 52,
	SHRIKE_SYS_MAX = 53, /* not a handler */
};

enum shrike_file_limits {
	SHRIKE_SYSCALL_TABLE = 512,   /* entries of syscall_handlers (x86_64 numbers are < 512) */
	SHRIKE_WATCH_PATH_MAX = 255,  /* path bytes of a watch key (LPM data is at most 256) */
	SHRIKE_SMALL_STR_MAX = 256,   /* fstype, memfd name: each at most this, NUL excluded */
	SHRIKE_WATCH_PATHS_MAX = 4096, /* watch_paths entries one generation holds */
	SHRIKE_WATCH_NAMES_MAX = 1024, /* watch_names entries one generation holds */
	SHRIKE_WATCH_DIRS_MAX = 4096, /* watch_dirs entries one generation holds */
	SHRIKE_RULE_CHAINS_MAX = 512,  /* file_rule_chains entries one generation holds */
	/* shrike_watch_value.rule[k] with this bit: not a rule but a chain of rules (rule[k]
	 * without it is the chain's index in file_rule_chains), for an entry several rules of a
	 * kind act on. A rule's index is below it. */
	SHRIKE_RULE_CHAIN = 0x8000,
};

/* syscall_handlers value: the handler id in the low byte, and whether sys_enter must run. */
enum shrike_sys_entry {
	SHRIKE_SYS_ID_MASK = 0xff,
	SHRIKE_SYS_AT_ENTER = 1 << 8, /* the record is built at entry (path strings, old creds) */
};

/* file.access, derived from the open flags. */
enum shrike_file_access {
	SHRIKE_ACCESS_READ = 1 << 0,
	SHRIKE_ACCESS_WRITE = 1 << 1,
	SHRIKE_ACCESS_CREATE = 1 << 2,
	SHRIKE_ACCESS_TRUNCATE = 1 << 3,
};

/* shrike_file_event.info (and the path info of mount and module records). */
enum shrike_file_info {
	SHRIKE_FILE_PATH_TRUNCATED = 1 << 0,	 /* path cut at SHRIKE_PATH_MAX or the depth limit */
	SHRIKE_FILE_NEW_PATH_TRUNCATED = 1 << 1, /* new_path (or mount target) cut */
	SHRIKE_FILE_CANONICAL = 1 << 2,		 /* path built from the kernel's own file/dentry */
	SHRIKE_FILE_NEW_CANONICAL = 1 << 3,	 /* new_path likewise */
	SHRIKE_FILE_UNRESOLVED = 1 << 4, /* a string the filter cannot trust ("..", "//", "/./",
					  * an unknown dirfd): passed without filtering */
	SHRIKE_FILE_SYMLINK = 1 << 5,	 /* file_link: a symbolic link; path is its text */
	SHRIKE_FILE_LSM = 1 << 6,	 /* paths came from an LSM hook */
	SHRIKE_FILE_RELATIVE = 1 << 7,	 /* path is relative: its base could not be resolved */
	SHRIKE_FILE_SETID_RULE = 1 << 8, /* passed because a chmod set setuid/setgid */
};

/* Which kinds a watch entry applies to (shrike_watch_value.kinds, shrike_watch_state.pass_all). */
enum shrike_watch_kind {
	SHRIKE_WATCH_OPEN = 1 << 0,
	SHRIKE_WATCH_UNLINK = 1 << 1,
	SHRIKE_WATCH_RENAME = 1 << 2,
	SHRIKE_WATCH_CHMOD = 1 << 3,
	SHRIKE_WATCH_CHOWN = 1 << 4,
	SHRIKE_WATCH_LINK = 1 << 5,
	SHRIKE_WATCH_UTIMES = 1 << 6, /* set-times: utimensat, futimens, utimes, futimesat, utime */
};

/* shrike_file_event.times (file_utimes): what the caller asked for each time. Neither bit of a
 * time: left as it is (UTIME_OMIT). */
enum shrike_file_times {
	SHRIKE_TIMES_ATIME_EXPLICIT = 1 << 0, /* atime set to the value in `atime` */
	SHRIKE_TIMES_MTIME_EXPLICIT = 1 << 1, /* mtime set to the value in `mtime` */
	SHRIKE_TIMES_ATIME_NOW = 1 << 2,      /* atime set to the current time */
	SHRIKE_TIMES_MTIME_NOW = 1 << 3,      /* mtime set to the current time */
	SHRIKE_TIMES_UNREAD = 1 << 4,	      /* the caller's times could not be read */
};

/* shrike_watch_value.flags */
enum shrike_watch_flags {
	SHRIKE_WATCH_EXACT = 1 << 0,  /* the key is a whole path (ends with its NUL) */
	SHRIKE_WATCH_PREFIX = 1 << 1, /* the key is a prefix */
};

/*
 * In-kernel enforcement of the family (issue 6). A kind's rules are found by path (rule[] of
 * the watch entries, below) or, for rules without a path, in the kind's list; each rule is one
 * file_rules entry, its constraint values keys of file_rule_values, all keyed by generation so
 * they switch with the watch set. Filled by crates/bpf/src/file/maps.rs.
 */
enum shrike_enforce_kind {
	SHRIKE_ENF_OPEN = 0, /* the path kinds: k such that SHRIKE_WATCH_* == 1 << k */
	SHRIKE_ENF_UNLINK = 1,
	SHRIKE_ENF_RENAME = 2,
	SHRIKE_ENF_CHMOD = 3,
	SHRIKE_ENF_CHOWN = 4,
	SHRIKE_ENF_LINK = 5,
	SHRIKE_ENF_UTIMES = 6,
	SHRIKE_ENF_MODULE = 7,
	SHRIKE_ENF_BPF = 8,
	SHRIKE_ENF_PTRACE = 9,
	SHRIKE_ENF_KINDS = 10,	   /* not a kind */
	SHRIKE_ENF_PATH_KINDS = 7, /* not a kind: kinds with paths */
	SHRIKE_ENF_LIST_MAX = 8,   /* rules per kind that have no path to be found by, and rules
				    * of one kind on one watch entry */
};

/*
 * The watch set, one generation of it. An LPM trie maps gen + path to what is watched there:
 * an exact path is stored with its terminating NUL (so it is longer than, and never mistaken
 * for, a prefix of itself); a prefix without. The lookup key is gen + the event's path + NUL,
 * so the longest match is the exact entry when there is one, else the longest prefix. User
 * space folds every covering prefix's kinds into a longer entry, so the longest match alone
 * decides. A path of SHRIKE_WATCH_PATH_MAX bytes or more is looked up by its first
 * SHRIKE_WATCH_PATH_MAX bytes, without a NUL: prefixes still match; exact entries that long
 * are stored as prefixes of their first bytes (a few more events reach user space).
 */
struct shrike_watch_key {
	__u32 prefixlen; /* bits of gen + path that must match */
	__u8 gen;
	__u8 path[SHRIKE_WATCH_PATH_MAX];
};

/* Base names: FNV-1a 64 of the last path component (a collision only lets an event through). */
struct shrike_watch_name_key {
	__u8 gen;
	__u8 _pad[7];
	__u64 name_hash;
};

/*
 * What a path entry watches, and the deny/kill rules acting on it per kind: rule[k] is the
 * policy's rule index for the kind whose SHRIKE_WATCH_* bit is 1 << k (SHRIKE_NO_RULE: none;
 * with SHRIKE_RULE_CHAIN: a chain of rules in file_rule_chains, the first that applies acts);
 * the rule itself (action, other constraints) is in file_rules (bpf/lib/file_rules.h).
 */
struct shrike_watch_value {
	__u32 kinds;  /* SHRIKE_WATCH_* kinds this entry reports */
	__u32 access; /* file_open only: SHRIKE_ACCESS_* that make an open interesting; 0: any */
	__u32 flags;  /* SHRIKE_WATCH_EXACT / _PREFIX */
	__u16 rule[SHRIKE_ENF_PATH_KINDS];
};

_Static_assert(SHRIKE_WATCH_UTIMES == 1 << SHRIKE_ENF_UTIMES &&
		       SHRIKE_ENF_PATH_KINDS == SHRIKE_ENF_UTIMES + 1 &&
		       SHRIKE_ENF_MODULE == SHRIKE_ENF_PATH_KINDS,
	       "rule[k] of a watch entry is the kind whose SHRIKE_WATCH_* bit is 1 << k");

/* watch_state[gen]: the rest of one generation; watch_active[0] says which is in force. */
struct shrike_watch_state {
	__u32 pass_all;	    /* SHRIKE_WATCH_* kinds that send every event (no path filter) */
	__u32 setid_chmod;  /* 1: a chmod that sets setuid or setgid passes wherever it is */
	__u32 names;	    /* number of base-name entries (0 skips the hash) */
	__u32 entries;	    /* number of path entries (0 skips the trie) */
	__u32 enforce;	    /* 1 << SHRIKE_ENF_*: kinds some deny/kill rule acts on (0: none) */
	__u32 serial;	    /* differs for every generation written (dir_cache keys) */
	__u32 dir_cache;    /* 1: watch_dirs lists every directory above a path entry */
};

/* shrike_file_rule.flags: which constraints the rule has besides its path (values in
 * file_rule_values under the same bit as `vkind`). */
enum shrike_file_rule_flags {
	SHRIKE_FRULE_NEW_PATH = 1 << 0,	     /* found by new_path (renames, links), not path */
	SHRIKE_FRULE_BINARY_INCL = 1 << 1,   /* values: FNV-1a 64 of binary paths or names */
	SHRIKE_FRULE_BINARY_EXCL = 1 << 2,
	SHRIKE_FRULE_UID_INCL = 1 << 3,
	SHRIKE_FRULE_UID_EXCL = 1 << 4,
	SHRIKE_FRULE_EUID_INCL = 1 << 5,
	SHRIKE_FRULE_EUID_EXCL = 1 << 6,
	SHRIKE_FRULE_CGROUP_INCL = 1 << 7,
	SHRIKE_FRULE_CGROUP_EXCL = 1 << 8,
	SHRIKE_FRULE_PARENT_INCL = 1 << 9,
	SHRIKE_FRULE_PARENT_EXCL = 1 << 10,
	SHRIKE_FRULE_ANCESTOR_INCL = 1 << 11, /* some ancestor is one of the values */
	SHRIKE_FRULE_ANCESTOR_EXCL = 1 << 12, /* no ancestor is */
	SHRIKE_FRULE_TARGET_INCL = 1 << 13,   /* ptrace: the target's binary */
	SHRIKE_FRULE_TARGET_EXCL = 1 << 14,
};

struct shrike_file_rule_key {
	__u8 gen;
	__u8 kind;  /* SHRIKE_ENF_* */
	__u16 rule; /* the policy's rule index */
};

struct shrike_file_rule {
	__u32 flags;	   /* SHRIKE_FRULE_* */
	__u32 access;	   /* file_open: the open has one of these SHRIKE_ACCESS_* (0: any) */
	__u32 access_excl; /* file_open: ... and none of these */
	__u8 action;	   /* SHRIKE_ACTION_DENY or _KILL */
	__u8 _pad[3];
};

/* Present when `value` is one of the rule's values for the constraint `vkind`. */
struct shrike_file_rule_value_key {
	__u8 gen;
	__u8 kind;
	__u16 rule;
	__u32 vkind; /* one SHRIKE_FRULE_* bit */
	__u64 value;
};

/* file_rule_lists[gen * SHRIKE_ENF_KINDS + kind]: the kind's rules that have no path. The same
 * layout is a chain's in file_rule_chains (key: gen, kind, the chain's index as `rule`). */
struct shrike_rule_list {
	__u16 rule[SHRIKE_ENF_LIST_MAX];
	__u32 count;
	__u32 _pad;
};

/* File events (SHRIKE_REC_FILE_*). `data` holds path then new_path, without NULs. */
struct shrike_file_event {
	struct shrike_header hdr;
	__s64 result;	 /* the syscall's return value */
	__u32 flags;	 /* open: O_* flags; unlinkat/linkat/fchownat/utimensat: AT_* flags; renameat2 flags */
	__u32 access;	 /* SHRIKE_ACCESS_* (file_open) */
	__u32 mode;	 /* chmod: the new mode (07777 bits) */
	__u32 uid;	 /* chown: new owner, 0xffffffff unchanged */
	__u32 gid;	 /* chown: new group, 0xffffffff unchanged */
	__u32 info;	 /* SHRIKE_FILE_* */
	__u16 syscall;	 /* SHRIKE_SYS_* */
	__u16 path_len;
	__u16 new_path_len;
	__u16 enforced_rule;   /* the rule that denied or killed (with enforced_action) */
	__u16 enforced_action; /* SHRIKE_ACTION_*: NONE when no rule acted */
	__u16 times;	       /* file_utimes: SHRIKE_TIMES_* */
	__u32 _pad2;
	__s64 atime; /* file_utimes: the explicit atime (seconds since the epoch), else 0 */
	__s64 mtime; /* file_utimes: the explicit mtime (seconds since the epoch), else 0 */
};

/* SHRIKE_REC_MODULE_LOAD: init_module / finit_module. `data`: the file's path (finit_module). */
struct shrike_module_event {
	struct shrike_header hdr;
	__s64 result;
	__u32 flags; /* finit_module flags */
	__u32 info;  /* SHRIKE_FILE_* of the path */
	__s32 fd;    /* finit_module's fd, -1 for init_module */
	__u16 syscall;
	__u16 path_len;
	__u16 enforced_rule; /* as in shrike_file_event */
	__u16 enforced_action;
	__u32 _pad0;
};

/* SHRIKE_REC_BPF_LOAD: bpf(BPF_PROG_LOAD) by a process other than the agent. */
struct shrike_bpf_event {
	struct shrike_header hdr;
	__s64 result;	 /* the program's fd, or -errno */
	__u32 prog_type; /* enum bpf_prog_type */
	__u32 insn_cnt;
	char prog_name[16];
	__u16 enforced_rule; /* as in shrike_file_event */
	__u16 enforced_action;
	__u32 _pad0;
};

/* SHRIKE_REC_PTRACE. Only requests that attach, write or change a target are reported. */
/* A ptrace(2) request, or a process_vm_readv(2)/process_vm_writev(2) call (`syscall` says
 * which; `request` is 0 for those), which reads or writes another process's memory after the
 * same access check as PTRACE_ATTACH. */
struct shrike_ptrace_event {
	struct shrike_header hdr;
	__s64 result;
	__s64 request;
	__u64 target_exec_id; /* from the lineage map; 0 unknown */
	__u32 target_pid;     /* as the caller named it (its tracer, for PTRACE_TRACEME) */
	__u16 enforced_rule;  /* as in shrike_file_event */
	__u16 enforced_action;
	__u32 syscall; /* SHRIKE_SYS_PTRACE, SHRIKE_SYS_PROCESS_VM_READV or _WRITEV */
	__u32 _pad;
};

/* Credentials: ids and the effective and permitted capability sets. */
struct shrike_creds {
	__u32 uid;
	__u32 euid;
	__u32 suid;
	__u32 fsuid;
	__u32 gid;
	__u32 egid;
	__u32 sgid;
	__u32 fsgid;
	__u64 cap_effective;
	__u64 cap_permitted;
};

/* SHRIKE_REC_CRED_CHANGE: a setuid-family call or capset that changed credentials or failed. */
struct shrike_cred_event {
	struct shrike_header hdr;
	__s64 result;
	struct shrike_creds old;
	struct shrike_creds new;
	__u16 syscall;
	__u16 _pad0;
	__u32 info; /* SHRIKE_FILE_LSM when the old credentials came from an LSM hook */
};

/* SHRIKE_REC_MOUNT / SHRIKE_REC_UMOUNT. `data`: source, target, fstype (umount: target only). */
struct shrike_mount_event {
	struct shrike_header hdr;
	__s64 result;
	__u64 flags; /* MS_* (mount) or MNT_* / UMOUNT_* (umount2) */
	__u32 info;  /* SHRIKE_FILE_*: NEW_PATH_* describe the target */
	__u16 syscall;
	__u16 source_len;
	__u16 target_len;
	__u16 fstype_len;
	__u32 _pad0;
};

/* The caller's namespaces in `shrike_ns_event.inum`, by index. */
enum shrike_ns_index {
	SHRIKE_NS_MNT = 0,
	SHRIKE_NS_UTS = 1,
	SHRIKE_NS_IPC = 2,
	SHRIKE_NS_USER = 3,
	SHRIKE_NS_PID = 4, /* the one its children get */
	SHRIKE_NS_NET = 5,
	SHRIKE_NS_CGROUP = 6,
	SHRIKE_NS_TIME = 7,
	SHRIKE_NS_KINDS = 8,
};

/* SHRIKE_REC_NAMESPACE: setns, unshare, or clone/clone3 creating namespaces. */
struct shrike_ns_event {
	struct shrike_header hdr;
	__s64 result;
	__u64 ns_flags; /* CLONE_NEW* bits of the namespaces entered or created */
	__u64 flags;	/* the raw flags argument */
	__u16 syscall;
	__u16 _pad0;
	/* A setns that succeeded: the level of the caller's own pid namespace (0 = the initial
	 * one; setns never moves the caller itself), and the inode numbers (as /proc/PID/ns/
	 * shows them) of every namespace the caller is in after the call, 0 where unknown. */
	__u32 pid_level;
	__u32 inum[SHRIKE_NS_KINDS];
};

/* SHRIKE_REC_MEMFD_CREATE. `data`: the name the caller gave. */
struct shrike_memfd_event {
	struct shrike_header hdr;
	__s64 result;
	__u32 flags; /* MFD_* */
	__u16 name_len;
	__u16 _pad0;
};

/*
 * SHRIKE_REC_SOCKET_CREATE: a socket(2) of a kind that configures the system rather than talks
 * to a peer. Sent only for AF_NETLINK with NETLINK_NETFILTER (nftables and iptables-nft rule
 * changes, conntrack), decided in the kernel: every other socket() returns at once.
 */
struct shrike_socket_event {
	struct shrike_header hdr;
	__s64 result;	 /* the fd, or a negative errno */
	__u16 family;	 /* AF_* */
	__u16 type;	 /* SOCK_* without SOCK_NONBLOCK / SOCK_CLOEXEC */
	__u16 protocol;	 /* for AF_NETLINK: NETLINK_* */
	__u16 _pad0;
};

/*
 * SHRIKE_REC_SIGNAL: a signal sent by one process to another (kill, tkill, tgkill,
 * rt_sigqueueinfo, pidfd_send_signal), from the signal_generate tracepoint.
 */
struct shrike_signal_event {
	struct shrike_header hdr;
	__u64 target_exec_id; /* from the lineage map; 0 unknown */
	__s32 signal;
	__u32 target_pid; /* thread-group id */
	__u32 target_tid;
	__s32 si_code;
	__s32 delivery; /* the tracepoint's result: 0 delivered, 1 ignored, 2 already pending,
			 * 3 queue overflow, 4 info lost */
	__u32 _pad0;
};

/* Every type of this contract, so the skeleton generates them (see SHRIKE_ABI_ANCHOR). */
struct shrike_file_anchor {
	struct shrike_file_event file;
	struct shrike_module_event module;
	struct shrike_bpf_event bpf;
	struct shrike_ptrace_event ptrace;
	struct shrike_cred_event cred;
	struct shrike_mount_event mount;
	struct shrike_ns_event ns;
	struct shrike_memfd_event memfd;
	struct shrike_socket_event socket;
	struct shrike_signal_event signal;
	struct shrike_watch_key watch_key;
	struct shrike_watch_name_key watch_name_key;
	struct shrike_watch_value watch_value;
	struct shrike_watch_state watch_state;
	struct shrike_file_rule_key file_rule_key;
	struct shrike_file_rule file_rule;
	struct shrike_file_rule_value_key file_rule_value_key;
	struct shrike_rule_list rule_list;
	enum shrike_enforce_kind enforce_kind;
	enum shrike_file_rule_flags file_rule_flags;
	enum shrike_ns_index ns_index;
	enum shrike_sys sys;
	enum shrike_file_limits limits;
	enum shrike_sys_entry sys_entry;
	enum shrike_file_access access;
	enum shrike_file_info info;
	enum shrike_watch_kind watch_kind;
	enum shrike_watch_flags watch_flags;
	enum shrike_file_times file_times;
};

#endif /* SHRIKE_FILE_H */
