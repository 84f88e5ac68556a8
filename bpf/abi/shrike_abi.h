/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * shrike's kernel <-> user contract: every record the BPF programs write to the ring buffer,
 * every map value user space reads or writes, and the constants both sides share.
 *
 * Rules (docs/ARCHITECTURE.md, "Kernel <-> user contract"):
 *   - fixed-width types and explicit padding only, so the layout is the same in C and in the
 *     Rust types the libbpf-cargo skeleton generates from this file's BTF;
 *   - every record starts with struct shrike_header;
 *   - record kinds and counter ids are numbered in ranges and never reused;
 *   - variable-length data follows the fixed part, each piece's length given in the fixed part.
 *
 * Decoded in exactly one place: crates/bpf/src/decode/ (must match this file).
 */
#ifndef SHRIKE_ABI_H
#define SHRIKE_ABI_H

/*
 * Constants are enums, not #defines, so that they are in the object's BTF and the generated
 * Rust skeleton carries them too (shrike_abi_anchor below makes sure every one is referenced).
 */

/* Record kinds. 1-99 process lifecycle, 100-199 file, 200-299 privilege and kernel
 * integrity, 300-399 network. Never reuse a number. */
enum shrike_record_kind {
	SHRIKE_REC_PROCESS_EXEC = 1,
	SHRIKE_REC_PROCESS_EXIT = 2,
	SHRIKE_REC_PROCESS_FORK = 3,
	SHRIKE_REC_EXEC_DENIED = 4, /* bpf/abi/enforce.h */
	SHRIKE_REC_TAMPER = 5,	    /* bpf/abi/enforce.h: self-protection refused something */
	/* 100-199: file, 200-299: privilege and kernel integrity (bpf/abi/file.h) */
	SHRIKE_REC_FILE_OPEN = 100,
	SHRIKE_REC_FILE_UNLINK = 101,
	SHRIKE_REC_FILE_RENAME = 102,
	SHRIKE_REC_FILE_CHMOD = 103,
	SHRIKE_REC_FILE_CHOWN = 104,
	SHRIKE_REC_FILE_LINK = 105,
	SHRIKE_REC_FILE_UTIMES = 106,
	SHRIKE_REC_MODULE_LOAD = 200,
	SHRIKE_REC_BPF_LOAD = 201,
	SHRIKE_REC_PTRACE = 202,
	SHRIKE_REC_CRED_CHANGE = 203,
	SHRIKE_REC_MOUNT = 204,
	SHRIKE_REC_UMOUNT = 205,
	SHRIKE_REC_NAMESPACE = 206,
	SHRIKE_REC_MEMFD_CREATE = 207,
	SHRIKE_REC_SIGNAL = 208,
	SHRIKE_REC_SOCKET_CREATE = 209,
	/* 300-399: network (bpf/abi/net.h) */
	SHRIKE_REC_NET_CONNECT = 300,
	SHRIKE_REC_NET_ACCEPT = 301,
	SHRIKE_REC_NET_BIND = 302,
	SHRIKE_REC_NET_LISTEN = 303,
	SHRIKE_REC_NET_CLOSE = 304,
	SHRIKE_REC_NET_DNS = 305,
};

/* Limits of what one record carries; longer data is cut and flagged. */
enum shrike_limits {
	SHRIKE_COMM_LEN = 16,
	SHRIKE_PATH_DEPTH_MAX = 128, /* path components walked before the path is cut */
	SHRIKE_ANCESTRY = 8,	     /* ancestor images each lineage entry carries */
	SHRIKE_PATH_MAX = 4096,	     /* binary, filename, interpreter, cwd: each at most this */
	SHRIKE_ENV_MAX = 16384,	     /* environment bytes per exec, when env capture is on */
	SHRIKE_ARGS_MAX = 32768,     /* argv bytes (NUL-separated) per exec */
};

/* Every record begins with this header. */
struct shrike_header {
	__u16 kind;	 /* SHRIKE_REC_* */
	__u16 _pad0;
	__u32 size;	 /* bytes in the whole record, header included */
	__u64 ktime_ns;	 /* CLOCK_BOOTTIME when the record was made */
	__u32 pid;	 /* thread-group id (the process) */
	__u32 tid;	 /* thread id */
	__u64 exec_id;	 /* the process image; 0 when unknown to the kernel side */
};

