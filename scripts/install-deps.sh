#!/usr/bin/env bash
# Installs every Debian 12 package dpustor needs to build, test and run its lab.
# Idempotent: packages already present are left alone; safe to run repeatedly.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git clang-format
  libboost-dev libboost-system-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libcli11-dev libsqlite3-dev sqlite3 libssl-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  clang libclang-rt-14-dev libfuse3-dev libnfs-dev libcephfs-dev libyaml-cpp-dev
)
runtime_pkgs=(
  iproute2 procps curl python3 python3-yaml util-linux
  ceph-mon ceph-mgr ceph-osd ceph-mds ceph-common librados-dev libradospp-dev librbd-dev
  fuse3 nfs-ganesha nfs-ganesha-vfs nfs-ganesha-ceph rpcbind libnfs-utils fio attr acl
  qemu-system-x86 qemu-utils linux-image-amd64 busybox-static cpio kmod
)

missing=()
for p in "${build_pkgs[@]}" "${runtime_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
