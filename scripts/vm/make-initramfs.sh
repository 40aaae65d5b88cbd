#!/usr/bin/env bash
# Builds the initramfs of the virtio-fs test VM: busybox-static, the kernel modules a
# virtio-fs guest needs (virtio_pci, virtiofs and what they depend on), guest-init.sh as
# /init and guest-test.sh as /guest-test.sh. See scripts/vm/README.md.
#
# Usage: scripts/vm/make-initramfs.sh OUT.cpio.gz [KERNEL_VERSION]
#
#   OUT.cpio.gz      the archive to write; its directory must exist. Only that directory
#                    is written to (a staging directory inside it, removed on exit).
#   KERNEL_VERSION   e.g. 6.1.0-28-amd64; default: the newest /boot/vmlinuz-* whose modules
#                    under /lib/modules include virtiofs (the running kernel may differ).
#
# On success the last two lines of stdout are machine-readable:
#   initramfs=OUT.cpio.gz
#   kernel=/boot/vmlinuz-VERSION
# The archive is reproducible: the same inputs give the same bytes.
# Environment knobs: DPUSTOR_VM_BOOT_DIR (default /boot) and DPUSTOR_VM_MODULES_ROOT
# (default /lib/modules), e.g. for a kernel unpacked elsewhere.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
readonly HERE
readonly MODULES_ROOT="${DPUSTOR_VM_MODULES_ROOT:-/lib/modules}"
readonly BOOT_DIR="${DPUSTOR_VM_BOOT_DIR:-/boot}"
# Load roots: virtio_pci finds the device, virtiofs drives it; modules.dep adds the rest.
readonly WANTED_MODULES="virtio_pci virtiofs"

die() {
  echo "make-initramfs: $*" >&2
  exit 1
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  die "usage: $0 OUT.cpio.gz [KERNEL_VERSION]"
fi
OUT="$1"
OUT_DIR="$(dirname "$OUT")"
[ -d "$OUT_DIR" ] || die "directory $OUT_DIR does not exist"
OUT="$(cd "$OUT_DIR" && pwd)/$(basename "$OUT")"
OUT_DIR="$(dirname "$OUT")"

for tool in cpio gzip find sort; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
done
# The guest has no C library: only a static busybox runs there.
BUSYBOX=""
for candidate in /bin/busybox /usr/bin/busybox; do
  [ -x "$candidate" ] || continue
  case "$(LC_ALL=C ldd "$candidate" 2>&1 || true)" in
    *"not a dynamic"* | *"statically linked"*) BUSYBOX="$candidate" && break ;;
  esac
done
[ -n "$BUSYBOX" ] || die "no static busybox found (install busybox-static)"

# The module file of NAME (dashes and underscores are the same to the kernel), relative to
# the version's module directory, as modules.dep spells it.
module_path() {
  local name="${1//-/_}" dep="$2"
  awk -F: -v want="$name" '{
      base = $1; sub(/.*\//, "", base); sub(/\.ko(\.(gz|xz|zst))?$/, "", base)
      gsub(/-/, "_", base)
      if (base == want) { print $1; exit }
    }' "$dep"
}

has_virtiofs() {
  [ -f "$MODULES_ROOT/$1/modules.dep" ] && [ -n "$(module_path virtiofs "$MODULES_ROOT/$1/modules.dep")" ]
}

if [ $# -eq 2 ]; then
  KVER="$2"
  [ -f "$BOOT_DIR/vmlinuz-$KVER" ] || die "no kernel $BOOT_DIR/vmlinuz-$KVER"
  has_virtiofs "$KVER" || die "$MODULES_ROOT/$KVER has no virtiofs module"
else
  KVER=""
  # Newest first by version order, so an upgrade that left an old kernel behind still works.
  for kernel in $(printf '%s\n' "$BOOT_DIR"/vmlinuz-* | sort -rV); do
    [ -f "$kernel" ] || continue
    version="${kernel#"$BOOT_DIR"/vmlinuz-}"
    if has_virtiofs "$version"; then
      KVER="$version"
      break
    fi
  done
  [ -n "$KVER" ] || die "no kernel in $BOOT_DIR with a virtiofs module (install linux-image-amd64)"
fi
readonly KERNEL="$BOOT_DIR/vmlinuz-$KVER"
readonly MODDIR="$MODULES_ROOT/$KVER"
[ -r "$KERNEL" ] || die "$KERNEL is not readable"

# Load order: every module after the modules it depends on (depth-first over modules.dep).
declare -A SEEN=()
ORDER=()
add_module() {
  local path="$1" deps dep
  [ -n "${SEEN[$path]:-}" ] && return 0
  SEEN[$path]=1
  deps="$(awk -F': *' -v m="$path" '$1 == m { print $2; exit }' "$MODDIR/modules.dep")"
  for dep in $deps; do add_module "$dep"; done
  ORDER+=("$path")
}
for name in $WANTED_MODULES; do
  path="$(module_path "$name" "$MODDIR/modules.dep")"
  if [ -z "$path" ]; then
    # Built into the kernel: nothing to load.
    grep -q "/${name}.ko" "$MODDIR/modules.builtin" 2>/dev/null ||
      die "module $name is neither in $MODDIR/modules.dep nor built in"
    continue
  fi
  add_module "$path"
done

STAGE="$(mktemp -d "$OUT_DIR/.initramfs-stage.XXXXXX")"
trap 'rm -rf "$STAGE" "$STAGE.cpio.gz"' EXIT
mkdir -p "$STAGE"/{bin,dev,proc,sys,tmp,mnt,lib/modules}
cp "$BUSYBOX" "$STAGE/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$STAGE/bin/$applet"
done
install -m 0755 "$HERE/guest-init.sh" "$STAGE/init"
install -m 0755 "$HERE/guest-test.sh" "$STAGE/guest-test.sh"

# busybox insmod reads plain .ko files only (no zstd), so compressed modules are unpacked here.
: >"$STAGE/lib/modules/load-order"
for path in "${ORDER[@]}"; do
  src="$MODDIR/$path"
  base="$(basename "$path")"
  case "$base" in
    *.ko) cp "$src" "$STAGE/lib/modules/$base" ;;
    *.ko.gz) gzip -dc "$src" >"$STAGE/lib/modules/${base%.gz}" ;;
    *.ko.xz) xz -dc "$src" >"$STAGE/lib/modules/${base%.xz}" ;;
    *.ko.zst)
      command -v zstd >/dev/null || die "$path is zstd-compressed: install zstd"
      zstd -q -dc "$src" >"$STAGE/lib/modules/${base%.zst}"
      ;;
    *) die "unknown module file $path" ;;
  esac
  echo "${base%.ko*}.ko" >>"$STAGE/lib/modules/load-order"
done
echo "$KVER" >"$STAGE/lib/modules/kernel-version"

# Fixed timestamps and ownership, sorted names, no gzip name/time: reproducible bytes.
find "$STAGE" -exec touch -h -d @0 {} +
(cd "$STAGE" && find . -mindepth 1 -print | LC_ALL=C sort |
  cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -6 >"$STAGE.cpio.gz"
mv -f "$STAGE.cpio.gz" "$OUT"

echo "make-initramfs: kernel $KVER, modules: $(tr '\n' ' ' <"$STAGE/lib/modules/load-order")"
echo "initramfs=$OUT"
echo "kernel=$KERNEL"