/* shrike_exec.flags */
enum shrike_exec_flags {
	SHRIKE_EXEC_ARGS_TRUNCATED = 1 << 0,
	SHRIKE_EXEC_ENV_TRUNCATED = 1 << 1,
	SHRIKE_EXEC_BINARY_TRUNCATED = 1 << 2,
	SHRIKE_EXEC_CWD_TRUNCATED = 1 << 3,
	SHRIKE_EXEC_FILENAME_TRUNCATED = 1 << 4,
	SHRIKE_EXEC_MEMFD = 1 << 5,	       /* the executed file is a memfd */
	SHRIKE_EXEC_DELETED = 1 << 6,	       /* the executed file has no links */
	SHRIKE_EXEC_SCRIPT = 1 << 7,	       /* filename was a #! script run by the binary */
	SHRIKE_EXEC_PARENT_IS_PREV = 1 << 8,   /* exec without fork: parent is the replaced image */
	SHRIKE_EXEC_ARGS_FAULT = 1 << 9,       /* argv could not be read (counted too) */
	SHRIKE_EXEC_LINEAGE_UNKNOWN = 1 << 10, /* no lineage entry existed for the process */
	SHRIKE_EXEC_HELD = 1 << 11, /* stopped until user space places its cgroup: a scoped rule
				     * (enforced_rule) would apply but for it */
	SHRIKE_EXEC_UNDER_SERVER = 1 << 12, /* an image above this one listened on a TCP port
					     * (SHRIKE_PROC_UNDER_SERVER) */
	SHRIKE_EXEC_NET_WRITTEN = 1 << 13, /* the executable was opened for writing by a process
					    * that had connected out (writer_exec_id) */
	SHRIKE_EXEC_CTIME_UNKNOWN = 1 << 14, /* binary_ctime_s could not be read */
};

/* One of fds 0, 1, 2 at exec, when it is a socket (family 0: not a socket) or a pipe
 * (pipe_ino not 0). The peer is the connected address (IPv4 in the first 4 bytes, network
 * order); port in host order. */
struct shrike_stdio_sock {
	__u16 family;	/* AF_INET, AF_INET6, AF_UNIX; 0 when the fd is not a socket */
	__u16 type;	/* SOCK_STREAM, SOCK_DGRAM, ... */
	__u16 protocol; /* IPPROTO_TCP, IPPROTO_UDP; 0 for unix sockets */
	__u16 peer_port;
	__u8 peer_addr[16];
	__u64 pipe_ino; /* the pipe's inode number when the fd is a pipe or FIFO; else 0 */
};

/*
 * SHRIKE_REC_PROCESS_EXEC. After the fixed part, `data` holds, in order and without
 * separators: binary (binary_len bytes), filename (filename_len), interpreter (interp_len),
 * cwd (cwd_len), argv (args_len, NUL-separated), environment (env_len, NUL-separated).
 */
struct shrike_exec {
	struct shrike_header hdr;
	__u64 parent_exec_id;	/* see SHRIKE_EXEC_PARENT_IS_PREV; 0 when unknown */
	__u64 start_boottime_ns; /* when the process (not this image) was forked */
	__u64 cgroup_id;	/* cgroup v2 id */
	__u32 ppid;		/* real parent's thread-group id */
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 loginuid;		/* 4294967295 when unset */
	__u32 flags;		/* SHRIKE_EXEC_* */
	__u32 args_total;	/* argv bytes the process really has (>= args_len) */
	__u32 args_len;
	__u32 env_len;
	__u16 binary_len;
	__u16 filename_len;
	__u16 interp_len;
	__u16 cwd_len;
	__u16 enforced_rule;	/* rule index that acted on this exec, SHRIKE_NO_RULE if none */
	__u16 enforced_action;	/* SHRIKE_ACTION_*: KILL on kernels without BPF LSM */
	__u32 _pad1;
	/* The executable's inode change time (CLOCK_REALTIME seconds): content written, renamed,
	 * mode or owner changed. Unlike mtime, utimensat cannot set it back. */
	__s64 binary_ctime_s;
	/* With SHRIKE_EXEC_NET_WRITTEN: the image that opened the executable for writing after
	 * it had connected out (the most recent such writer the kernel remembers). */
	__u64 writer_exec_id;
	char comm[SHRIKE_COMM_LEN];
	struct shrike_stdio_sock stdio[3]; /* fds 0, 1, 2 */
	/* followed by the data described above */
};

