#!/usr/bin/env bash
# The Debian package (cmake/Packaging.cmake, tools/debian/):
#   1. `cpack -G DEB` builds ringlb_<version>-<revision>_<arch>.deb from this build
#      directory, into a temporary directory;
#   2. `dpkg-deb -c` lists the expected files (and nothing under /usr/local or /usr/etc),
#      owned by root, with their modes; the unit names /usr/sbin/ringlbd;
#   3. `dpkg-deb -f` gives the expected fields, `dpkg-deb -I` the conffile and the
#      maintainer scripts;
#   4. the man pages render without warnings;
#   5. lintian reports no error and no warning;
#   6. installed with `dpkg -i` into this system (only when no package ringlb is known to
#      dpkg, no user or group ringlb and no /etc/ringlb exist, and its dependencies are
#      installed: otherwise this part is skipped, saying why): the user exists,
#      /etc/ringlb/ringlb.toml is mode 600 with a fresh hash_seed, `ringlbd --help` and
#      `man -w ringlbd` work; installing again keeps the config;
#   7. `dpkg --purge` removes the package, the user, the group and the config.
# A trap purges the package on every exit path and removes the temporary directory.
#
# cpack runs the build directory's preinstall target first, which builds whatever is out
# of date: run this after a build (then it takes about 15 s, lintian most of it).
#
# Usage: package_test.sh BUILD_DIR SOURCE_DIR CPACK
# Exit 77 (skip) when not root or a tool is missing (tools/setup.sh installs them).
set -euo pipefail
build=$1
source_dir=$2
cpack=$3
skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || skip "needs root (the package is installed into this system)"
for tool in "$cpack" dpkg-deb dpkg-shlibdeps lintian man groff; do
  command -v "$tool" >/dev/null || skip "no $tool (tools/setup.sh installs it)"
done

