// A DNS server for tests: answers SRV queries from a table, over UDP on 127.0.0.1 (a free
// port), NXDOMAIN for any other name. raftkv's --discovery-srv is pointed at it with
// RAFTKV_DNS_SERVERS, the resolver in-process with setServers.

import { type Socket, createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as packet from 'dns-packet';

export interface SrvRecord {
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

export class FakeDns {
  /** Fully qualified name (no trailing dot) -> its SRV records. */
  readonly srv = new Map<string, SrvRecord[]>();
  /** Every name asked, in order. */
  readonly asked: string[] = [];

  private constructor(
    private readonly socket: Socket,
    readonly server: string,
  ) {}

  static async start(): Promise<FakeDns> {
    const socket = createSocket('udp4');
    let self: FakeDns | undefined;
    socket.on('message', (msg, rinfo) => self!.answer(msg, rinfo.address, rinfo.port));
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    self = new FakeDns(socket, `127.0.0.1:${(socket.address() as AddressInfo).port}`);
    return self;
  }

  private answer(msg: Buffer, address: string, port: number): void {
    let q: packet.Packet;
    try {
      q = packet.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question) return;
    this.asked.push(`${question.type} ${question.name}`);
    const records = question.type === 'SRV' ? this.srv.get(question.name.replace(/\.$/, '')) : undefined;
    const reply = packet.encode({
      id: q.id,
      type: 'response',
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (records ? 0 : 3) /* NXDOMAIN */,
      questions: [question],
      answers: (records ?? []).map((r) => ({
        type: 'SRV' as const,
        name: question.name,
        ttl: 60,
        data: { target: r.target, port: r.port, priority: r.priority ?? 0, weight: r.weight ?? 0 },
      })),
    });
    this.socket.send(reply, port, address);
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.socket.close(() => r()));
  }
}
