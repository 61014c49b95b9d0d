#!/usr/bin/env bash
# `cmake --install` puts what an edge host needs where an operator looks for it:
#   1. ringlbd and ringlb in sbin, the systemd unit, the example config, the BPF objects
#      and the documentation, all under the prefix (installed into a temporary DESTDIR);
#   2. the installed binaries run (--help) and the installed example config is valid;
#   3. the unit restarts on failure, reloads with SIGHUP, and grants exactly the
#      capabilities ringlbd keeps after set-up (src/daemon/caps.cpp names them);
#   4. the installed objects are the programs ringlb loads (their sections and names).
# The temporary tree is removed on exit.
#
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source_dir=$2
dest=$(mktemp -d /tmp/ringlb-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

prefix=/usr/local
DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >"$dest/install.log" ||
  { cat "$dest/install.log"; fail "cmake --install failed"; }
root=$dest$prefix
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
libdir=${libdir:-lib}

# 1. Every file in its place.
for f in sbin/ringlbd sbin/ringlb lib/systemd/system/ringlbd.service \
  etc/ringlb/ringlb.toml.example share/doc/ringlb/README.md share/doc/ringlb/LICENSE \
  share/doc/ringlb/docs/architecture.md share/doc/ringlb/docs/configuration.md \
  share/doc/ringlb/docs/grafana-ringlb.json \
  "$libdir/ringlb/bpf/ringlb_xdp.bpf.o" "$libdir/ringlb/bpf/ringlb_reuseport.bpf.o" \
  "$libdir/ringlb/bpf/ringlb_decap.bpf.o"; do
  [[ -f $root/$f ]] || fail "missing $prefix/$f (installed: $(cd "$root" && find . -type f | tr '\n' ' '))"
done
for f in sbin/ringlbd sbin/ringlb; do
  [[ -x $root/$f ]] || fail "$prefix/$f is not executable"
done
echo "ok 1 - binaries, unit, example config, BPF objects and docs installed under $prefix"

# 2. They run, and the example config is one ringlb accepts.
# Outputs are captured before matching: `cmd | grep -q` under pipefail fails when grep
# exits at its match while cmd still writes (SIGPIPE); bpftool writes line by line.
[[ $("$root/sbin/ringlbd" --help) == *--config* ]] || fail "installed ringlbd --help"
[[ $("$root/sbin/ringlb" --help) == *attach* ]] || fail "installed ringlb --help"
"$root/sbin/ringlb" simulate -c "$root/etc/ringlb/ringlb.toml.example" -n 100 >"$dest/sim.txt" 2>&1 ||
  { cat "$dest/sim.txt"; fail "the installed example config does not validate"; }
echo "ok 2 - installed binaries run; the example config validates"

# 3. The unit.
unit=$root/lib/systemd/system/ringlbd.service
grep -qx "Restart=on-failure" "$unit" || fail "unit: no Restart=on-failure"
grep -qx "ExecReload=+/bin/sh -c 'echo 1 >/run/ringlb/reload'" "$unit" ||
  fail "unit: reload does not go through the control tree's reload file"
grep -q "^ExecStart=$prefix/sbin/ringlbd " "$unit" || fail "unit: ExecStart is not $prefix/sbin/ringlbd"
kept=$(grep -o '{CAP_[A-Z_]*, "cap_[a-z_]*"}' "$source_dir/src/daemon/caps.cpp" |
  sed 's/{\(CAP_[A-Z_]*\),.*/\1/' | sort | tr '\n' ' ')
[[ -n $kept ]] || fail "cannot read the kept capabilities from caps.cpp"
for key in CapabilityBoundingSet AmbientCapabilities; do
  granted=$(sed -n "s/^$key=//p" "$unit" | tr ' ' '\n' | sort | tr '\n' ' ')
  [[ $granted == "$kept" ]] || fail "unit $key is '$granted', ringlbd keeps '$kept'"
done
echo "ok 3 - the unit restarts on failure, reloads with SIGHUP and grants exactly: $kept"

# 4. The objects hold the programs.
if command -v bpftool >/dev/null || [[ -x /usr/sbin/bpftool ]]; then
  bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
  for pair in ringlb_xdp:ringlb_xdp ringlb_reuseport:ringlb_reuseport ringlb_decap:ringlb_decap; do
    obj=${pair%%:*} prog=${pair#*:}
    btf=$("$bpftool" btf dump file "$root/$libdir/ringlb/bpf/$obj.bpf.o") ||
      fail "bpftool cannot read $obj.bpf.o"
    grep -q "FUNC '$prog' " <<<"$btf" || fail "$obj.bpf.o has no program $prog"
  done
  echo "ok 4 - ringlb_xdp, ringlb_reuseport and ringlb_decap each in its own installed object"
else
  echo "ok 4 # skip: no bpftool to read the objects"
fi
