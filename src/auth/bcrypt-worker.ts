// The bcrypt worker thread (./bcrypt-pool.ts): hashes and compares passwords off the member's
// event loop, so heartbeats and requests never wait on bcrypt's rounds.

import bcrypt from 'bcryptjs';
import { parentPort } from 'node:worker_threads';

export type BcryptJob = { id: number; op: 'hash'; password: string; cost: number } | { id: number; op: 'compare'; password: string; hash: string };
export type BcryptResult = { id: number; ok: true; value: string | boolean } | { id: number; ok: false; error: string };

parentPort?.on('message', (job: BcryptJob) => {
  let res: BcryptResult;
  try {
    const value = job.op === 'hash' ? bcrypt.hashSync(job.password, job.cost) : bcrypt.compareSync(job.password, job.hash);
    res = { id: job.id, ok: true, value };
  } catch (e) {
    res = { id: job.id, ok: false, error: (e as Error).message };
  }
  parentPort!.postMessage(res);
});