umask 022  # the package's files and directories get their modes from the install rules
dir=$(mktemp -d /tmp/ringlb-package.XXXXXX)
installed=0
cleanup() {
  local status=$?
  if ((installed)); then
    dpkg --purge ringlb >"$dir/cleanup-purge.log" 2>&1 ||
      { cat "$dir/cleanup-purge.log" >&2; echo "cleanup: dpkg --purge ringlb failed" >&2; }
  fi
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
version=$(cache CMAKE_PROJECT_VERSION)-1
arch=$(dpkg --print-architecture)
libdir=$(cache CMAKE_INSTALL_LIBDIR)
unitdir=$(cache RINGLB_SYSTEMD_UNITDIR)
[[ -n $version && -n $libdir && -n $unitdir ]] || fail "cannot read the version or dirs from $build/CMakeCache.txt"
[[ $libdir == /* ]] || libdir=/usr/$libdir

# 1. Build it.
"$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$dir/out" >"$dir/cpack.log" 2>&1 ||
  { cat "$dir/cpack.log"; fail "cpack -G DEB failed"; }
deb=$dir/out/ringlb_${version}_$arch.deb
[[ -f $deb ]] || fail "no $deb (made: $(cd "$dir/out" && ls ./*.deb 2>/dev/null | tr '\n' ' '))"
echo "ok 1 - cpack built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

# 2. Its files.
dpkg-deb -c "$deb" >"$dir/contents"
paths=$(awk '{ p = $6; sub(/^\./, "", p); sub(/\/$/, "", p); print p }' "$dir/contents")
expect=(
  /usr/sbin/ringlbd /usr/sbin/ringlb "$unitdir/ringlbd.service"
  "$libdir/ringlb/bpf/ringlb_xdp.bpf.o" "$libdir/ringlb/bpf/ringlb_reuseport.bpf.o"
  "$libdir/ringlb/bpf/ringlb_decap.bpf.o"
  /usr/share/doc/ringlb/copyright /usr/share/doc/ringlb/changelog.Debian.gz
  /usr/share/doc/ringlb/README.md /usr/share/doc/ringlb/docs/configuration.md
  /usr/share/doc/ringlb/docs/grafana-ringlb.json
  /usr/share/man/man8/ringlb.8.gz /usr/share/man/man8/ringlbd.8.gz
  /usr/share/man/man5/ringlb.toml.5.gz
  /etc/ringlb/ringlb.toml.example /usr/share/lintian/overrides/ringlb
)
for f in "${expect[@]}"; do
  grep -qxF "$f" <<<"$paths" || fail "the package has no $f; it has: $(tr '\n' ' ' <<<"$paths")"
done
stray=$(grep -E '^/usr/local|^/usr/etc|/build|/tmp' <<<"$paths" || true)
[[ -z $stray ]] || fail "files in the wrong place: $stray"
owners=$(awk '$2 != "root/root" { print $6 " " $2 }' "$dir/contents")
[[ -z $owners ]] || fail "files not owned by root: $owners"
mode() { awk -v p=".$1" '$6 == p { print $1 }' "$dir/contents"; }
for f in /usr/sbin/ringlbd /usr/sbin/ringlb; do
  [[ $(mode "$f") == -rwxr-xr-x ]] || fail "$f has mode $(mode "$f")"
done
for f in "$unitdir/ringlbd.service" /etc/ringlb/ringlb.toml.example; do
  [[ $(mode "$f") == -rw-r--r-- ]] || fail "$f has mode $(mode "$f")"
done
dirs=$(awk '/^d/ && $1 != "drwxr-xr-x" { print $6 " " $1 }' "$dir/contents")
[[ -z $dirs ]] || fail "directories not 0755: $dirs"
dpkg-deb -x "$deb" "$dir/root"
unit=$dir/root$unitdir/ringlbd.service
grep -q '^ExecStart=/usr/sbin/ringlbd ' "$unit" || fail "the unit does not start /usr/sbin/ringlbd: $(grep ExecStart "$unit")"
! grep -q /usr/local "$unit" || fail "the unit still names /usr/local: $(grep /usr/local "$unit")"
# The unit is the source unit with only its paths rewritten.
diff <(sed -e 's|/usr/local/sbin/ringlbd|/usr/sbin/ringlbd|g' \
  -e 's|/usr/local/share/doc/ringlb|/usr/share/doc/ringlb|g' "$source_dir/tools/systemd/ringlbd.service") \
  "$unit" >"$dir/unit.diff" || { cat "$dir/unit.diff"; fail "the installed unit differs from tools/systemd/ringlbd.service"; }
cmp -s "$dir/root/etc/ringlb/ringlb.toml.example" "$source_dir/tools/demo/ringlb.example.toml" ||
  fail "the packaged example is not tools/demo/ringlb.example.toml"
echo "ok 2 - $(wc -l <<<"$paths") paths: binaries, unit ($unitdir), BPF objects ($libdir/ringlb/bpf), docs, man pages, example config; root-owned, modes right"

# 3. Its fields, conffile and maintainer scripts.
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == ringlb ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version), expected $version"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: $(field Architecture)"
[[ $(field Section) == net && $(field Priority) == optional ]] || fail "Section/Priority: $(field Section)/$(field Priority)"
[[ $(field Maintainer) == *@* ]] || fail "Maintainer: $(field Maintainer)"
[[ -n $(field Installed-Size) ]] || fail "no Installed-Size"
depends=$(field Depends)
# The names alone: no versions, the first of alternatives.
dep_names=$(sed -e 's/([^)]*)//g' -e 's/|[^,]*//g' <<<"$depends" | tr -d ' ' | tr ',' '\n')
for dep in adduser fuse3 libc6 libstdc++6 libbpf1 liburing2 libfuse3-3; do
  grep -qxF "$dep" <<<"$dep_names" || fail "Depends lacks $dep: $depends"
done
description=$(field Description)
[[ $(head -1 <<<"$description") == "load balancer with io_uring proxy workers and an XDP data plane" ]] ||
  fail "Description synopsis: $(head -1 <<<"$description")"
(($(wc -l <<<"$description") > 3)) || fail "no extended description"
[[ $(dpkg-deb -I "$deb" conffiles) == /etc/ringlb/ringlb.toml.example ]] ||
  fail "conffiles: $(dpkg-deb -I "$deb" conffiles)"
dpkg-deb -e "$deb" "$dir/control"
for script in postinst prerm postrm; do
  [[ -x $dir/control/$script ]] || fail "no executable $script"
  head -1 "$dir/control/$script" | grep -qx '#!/bin/sh' || fail "$script is not a /bin/sh script"
  grep -qx 'set -e' "$dir/control/$script" || fail "$script does not set -e"
  sh -n "$dir/control/$script" || fail "$script: syntax error"
done
echo "ok 3 - fields (Version $version, Depends: $depends), conffile, postinst/prerm/postrm"

# 4. The man pages render without a warning.
for page in "$dir"/root/usr/share/man/man*/*.gz; do
  warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
  [[ -z $warnings ]] || fail "$(basename "$page"): $warnings"
done
echo "ok 4 - ringlb(8), ringlbd(8) and ringlb.toml(5) render without warnings"

# 5. lintian: no error, no warning (overrides: tools/debian/lintian-overrides).
# Info tags and overrides are shown too; only E: and W: fail.
lintian --tag-display-limit 0 --display-info --show-overrides "$deb" >"$dir/lintian.log" 2>&1 || true
grep -v -e '^N:' -e 'running with root privileges' "$dir/lintian.log" | sed 's/^/  lintian: /' || true
if grep -qE '^[EW]: ' "$dir/lintian.log"; then
  fail "lintian reports errors or warnings"
fi
echo "ok 5 - lintian: no errors, no warnings"

# 6. Installed into this system, where that harms nothing.
why_not=
if dpkg-query -W ringlb >/dev/null 2>&1; then
  why_not="dpkg already knows a package ringlb ($(dpkg-query -W -f='${Version} ${Status}' ringlb))"
elif getent passwd ringlb >/dev/null || getent group ringlb >/dev/null; then
  why_not="a user or group ringlb exists already (purging would remove it)"
elif [[ -e /etc/ringlb ]]; then
  why_not="/etc/ringlb exists already (purging would remove its ringlb.toml)"
else
  for dep in $dep_names; do
    [[ $(dpkg-query -W -f='${Status}' "$dep" 2>/dev/null) == "install ok installed" ]] ||
      why_not="$why_not${why_not:+, }dependency $dep is not installed"
  done
fi
if [[ -n $why_not ]]; then
  echo "ok 6 # skip: not installing: $why_not"
  echo "ok 7 # skip: nothing installed to purge"
  exit 0
fi
installed=1
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$dir/install.log" 2>&1 ||
  { cat "$dir/install.log"; fail "dpkg -i failed"; }
[[ $(dpkg-query -W -f='${Status}' ringlb) == "install ok installed" ]] || fail "ringlb is not installed"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd ringlb) || fail "postinst made no user ringlb"
getent group ringlb >/dev/null || fail "postinst made no group ringlb"
[[ $(id -gn ringlb) == ringlb ]] || fail "user ringlb's group is $(id -gn ringlb)"
((uid < 1000)) || fail "ringlb is no system user (uid $uid)"
[[ $home == /nonexistent && ! -e /nonexistent ]] || fail "ringlb's home is $home"
[[ $shell == */nologin ]] || fail "ringlb's shell is $shell"
config=/etc/ringlb/ringlb.toml
[[ -f $config ]] || fail "postinst made no $config"
# Private to the user the unit runs ringlbd as (root without User=), who must read it.
owner=$(sed -n 's/^User=//p' "$unit")
owner=${owner:-root}
[[ $(stat -c '%a %U %G' "$config") == "600 $owner $(id -gn "$owner")" ]] ||
  fail "$config is $(stat -c '%a %U %G' "$config"), expected 600 owned by $owner"
seed_of() { sed -n '/^\[daemon\]/,/^\[/s/^hash_seed = "\([0-9a-f]*\)"$/\1/p' "$1"; }
seed=$(seed_of "$config")
[[ $seed =~ ^[0-9a-f]{32}$ ]] || fail "no 32-hex-digit hash_seed in [daemon] of $config: '$seed'"
[[ $seed != 00000000000000000000000000000000 ]] || fail "hash_seed is all zeros"
[[ $(grep -cE '^[[:space:]]*hash_seed[[:space:]]*=' "$config") -eq 1 ]] || fail "more than one hash_seed in $config"
/usr/sbin/ringlb simulate -c "$config" -n 100 >"$dir/simulate.log" 2>&1 ||
  { cat "$dir/simulate.log"; fail "the generated $config does not validate"; }
[[ $(/usr/sbin/ringlbd --help) == *--config* ]] || fail "ringlbd --help"
[[ $(man -w ringlbd) == /usr/share/man/man8/ringlbd.8.gz ]] || fail "man -w ringlbd: $(man -w ringlbd 2>&1)"
[[ $(man -w 5 ringlb.toml) == /usr/share/man/man5/ringlb.toml.5.gz ]] || fail "man -w 5 ringlb.toml"
# Again (an upgrade's configure): the user and the config with its seed stay.
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$dir/reinstall.log" 2>&1 ||
  { cat "$dir/reinstall.log"; fail "dpkg -i a second time failed"; }
[[ $(seed_of "$config") == "$seed" ]] || fail "installing again changed the hash_seed"
[[ $(id -u ringlb) == "$uid" ]] || fail "installing again changed ringlb's uid"
echo "ok 6 - dpkg -i: system user ringlb (uid $uid, home /nonexistent), $config mode 600 owned by $owner with a fresh hash_seed that validates; ringlbd --help and man -w work; a second install keeps both"

# 7. Purged: nothing left.
dpkg --purge ringlb >"$dir/purge.log" 2>&1 || { cat "$dir/purge.log"; fail "dpkg --purge failed"; }
installed=0
! dpkg-query -W ringlb >/dev/null 2>&1 || fail "dpkg still knows ringlb after the purge"
! getent passwd ringlb >/dev/null || fail "user ringlb is still there after the purge"
! getent group ringlb >/dev/null || fail "group ringlb is still there after the purge"
for f in /etc/ringlb /usr/sbin/ringlbd /usr/sbin/ringlb "$unitdir/ringlbd.service" \
  /usr/share/doc/ringlb /usr/share/man/man8/ringlbd.8.gz "$libdir/ringlb"; do
  [[ ! -e $f ]] || fail "$f is still there after the purge"
done
echo "ok 7 - dpkg --purge: package, user, group, /etc/ringlb and every file gone"
