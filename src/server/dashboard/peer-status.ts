// How the dashboard learns the other members' state: it asks each one's client URL for
// Maintenance.Status (what `etcdctl endpoint status` shows), with a short deadline, so a member
// that is down or cut off shows as unreachable within a second instead of hanging the page.
//
// Owns: one gRPC client per member client URL (kept between polls; https URLs dialed with the
// member's client certificate and CA, as the leader client does). Never: waits longer than
// the deadline, or retries on its own (the next poll is the retry).

import * as grpc from '@grpc/grpc-js';
import { MaintenanceClient, type StatusResponse } from '../../gen/etcd/rpc.js';
import type { TlsSide } from '../../util/tls.js';
import { channelCredentials } from '../../util/grpc-tls.js';
import { grpcTarget } from '../../util/url.js';

/** Below the dashboard's one-second refresh: an unanswered member never delays the next one. */
export const STATUS_DEADLINE_MS = 800;

export type PeerStatus = { ok: true; status: StatusResponse } | { ok: false; error: string };

export class PeerStatusClient {
  private readonly clients = new Map<string, InstanceType<typeof MaintenanceClient>>();

  constructor(
    private readonly tls: () => TlsSide | undefined,
    /** The server's wall clock (gRPC deadlines are wall-clock times). */
    private readonly wallNow: () => number,
  ) {}

  /** The member's Status at `url`, or why it could not be had within the deadline. */
  ask(url: string): Promise<PeerStatus> {
    let c = this.clients.get(url);
    if (!c) {
      c = new MaintenanceClient(grpcTarget(url), channelCredentials(url, this.tls()), {
        // Redial a restarted member quickly; the default backoff would show it down for longer.
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 1000,
      });
      this.clients.set(url, c);
    }
    const client = c;
    return new Promise((resolve) => {
      client.status({}, new grpc.Metadata(), { deadline: this.wallNow() + STATUS_DEADLINE_MS }, (err: grpc.ServiceError | null, res?: StatusResponse) => {
        if (err || !res) resolve({ ok: false, error: err?.details || err?.message || 'no answer' });
        else resolve({ ok: true, status: res });
      });
    });
  }

  /** Closes the clients of URLs no longer in the member list. */
  retain(urls: ReadonlySet<string>): void {
    for (const [u, c] of this.clients) {
      if (!urls.has(u)) {
        c.close();
        this.clients.delete(u);
      }
    }
  }

  close(): void {
    this.retain(new Set());
  }
}
