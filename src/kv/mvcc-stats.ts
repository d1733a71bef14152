// What the store was asked to do, counted as etcd counts it (etcd_mvcc_{range,put,delete,txn}_total
// and etcd_debugging_mvcc_total_put_size_in_bytes, mvcc/metrics_txn.go): every Range, Put and
// DeleteRange made on one of etcd's mvcc transactions, and a "txn" for each such transaction that
// made more than one of them. etcd's requests map onto its mvcc transactions in a particular way
// (a put with prev_kv is a range and a put in one transaction, a write Txn is two: its compares,
// then its ops), and the callers below follow it, so the counters read as etcd's do.
//
// Owns: the counts. Never: decides anything; counting is one add per op on the apply path.

export class MvccStats {
  ranges = 0;
  puts = 0;
  deletes = 0;
  txns = 0;
  /** Keys plus values of every put (etcd's total_put_size_in_bytes). */
  putBytes = 0;
  /** Versions a compaction's pruning removed (etcd's db_compaction_keys_total: revisions deleted). */
  compactedVersions = 0;
  /**
   * Compaction timings in milliseconds, as etcd's mvcc reports them (set by the metrics): the
   * compaction's synchronous step (its index compaction), each slice of pruning (a pause of the
   * member, as each of etcd's batches), and the whole prune.
   */
  compactionTimings: { index(ms: number): void; slice(ms: number): void; total(ms: number): void } | undefined;
  /** While set, nothing is counted (a restart replaying what it counted before). */
  muted = false;
  // The ops of the transaction being counted (applying is synchronous: one at a time).
  private r = 0;
  private p = 0;
  private d = 0;

  range(): void {
    this.r++;
  }

  put(bytes: number): void {
    this.p++;
    if (!this.muted) this.putBytes += bytes;
  }

  delete(): void {
    this.d++;
  }

  /** Ends the transaction being counted (etcd's metricsTxnWrite.End). */
  end(): void {
    this.record(this.r, this.p, this.d);
    this.r = this.p = this.d = 0;
  }

  /** One whole transaction's ops at once (for readers that yield between them). */
  record(ranges: number, puts = 0, deletes = 0): void {
    if (this.muted) return;
    this.ranges += ranges;
    this.puts += puts;
    this.deletes += deletes;
    if (ranges + puts + deletes > 1) this.txns++;
  }
}
