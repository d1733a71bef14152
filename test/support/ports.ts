// Free TCP ports on 127.0.0.1 for member processes.
//
// Ports come from below the kernel's ephemeral range and are checked by binding them. A port
// from the ephemeral range (what binding port 0 gives) can be taken, between our check and the
// member's bind, as the source port of any outgoing connection on the machine — and tests run
// many gRPC connections in parallel — so the member would fail to listen.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 12_000) return low;
  } catch {
    /* not Linux: fall back to the IANA dynamic range's start */
  }
  return 32_768;
}

const LOW = 10_000;
const HIGH = ephemeralLow() - 1;
const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let tries = 0; out.length < n; tries++) {
    if (tries > 10_000) throw new Error('no free ports below the ephemeral range');
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (handedOut.has(port) || out.includes(port)) continue;
    if (await canBind(port)) out.push(port);
  }
  for (const p of out) handedOut.add(p);
  return out;
}
