// The dataplane's hugepage memory seen from the operator's side: a hint that
// says what is missing when EAL cannot get its memory (pages reserved and
// free, hugetlbfs mounted, permissions, how many pages this configuration
// needs), and the removal of the hugepage files EAL leaves behind after a
// clean stop. DPDK keeps those files so secondary processes (dpdk-pdump) can
// map the same memory while the primary runs; --in-memory or
// --huge-unlink=always would drop them at once but also forbid secondaries,
// so the dataplane removes its own files (named <file-prefix>map_N in each
// hugetlbfs mount) after rte_eal_cleanup instead, skipping any file another
// process still locks.
#pragma once

#include <cstdint>
#include <string>

namespace sluice::dp {

// Estimated 2 MiB pages for `workers` workers with `flow_table_size` entries
// per family and the default mempool: the fit of the sizes measured in
// docs/operations.md ("Sizing").
uint32_t estimate_hugepages(uint32_t workers, uint32_t flow_table_size);

// One or more lines explaining why EAL initialisation probably failed and
// what to do, from the system's hugepage state; empty when nothing looks
// wrong. `eal_errno` is rte_errno after rte_eal_init failed.
std::string hugepage_hint(int eal_errno, uint32_t workers, uint32_t flow_table_size, bool no_huge);

// Unlinks the unlocked hugepage files of EAL file prefix `prefix` in every
// hugetlbfs mount; returns how many it removed. Call after rte_eal_cleanup.
unsigned remove_hugepage_files(const std::string& prefix);

} // namespace sluice::dp
