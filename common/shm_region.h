// The mapping of one instance's shared-memory object. Whichever process starts
// first creates it (O_EXCL), sizes it from the capacities and writes the header
// last (magic store-released after everything else); the other attaches and
// validates magic, version, sizes and offsets, refusing a mismatch with a
// message of the form "expected X, got Y". Hugepage-backed when the directory
// is a hugetlbfs mount; otherwise /dev/shm.
#pragma once

#include <cstdint>
#include <string>

#include "result.h"
#include "shm_abi.h"
#include "table_view.h"

namespace sluice {

class shm_region {
public:
  shm_region() = default;
  shm_region(shm_region&&) noexcept;
  shm_region& operator=(shm_region&&) noexcept;
  shm_region(const shm_region&) = delete;
  shm_region& operator=(const shm_region&) = delete;
  ~shm_region();

  // Creates the object at `path` or, when it exists, attaches to it and checks
  // that it has the given capacities. `created()` tells which happened.
  static result<shm_region> create_or_attach(const std::string& path, const abi::capacities& caps);
  // Attaches to an existing object; its capacities are taken from its header.
  static result<shm_region> attach(const std::string& path);
  // Default path for an instance name: /dev/hugepages/sluice-NAME when hugetlbfs
  // is mounted there and writable, else /dev/shm/sluice-NAME.
  static std::string default_path(const std::string& instance);
  // Where the dataplane publishes the path of its DPDK telemetry socket (a
  // symlink) for the control plane: next to the object (PATH.telemetry), or
  // /run/sluice/NAME.telemetry when the object lives on hugetlbfs, which
  // cannot hold symlinks. Both processes derive it from the object's path.
  static std::string telemetry_link_path(const std::string& shm_path);

  bool created() const { return created_; }
  const std::string& path() const { return path_; }
  uint8_t* base() const { return base_; }
  const abi::layout& layout() const { return layout_; }
  const abi::capacities& caps() const { return header()->caps; }
  abi::shm_header* header() const { return reinterpret_cast<abi::shm_header*>(base_); }

  abi::worker_ack* worker_ack(uint32_t w) const {
    return reinterpret_cast<abi::worker_ack*>(base_ + layout_.worker_ack_offset) + w;
  }
  abi::slot_header* slot_header(unsigned slot) const {
    return reinterpret_cast<abi::slot_header*>(base_ + layout_.slot_offset[slot]);
  }
  table_view view(unsigned slot) const { return make_table_view(base_, layout_, slot); }

  // Stats of worker w.
  abi::worker_counters_block* counters(uint32_t w) const {
    return reinterpret_cast<abi::worker_counters_block*>(stats_base(w));
  }
  abi::service_counters* service_stats(uint32_t w) const {
    return reinterpret_cast<abi::service_counters*>(stats_base(w) + layout_.services_stats_offset);
  }
  abi::backend_counters* backend_stats(uint32_t w) const {
    return reinterpret_cast<abi::backend_counters*>(stats_base(w) + layout_.backends_stats_offset);
  }
  // Backend soft state (abi::backend_soft), one per backend slot.
  abi::backend_soft* backend_soft() const {
    return reinterpret_cast<abi::backend_soft*>(base_ + layout_.soft_offset);
  }

private:
  uint8_t* stats_base(uint32_t w) const {
    return base_ + layout_.stats_offset + uint64_t(w) * layout_.worker_stats_size;
  }
  std::string path_;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  abi::layout layout_{};
  bool created_ = false;
};

} // namespace sluice
