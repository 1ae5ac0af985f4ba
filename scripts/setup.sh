#!/usr/bin/env bash
# Prepares a Debian 12 machine to build and test Sluice: installs the build and
# test packages (only when one is missing, so a second run is quiet and quick),
# reserves 2 MiB hugepages and mounts hugetlbfs at /dev/hugepages. Without root
# the hugepage step only warns: tests that need hugepages skip themselves.
set -euo pipefail

packages=(
  build-essential g++ pkg-config meson ninja-build
  dpdk-dev libdpdk-dev libbpf-dev libxdp-dev
  libboost-program-options-dev libfmt-dev catch2
  clang llvm bpftool python3-scapy tcpdump libpcap-dev
  ethtool iproute2 clang-format libyaml-cpp-dev nlohmann-json3-dev bird2
  python3-yaml lua5.4
  wrk # scripts/bench-backoff.sh, scripts/bench-e2e.sh
  systemd util-linux # tests/integration/systemd_units_test.py (systemd-analyze, setpriv)
)
min_hugepages=512
hugepage_dir=/sys/kernel/mm/hugepages/hugepages-2048kB
hugetlbfs_mount=/dev/hugepages

warn() { echo "setup.sh: warning: $*" >&2; }

is_root() { [[ $(id -u) -eq 0 ]]; }

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
  if ! is_root; then
    warn "not root, cannot install missing packages: ${missing[*]}"
  else
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# Hugepages: reserve at least min_hugepages x 2 MiB, never shrink a larger pool.
if [[ -w $hugepage_dir/nr_hugepages ]]; then
  have=$(cat "$hugepage_dir/nr_hugepages")
  if ((have < min_hugepages)); then
    echo "$min_hugepages" >"$hugepage_dir/nr_hugepages" 2>/dev/null || true
    have=$(cat "$hugepage_dir/nr_hugepages")
    if ((have < min_hugepages)); then
      warn "only $have of $min_hugepages hugepages could be reserved"
    fi
  fi
else
  warn "cannot reserve hugepages ($hugepage_dir not writable); hugepage tests will skip"
fi

if ! grep -qs " $hugetlbfs_mount hugetlbfs " /proc/mounts; then
  if is_root; then
    mkdir -p "$hugetlbfs_mount"
    mount -t hugetlbfs -o pagesize=2M nodev "$hugetlbfs_mount" 2>/dev/null ||
      warn "could not mount hugetlbfs at $hugetlbfs_mount; hugepage tests will skip"
  else
    warn "hugetlbfs not mounted at $hugetlbfs_mount and not root; hugepage tests will skip"
  fi
fi
