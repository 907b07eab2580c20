// Idle established connections cost little and leave nothing behind: 2,000
// connections with both ends in this process (4,000 endpoints, all
// ESTABLISHED) hold at most 2 KiB of arena each outside buffered data (they
// buffer none), and after closing them all and both stacks every zone's
// items in use are back to where they started. Bytes counted from the UMA
// zones (items in use x item size): a deterministic memory bound, not a
// timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IDLE_GOAL, idleConnections } from '../../bench/tcpidle.js';

test('tcp idle: 2,000 idle connections (4,000 endpoints) take <= 2 KiB of arena each, and nothing leaks after closing them', () => {
  const f = idleConnections({ connections: 2000 });
  assert.equal(f.connections, 2000);
  assert.equal(f.endpoints, 4000);
  assert.equal(f.established, 4000, 'every endpoint ESTABLISHED');
  assert.ok(f.arenaPerEndpoint >= 0 && f.arenaPerEndpoint <= IDLE_GOAL, `arena ${f.arenaPerEndpoint} B/endpoint`);
  assert.ok(f.pagesPerEndpoint <= IDLE_GOAL, `arena pages ${f.pagesPerEndpoint} B/endpoint`);
  assert.equal(f.leakedBytes, 0, 'zone bytes in use after closing everything');
});
