/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* Constants of the ringlb BPF programs: protocol numbers, bounds, sizes. */
#ifndef RINGLB_BPF_CONSTS_H
#define RINGLB_BPF_CONSTS_H

#include <linux/if_ether.h>
#include <linux/in.h>

/* Most VLAN tags (802.1Q / 802.1ad) parsed in front of the IP header. */
#ifndef VLAN_MAX_DEPTH
#define VLAN_MAX_DEPTH 2
#endif

/* Most IPv6 extension headers skipped before the transport header. */
#ifndef IPV6_EXT_MAX_CHAIN
#define IPV6_EXT_MAX_CHAIN 6
#endif

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define VLAN_HDR_LEN 4
/* Longest L2 header we forward: Ethernet plus VLAN_MAX_DEPTH tags. */
#define L2_MAX_LEN (ETH_HLEN + VLAN_MAX_DEPTH * VLAN_HDR_LEN)

#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

#define IPV4_HDR_LEN 20
#define IPV6_HDR_LEN 40
#define ICMP_HDR_LEN 8

/* ICMP "fragmentation needed" quotes the IP header (up to 60 bytes) and 8 more. */
#define ICMP4_QUOTE_LEN 68
/* ICMPv6 "packet too big" quotes the start of the packet (a multiple of 4 bytes). */
#define ICMP6_QUOTE_LEN 128
/* IPv6 links carry at least 1280 bytes: never ask a client for less. */
#define IPV6_MIN_MTU 1280
/* IPv4: RFC 791 minimum. */
#define IPV4_MIN_MTU 68

#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

#endif /* RINGLB_BPF_CONSTS_H */
