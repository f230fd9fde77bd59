// Child processes other than herald: finding a process's children (nginx workers) and
// killing a process with its children, by PID only.
import fs from 'node:fs';

/** PIDs of the children of `pid` (Linux /proc). */
export function childPids(pid) {
  const out = [];
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const s = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (s) out.push(...s.split(/\s+/).map(Number));
    }
  } catch { /* gone */ }
  return out;
}

/** SIGKILLs `child` (a ChildProcess) and, when `withChildren`, its children. */
export function killTree(child, withChildren = true) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const kids = withChildren ? childPids(child.pid) : [];
  try { child.kill('SIGKILL'); } catch { /* gone */ }
  for (const k of kids) { try { process.kill(k, 'SIGKILL'); } catch { /* gone */ } }
}
