// Helpers shared by the XDP programs (BPF C only): counters and address keys.
// Every packet access in the programs is bounds-checked against data_end before
// it is read; nothing here reads packet memory.
#pragma once

#include <linux/in.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/bpf.h>

#include "sluice_bpf_abi.h"

// Builds an IPv4-mapped address key (::ffff:a.b.c.d) from a be32 address.
static __always_inline void addr_from_v4(struct sluice_bpf_addr* a, __be32 v4_be) {
  __builtin_memset(a->bytes, 0, 10);
  a->bytes[10] = 0xff;
  a->bytes[11] = 0xff;
  __builtin_memcpy(&a->bytes[12], &v4_be, 4);
}

static __always_inline void addr_from_v6(struct sluice_bpf_addr* a, const void* v6) {
  __builtin_memcpy(a->bytes, v6, 16);
}

// Adds one to a per-CPU counter array entry.
#define SLUICE_COUNT(map, index)                                                                   \
  do {                                                                                             \
    __u32 sluice_key_ = (index);                                                                   \
    __u64* sluice_v_ = bpf_map_lookup_elem(&(map), &sluice_key_);                                  \
    if (sluice_v_)                                                                                 \
      *sluice_v_ += 1;                                                                             \
  } while (0)
