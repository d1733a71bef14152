// --auth-token jwt: a token signed by the member that authenticated the user is valid on every
// member (stateless, verified with the public key); forged, garbage and stale tokens get etcd's
// errors. etcdctl drives the recipe as with simple tokens.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import jwt from 'jsonwebtoken';
import { AuthClient, KVClient, RangeRequest, type RangeResponse } from '../../src/gen/etcd/rpc.js';
import { etcdctlAvailable, etcdctlEnv, run } from '../support/etcdctl.js';
import { ProcCluster } from '../support/proc-cluster.js';
import { tempDir } from '../support/temp-dirs.js';

describe('auth with JWT tokens on a 3-member cluster', { skip: etcdctlAvailable ? false : 'etcdctl not installed' }, () => {
  let c: ProcCluster;
  let privPem = '';
  const ctl = async (args: string[], user?: string): Promise<string> => {
    const u = user ? [`--user=${user}`] : [];
    return (await run('etcdctl', [`--endpoints=${c.endpoints().join(',')}`, '--command-timeout=15s', ...u, ...args], { env: etcdctlEnv })).stdout;
  };
  const authenticate = (i: number, name: string, password: string): Promise<string> => {
    const a = new AuthClient(c.endpoint(i), grpc.credentials.createInsecure());
    return new Promise((resolve, reject) =>
      a.authenticate({ name, password }, (err, res) => {
        a.close();
        if (err) reject(err);
        else resolve(res.token);
      }),
    );
  };
  /** A Range with the token (several: the `token` header repeated, as python-etcd3 sends it over TLS). */
  const get = (i: number, key: string, token?: string | string[]): Promise<RangeResponse> => {
    const kv = new KVClient(c.endpoint(i), grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    for (const t of token === undefined ? [] : Array.isArray(token) ? token : [token]) md.add('token', t);
    return new Promise((resolve, reject) =>
      kv.range(RangeRequest.fromPartial({ key: Buffer.from(key) }), md, (err, res) => {
        kv.close();
        if (err) reject(err);
        else resolve(res);
      }),
    );
  };

  before(async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    privPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const dir = tempDir('raftkv-jwt-');
    writeFileSync(join(dir, 'priv.pem'), privPem);
    writeFileSync(join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const spec = `jwt,pub-key=${join(dir, 'pub.pem')},priv-key=${join(dir, 'priv.pem')},sign-method=ES256,ttl=10m`;
    c = await ProcCluster.start({ size: 3, extraArgs: ['--auth-token', spec, '--bcrypt-cost', '4'] });
  });
  after(async () => {
    await c?.destroy();
  });

  it('the etcdctl recipe works with JWT tokens', async () => {
    await ctl(['user', 'add', 'root:rootpw']);
    await ctl(['role', 'add', 'reader']);
    await ctl(['role', 'grant-permission', 'reader', 'read', 'app/', '--prefix']);
    await ctl(['user', 'add', 'alice:alicepw']);
    await ctl(['user', 'grant-role', 'alice', 'reader']);
    await ctl(['put', 'app/x', '1']);
    assert.match(await ctl(['auth', 'enable']), /Authentication Enabled/);
    assert.equal(await ctl(['get', 'app/x', '--print-value-only'], 'alice:alicepw'), '1\n');
    await assert.rejects(ctl(['put', 'app/x', '2'], 'alice:alicepw'), (e: { stderr: string }) => /etcdserver: permission denied/.test(e.stderr));
  });

  it('a token from one member is valid on every member', async () => {
    const token = await authenticate(0, 'alice', 'alicepw');
    const claims = jwt.decode(token) as { username: string; revision: number; exp: number };
    assert.equal(claims.username, 'alice');
    assert.deepEqual(Object.keys(claims).sort(), ['exp', 'revision', 'username'], "etcd's claims, no iat");
    for (const i of [0, 1, 2]) assert.equal((await get(i, 'app/x', token)).kvs[0]!.value.toString(), '1');
    // A repeated token header: the first value counts, as etcd reads grpc-go's list.
    assert.equal((await get(0, 'app/x', [token, token])).kvs[0]!.value.toString(), '1');
    assert.equal((await get(0, 'app/x', [token, 'garbage'])).kvs[0]!.value.toString(), '1');
  });

  it('forged, garbage and stale tokens are refused', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = jwt.sign({ username: 'root', revision: 1000 }, privateKey, { algorithm: 'ES256', expiresIn: 60 });
    await assert.rejects(get(1, 'app/x', forged), /etcdserver: invalid auth token/);
    await assert.rejects(get(1, 'app/x', 'garbage'), /etcdserver: invalid auth token/);
    const expired = jwt.sign({ username: 'alice', revision: 1000, exp: Math.floor(Date.now() / 1000) - 10 }, privPem, { algorithm: 'ES256' });
    await assert.rejects(get(1, 'app/x', expired), /etcdserver: invalid auth token/);
    // A permission change makes older tokens stale (etcd's revision check).
    const token = await authenticate(2, 'alice', 'alicepw');
    await ctl(['role', 'add', 'another'], 'root:rootpw');
    await assert.rejects(get(0, 'app/x', token), /etcdserver: revision of auth store is old/);
    assert.equal((await get(0, 'app/x', await authenticate(0, 'alice', 'alicepw'))).kvs.length, 1);
  });

  it('with auth off a bad token is still refused (etcd 3.4 verifies a JWT whenever one is sent)', async () => {
    const token = await authenticate(0, 'root', 'rootpw');
    assert.match(await ctl(['auth', 'disable'], 'root:rootpw'), /Authentication Disabled/);
    await assert.rejects(get(1, 'app/x', 'garbage'), /etcdserver: invalid auth token/);
    // A JWT is stateless: one signed before the disable still verifies.
    assert.equal((await get(1, 'app/x', token)).kvs.length, 1);
  });
});
