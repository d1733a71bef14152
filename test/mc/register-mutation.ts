// Loads the core with a deliberate bug: `RAFT_MUTATION=<name> node --import
// ./dist/test/mc/register-mutation.js <script>` (any script: the model checker, the simulator).
// Must run before anything imports src/raft, which is why it is an --import module.

import { register } from 'node:module';

export function registerMutation(name: string): void {
  register(new URL('./mutation-hook.js', import.meta.url), { data: { mutation: name } });
}

if (process.env.RAFT_MUTATION) registerMutation(process.env.RAFT_MUTATION);