/* SHRIKE_REC_PROCESS_FORK: a new process (not a thread). hdr.exec_id is the child's. */
struct shrike_fork {
	struct shrike_header hdr;
	__u64 parent_exec_id;	/* the forking image */
	__u64 start_boottime_ns;
	__u32 ppid;
	__u32 _pad0;
};

/* SHRIKE_REC_PROCESS_EXIT: the last thread of a process exited. */
struct shrike_exit {
	struct shrike_header hdr;
	__u32 exit_code;	/* wait(2) status: (code << 8) | core_dump 0x80 | signal */
	__u32 _pad0;
};

/*
 * The lineage map (SEC ".maps" `procs`, key: __u32 thread-group id). Filled by the kernel at
 * fork and exec, removed at exit, seeded by user space at start for older processes. Later
 * sensors and in-kernel policy read exec_id and parent_exec_id from it.
 */
enum shrike_proc_flags {
	SHRIKE_PROC_CLONE = 1 << 0,  /* forked and not yet exec'd: the image is the parent's */
	SHRIKE_PROC_SEEDED = 1 << 1, /* written by user space from /proc */
	SHRIKE_PROC_ANCESTRY_CUT = 1 << 2, /* more ancestors than anc[] holds */
	SHRIKE_PROC_ANCESTRY_UNKNOWN = 1 << 3, /* the parent image was not known */
	/* This image listened on a TCP port (set by the network sensor at listen(); never for
	 * PID 1, which listens for the services it socket-activates). Not inherited. */
	SHRIKE_PROC_LISTENED = 1 << 4,
	/* An image above this one (the forking image, the image exec replaced, or one of theirs)
	 * listened: a network server is in its lineage. Inherited at fork and exec. */
	SHRIKE_PROC_UNDER_SERVER = 1 << 5,
	/* This image connected out (TCP, or UDP to a port other than 53; set by the network
	 * sensor at connect()). Its write opens are remembered in `net_written`. Not inherited. */
	SHRIKE_PROC_CONNECTED = 1 << 6,
};

/*
 * The `net_written` map (LRU, owned by the process object, shared with the file object): files
 * opened for writing by an image with SHRIKE_PROC_CONNECTED, so an exec of one can say that a
 * networked process wrote it (download and execute, whatever the downloader is called).
 */
struct shrike_inode_key {
	__u64 ino;
	__u32 dev;	/* the kernel's s_dev: (major << 20) | minor */
	__u32 _pad0;
};

struct shrike_net_write {
	__u64 writer_exec_id;
	__u64 ktime_ns;	/* CLOCK_BOOTTIME of the write open */
};

struct shrike_proc {
	__u64 exec_id;
	__u64 parent_exec_id;
	__u64 start_boottime_ns;
	__u32 flags;		/* SHRIKE_PROC_* */
	__u32 _pad0;
	__u64 path_hash;	/* FNV-1a 64 of the executable's path, for lineage rules */
	__u64 name_hash;	/* FNV-1a 64 of its base name; 0 unknown; a clone keeps its parent's */
	/* The images that started this one, nearest first (anc[0] is the parent image: the
	 * forking image, or the image exec replaced), as the user-space tree orders them; for a
	 * clone, the forking image's own ancestry with the forking image first. */
	__u64 anc_path[SHRIKE_ANCESTRY];
	__u64 anc_name[SHRIKE_ANCESTRY];
	__u32 anc_count;	/* entries filled; SHRIKE_PROC_ANCESTRY_CUT when there were more */
	__u32 _pad1;
};

/*
 * Kernel-side counters: a per-CPU array indexed by these ids; user space sums the CPUs.
 * Every record that could not be delivered and every failed map operation is counted.
 */
