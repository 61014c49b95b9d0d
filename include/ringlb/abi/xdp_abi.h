/* SPDX-License-Identifier: MIT */
/*
 * The ABI between the XDP programs (bpf/) and user space (src/xdp/, tools/, tests/):
 * map keys and values, counter indexes and limits. One header, included by both
 * sides, so nothing is kept in sync by hand. C++ checks sizes with static_assert in
 * src/xdp/abi_check.cpp.
 *
 * Addresses and ports are in network byte order, as they sit in the packet. An IPv4
 * address uses addr[0] and leaves addr[1..3] zero.
 */
#ifndef RINGLB_XDP_ABI_H
#define RINGLB_XDP_ABI_H

#include <linux/types.h>

/* Capacity of the maps. User space rejects configs that exceed them. */
#define RINGLB_MAX_VIPS 512
#define RINGLB_MAX_BACKENDS 4096
/* Workers in steer mode: one per CPU, CPU i runs worker i. */
#define RINGLB_MAX_WORKERS 256
/* Default size of the flow table: flows per CPU (a power of two; 16 bytes each). */
#define RINGLB_DEFAULT_FLOW_ENTRIES 65536
/* Bits of the VIP address pre-filter (a power of two). */
#define RINGLB_VIP_FILTER_BITS 4096
/* Slots of the VIP index (a power of two, four per VIP) and the longest probe in it. */
#define RINGLB_VIP_INDEX_SLOTS 2048
#define RINGLB_VIP_INDEX_PROBES 8
/* The index's entries: its slots and, last, the count of VIPs it left to `vips`. */
#define RINGLB_VIP_INDEX_ENTRIES (RINGLB_VIP_INDEX_SLOTS + 1)

/* Outer TTL / hop limit of encapsulated packets and of ICMP replies. */
#define RINGLB_OUTER_TTL 64

/* Address families as stored in the maps (0: entry unused). */
enum ringlb_family {
  RINGLB_FAMILY_NONE = 0,
  RINGLB_FAMILY_V4 = 4,
  RINGLB_FAMILY_V6 = 6,
};

/* What the program does with packets to a VIP. */
enum ringlb_vip_mode {
  /* Maglev backend, IPIP/IP6IP6 encapsulation, XDP_TX (direct server return). */
  RINGLB_MODE_FORWARD = 1,
  /* CPUMAP redirect to the CPU of the worker that owns hash(client). */
  RINGLB_MODE_STEER = 2,
};

/* Key of the `vips` hash map. */
struct ringlb_vip_key {
  __u32 addr[4];
  __u16 port;  /* network order */
  __u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
  __u8 family; /* enum ringlb_family */
};

/* Value of the `vips` hash map. */
struct ringlb_vip_info {
  __u32 vip_id; /* index into maglev_tables, vip_stats and vip_epochs */
  __u32 mode;   /* enum ringlb_vip_mode */
  __u32 epoch;  /* = vip_epochs[vip_id] while this VIP owns the id */
};

/*
 * Key of the `frag_vips` hash: a VIP key with port 0. An IP fragment after the first has no
 * transport header, so the program finds the VIP of a fragment by address, protocol and
 * family alone; user space adds an entry where exactly one VIP, a forward-mode one, has
 * them, and the value is that VIP's ringlb_vip_info. The backend is the Maglev slot of the
 * client's hash, as for a new flow, so every fragment of a datagram goes where its first
 * one goes.
 */

/* Value of the `backends` array, indexed by backend id. family 0: removed. */
struct ringlb_backend {
  __u32 addr[4];
  __u32 family; /* enum ringlb_family */
};

/*
 * The forward-mode flow table (`flows`): per CPU, set-associative, one cache line per
 * bucket. Each CPU owns its own range of buckets in one array (a per-CPU array would add a
 * dependent load of the CPU's pointer). A flow is known by a keyed 64-bit hash of its
 * 5-tuple (ringlb_flow_hash): its high half picks the bucket, and the whole hash, kept in
 * the entry as its fingerprint, tells the flow from the others there. An entry is 16
 * bytes, four to a bucket, so a lookup, a new flow's insert and an eviction each touch
 * exactly one cache line. Two live flows of one bucket with equal fingerprints (about 3 in
 * 2^49 per new flow at the default size) would share an entry; that is below the rate of
 * undetected errors of the links the packets came over. No lock, no allocation, no
 * cross-CPU traffic. A new flow takes an empty entry, else the oldest embryonic one (a
 * SYN's, not yet answered by the flow's next packet), else an established one idle for
 * xdp.flow_idle_timeout_ms, else none: a SYN flood cannot push out live flows. A flow
 * lives in the table of the CPU its packets arrive on (RSS and ECMP keep a flow on one
 * CPU); if it moves, the Maglev table still gives the same backend unless the pool
 * changed.
 */
