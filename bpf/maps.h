/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Maps of the ringlb XDP program. Keys and values are defined in
 * include/ringlb/abi/xdp_abi.h. User space is the only writer of configuration maps; the
 * program writes the flow table and the per-CPU counters. Maps that must outlive the
 * loader are pinned by name under the loader's pin root (default /sys/fs/bpf/ringlb); the
 * loader and `ringlb detach --unpin` take the list of pins from these declarations.
 */
#ifndef RINGLB_BPF_MAPS_H
#define RINGLB_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ringlb/abi/xdp_abi.h"

/* (address, port, protocol) -> VIP id and mode. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RINGLB_MAX_VIPS);
	__type(key, struct ringlb_vip_key);
	__type(value, struct ringlb_vip_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vips SEC(".maps");

/* (address, protocol) -> the one forward-mode VIP there, for fragments (see xdp_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RINGLB_MAX_VIPS);
	__type(key, struct ringlb_vip_key);
	__type(value, struct ringlb_vip_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frag_vips SEC(".maps");

/*
 * The VIP index (struct ringlb_vip_slot): one entry, the current inner array. User
 * space swaps in a fully built array, so the program never sees a half-written one.
 */
struct vip_index_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RINGLB_VIP_INDEX_ENTRIES);
	__type(key, __u32);
	/* By size: clang 14 emits only a forward declaration of a struct named here alone. */
	__uint(value_size, sizeof(struct ringlb_vip_slot));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct vip_index_table);
} vip_index SEC(".maps");

/* vip id -> epoch (see ringlb_flow_bind in xdp_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RINGLB_MAX_VIPS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_epochs SEC(".maps");

/* The VIP address pre-filter (struct ringlb_vip_filter), one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ringlb_vip_filter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_filter SEC(".maps");

/* backend id -> backend address. Ids are stable per address across reloads. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RINGLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct ringlb_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backends SEC(".maps");

/*
 * One Maglev table per VIP: slot -> backend id. max_entries is a placeholder: the loader
 * gives an inner-map template of the configured table size before load. User space swaps a VIP's
 * table by writing a new, fully filled inner map into maglev_tables, so the program never sees a
 * half-written table.
 */
struct maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, RINGLB_MAX_VIPS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct maglev_table);
} maglev_tables SEC(".maps");

/*
 * Forward-mode flow table (see struct ringlb_flow_bucket): each CPU owns flow_buckets
 * consecutive buckets. The loader sets flow_buckets (a power of two) and max_entries
 * (flow_buckets times the possible CPUs).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RINGLB_DEFAULT_FLOW_ENTRIES / RINGLB_FLOW_WAYS);
	__type(key, __u32);
	__type(value, struct ringlb_flow_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

/*
 * Next hop toward each backend, per CPU: the result of bpf_fib_lookup, kept for
 * nexthop_refresh_jiffies so that forwarding a packet costs no FIB lookup. Only
 * successful lookups are cached. Not pinned: a cache.
 */
struct nexthop {
	union {
		struct {
			__u8 dmac[6];
			__u8 smac[6];
		};
		__u32 macs[3]; /* both MACs as words: three stores write the frame's */
	};
	__u32 ifindex;	       /* egress */
	__u32 ingress_ifindex; /* the lookup was made for packets from this device */
	__u32 mtu;	       /* of the path, for the encapsulated packet */
	__u64 expires;	       /* jiffies */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RINGLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct nexthop);
} nexthops SEC(".maps");

/* The rate limit of "too big" replies: each CPU's virtual scheduling clock (ns). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} icmp_clock SEC(".maps");

/* steer mode: worker index (= CPU) -> cpumap queue. Filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, RINGLB_MAX_WORKERS);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cpu_map SEC(".maps");

/* Per-CPU counters: per VIP id, per backend id, per verdict (enum ringlb_verdict). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RINGLB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct ringlb_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RINGLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct ringlb_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RINGLB_V_MAX);
	__type(key, __u32);
	__type(value, struct ringlb_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} verdict_stats SEC(".maps");

/* Per-CPU flow-table events (enum ringlb_flow_event): inserts, promotions, evictions. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RINGLB_FE_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_stats SEC(".maps");

/*
 * User-space-only state (struct ringlb_lb_state, ringlb_vip_state, ringlb_member): what
 * the maps above were built from, so that the CLI can edit them without the config.
 * The program never reads them; they are declared here so that one load creates and
 * pins them with the rest.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ringlb_lb_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RINGLB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct ringlb_vip_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RINGLB_MAX_MEMBERS);
	__type(key, struct ringlb_member_key);
	__type(value, struct ringlb_member);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend_state SEC(".maps");

#endif /* RINGLB_BPF_MAPS_H */