enum shrike_counter {
	SHRIKE_CNT_RINGBUF_FULL = 0,	  /* a record was dropped: ring buffer full */
	SHRIKE_CNT_PROCS_UPDATE_FAIL = 1, /* lineage map update failed (map full?) */
	SHRIKE_CNT_LINEAGE_MISS = 2,	  /* no lineage entry for a process that needed one */
	SHRIKE_CNT_READ_FAIL = 3,	  /* a kernel or user memory read failed */
	SHRIKE_CNT_SCRATCH_FAIL = 4,	  /* the per-CPU scratch buffer was unavailable */
	SHRIKE_CNT_EXEC_SEEN = 5,
	SHRIKE_CNT_FORK_SEEN = 6,
	SHRIKE_CNT_EXIT_SEEN = 7,
	SHRIKE_CNT_ARGS_TRUNCATED = 8,
	SHRIKE_CNT_PATH_TRUNCATED = 9,
	SHRIKE_CNT_EXEC_KILLED = 10,  /* execs killed by a rule (no BPF LSM) */
	SHRIKE_CNT_EXEC_DENIED = 11,  /* execs refused by a rule (BPF LSM) */
	SHRIKE_CNT_EXEC_HELD = 12,    /* execs stopped until user space placed their cgroup */
	/* 16-31: file, privilege and kernel integrity (bpf/file.bpf.c) */
	SHRIKE_CNT_FILE_SEEN = 16,	   /* file syscalls that reached the watch filter */
	SHRIKE_CNT_FILE_FILTERED = 17,	   /* ... and were dropped there: path not watched */
	SHRIKE_CNT_FILE_UNRESOLVED = 18,   /* ... passed unfiltered: path string not trustworthy */
	SHRIKE_CNT_FILE_PENDING_FAIL = 19, /* a record could not be kept from entry to exit */
	SHRIKE_CNT_PRIV_SEEN = 20,	   /* privilege and kernel-integrity events seen */
	SHRIKE_CNT_COMPAT_SKIPPED = 21,	   /* 32-bit (ia32) syscalls not decoded */
	SHRIKE_CNT_FILE_STR_TRUNCATED = 22, /* user path strings cut at SHRIKE_PATH_MAX */
	SHRIKE_CNT_FILE_ENFORCED = 23,	   /* file/privilege actions denied or killed by a rule */
	SHRIKE_CNT_FILE_DIR_SKIPPED = 24,  /* opens dropped on their directory, no path built */
	/* 32-47: network */
	SHRIKE_CNT_NET_DENIED = 32,	   /* connects, sends, binds refused by a rule */
	SHRIKE_CNT_NET_TC_DROPPED = 33,	   /* inbound packets dropped at tc by a rule */
	SHRIKE_CNT_NET_STORAGE_FAIL = 34,  /* socket storage could not be created */
	SHRIKE_CNT_NET_NO_OWNER = 35,	   /* a socket event with no recorded process */
	SHRIKE_CNT_NET_DNS_TRUNCATED = 36, /* DNS messages longer than the record carries */
	SHRIKE_CNT_NET_PARSE_SKIPPED = 37, /* packets not parsed (IPv6 ext. headers, fragments) */
	SHRIKE_CNT_NET_RULE_MISS = 38,	   /* a matched rule slot had no rule (map race) */
	SHRIKE_CNT_NET_TC_NOT_REPORTED = 39, /* tc drops folded into an earlier event (1/s) */
	SHRIKE_CNT_NET_SEED_FULL = 40,	   /* start-up socket owners not recorded: seed map full */
	SHRIKE_CNT_MAX = 64, /* size of the counter array, not a counter */
};

#include "enforce.h"

/*
 * Every contract type in one place. Each BPF object defines one (unused) instance, which puts
 * all of them into its BTF, so the libbpf-cargo skeleton generates the Rust types and
 * constants from this file rather than from hand copies.
 */
struct shrike_abi_anchor {
	struct shrike_header header;
	struct shrike_exec exec;
	struct shrike_fork fork;
	struct shrike_exit exit;
	struct shrike_proc proc;
	struct shrike_inode_key inode_key;
	struct shrike_net_write net_write;
	struct shrike_exec_denied exec_denied;
	enum shrike_exec_denied_flags exec_denied_flags;
	struct shrike_tamper tamper;
	enum shrike_tamper_kind tamper_kind;
	enum shrike_bpf_object bpf_object;
	struct shrike_path_key path_key;
	struct shrike_name_key name_key;
	struct shrike_rule_refs rule_refs;
	struct shrike_exec_rule exec_rule;
	struct shrike_rule_value_key rule_value_key;
	enum shrike_rule_value_kind rule_value_kind;
	struct shrike_enforce_state enforce_state;
	enum shrike_action action;
	enum shrike_enforce_limits enforce_limits;
	enum shrike_rule_flags rule_flags;
	enum shrike_record_kind record_kind;
	enum shrike_limits limits;
	enum shrike_exec_flags exec_flags;
	enum shrike_proc_flags proc_flags;
	enum shrike_counter counter;
};

#define SHRIKE_ABI_ANCHOR struct shrike_abi_anchor shrike_abi_anchor SEC(".bss")

#endif /* SHRIKE_ABI_H */
