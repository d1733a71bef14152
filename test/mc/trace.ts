// A path found by the search, replayed and written in the golden-trace format of
// test/raft/testdata (a command, `----`, what it caused: the cores' log lines and every Ready
// the driver handled, in the interaction environment's notation), so a counterexample reads
// like the traces engineers already review.

import { ConfChangeType, type Entry, EntryType, type Ready, decodeConfChangeEntry } from '../../src/raft/index.js';
import type { Logger } from '../../src/raft/logger.js';
import { describeMessage } from '../raft/interaction.js';
import { InvariantViolation } from './invariants.js';
import { type McEvent, type McState, type ModelContext, enabled, initialState, step } from './model.js';
import type { Scenario } from './scenarios.js';

function entryText(e: Entry): string {
  if (e.type === EntryType.Normal) return `${e.term}/${e.index} EntryNormal ${JSON.stringify(Buffer.from(e.data).toString())}`;
  const cc = decodeConfChangeEntry(e.type, e.data);
  const ch = cc.changes.map((c) => `${ConfChangeType[c.type]}(${c.nodeId})`).join(' ');
  return `${e.term}/${e.index} Entry${EntryType[e.type]} ${ch || 'leave-joint'}`;
}

function readyText(id: bigint, rd: Ready): string[] {
  const lines: string[] = [];
  if (rd.softState) lines.push(`State:${rd.softState.raftState} Lead:${rd.softState.lead}`);
  if (rd.hardState) lines.push(`HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote} Commit:${rd.hardState.commit}`);
  if (rd.entries.length > 0) lines.push('Entries:', ...rd.entries.map((e) => `  ${entryText(e)}`));
  if (rd.committedEntries.length > 0) lines.push('CommittedEntries:', ...rd.committedEntries.map((e) => `  ${entryText(e)}`));
  if (rd.messages.length > 0) lines.push('Messages:', ...rd.messages.map((m) => `  ${describeMessage(m)}`));
  if (rd.messagesAfterPersist.length > 0) lines.push('MessagesAfterPersist:', ...rd.messagesAfterPersist.map((m) => `  ${describeMessage(m)}`));
  for (const rs of rd.readStates) lines.push(`ReadState Index:${rs.index} Ctx:${JSON.stringify(Buffer.from(rs.requestCtx).toString())}`);
  return [`> ${id} handling Ready`, `  Ready MustSync=${rd.mustSync}:`, ...lines.map((l) => `  ${l}`)];
}

/** The event as a command line of the trace. */
export function commandText(cx: ModelContext, s: McState, ev: McEvent): string {
  if (ev.kind === 'deliver' || ev.kind === 'drop' || ev.kind === 'duplicate') return `${ev.kind}-msg ${describeMessage(s.net[ev.msg]!)}`;
  if (ev.kind === 'heal') return 'recover';
  if (!('node' in ev)) throw new Error('unreachable');
  const nd = s.nodes[ev.node]!;
  switch (ev.kind) {
    case 'timeout':
      return nd.raw?.basicStatus().raftState === 'StateLeader' ? `check-quorum ${nd.id}` : `campaign ${nd.id}`;
    case 'heartbeat':
      return `tick-heartbeat ${nd.id}`;
    case 'propose':
      return `propose ${nd.id} v${s.ghost.proposed + 1}`;
    case 'read':
      return `read-index ${nd.id} r${s.ghost.readsIssued + 1}`;
    case 'conf':
      return `propose-conf-change ${nd.id} ${cx.sc.changes[s.ghost.changesMade]!.text.replace('<leader>', String(nd.id))}`;
    default:
      return `${ev.kind} ${nd.id}`;
  }
}

export interface Replay {
  text: string;
  /** The invariant violated on the way, if any. */
  violation?: string;
  final: McState;
}

/** Replays `path` (positions in each state's enabled events) from the scenario's initial state. */
export function replay(sc: Scenario, path: readonly number[]): Replay {
  let out: string[] = [];
  const logger: Logger = { debug() {}, info: (m) => out.push(`INFO ${m}`), warn: (m) => out.push(`WARN ${m}`), error: (m) => out.push(`ERROR ${m}`) };
  const cx: ModelContext = { sc, logger, observer: { ready: (id, rd) => out.push(...readyText(id, rd)) } };
  const blocks: string[] = [];
  let s = initialState(cx);
  out = [];
  let violation: string | undefined;
  for (const k of path) {
    const evs = enabled(cx, s);
    const ev = evs[k];
    if (!ev) throw new Error(`replay: event ${k} is not enabled (only ${evs.length} are): the path does not belong to this scenario or core`);
    const cmd = commandText(cx, s, ev);
    out = [];
    try {
      s = step(cx, s, ev) ?? s;
    } catch (e) {
      if (!(e instanceof InvariantViolation)) throw e;
      violation = e.message;
      out.push(`VIOLATION ${e.message}`);
    }
    blocks.push(`${cmd}\n----\n${out.length > 0 ? out.join('\n') : 'ok'}\n`);
    if (violation) break;
  }
  return { text: blocks.join('\n'), violation, final: s };
}

export const pathText = (path: readonly number[]): string => path.join('.');
export const parsePath = (text: string): number[] => (text === '' ? [] : text.split('.').map(Number));
