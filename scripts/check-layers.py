#!/usr/bin/env python3
"""The layer rule of ARCHITECTURE.md, checked: every `#include "<layer>/..."` of a file
under src/<layer>/ must follow an allowed arrow, and so must every herald library a
target of src/CMakeLists.txt links (the link graph mirrors the include graph: config
links the Redis options library, not the broker and hiredis). Run by `make test` (CTest
`layers`, label unit); prints each offending include or link and exits 1. Above core,
publications and history reads go through the core façade (core/context.hpp: counted,
clamped, answered on the caller's thread), never straight to the broker port.

Usage: scripts/check-layers.py [SRC_DIR]
"""
import pathlib
import re
import sys

# layer -> layers it may include (besides itself). Keep in step with ARCHITECTURE.md.
ALLOWED = {
    "app": {"server", "config", "util"},
    "server": {"transport", "api", "auth", "broker/memory", "broker/redis", "config", "core",
               "protocol", "metrics", "util"},
    "transport": {"api", "auth", "core", "protocol", "metrics", "util"},
    "api": {"auth", "core", "protocol", "metrics", "util"},
    "auth": {"core", "protocol", "metrics", "util"},
    "broker/memory": {"core", "protocol", "util"},
    "broker/redis": {"core", "protocol", "metrics", "util"},
    "config": {"core", "protocol", "auth", "util"},
    "core": {"protocol", "metrics", "util"},
    "protocol": {"util"},
    "metrics": set(),
    "util": set(),
}
# config maps options onto each component's options struct: it may include those
# headers, and only those, of the layers it configures.
OPTIONS_HEADER = re.compile(r"^(api|transport|broker/memory|broker/redis)/([a-z_]*options)\.hpp$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# The library of each layer in src/CMakeLists.txt (herald_asio is util's: Asio compiled once).
LIBRARY_LAYER = {
    "herald_util": "util", "herald_asio": "util", "herald_protocol": "protocol", "herald_metrics": "metrics",
    "herald_core": "core", "herald_auth": "auth", "herald_memory_broker": "broker/memory",
    "herald_redis_options": "broker/redis", "herald_redis_broker": "broker/redis", "herald_api": "api",
    "herald_transport": "transport", "herald_config": "config", "herald_server": "server", "herald": "app",
}
# What config may link of the layers it configures: their options libraries only.
OPTIONS_LIBRARIES = {"herald_redis_options"}
# A call of the broker port's publish, signal or history from above the core.
BROKER_BYPASS = re.compile(r"\bbrokers\s*\.\s*(publish|signal|history)\s*\(")
ABOVE_CORE = {"api", "transport", "auth", "server"}
LINK = re.compile(r"target_link_libraries\(\s*(\w+)\s+(?:PUBLIC|PRIVATE|INTERFACE)\s+([^)]*)\)")


def check_links(cmake: pathlib.Path) -> list:
    bad = []
    for target, libs in LINK.findall(cmake.read_text()):
        own = LIBRARY_LAYER.get(target)
        if own is None:
            bad.append(f"{cmake.name}: target {target} has no layer in check-layers.py")
            continue
        for lib in libs.split():
            if not lib.startswith("herald"):
                continue  # a library of the system
            other = LIBRARY_LAYER.get(lib)
            if other is None:
                bad.append(f"{cmake.name}: {target} links {lib}, a library with no layer")
            elif other != own and other not in ALLOWED[own] and not (own == "config" and lib in OPTIONS_LIBRARIES):
                bad.append(f"{cmake.name}: {target} links {lib} ({own} may not link {other})")
    return bad


def layer_of(rel: str) -> str:
    parts = rel.split("/")
    return "/".join(parts[:2]) if parts[0] == "broker" else parts[0]


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent / "src")
    bad = []
    for f in sorted(src.rglob("*")):
        if f.suffix not in (".hpp", ".cpp"):
            continue
        rel = f.relative_to(src).as_posix()
        own = layer_of(rel)
        if own not in ALLOWED:
            bad.append(f"{rel}: a folder that is no layer of ARCHITECTURE.md")
            continue
        for inc in INCLUDE.findall(f.read_text()):
            if "/" not in inc:
                continue  # a header beside it
            other = layer_of(inc)
            if other not in ALLOWED:
                continue  # not herald's (a library's path)
            if other == own or other in ALLOWED[own]:
                continue
            if own == "config" and OPTIONS_HEADER.match(inc):
                continue
            bad.append(f"{rel}: includes {inc} ({own} may not include {other})")
        if own in ABOVE_CORE:
            for m in BROKER_BYPASS.finditer(f.read_text()):
                bad.append(f"{rel}: calls brokers.{m.group(1)}() (use the core façade, core/context.hpp)")
    bad += check_links(src / "CMakeLists.txt")
    for b in bad:
        print(f"check-layers: {b}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
