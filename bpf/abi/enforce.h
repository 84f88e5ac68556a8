/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Enforcement contract: the rule maps user space fills from the policy's kernel plan, and the
 * constants records use to say which rule acted and how. Included by shrike_abi.h.
 *
 * Exec rules (bpf/lib/exec_rules.h): an LPM trie of paths (exact paths end with their NUL, so
 * they are longer than any prefix of them) and a hash map of base names, both keyed with a
 * generation byte first, point at up to SHRIKE_RULES_PER_KEY rule slots. A slot holds the rule's
 * index, action and which other constraints it has; the constraints' values (uids, cgroups,
 * parent and ancestor binaries) are keys of one hash map, so testing a value is one lookup. A
 * policy reload fills the other generation completely, then flips `active_gen` in
 * enforce_state: the kernel never sees half a policy. Filled by crates/bpf/src/enforce.rs (must
 * match this file).
 */
#ifndef SHRIKE_ENFORCE_H
#define SHRIKE_ENFORCE_H

enum shrike_action {
	SHRIKE_ACTION_NONE = 0,
	SHRIKE_ACTION_DENY = 1, /* the operation fails with EPERM (LSM or cgroup hook) */
	SHRIKE_ACTION_KILL = 2, /* the process gets SIGKILL */
};

enum shrike_enforce_limits {
	SHRIKE_RULE_PATH_MAX = 128,	 /* path bytes a rule key holds, NUL included (an LPM key holds
					  * at most 256 bytes; longer paths get no kernel rule) */
	SHRIKE_RULES_PER_KEY = 4,	 /* rules sharing one path or name */
	SHRIKE_EXEC_RULE_SLOTS = 128,	 /* exec rules per generation */
	SHRIKE_NO_RULE = 0xffff,	 /* enforced_rule when no rule acted */
	SHRIKE_SETTLED_CGROUPS = 65536,	 /* cgroups user space has placed (scope_settled) */
};

/* Which constraints a rule slot has besides its path or name. */
enum shrike_rule_flags {
	SHRIKE_RULE_UID = 1 << 0,
	SHRIKE_RULE_EUID = 1 << 1,
	SHRIKE_RULE_CGROUP = 1 << 2,
	SHRIKE_RULE_PARENT_INCL = 1 << 3,
	SHRIKE_RULE_PARENT_EXCL = 1 << 4,
	SHRIKE_RULE_ANCESTOR_INCL = 1 << 5,
	SHRIKE_RULE_ANCESTOR_EXCL = 1 << 6,
};

/* LPM trie key: prefixlen counts the bits of gen + path that must match. */
struct shrike_path_key {
	__u32 prefixlen;
	__u8 gen;
	__u8 path[SHRIKE_RULE_PATH_MAX];
	__u8 _pad[3];
};

/* Base-name key: FNV-1a 64 of the last path component. */
struct shrike_name_key {
	__u8 gen;
	__u8 _pad[7];
	__u64 name_hash;
};

/* Rule slots (indexes into exec_rule_slots, within the generation) sharing one key. */
struct shrike_rule_refs {
	__u16 slot[SHRIKE_RULES_PER_KEY];
	__u32 count;
	__u32 _pad;
};

/* One exec rule: which constraints it has besides its path or name. Slot s of generation g is
 * exec_rule_slots[g * SHRIKE_EXEC_RULE_SLOTS + s]. */
struct shrike_exec_rule {
	__u16 rule_index; /* the policy's rule index, carried in records */
	__u8 action;	  /* SHRIKE_ACTION_* */
	__u8 _pad0;
	__u32 flags; /* SHRIKE_RULE_* */
};

/* What a constraint value is. */
enum shrike_rule_value_kind {
	SHRIKE_VALUE_UID = 1,
	SHRIKE_VALUE_EUID = 2,
	SHRIKE_VALUE_CGROUP = 3,
	SHRIKE_VALUE_PARENT_INCL = 4,	/* binaries: FNV-1a 64 of a full path or of a base name */
	SHRIKE_VALUE_PARENT_EXCL = 5,
	SHRIKE_VALUE_ANCESTOR_INCL = 6,
	SHRIKE_VALUE_ANCESTOR_EXCL = 7,
};

/* Key of exec_rule_values: present when `value` is one of the slot's `kind` values. */
struct shrike_rule_value_key {
	__u32 slot; /* generation * SHRIKE_EXEC_RULE_SLOTS + slot */
	__u32 kind; /* SHRIKE_VALUE_* */
	__u64 value;
};

/* enforce_state[0]. */
struct shrike_enforce_state {
	__u32 active_gen; /* 0 or 1 */
	__u32 exec_rules; /* rule slots in the active generation; 0 skips the lookups */
	/* --strict: the rules with a path prefix (slots of the active generation, at most
	 * SHRIKE_RULES_PER_KEY) applied to an exec whose path was cut at the root end, where the
	 * prefix is unknown and any of them could match. Empty without --strict. */
	struct shrike_rule_refs cut_refs;
};

/* shrike_exec_denied.flags */
enum shrike_exec_denied_flags {
	SHRIKE_DENIED_PATH_CUT = 1 << 0, /* the path was cut at the root end (--strict refused it) */
};

/* SHRIKE_REC_EXEC_DENIED: an LSM hook refused an exec (the process keeps its old image). */
struct shrike_exec_denied {
	struct shrike_header hdr; /* the caller; exec_id is its current image */
	__u16 rule_index;
	__u8 action; /* SHRIKE_ACTION_* */
	__u8 flags;  /* SHRIKE_DENIED_* */
	__u16 path_len;
	__u16 filename_len;
	/* followed by path (of the file refused) and filename (as the caller passed it) */
};

/* What a process tried against the agent (bpf/protect.bpf.c). */
enum shrike_tamper_kind {
	SHRIKE_TAMPER_SIGNAL = 1, /* a signal to the agent */
	SHRIKE_TAMPER_PTRACE = 2, /* ptrace of the agent */
	SHRIKE_TAMPER_UNPIN = 3,  /* removing one of the agent's pins under bpffs */
	SHRIKE_TAMPER_BPF = 4,	  /* taking hold of one of the agent's BPF objects */
};

/* The agent's BPF objects, as self-protection keys them (SHRIKE_TAMPER_BPF's `signal`). */
enum shrike_bpf_object {
	SHRIKE_OBJ_PROG = 1,
	SHRIKE_OBJ_MAP = 2,
	SHRIKE_OBJ_LINK = 3,
};

/* SHRIKE_REC_TAMPER: self-protection refused it (EPERM). hdr is the process that tried. */
struct shrike_tamper {
	struct shrike_header hdr;
	__u32 kind;	  /* SHRIKE_TAMPER_* */
	__u32 target_pid; /* the agent */
	__s32 signal;	  /* SIGNAL: the signal; PTRACE: the access mode; BPF: SHRIKE_OBJ_* */
	__u32 name_len;	  /* UNPIN: bytes of the pin's name that follow */
};

#endif /* SHRIKE_ENFORCE_H */