#define RINGLB_FLOW_WAYS 4

/* A flow's key: the client's 5-tuple toward a VIP, padding zeroed. */
struct ringlb_flow_key {
  __u32 src[4];
  __u32 dst[4];
  __u16 sport;
  __u16 dport;
  __u8 proto;
  __u8 family;
  __u8 pad[2];
} __attribute__((aligned(8)));

/*
 * What a flow is bound to, in one word: its backend id, its VIP's id and the low
 * RINGLB_FLOW_EPOCH_BITS of that VIP's epoch when the entry was made. An established packet
 * is forwarded from its entry alone (no VIP lookup) while vip_epochs[vip id] still ends in
 * those bits; user space bumps the epoch when it removes a VIP or changes its mode, which
 * retires its flows (an entry would outlive 2^11 bumps of one VIP id only by staying in
 * the table through all of them).
 */
#define RINGLB_FLOW_BACKEND_BITS 12 /* RINGLB_MAX_BACKENDS ids */
#define RINGLB_FLOW_VIP_BITS 9      /* RINGLB_MAX_VIPS ids */
#define RINGLB_FLOW_EPOCH_BITS 11

static inline __u32 ringlb_flow_bind(__u32 backend_id, __u32 vip_id, __u32 epoch) {
  return backend_id | vip_id << RINGLB_FLOW_BACKEND_BITS |
         epoch << (RINGLB_FLOW_BACKEND_BITS + RINGLB_FLOW_VIP_BITS);
}
static inline __u32 ringlb_flow_backend(__u32 bind) {
  return bind & ((1u << RINGLB_FLOW_BACKEND_BITS) - 1);
}
static inline __u32 ringlb_flow_vip(__u32 bind) {
  return (bind >> RINGLB_FLOW_BACKEND_BITS) & ((1u << RINGLB_FLOW_VIP_BITS) - 1);
}
/* The epoch bits of `bind` equal those of `epoch`. */
static inline int ringlb_flow_epoch_matches(__u32 bind, __u32 epoch) {
  return (bind >> (RINGLB_FLOW_BACKEND_BITS + RINGLB_FLOW_VIP_BITS)) ==
         (epoch & ((1u << RINGLB_FLOW_EPOCH_BITS) - 1));
}

struct ringlb_flow_entry {
  __u64 fp;   /* ringlb_flow_hash() of the flow's key; 0: the entry is empty */
  __u32 used; /* (jiffies << 1) | 1 once established, at the flow's last packet */
  __u32 bind; /* ringlb_flow_bind() */
};

/*
 * Value of the `flows` array: CPU c's buckets are [c * flow_buckets, (c + 1) *
 * flow_buckets).
 */
struct ringlb_flow_bucket {
  struct ringlb_flow_entry ways[RINGLB_FLOW_WAYS];
} __attribute__((aligned(64)));

/*
 * The keyed hash of a flow key's five words (`w`, as in struct ringlb_flow_key; an IPv4
 * key's words 1 and 3 are 0) under the client hash key (k0, k1): each word mixed with the
 * key by its own odd multiplier, the products summed (independent multiplies, no long
 * dependency chain, and no rotations, which BPF has no instruction for), then the sum's
 * high half folded down and mixed again. Never 0: 0 marks an empty entry. The bucket is
 * (hash >> 32) & (flow_buckets - 1).
 */
static inline __u64 ringlb_flow_hash(const __u64 w[5], __u64 k0, __u64 k1) {
  __u64 h = (w[0] ^ k0) * 0x9e3779b97f4a7c15ULL + (w[1] ^ k1) * 0xc2b2ae3d27d4eb4fULL +
            (w[2] ^ k1) * 0x165667b19e3779f9ULL + (w[3] ^ k0) * 0xd6e8feb86659fd93ULL +
            (w[4] ^ k0 ^ k1) * 0xff51afd7ed558ccdULL;

  h ^= h >> 32;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 29;
  return h | 1;
}

/*
 * Value of the one-entry `vip_filter` array: a bit per ringlb_vip_filter_bit() of every
 * VIP address. A packet whose destination's bit is clear is not for a VIP, without a
 * hash-map lookup. User space sets bits before it adds VIPs and clears them after.
 */
struct ringlb_vip_filter {
  __u64 bits[RINGLB_VIP_FILTER_BITS / 64];
};

