// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Self-protection (`shrike run --protect-self`), where BPF LSM is active: no other process,
 * root included, may signal or ptrace the agent, remove its pins under /sys/fs/bpf/shrike, or
 * take hold of its BPF programs, maps and links (a file descriptor to one of them, by id or from
 * a pin, or detaching or replacing one of its links) unless it runs an allowed binary (the
 * shrike binary itself, and those given with --allow-control). Every refusal is a record the
 * agent turns into an alert.
 *
 * Hooks: lsm/task_kill, lsm/ptrace_access_check, lsm/inode_unlink, lsm/bpf_prog, lsm/bpf_map,
 * lsm/bpf (BPF LSM, 5.7+; active on kernels booted with bpf in lsm=). Where BPF LSM is not
 * active, signals and ptrace are seen by the signal and ptrace sensors and alerted on, not
 * refused.
 */
#include "common.h"
#include "maps.h"
#include "emit.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
SHRIKE_ABI_ANCHOR;

/* The agent's thread-group id (set before load). */
const volatile __u32 cfg_self_tgid = 0;

/* FNV-1a 64 path hashes of binaries allowed to control the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} allowed_controllers SEC(".maps");

/* (s_dev << 32 | low bits of i_ino) of the pin directories (links/, maps/). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u64);
	__type(value, __u8);
} protected_dirs SEC(".maps");

/* The agent's own programs, maps and links, by (SHRIKE_OBJ_* << 32 | id), filled once they are
 * all loaded and attached. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} protected_objects SEC(".maps");

/* Whether the current process may control the agent: the agent itself, or an allowed binary
 * (by the path hash its lineage entry carries). */
static __always_inline bool controller_allowed(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct shrike_proc *p;

	if (tgid == cfg_self_tgid)
		return true;
	p = bpf_map_lookup_elem(&procs, &tgid);
	return p && bpf_map_lookup_elem(&allowed_controllers, &p->path_hash);
}

static __always_inline bool own_object(__u32 type, __u32 id)
{
	__u64 key = ((__u64)type << 32) | id;

	return bpf_map_lookup_elem(&protected_objects, &key);
}

/* The id of the BPF link behind the caller's file descriptor `fd` (0 when there is none). The
 * kernel checks afterwards that the file really is a link; a file that is not reads as some
 * other number, which at worst refuses a call that was going to fail anyway. */
static __always_inline __u32 link_id_of_fd(__u32 fd)
{
	struct task_struct *task = current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;
	struct bpf_link *link;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_core_read(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	link = BPF_CORE_READ(file, private_data);
	return link ? BPF_CORE_READ(link, id) : 0;
}

static __always_inline void report(__u32 kind, __s32 signal)
{
	struct shrike_tamper t = {};
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct shrike_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	t.hdr.kind = SHRIKE_REC_TAMPER;
	t.hdr.size = sizeof(t);
	t.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	t.hdr.pid = tgid;
	t.hdr.tid = (__u32)pid_tgid;
	t.hdr.exec_id = p ? p->exec_id : 0;
	t.kind = kind;
	t.target_pid = cfg_self_tgid;
	t.signal = signal;
	emit_record(&t, sizeof(t));
}

SEC("lsm/task_kill")
int BPF_PROG(protect_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred, int ret)
{
	if (ret)
		return ret;
	if (sig == 0 || BPF_CORE_READ(p, tgid) != cfg_self_tgid || controller_allowed())
		return 0;
	report(SHRIKE_TAMPER_SIGNAL, sig);
	return -1; /* -EPERM */
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(protect_ptrace, struct task_struct *child, unsigned int mode, int ret)
{
	if (ret)
		return ret;
	if (BPF_CORE_READ(child, tgid) != cfg_self_tgid || controller_allowed())
		return 0;
	report(SHRIKE_TAMPER_PTRACE, mode);
	return -1;
}

SEC("lsm/inode_unlink")
int BPF_PROG(protect_pins, struct inode *dir, struct dentry *victim, int ret)
{
	__u64 key;

	if (ret)
		return ret;
	key = ((__u64)BPF_CORE_READ(dir, i_sb, s_dev) << 32) | (__u32)BPF_CORE_READ(dir, i_ino);
	if (!bpf_map_lookup_elem(&protected_dirs, &key) || controller_allowed())
		return 0;
	report(SHRIKE_TAMPER_UNPIN, 0);
	return -1;
}

/* A new file descriptor to one of the agent's programs: by id, or from its pin. */
SEC("lsm/bpf_prog")
int BPF_PROG(protect_prog_fd, struct bpf_prog *prog, int ret)
{
	if (ret)
		return ret;
	if (!own_object(SHRIKE_OBJ_PROG, BPF_CORE_READ(prog, aux, id)) || controller_allowed())
		return 0;
	report(SHRIKE_TAMPER_BPF, SHRIKE_OBJ_PROG);
	return -1;
}

/* A new file descriptor to one of the agent's maps (its rules, its lineage): by id or pin. */
SEC("lsm/bpf_map")
int BPF_PROG(protect_map_fd, struct bpf_map *map, fmode_t fmode, int ret)
{
	if (ret)
		return ret;
	if (!own_object(SHRIKE_OBJ_MAP, BPF_CORE_READ(map, id)) || controller_allowed())
		return 0;
	report(SHRIKE_TAMPER_BPF, SHRIKE_OBJ_MAP);
	return -1;
}

/* Links have no fd hook: refuse taking one by id, and detaching or replacing one through an fd
 * got from its pin. (The hook's arguments grew a `kernel` flag in 6.9: only the first two are
 * read.) */
SEC("lsm/bpf")
int BPF_PROG(protect_links, int cmd, union bpf_attr *attr)
{
	__u32 id;

	switch (cmd) {
	case BPF_LINK_GET_FD_BY_ID:
		id = BPF_CORE_READ(attr, link_id);
		break;
	case BPF_LINK_DETACH:
		id = link_id_of_fd(BPF_CORE_READ(attr, link_detach.link_fd));
		break;
	case BPF_LINK_UPDATE:
		id = link_id_of_fd(BPF_CORE_READ(attr, link_update.link_fd));
		break;
	default:
		return 0;
	}
	if (!id || !own_object(SHRIKE_OBJ_LINK, id) || controller_allowed())
		return 0;
	report(SHRIKE_TAMPER_BPF, SHRIKE_OBJ_LINK);
	return -1;
}
