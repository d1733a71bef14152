// etcd's /debug/vars (Go's expvar, on the client port): the command line, the file descriptor
// limit, the memory the process holds and the Raft status, as etcd 3.4 prints them. Scripts and
// monitoring that read `raft.status` (who leads, each follower's match and next on the leader)
// read raftkv's the same way.
//
// Owns: the document's shape. Never: reads more than the Raft core's status and the process's
// own figures (it is O(members)).

import type { Status } from '../raft/rawnode.js';
import { fileDescriptorLimit } from '../util/file-descriptors.js';
import { hex } from '../util/ids.js';

/**
 * etcd-io/raft's Status.MarshalJSON, field for field: ids in unpadded hex ("0" for none), the
 * progress of each member only on the leader (`{}` elsewhere).
 */
export function raftStatusJson(st: Status): string {
  const progress = [...(st.progress ?? new Map())].map(([id, pr]) => `"${hex(id)}":{"match":${pr.match},"next":${pr.next},"state":"${pr.state}"}`);
  return (
    `{"id":"${hex(st.id)}","term":${st.hardState.term},"vote":"${hex(st.hardState.vote)}","commit":${st.hardState.commit},` +
    `"lead":"${hex(st.softState.lead)}","raftState":"${st.softState.raftState}","applied":${st.applied},` +
    `"progress":{${progress.join(',')}},"leadtransferee":"${hex(st.leadTransferee)}"}`
  );
}

/**
 * The whole document, as Go's expvar handler writes it: each variable on its line, in key order.
 * `memstats` holds Go's field names where Node has the same figure (Alloc and HeapAlloc: bytes
 * of live heap objects; HeapSys: the heap's reserved size; Sys: the resident set).
 */
export function debugVars(status: Status): string {
  const mem = process.memoryUsage();
  const vars: Record<string, string> = {
    cmdline: JSON.stringify(process.argv.slice(1)),
    file_descriptor_limit: String(fileDescriptorLimit()),
    memstats: JSON.stringify({ Alloc: mem.heapUsed, HeapAlloc: mem.heapUsed, HeapSys: mem.heapTotal, Sys: mem.rss, External: mem.external }),
    'raft.status': raftStatusJson(status),
  };
  const lines = Object.keys(vars)
    .sort()
    .map((k) => `${JSON.stringify(k)}: ${vars[k]}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}
