// Log lines as etcd's zap logger writes them (issue 17): what a pipeline built for etcd
// expects, field by field and in zap's order.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger, zapTimestamp } from '../../src/util/log.js';
import { tempDir } from '../support/temp-dirs.js';

const ZAP_TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})$/;

describe('zap-style log lines', () => {
  it('level word, ts, caller, msg, then the member fields; appended to a --log-outputs file', () => {
    const file = join(tempDir('raftkv-log-'), 'member.log');
    writeFileSync(file, 'an earlier line\n');
    const log = createLogger({ level: 'info', outputs: [file], fields: { name: 'n1' } });
    log.debug('not at info level');
    log.info('hello');
    log.addFields({ 'local-member-id': '8e9e05c52164694d' });
    log.warn('careful');
    log.log('info', 'with fields', { path: '/etc/etcd.yml' });
    log.error('broken');
    log.flush();
    const [first, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(first, 'an earlier line');
    assert.equal(lines.length, 4, lines.join('\n'));
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, string>);
    assert.deepEqual(parsed.map((p) => p.level), ['info', 'warn', 'info', 'error']);
    assert.deepEqual(Object.keys(parsed[0]!), ['level', 'ts', 'caller', 'msg', 'name']);
    assert.deepEqual(Object.keys(parsed[1]!), ['level', 'ts', 'caller', 'msg', 'name', 'local-member-id']);
    assert.equal(parsed[2]!.path, '/etc/etcd.yml');
    for (const p of parsed) {
      assert.match(p.ts!, ZAP_TS);
      assert.match(p.caller!, /^cli\/log\.test\.js:\d+$/);
    }
    assert.equal(parsed[0]!.msg, 'hello');
  });

  it("ts is zap's ISO8601 encoder: milliseconds, Z in UTC", () => {
    const d = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6));
    const s = zapTimestamp(d);
    assert.match(s, ZAP_TS);
    if (d.getTimezoneOffset() === 0) assert.equal(s, '2026-01-02T03:04:05.006Z');
  });

  it('levels above error (panic, fatal) keep everything raftkv logs out', () => {
    const file = join(tempDir('raftkv-log-'), 'member.log');
    const log = createLogger({ level: 'panic', outputs: [file] });
    log.error('not shown');
    log.flush();
    assert.equal(readFileSync(file, 'utf8'), '');
  });
});
