// Datadriven golden traces of the core (test/raft/testdata/*.txt), as in etcd-io/raft.
// Regenerate after an intended behaviour change with `REWRITE=1 npm test` and review the diff.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runFile } from '../datadriven/runner.js';
import { InteractionEnv } from './interaction.js';

const dir = 'test/raft/testdata';

describe('core interaction traces', () => {
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.txt')).sort()) {
    it(f, () => {
      const env = new InteractionEnv();
      runFile(join(dir, f), (c) => env.handle(c));
    });
  }
});