/* The XOR of an address's four words (an IPv4 address in addr[0] is its own XOR). */
static inline __u32 ringlb_addr_fold(const __u32 addr[4]) {
  return addr[0] ^ addr[1] ^ addr[2] ^ addr[3];
}

/*
 * The filter bit of an address, from its ringlb_addr_fold(): the program folds the words
 * straight from the packet.
 */
static inline __u32 ringlb_vip_filter_mix(__u32 w) {
  w ^= w >> 16;
  w *= 0x45d9f3bu;
  w ^= w >> 16;
  return w & (RINGLB_VIP_FILTER_BITS - 1);
}

/* The filter bit of an address (addr as in ringlb_vip_key; IPv4 in addr[0]). */
static inline __u32 ringlb_vip_filter_bit(const __u32 addr[4]) {
  return ringlb_vip_filter_mix(ringlb_addr_fold(addr));
}

/*
 * The VIP index (`vip_index`, one inner array of RINGLB_VIP_INDEX_SLOTS of these): the
 * `vips` map again, open-addressed, so that the program finds a VIP with inlined array
 * reads instead of a hash-map call. A VIP sits within RINGLB_VIP_INDEX_PROBES slots of
 * ringlb_vip_index_slot() of its key (linear probing); key.family 0: an empty slot,
 * which ends a probe. User space builds a whole new inner array and swaps it in. A VIP
 * that does not fit (rare: in a simulation, 512 random VIPs overflowed 8 probes in about
 * 3 % of sets, 256 in none of 2,000) is
 * left to `vips`: the extra entry at RINGLB_VIP_INDEX_SLOTS counts such VIPs in
 * info.vip_id, and only when it is not 0 does a miss in the index read `vips`.
 */
struct ringlb_vip_slot {
  struct ringlb_vip_key key;
  struct ringlb_vip_info info;
};

/* The first slot to probe for a VIP key (its address, port and protocol). */
static inline __u32 ringlb_vip_index_slot(const struct ringlb_vip_key* key) {
  __u32 w = ringlb_addr_fold(key->addr) ^ ((__u32)key->port << 8 | key->proto) * 0x9e3779b1u;

  w ^= w >> 15;
  w *= 0x2c1b3c6du;
  w ^= w >> 12;
  return w & (RINGLB_VIP_INDEX_SLOTS - 1);
}

/* Per-CPU counter slot (vip_stats, backend_stats, verdict_stats). */
struct ringlb_counter {
  __u64 packets;
  __u64 bytes;
};

/*
 * Index of verdict_stats: every packet the main program sees lands in exactly one.
 * xdp::verdict_name() (src/xdp/counters.cpp) names each in a switch that -Wswitch keeps
 * complete.
 */
enum ringlb_verdict {
  RINGLB_V_PASS_NOT_IP = 0,      /* not IPv4/IPv6 (ARP, LLDP, ...) */
  RINGLB_V_PASS_MALFORMED,       /* truncated or malformed headers */
  RINGLB_V_PASS_NOT_VIP,         /* IP, but no VIP matches (addr, port, proto) */
  RINGLB_V_PASS_FRAGMENT,        /* IP fragment to a VIP address without one forward-mode VIP
                                    for its protocol (see frag_vips): to the kernel */
  RINGLB_V_PASS_ICMP,            /* ICMP to a VIP address, not about a forward-mode flow */
  RINGLB_V_PASS_STEER_NO_CPU,    /* steer VIP, but the worker's CPU has no cpumap entry */
  RINGLB_V_TX_FORWARD,           /* encapsulated and sent back out the ingress device */
  RINGLB_V_REDIRECT_FORWARD,     /* encapsulated and redirected to another device */
  RINGLB_V_TX_ICMP_ERROR,        /* ICMP error about a VIP flow forwarded to its backend */
  RINGLB_V_TX_TOO_BIG,           /* ICMP/ICMPv6 "too big" reply sent to the client */
  RINGLB_V_REDIRECT_STEER,       /* redirected to the worker's CPU through the cpumap */
  RINGLB_V_DROP_NO_BACKEND,      /* forward VIP with an empty table */
  RINGLB_V_DROP_FIB,             /* no route toward the backend */
  RINGLB_V_DROP_NO_NEIGH,        /* the next hop toward the backend has no neighbour entry */
  RINGLB_V_DROP_ERROR,           /* a helper failed (adjust_head, ...) */
  RINGLB_V_DROP_TOO_BIG_NO_DF,   /* IPv4 too big for the tunnel, DF clear: cannot fragment */
  RINGLB_V_DROP_TOO_BIG_LIMITED, /* too big, and the CPU's "too big" reply rate is spent */
  RINGLB_V_TX_FRAGMENT,          /* IP fragment to a forward VIP, encapsulated by the client
                                    hash and sent back out the ingress device */
  RINGLB_V_MAX,
};

