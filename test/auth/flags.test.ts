// --auth-token, --auth-token-ttl and --bcrypt-cost: etcd's defaults, and bad values refused.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlagError, parseFlags } from '../../src/cli/flags.js';
import { JwtTokens } from '../../src/auth/jwt.js';
import { tempDir } from '../support/temp-dirs.js';

describe('auth flags', () => {
  it("defaults: simple tokens, 300 s, bcrypt cost 10 (etcd's)", () => {
    assert.deepEqual(parseFlags(['--name', 'n1']).auth, { token: 'simple', tokenTtlSec: 300, bcryptCost: 10 });
    assert.deepEqual(parseFlags(['--name', 'n1', '--auth-token', 'simple', '--auth-token-ttl', '60', '--bcrypt-cost', '4']).auth, {
      token: 'simple',
      tokenTtlSec: 60,
      bcryptCost: 4,
    });
  });
  it('bad values are refused with one line naming the flag', () => {
    assert.throws(() => parseFlags(['--name', 'n1', '--auth-token', 'jwt,pub-key=/nonexistent/a,priv-key=/nonexistent/b,sign-method=RS256']), (e: Error) => e instanceof FlagError && /--auth-token.*cannot read/.test(e.message));
    assert.throws(() => parseFlags(['--name', 'n1', '--auth-token', 'jwt,pub-key=a,priv-key=b,sign-method=HS999']), (e: Error) => e instanceof FlagError && /sign-method/.test(e.message));
    assert.throws(() => parseFlags(['--name', 'n1', '--auth-token', 'paseto']), (e: Error) => e instanceof FlagError && /--auth-token/.test(e.message));
    assert.throws(() => parseFlags(['--name', 'n1', '--bcrypt-cost', 'x']), (e: Error) => e instanceof FlagError && /--bcrypt-cost/.test(e.message));
    assert.throws(() => parseFlags(['--name', 'n1', '--auth-token-ttl', '-1']), (e: Error) => e instanceof FlagError && /--auth-token-ttl/.test(e.message));
    // (A cost bcrypt cannot use and a TTL of 0 start with etcd's defaults: test/cli/config.test.ts.)
  });

  it('--auth-token jwt,...: keys read, tokens signed and verified with etcd\'s claims', () => {
    const dir = tempDir('raftkv-jwt-flags-');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'priv'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const a = parseFlags(['--name', 'n1', '--auth-token', `jwt,pub-key=${join(dir, 'pub')},priv-key=${join(dir, 'priv')},sign-method=RS256,ttl=2m`]).auth;
    assert.equal(a.token, 'jwt');
    assert.equal(a.jwt!.ttlSec, 120);
    const t = new JwtTokens(a.jwt!);
    const tok = t.sign('alice', 7n);
    assert.deepEqual(t.verify(tok), { username: 'alice', revision: 7n });
    assert.equal(t.verify(`${tok}x`), undefined);
    assert.equal(t.verify('not.a.jwt'), undefined);
  });
});
