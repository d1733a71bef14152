// The cluster's alarms, as etcd's v3alarm.AlarmStore: a set of (member id, alarm type), part of
// the replicated state (raised and disarmed only through the log, saved in snapshots), so every
// member refuses the same requests. While CORRUPT is raised every write is refused with
// `etcdserver: corrupt cluster` (etcd's applierV3Corrupt); while NOSPACE is raised, puts and
// lease grants are refused with `etcdserver: mvcc: database space exceeded` (applierV3Capped).

import { type AlarmMember, type AlarmRequest, AlarmRequest_AlarmAction, AlarmType, alarmTypeToJSON } from '../gen/etcd/rpc.js';
import type { RequestOp } from '../gen/etcd/rpc.js';
import type { InternalRequest } from '../gen/raftkv/entry.js';
import { type EtcdError, Errors } from '../kv/errors.js';
import { compareOrdered } from '../util/compare.js';

/** A raised or disarmed alarm (for logging). */
export interface AlarmChange {
  raised: boolean;
  alarm: AlarmMember;
}

/** Snapshot image: [member id, alarm type] pairs. */
export type AlarmsImage = Array<[string, number]>;

const keyOf = (memberID: bigint, alarm: AlarmType): string => `${alarm}:${memberID}`;

export const alarmName = (t: AlarmType): string => alarmTypeToJSON(t);

/** An alarm in Go's protobuf text form, as etcd's Status lists it: zero fields are left out. */
export const alarmText = (a: AlarmMember): string =>
  `${a.memberID !== 0n ? `memberID:${a.memberID} ` : ''}${a.alarm !== AlarmType.NONE ? `alarm:${alarmName(a.alarm)} ` : ''}`;

export class AlarmStore {
  private readonly alarms = new Map<string, AlarmMember>();

  /** The alarms of a type (NONE: all), in a deterministic order (type, then member id). */
  get(type: AlarmType = AlarmType.NONE): AlarmMember[] {
    return [...this.alarms.values()]
      .filter((a) => type === AlarmType.NONE || a.alarm === type)
      .sort((a, b) => a.alarm - b.alarm || compareOrdered(a.memberID, b.memberID))
      .map((a) => ({ ...a }));
  }

  has(type: AlarmType): boolean {
    for (const a of this.alarms.values()) if (a.alarm === type) return true;
    return false;
  }

  /**
   * Applies an AlarmRequest from the log, as etcd's applierV3backend.Alarm: ACTIVATE answers the
   * alarm (new or already raised), DEACTIVATE the alarm it removed, GET the alarms of the type.
   * `changed` hears of an alarm type going from none raised to raised, and back.
   */
  apply(req: AlarmRequest, changed?: (c: AlarmChange) => void): AlarmMember[] {
    switch (req.action) {
      case AlarmRequest_AlarmAction.GET:
        return this.get(req.alarm);
      case AlarmRequest_AlarmAction.ACTIVATE: {
        // An alarm of type NONE is kept like any other (etcd 3.4 keeps it, lists it and counts it
        // in /health; it refuses nothing).
        const first = !this.has(req.alarm);
        const k = keyOf(req.memberID, req.alarm);
        let m = this.alarms.get(k);
        if (!m) {
          m = { memberID: req.memberID, alarm: req.alarm };
          this.alarms.set(k, m);
          if (first) changed?.({ raised: true, alarm: { ...m } });
        }
        return [{ ...m }];
      }
      case AlarmRequest_AlarmAction.DEACTIVATE: {
        const k = keyOf(req.memberID, req.alarm);
        const m = this.alarms.get(k);
        if (!m) return [];
        this.alarms.delete(k);
        if (!this.has(m.alarm)) changed?.({ raised: false, alarm: { ...m } });
        return [{ ...m }];
      }
      default:
        return [];
    }
  }

  /**
   * The error a request is refused with under the raised alarms, if any. Checked when the
   * request is applied (so every member decides alike) and, as a shortcut, before proposing.
   */
  refusal(req: Omit<InternalRequest, 'id' | 'proposer' | 'settledBelow'>): EtcdError | undefined {
    if (this.alarms.size === 0) return undefined;
    if (this.has(AlarmType.CORRUPT)) {
      // etcd's applierV3Corrupt: every write of the key space and of leases.
      if (req.put || req.deleteRange || req.txn || req.compaction || req.leaseGrant || req.leaseRevoke) return Errors.corrupt();
    }
    if (this.has(AlarmType.NOSPACE)) {
      // etcd's applierV3Capped: what can only grow the database (deletes and compaction free space).
      if (req.put || req.leaseGrant || (req.txn && txnHasPut(req.txn.success, req.txn.failure))) return Errors.noSpace();
    }
    return undefined;
  }

  toImage(): AlarmsImage {
    return this.get().map((a) => [a.memberID.toString(), a.alarm]);
  }

  /** Replaces the alarms with a snapshot's (none for snapshots written before alarms existed). */
  restore(img: AlarmsImage | undefined): void {
    this.alarms.clear();
    for (const [id, t] of img ?? []) {
      const m = { memberID: BigInt(id), alarm: t as AlarmType };
      this.alarms.set(keyOf(m.memberID, m.alarm), m);
    }
  }
}

export function txnHasPut(...branches: RequestOp[][]): boolean {
  return branches.some((ops) => ops.some((op) => op.requestPut !== undefined || (op.requestTxn !== undefined && txnHasPut(op.requestTxn.success, op.requestTxn.failure))));
}
