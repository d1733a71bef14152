// Datadriven golden traces of the core (test/raft/testdata/*.txt), as in etcd-io/raft; the
// commands are listed in interaction.ts. Regenerate after an intended behaviour change with
// `npx tsc -p tsconfig.json && REWRITE=1 node --test dist/test/raft/traces.test.js` and review
// the diff: a golden file is only as good as its review.

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