/*
 * Index of decap_stats (the backend-side decapsulation program; its XDP and tc entry
 * points count into the same map).
 */
enum ringlb_decap_verdict {
  RINGLB_DV_PASS = 0,         /* not IPIP/IP6IP6: untouched */
  RINGLB_DV_DECAP,            /* outer header stripped */
  RINGLB_DV_PASS_MALFORMED,   /* truncated tunnel packet: untouched */
  RINGLB_DV_DROP_ERROR,       /* a helper failed (adjust_head, adjust_room, store_bytes) */
  RINGLB_DV_PASS_UNSUPPORTED, /* tc only: a tunnel packet skb helpers cannot shrink (a VLAN
                                 tag still in the frame): untouched */
  RINGLB_DV_DROP_SOURCE,      /* a tunnel packet from an outer source not allowed */
  RINGLB_DV_MAX,
};

/*
 * Keys of the decap program's allowlists of outer sources (LPM tries, filled by
 * `ringlb decap attach --allow CIDR`): a prefix length in bits, then the address in
 * network order.
 */
#define RINGLB_DECAP_ALLOW_MAX 1024
struct ringlb_decap_v4_key {
  __u32 prefixlen;
  __u32 addr;
};
struct ringlb_decap_v6_key {
  __u32 prefixlen;
  __u32 addr[4];
};

/*
 * Index of flow_stats (per CPU, a __u64 each): what happened in the forward-mode flow
 * table. xdp::flow_event_name() (src/xdp/counters.cpp) names each.
 */
enum ringlb_flow_event {
  RINGLB_FE_INSERT_EMBRYONIC = 0, /* a TCP SYN or a first UDP datagram got an entry */
  RINGLB_FE_INSERT_ESTABLISHED,   /* a flow whose entry went stale got a new one */
  RINGLB_FE_PROMOTED,             /* an embryonic entry saw its flow's next packet */
  RINGLB_FE_EVICT_EMBRYONIC,      /* a new flow took the oldest embryonic entry's slot */
  RINGLB_FE_EVICT_IDLE,           /* a new flow took an idle established entry's slot */
  RINGLB_FE_NOT_INSERTED,         /* its bucket held only live established flows */
  RINGLB_FE_MAX,
};

/*
 * User-space-only state (the program never reads these maps). They record what the
 * configuration maps were built from, so that `ringlb xdp ...` can edit a deployment
 * without the config file or the daemon and rebuild each Maglev table identically.
 */

/* Backend and VIP names: 1..64 characters, NUL-padded (no NUL at 64 characters). */
#define RINGLB_NAME_LEN 64
/* Entries of backend_state: (VIP, backend) memberships over all VIPs. */
#define RINGLB_MAX_MEMBERS 16384
/* lb_state.magic once a loader that records state has written it. */
#define RINGLB_STATE_MAGIC 0x726c6231u

/* Value of the one-entry `lb_state` array: the loaded program's rodata a rebuild needs. */
struct ringlb_lb_state {
  __u32 magic;
  __u32 maglev_table_size;
  __u64 hash_k0; /* the program's hash key (rodata), as in struct ringlb_hash_key */
  __u64 hash_k1;
  __u32 steer_workers;
  __u32 generation; /* bumped by every write of the state: who wrote since I did? */
};

/* Value of the `vip_state` array, indexed by vip id. name[0] == 0: the id is unused. */
struct ringlb_vip_state {
  char name[RINGLB_NAME_LEN];
  struct ringlb_vip_key key;
  __u32 mode;          /* enum ringlb_vip_mode */
  __u32 backend_count; /* its members are backend_state[{vip_id, 0..backend_count-1}] */
};

/* Key of the `backend_state` hash: a VIP's backend, in configured order. */
struct ringlb_member_key {
  __u32 vip_id;
  __u32 index;
};

/* Admin state of a member (as the config's up | drain | down). */
enum ringlb_member_state {
  RINGLB_MEMBER_UP = 0,
  RINGLB_MEMBER_DRAIN = 1,
  RINGLB_MEMBER_DOWN = 2,
};

/* Value of the `backend_state` hash. */
struct ringlb_member {
  char name[RINGLB_NAME_LEN];
  __u32 addr[4];
  __u16 port;  /* network order; 0 for forward-mode backends */
  __u8 family; /* enum ringlb_family */
  __u8 state;  /* enum ringlb_member_state */
  __u32 weight;
};

#endif /* RINGLB_XDP_ABI_H */
