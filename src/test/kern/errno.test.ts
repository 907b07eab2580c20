// The one errno table: BSD numbers, Node's names (checked against Node's own
// util.getSystemErrorName where libuv knows the error), the Linux numbers of
// the native edge (checked against os.constants.errno of this host), the
// ErrnoError shape of Node's system errors, and docs/errors.md listing every
// code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EAGAIN, ECONNREFUSED, EIO, EOPNOTSUPP, ErrnoError, check, errnoName, errnoTable, linuxErrno } from '../../kern/errno.js';
import { SlabnetError } from '../../kern/errors.js';
import { EAGAIN as TAP_EAGAIN } from '../../net/phy/tap-addon.js';

const linux = constants.errno as Record<string, number>;

test('errno table: unique BSD numbers and names; Node agrees on every name it knows', () => {
  const t = errnoTable();
  assert.equal(new Set(t.map(([n]) => n)).size, t.length);
  assert.equal(new Set(t.map(([, s]) => s)).size, t.length);
  let checked = 0;
  for (const [, name] of t) {
    const l = linux[name];
    if (l === undefined) continue;
    const nodeName = getSystemErrorName(-l);
    if (nodeName.startsWith('Unknown')) continue;
    assert.equal(nodeName, name, `Node's name for ${name}`);
    checked++;
  }
  assert.ok(checked > 40, `${checked} names checked`);
  assert.equal(errnoName(EOPNOTSUPP), 'ENOTSUP', "Node's spelling");
  assert.equal(errnoName(12345), 'E12345');
});

test('the native edge: Linux numbers translate to ours (this host\'s os.constants.errno), unknown ones to EIO', { skip: process.platform !== 'linux' }, () => {
  for (const [bsd, name] of errnoTable()) {
    const l = linux[name];
    if (l !== undefined) assert.equal(linuxErrno(l), bsd, name);
  }
  assert.equal(linuxErrno(11), EAGAIN);
  assert.equal(TAP_EAGAIN, 35, 'the TAP path compares with BSD EAGAIN');
  assert.equal(linuxErrno(4000), EIO);
});

test('ErrnoError has the shape of a Node system error', () => {
  const e = new ErrnoError(ECONNREFUSED, 'connect', { address: '10.0.0.2', port: 53 });
  assert.ok(e instanceof SlabnetError && e instanceof Error);
  assert.equal(e.code, 'ECONNREFUSED');
  assert.equal(e.errno, 61);
  assert.equal(e.syscall, 'connect');
  assert.equal(e.address, '10.0.0.2');
  assert.equal(e.port, 53);
  assert.equal(e.message, 'connect ECONNREFUSED 10.0.0.2:53');
  assert.equal(e.name, 'ErrnoError');
  assert.equal(new ErrnoError(EAGAIN, 'recv', { info: 'timed out' }).message, 'recv EAGAIN (timed out)');
  assert.throws(() => check(EAGAIN, 'recv'), { code: 'EAGAIN', errno: 35, syscall: 'recv' });
  check(0, 'recv');
});

test('docs/errors.md lists every errno code and number', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)), 'utf8');
  for (const [n, name] of errnoTable()) assert.match(doc, new RegExp(`\\| ${n} \\| \`${name}\` \\|`), `${name} (${n}) missing from docs/errors.md`);
});
