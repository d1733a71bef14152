// Seeded random fault schedules on a 5-node cluster; the Raft safety properties are checked
// after every simulated event, and liveness after the network heals.
import { simSuite } from './run-seeds.js';

await simSuite(5, 200);
