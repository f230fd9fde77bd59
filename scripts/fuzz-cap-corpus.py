#!/usr/bin/env python3
"""Keeps a fuzz corpus under a size: the hand-written seeds (any name that is not the
40-hex-digit name libFuzzer gives) always stay; of the fuzzer's inputs, those that add the
most new edges beyond the seeds and the inputs already kept stay, until `max` files in all.

libFuzzer 14 has no set-cover merge, and a merge of a target whose coverage varies from
run to run (http_session: real sockets) keeps far more files than the docs allow.

  scripts/fuzz-cap-corpus.py FUZZ_BINARY CORPUS_DIR MAX
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

binary, corpus, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
generated = re.compile(r"^[0-9a-f]{40}$")
names = sorted(os.listdir(corpus))
seeds = [n for n in names if not generated.match(n)]
found = [n for n in names if generated.match(n)]
if len(names) <= cap:
    sys.exit(0)

with tempfile.TemporaryDirectory() as tmp:
    first = os.path.join(tmp, "seeds")
    rest = os.path.join(tmp, "found")
    os.mkdir(first)
    os.mkdir(rest)
    for n in seeds:
        shutil.copy(os.path.join(corpus, n), first)
    for n in found:
        shutil.copy(os.path.join(corpus, n), rest)
    control = os.path.join(tmp, "control")
    # The control file lists, per input in the order run (the seeds first), the edges it
    # was the first to reach.
    subprocess.run([binary, "-merge=1", "-use_counters=0", "-merge_control_file=" + control, first, rest],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    lines = open(control).read().split("\n")
    count, in_first = int(lines[0]), int(lines[1])
    files = lines[2:2 + count]
    edges = {}
    for line in lines[2 + count:]:
        if line.startswith("COV "):
            parts = line.split()
            edges[int(parts[1])] = set(map(int, parts[2:]))
    sizes = {i: os.path.getsize(f) for i, f in enumerate(files)}

covered = set().union(*(edges.get(i, set()) for i in range(in_first)))
candidates = [i for i in range(in_first, count) if edges.get(i)]
keep = set()
while len(seeds) + len(keep) < cap and candidates:
    best = max(candidates, key=lambda i: (len(edges[i] - covered), -sizes[i]))
    gain = edges[best] - covered
    if not gain:
        break
    covered |= gain
    keep.add(os.path.basename(files[best]))
    candidates.remove(best)

for n in found:
    if n not in keep:
        os.remove(os.path.join(corpus, n))
print(f"{os.path.basename(corpus.rstrip('/'))}: kept {len(seeds)} seeds and {len(keep)} of {len(found)} found inputs")
