// The option table has one source, src/config/option_table.cpp, from which `herald --help`
// comes (its defaults read from the options structs); the docs and the example
// configuration are written by hand. This holds them to it: every option is
// documented in docs/config.md and listed in config/herald.conf.example, neither names an
// option herald does not have, and every default they state is herald's default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as H from './lib/herald.mjs';

const root = path.resolve(H.TESTS_DIR, '../..');
const read = (f) => fs.readFileSync(path.join(root, f), 'utf8');

/** Options of `herald --help`: name → default as printed (undefined: none). */
async function helpOptions() {
  const r = await H.runHerald(['--help']);
  assert.equal(r.code, 0, r.stderr);
  const out = new Map();
  for (const m of r.stdout.matchAll(/^ {2}(?:-\w \[ )?--([a-z0-9-]+)(?: \])?(?: arg)?(?: \(=([^)]*)\))?/gm))
    out.set(m[1], m[2]);
  assert.ok(out.size > 40, `parsed only ${out.size} options from --help`);
  return out;
}

// Booleans print as 0/1 in --help, true/false in the docs.
const norm = (v) => {
  const s = (v ?? '').replace(/`/g, '').trim();
  return s === '1' ? 'true' : s === '0' ? 'false' : s;
};
const numericOrBool = (v) => /^(\d+(\.\d+)?|true|false)$/.test(norm(v));

test('docs/config.md documents every option with herald\'s default and its variable', async () => {
  const opts = await helpOptions();
  const rows = new Map();
  for (const m of read('docs/config.md').matchAll(/^\| `--([a-z0-9-]+)[^|]*\| `?(HERALD_[A-Z0-9_]+)`? \|\s*([^|]*?)\s*\|/gm))
    rows.set(m[1], { env: m[2], def: m[3] });
  for (const [name, def] of opts) {
    const row = rows.get(name);
    assert.ok(row, `--${name} is not documented in docs/config.md`);
    assert.equal(row.env, `HERALD_${name.toUpperCase().replaceAll('-', '_')}`, `--${name}'s variable`);
    // Defaults that herald prints and the docs state as a plain value must agree.
    if (def !== undefined && numericOrBool(row.def))
      assert.equal(norm(row.def), norm(def), `docs/config.md states the default of --${name} as ${row.def}, herald has ${def}`);
    // So must a default stated as one `value`, and an empty one.
    else if (def !== undefined && /^`[^`]+`$/.test(row.def))
      assert.equal(norm(row.def), def, `docs/config.md states the default of --${name} as ${row.def}, herald has ${def}`);
    else if (def === '')
      assert.ok(['', 'empty', '(empty)', 'none'].includes(row.def), `docs/config.md states the default of --${name} as ${row.def}, herald's is empty`);
  }
  for (const name of rows.keys()) assert.ok(opts.has(name), `docs/config.md documents --${name}, which herald does not have`);
});

test('config/herald.conf.example lists every option, at herald\'s default', async () => {
  const opts = await helpOptions();
  const lines = new Map();
  for (const m of read('config/herald.conf.example').matchAll(/^(#[ \t]*)?([a-z0-9-]+)[ \t]*=[ \t]*(.*)$/gm))
    if (!lines.has(m[2])) lines.set(m[2], m[3].trim());
  for (const [name, def] of opts) {
    if (['help', 'version', 'config'].includes(name)) continue;  // flags, not settings
    assert.ok(lines.has(name), `config/herald.conf.example does not list ${name}`);
    if (def !== undefined) assert.equal(norm(lines.get(name)), norm(def), `the example sets ${name} = ${lines.get(name)}, herald's default is ${def}`);
  }
  for (const name of lines.keys()) assert.ok(opts.has(name), `the example sets ${name}, which herald does not have`);
});

/** The --namespace keys named in `herald --help`, e.g. history_size. */
async function namespaceKeys() {
  const r = await H.runHerald(['--help']);
  const m = r.stdout.match(/--namespace arg([\s\S]*?)\(repeatable\)/);
  assert.ok(m, '--namespace is not in --help');
  // Boost wraps the help at any character: join the lines back.
  const text = m[1].replace(/\n\s+/g, '');
  const keys = [...text.matchAll(/([a-z_]+)=/g)].map((k) => k[1]);
  assert.ok(keys.length > 10, `parsed only ${keys.length} namespace keys from --help`);
  return keys;
}

test('docs/config.md and config/herald.conf.example name every --namespace key', async () => {
  const docs = read('docs/config.md'), example = read('config/herald.conf.example');
  for (const key of await namespaceKeys()) {
    assert.ok(docs.includes(`\`${key}\``), `docs/config.md does not document the namespace key ${key}`);
    assert.ok(new RegExp(`\\b${key}\\b`).test(example), `config/herald.conf.example does not name the namespace key ${key}`);
  }
});

test('an unknown --namespace key is refused with the list --help gives', async () => {
  const keys = await namespaceKeys();
  const r = await H.runHerald(['--namespace', 'chat:colour=blue']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`unknown key "colour" \\(${keys.join(', ')}\\)`));
});
