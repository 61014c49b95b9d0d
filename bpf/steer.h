/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Steer mode's one rule, shared by its two halves (ringlb_xdp's cpumap redirect and
 * ringlb_reuseport's listener pick): the worker that owns a client is
 * ringlb_reduce(hash(client), steer_workers), and worker i runs on CPU i.
 */
#ifndef RINGLB_BPF_STEER_H
#define RINGLB_BPF_STEER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "client_hash.h"
#include "ringlb/abi/hash.h"

/* Number of steer-mode workers (worker i runs on CPU i); 0 when steer is off. */
const volatile __u32 steer_workers = 0;

/* The worker that owns `client`. Precondition: steer_workers > 0. */
static __always_inline __u32 steer_worker(const __u32 *client, __u8 family)
{
	return ringlb_reduce(client_hash(client, family), steer_workers);
}

#endif /* RINGLB_BPF_STEER_H */
