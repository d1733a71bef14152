// systemd's readiness protocol (src/cli/sd-notify.ts), checked the way systemd checks it: a Unix
// datagram socket with SO_PASSCRED (here bound by Debian's Python), whose messages count only if
// the sender's pid is the service's main pid. A member sends READY=1 once it has joined the
// cluster — not while it has no quorum — and again after a restart, and logs etcd's lines; without a socket it logs etcd's success line anyway (as etcd does), and a
// socket it cannot reach is logged as etcd logs it, and the member serves on.

import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sdNotify } from '../../src/cli/sd-notify.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';
import { tempDir } from '../support/temp-dirs.js';

const PYTHON = '/usr/bin/python3';

/** Binds a datagram socket at argv[1] with SO_PASSCRED (as systemd does); prints each message with its sender's pid. */
const RECEIVER = `
import json, socket, struct, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(addr)
print(json.dumps({'bound': True}), flush=True)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', payload[:12])[0]
    print(json.dumps({'pid': pid, 'data': data.decode()}), flush=True)
`;

interface Received {
  pid: number | null;
  data: string;
}

class Receiver {
  readonly got: Received[] = [];
  private constructor(private readonly p: ChildProcessWithoutNullStreams) {}

  static async bind(address: string): Promise<Receiver> {
    const p = spawn(PYTHON, ['-c', RECEIVER, address]);
    const r = new Receiver(p);
    let bound!: () => void;
    const ready = new Promise<void>((resolve) => (bound = resolve));
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const m = JSON.parse(buf.slice(0, i)) as Received & { bound?: boolean };
        buf = buf.slice(i + 1);
        if (m.bound) bound();
        else r.got.push(m);
      }
    });
    const failed = new Promise<never>((_, reject) => p.once('exit', (code) => reject(new Error(`receiver exited (${code})`))));
    await Promise.race([ready, failed]);
    return r;
  }

  stop(): void {
    this.p.kill('SIGKILL');
  }
}

describe('systemd readiness (sd_notify)', { skip: !existsSync(PYTHON) && `${PYTHON} (Debian's python3) is not installed` }, () => {
  let c: ProcCluster;
  const dir = tempDir('raftkv-sd-notify-');
  const receivers: Receiver[] = [];
  // m1 is notified through a socket (another one after its restart), m2 has none, m3 a socket that does not exist.
  let m1Socket = join(dir, 'notify.sock');
  const missing = join(dir, 'nobody-listens.sock');

  before(async () => {
    receivers.push(await Receiver.bind(m1Socket));
    c = await ProcCluster.create({
      size: 3,
      logLevel: 'info',
      memberEnv: (i): Record<string, string> => (i === 0 ? { NOTIFY_SOCKET: m1Socket } : i === 2 ? { NOTIFY_SOCKET: missing } : {}),
    });
  });
  after(async () => {
    await c?.destroy();
    for (const r of receivers) r.stop();
  });

  const log = (i: number): string => c.members[i]!.log.join('');

  it('says READY=1 from the member\'s own pid once it has joined the cluster, not while it has no quorum', async () => {
    const p = c.startMember(0);
    await eventually(async () => assert.match(log(0), /serving clients on/));
    // Alone among three it can have no leader, so it has not joined: nothing sent, nothing logged.
    await eventually(async () => assert.match(log(0), /became pre-candidate/));
    assert.deepEqual(receivers[0]!.got, []);
    assert.doesNotMatch(log(0), /notifying init daemon/);

    c.startMember(1);
    await eventually(async () => assert.equal(receivers[0]!.got.length, 1));
    assert.deepEqual(receivers[0]!.got[0], { pid: p.pid, data: 'READY=1' });
    await eventually(async () => assert.match(log(0), /successfully notified init daemon/));
    const order = ['ready to serve client requests', 'notifying init daemon', 'successfully notified init daemon'].map((l) => log(0).indexOf(l));
    assert.deepEqual([...order].sort((a, b) => a - b), order, 'etcd\'s order of log lines');
  });

  it('logs etcd\'s success line without a socket too, as etcd does', async () => {
    await eventually(async () => assert.match(log(1), /ready to serve client requests/));
    await eventually(async () => assert.match(log(1), /successfully notified init daemon/));
  });

  it('logs a socket it cannot reach as etcd does, and serves on', async () => {
    c.startMember(2);
    await eventually(async () => assert.match(log(2), /failed to notify systemd for readiness: /));
    assert.doesNotMatch(log(2), /successfully notified init daemon/);
    await c.client(2).put('after-notify', 'v');
    assert.equal((await c.client(2).range('after-notify')).kvs.length, 1);
  });

  it('says it again after a restart', async () => {
    m1Socket = join(dir, 'notify-after-restart.sock');
    receivers.push(await Receiver.bind(m1Socket));
    await c.kill(0);
    const p = c.startMember(0);
    await eventually(async () => assert.equal(receivers[1]!.got.length, 1));
    assert.deepEqual(receivers[1]!.got[0], { pid: p.pid, data: 'READY=1' });
    assert.equal(receivers[0]!.got.length, 1, 'the first socket heard nothing more');
  });

  it('sends nothing without NOTIFY_SOCKET, and refuses an abstract address it could not reach', async () => {
    assert.equal(await sdNotify('READY=1', {}), false);
    await assert.rejects(sdNotify('READY=1', { NOTIFY_SOCKET: '@raftkv-test' }), /abstract socket addresses are not supported/);
  });
});
