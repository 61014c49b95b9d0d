#!/usr/bin/env python3
"""Size rules of docs/architecture.md:
  - a source file anywhere in the project (C, C++, Python, shell; under src/, include/,
    bpf/, tools/, perf/ and tests/) over MAX_FILE_LINES lines says why at its top, in a
    comment line containing "Why this file is long:";
  - no C++ function body over MAX_FUNCTION_LINES lines under src/ and include/.
Functions are found the way clang-format lays them out here: a definition whose
signature starts at column 0 (free functions, out-of-class members) or 2 (members
defined in a class body) and ends with "{", closed by "}" at the same indentation.
Exits 1 listing every offender.
"""
import pathlib
import re
import sys

MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
NOT_A_FUNCTION = re.compile(
    r"^\s*(namespace|class|struct|union|enum|if|for|while|switch|do|else|try|catch|"
    r"extern|template|return|static_assert|#)\b|^\s*(}|//|/\*|\*)")
SIGNATURE_END = re.compile(r"\)\s*(const)?\s*(noexcept)?\s*(override|final)?\s*(->\s*[\w:<>,\s*&]+)?\s*\{\s*$")


def functions(lines):
    """(name line, first line, last line) of each function definition."""
    for indent in (0, 2):
        prefix = " " * indent
        i = 0
        while i < len(lines):
            line = lines[i]
            starts_here = line.startswith(prefix) and not line.startswith(prefix + " ")
            if starts_here and line.strip() and not NOT_A_FUNCTION.match(line) and "(" in "".join(lines[max(0, i - 3):i + 1]):
                # The signature may span lines: find its "{" within 6 lines.
                j = i
                while j < len(lines) and j < i + 6 and not lines[j].rstrip().endswith("{"):
                    if lines[j].rstrip().endswith((";", "}")):  # a declaration or a one-liner
                        break
                    j += 1
                if j < len(lines) and lines[j].rstrip().endswith("{") and SIGNATURE_END.search(lines[j]) and "=" not in lines[i].split("(")[0]:
                    end = j + 1
                    while end < len(lines) and lines[end].rstrip() != prefix + "}" and not lines[end].startswith(prefix + "};"):
                        end += 1
                    yield i + 1, j + 1, end + 1
                    i = end + 1
                    continue
            i += 1


SOURCE_SUFFIXES = {".h", ".c", ".cpp", ".py", ".sh"}
SOURCE_TOPS = ("src", "include", "bpf", "tools", "perf", "tests")
FUNCTION_TOPS = ("src", "include")


def check(root: pathlib.Path):
    problems = []
    for top in SOURCE_TOPS:
        for path in sorted((root / top).rglob("*")):
            if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
                continue
            rel = path.relative_to(root)
            lines = path.read_text(errors="replace").splitlines()
            if len(lines) > MAX_FILE_LINES and not any(
                    "Why this file is long:" in l for l in lines[:40]):
                problems.append(f"{rel}: {len(lines)} lines (over {MAX_FILE_LINES}) "
                                "and no 'Why this file is long:' at its top")
            if top not in FUNCTION_TOPS or path.suffix not in {".h", ".cpp"}:
                continue
            for name_line, first, last in functions(lines):
                body = last - first - 1
                if body > MAX_FUNCTION_LINES:
                    problems.append(f"{rel}:{name_line}: a function of {body} lines "
                                    f"(over {MAX_FUNCTION_LINES}): {lines[name_line - 1].strip()[:70]}")
    return problems


def self_test() -> int:
    """The checker flags a long function and an unexplained long file, and passes both
    once they are short or explained."""
    import tempfile
    body = "\n".join(f"  x += {i};" for i in range(MAX_FUNCTION_LINES + 1))
    long_function = f"}}  // namespace\n\nint f(int x) {{\n{body}\n  return x;\n}}\n"
    filler = "\n".join(f"int v{i} = {i};" for i in range(MAX_FILE_LINES + 1))
    cases = [
        (long_function, 1),
        (long_function.replace(body, "  x += 1;"), 0),
        (filler, 1),
        ("// Why this file is long: a table.\n" + filler, 0),
    ]
    failed = 0
    for text, want in cases:
        with tempfile.TemporaryDirectory() as tmp:
            (pathlib.Path(tmp) / "src").mkdir()
            (pathlib.Path(tmp) / "src" / "a.cpp").write_text(text)
            got = check(pathlib.Path(tmp))
            if len(got) != want:
                print(f"self-test: want {want} problems, got {got}")
                failed += 1
    print("self-test:", "failed" if failed else "ok")
    return 1 if failed else 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = check(root)
    for p in problems:
        print(p)
    print(f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
