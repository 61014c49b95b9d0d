#!/usr/bin/env bash
# Installs every Debian package ringlb needs to build, test and benchmark.
# Idempotent: packages already present are left as they are. Needs root.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang llvm clang-format
  # libraries
  liburing-dev libbpf-dev libelf-dev zlib1g-dev bpftool
  libtomlplusplus-dev libcli11-dev libfuse3-dev fuse3
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  libcpp-httplib-dev  # ringlbd's /metrics HTTP endpoint
  # test and benchmark tools: namespaces, clients, peer balancers
  iproute2 ethtool procps curl socat wrk iperf3
  nginx-light libnginx-mod-stream haproxy python3 python3-matplotlib python3-jsonschema
  prometheus  # promtool and a real server scrape /metrics (tests/ops)
  lintian man-db  # the Debian package and its man pages (tests/cli/package_test.sh)
  # the package's unit under a real systemd in a container (tests/ops/nspawn_test.sh)
  systemd-container debootstrap libcap2-bin
)

missing=()
for p in "${packages[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"install ok installed"* ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The packaged nginx and haproxy must not start services of their own.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all packages present"
