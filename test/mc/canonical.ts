// A state's canonical form, hashed to a 64-bit fingerprint (xxHash64) for the visited set:
// everything that decides what the cluster can do next and what the invariants judge, written
// so that equivalent states write the same text. The network is a multiset (its messages
// sorted); timers, the random election timeout and the order of Map entries are left out (the
// model never consults the first two, see model.ts). With symmetry reduction, the form is the
// least text over every renaming of the interchangeable member ids (scenario.symmetric): a
// state and its renamings are then one state, which is sound because those members start
// alike and no event or property tells them apart.

import xxhash from 'xxhash-wasm';
import { type Entry, EntryType, type Message, NONE, type NodeId, StateType } from '../../src/raft/index.js';
import type { McNode, McState } from './model.js';
import { confChangeOf, entryKey, storedEntries, storedHardState } from './views.js';

type Rename = (id: NodeId) => NodeId;

function entryText(e: Entry, f: Rename): string {
  if (e.type === EntryType.Normal) return entryKey(e);
  // Term 1 holds only the bootstrap entries, one AddNode per initial member, the same on every
  // member: their order is an accident of numbering (applying them in any order gives the
  // same configuration), so they are written without ids, or no renaming could match them.
  if (e.term === 1) return 'B';
  const d = confChangeOf(e);
  return `${e.term}:cc${d.kind}${d.changes.map(([t, id]) => `${t}${f(id)}`).join('')}`;
}

const sortedIds = (ids: Iterable<NodeId>, f: Rename): string =>
  [...ids]
    .map(f)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .join(',');

function bytes(b: Uint8Array | undefined): string {
  if (!b || b.length === 0) return '';
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

function messageText(m: Message, f: Rename): string {
  let s = `${m.type}:${f(m.from)}>${f(m.to)}t${m.term}l${m.logTerm}i${m.index}c${m.commit}`;
  if (m.reject) s += `R${m.rejectHint}`;
  if (m.entries.length > 0) s += `[${m.entries.map((e) => entryText(e, f)).join(',')}]`;
  if (m.context && m.context.length > 0) s += `x${bytes(m.context)}`;
  if (m.snapshot) s += `S${m.snapshot.metadata.index}`;
  return s;
}

function nodeText(n: McNode, f: Rename): string {
  const hs = storedHardState(n.storage);
  const ents = storedEntries(n.storage);
  let s = `${f(n.id)}|${hs.term}/${f(hs.vote)}/${hs.commit}|${ents[0]!.index}|`;
  for (let i = 1; i < ents.length; i++) s += `${entryText(ents[i]!, f)},`;
  if (!n.raw) return `${s}DOWN`;
  const r = n.raw.inspect();
  const cfg = r.trk.config;
  s += `#${r.state}t${r.term}v${f(r.vote)}L${f(r.lead)}c${r.raftLog.committed}a${r.raftLog.applied}`;
  s += `|V${sortedIds(cfg.voters.incoming, f)}/${sortedIds(cfg.voters.outgoing, f)}l${sortedIds(cfg.learners, f)}/${sortedIds(cfg.learnersNext, f)}${cfg.autoLeave ? 'A' : ''}`;
  s += `p${r.pendingConfIndex}`;
  if (r.leadTransferee !== NONE) s += `T${f(r.leadTransferee)}`;
  if (r.state === StateType.Leader) {
    const prs = [...r.trk.progress].map(([id, p]) => `${f(id)}:${p.state}${p.match}/${p.next}/${p.sentCommit}/${p.pendingSnapshot}${p.msgAppFlowPaused ? 'P' : ''}${p.recentActive ? 'A' : ''}${p.inflights.len()}`);
    s += `|${prs.sort().join(';')}`;
    const ro = r.readOnly as unknown as { pending: Map<string, { index: number; acks: Map<NodeId, boolean> }>; queue: string[] };
    for (const k of ro.queue) {
      const p = ro.pending.get(k);
      if (p) s += `|R${k}@${p.index}:${sortedIds(p.acks.keys(), f)}`;
    }
    for (const m of r.pendingReadIndexMessages) s += `|Q${bytes(m.context)}`;
  } else if (r.state === StateType.Candidate || r.state === StateType.PreCandidate) {
    s += `|votes:${[...r.trk.votes].map(([id, v]) => `${f(id)}${v ? '+' : '-'}`).sort().join('')}`;
  }
  return s;
}

function stateText(s: McState, f: Rename): string {
  const parts = s.nodes.map((n) => nodeText(n, f)).sort();
  parts.push(s.net.map((m) => messageText(m, f)).sort().join(' '));
  const b = s.left;
  const g = s.ghost;
  parts.push(`${b.timeouts}/${b.heartbeats}/${b.proposals}/${b.reads}/${b.drops}/${b.duplicates}/${b.crashes}/${b.partitions}/${b.confChanges}|${f(s.isolated)}@${s.isolatedAtTerm}|${g.proposed}/${g.readsIssued}/${g.changesMade}`);
  parts.push(g.leaders.map(([t, id]) => `${t}:${f(id)}`).join(','));
  parts.push(g.committed.map((c) => `${entryText(c.entry, f)}@${c.term}`).join(','));
  parts.push(g.reads.map((r) => `${r.ctx}@${f(r.node)}>=${r.minIndex}`).join(','));
  return parts.join('\n');
}

/**
 * The canonical text: the least text over the renamings that order the interchangeable members
 * by their anonymous text (ids of interchangeable members blanked). Those texts do not depend
 * on names, so renamings of one state pick matching candidates, and the least text over them
 * is the same for all; usually the members differ and one renaming is left to write, not n!.
 */
export function canonicalText(s: McState, symmetric: readonly NodeId[]): string {
  if (symmetric.length < 2) return stateText(s, (id) => id);
  const blank: Rename = (id) => (symmetric.includes(id) ? -1n : id);
  const members = s.nodes.filter((n) => symmetric.includes(n.id)).map((n) => ({ id: n.id, sig: nodeText(n, blank) }));
  members.sort((a, b) => (a.sig < b.sig ? -1 : a.sig > b.sig ? 1 : 0));
  // Orders of the members consistent with their signatures: permute only within equal runs.
  let orders: NodeId[][] = [[]];
  for (let i = 0; i < members.length; ) {
    let j = i;
    while (j < members.length && members[j]!.sig === members[i]!.sig) j++;
    const run = members.slice(i, j).map((m) => m.id);
    const next: NodeId[][] = [];
    for (const o of orders) for (const p of permutations(run)) next.push([...o, ...p]);
    orders = next;
    i = j;
  }
  const names = [...symmetric].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let best: string | undefined;
  for (const order of orders) {
    const m = new Map(order.map((id, i) => [id, names[i]!]));
    const t = stateText(s, (id) => m.get(id) ?? id);
    if (best === undefined || t < best) best = t;
  }
  return best!;
}

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  const out: T[][] = [];
  xs.forEach((x, i) => {
    for (const p of permutations([...xs.slice(0, i), ...xs.slice(i + 1)])) out.push([x, ...p]);
  });
  return out;
}

export type Fingerprinter = (s: McState) => bigint;

/** xxHash64 of the canonical text (xxhash-wasm: WebAssembly, loaded once). */
export async function fingerprinter(symmetric: readonly NodeId[]): Promise<Fingerprinter> {
  const { h64 } = await xxhash();
  return (s) => h64(canonicalText(s, symmetric));
}
