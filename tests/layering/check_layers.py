#!/usr/bin/env python3
"""The dependency rule of docs/architecture.md, checked on every #include.

Each source file belongs to one layer, named by where it lives:
  include/ringlb/abi/*          abi        (C, shared with bpf/)
  include/ringlb/*.h            base       (result, fd, random, snapshot)
  include/ringlb/<lib>/*        <lib>      public headers of a library
  src/<lib>/*                   <lib>      its sources and private headers
  tools/ringlb/*                tools      the ringlb command
  bpf/*                         bpf        the BPF programs
An #include names a layer the same way ("ringlb/<lib>/x.h", "ringlb/x.h", "<lib>/x.h"
for a library's private headers, or a file next to the includer). A file may include
its own layer and the layers ALLOWED lists for it; anything else is a back edge (or a
skipped layer nobody agreed on) and fails. Exits 1 listing every offending line.
"""
import pathlib
import re
import sys

# Who may include whom. Keep in step with docs/architecture.md ("Layers").
ALLOWED = {
    "abi": set(),
    "bpf": {"abi"},
    "base": {"abi"},
    "model": {"base", "abi"},
    "config": {"model", "base", "abi"},
    "policy": {"model", "base", "abi"},
    "telemetry": {"base"},
    "proxy": {"policy", "config", "model", "telemetry", "base", "abi"},
    "xdp": {"config", "model", "telemetry", "base", "abi", "skeleton"},
    "control": {"proxy", "xdp", "policy", "config", "model", "telemetry", "base", "abi"},
    "daemon": {"control", "proxy", "xdp", "policy", "config", "model", "telemetry", "base", "abi"},
    "tools": {"xdp", "policy", "config", "model", "telemetry", "base", "abi"},
}
LIBRARIES = {"model", "config", "policy", "telemetry", "proxy", "xdp", "control", "daemon"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(path: pathlib.Path) -> str | None:
    parts = path.parts
    if parts[:3] == ("include", "ringlb", "abi"):
        return "abi"
    if parts[:2] == ("include", "ringlb"):
        return parts[2] if len(parts) > 3 else "base"
    if parts[0] == "src" and len(parts) > 2:
        return parts[1]
    if parts[:2] == ("tools", "ringlb"):
        return "tools"
    if parts[0] == "bpf":
        return "bpf"
    return None


def layer_of_include(name: str, includer: pathlib.Path, root: pathlib.Path) -> str | None:
    if name.endswith(".skel.h"):
        return "skeleton"
    parts = pathlib.PurePosixPath(name).parts
    if parts[0] == "ringlb":
        if len(parts) > 2:
            return "abi" if parts[1] == "abi" else parts[1]
        return "base"
    if parts[0] in LIBRARIES and len(parts) > 1:
        return parts[0]
    if (root / includer.parent / name).exists():
        return layer_of(includer.parent / name)
    return None


def self_test() -> int:
    """The check must fail on a back edge: a model file that includes the proxy."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "src/model").mkdir(parents=True)
        (root / "include/ringlb/proxy").mkdir(parents=True)
        (root / "include/ringlb/proxy/runtime.h").write_text("#pragma once\n")
        (root / "src/model/pool.cpp").write_text('#include "ringlb/proxy/runtime.h"\n')
        problems = check(root)
        expected = "src/model/pool.cpp:1: model may not include proxy"
        if len(problems) == 1 and problems[0].startswith(expected):
            print("self-test: the back edge was caught")
            return 0
        print("self-test: expected one problem starting with", expected, "got", problems)
        return 1


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        return self_test()
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = check(root)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problems")
    return 1 if problems else 0


def check(root: pathlib.Path) -> list[str]:
    problems = []
    files = 0
    for top in ("include", "src", "tools/ringlb", "bpf"):
        for path in sorted((root / top).rglob("*")):
            if path.suffix not in {".h", ".c", ".cpp"}:
                continue
            rel = path.relative_to(root)
            own = layer_of(rel)
            if own is None:
                continue
            if own not in ALLOWED:
                problems.append(f"{rel}: layer '{own}' is not in the table (docs/architecture.md)")
                continue
            files += 1
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                match = INCLUDE.match(line)
                if not match:
                    continue
                target = layer_of_include(match.group(1), rel, root)
                if target is None:
                    problems.append(f"{rel}:{number}: #include \"{match.group(1)}\" names no layer")
                elif target != own and target not in ALLOWED[own]:
                    problems.append(
                        f"{rel}:{number}: {own} may not include {target} "
                        f"(#include \"{match.group(1)}\"); allowed: "
                        f"{', '.join(sorted(ALLOWED[own])) or 'nothing'}")
    print(f"{files} files checked")
    return problems


if __name__ == "__main__":
    sys.exit(main())
