#!/usr/bin/env python3
"""Runs `herald ARGS...` and, for --help, rewrites the output for help2man.

Boost.Program_options wraps each description at column 79, inside words too
("clien" / "t_publish"); help2man would keep those breaks. This joins each option's
description into one line and gives help2man the headings it recognises (Usage:,
Options:). Anything else (--version) passes through unchanged.
  herald-help.py HERALD_BINARY ARGS...
"""
import subprocess
import sys

DESC_COL = 40  # where Boost starts the descriptions
WIDTH = 79     # Boost's default line length (80) minus one


def join(prev: str, cont: str) -> str:
    if prev.endswith(" "):  # Boost broke at a space and kept it
        return prev + cont
    # A full line without a trailing space: Boost cut it just before a space, or inside
    # a word when the line's second half had no space to break at.
    tail = prev[-(WIDTH - DESC_COL) // 2:]
    return prev + (" " if " " in tail else "") + cont


def main() -> int:
    binary, args = sys.argv[1], sys.argv[2:]
    out = subprocess.run([binary, *args], capture_output=True, text=True)
    if "--help" not in args:
        sys.stdout.write(out.stdout)
        sys.stderr.write(out.stderr)
        return out.returncode
    lines: list[str] = []
    for line in out.stdout.splitlines():
        if line.startswith(" " * DESC_COL) and lines and lines[-1].startswith("  "):
            cont = line.strip()
            if lines[-1].startswith("  -") and len(lines[-1].rstrip()) < DESC_COL - 1:
                # An option too long for its column: its description starts below it.
                lines[-1] = lines[-1].rstrip() + "  " + cont
            else:
                lines[-1] = join(lines[-1], cont)
            continue
        if line.startswith("herald: ") and not lines:
            continue  # the one-line summary: help2man's NAME already says it
        if line.startswith("usage: "):
            line = "Usage: " + line[len("usage: "):]
        elif line.startswith("Options (") and line.endswith(":"):
            line = "Options:"
        lines.append(line)
    sys.stdout.write("\n".join(lines).strip("\n") + "\n")
    return out.returncode


if __name__ == "__main__":
    sys.exit(main())
