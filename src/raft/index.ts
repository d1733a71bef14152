// Public surface of the Raft core.
export * from './types.js';
export * from './errors.js';
export * from './logger.js';
export * from './rand.js';
export * from './storage.js';
export * from './ready.js';
export * from './rawnode.js';
export { type Config, CampaignType, Raft } from './raft.js';
export { ReadOnlyOption } from './read-only.js';
export * from './confchange/types.js';
export { ProgressState, Progress } from './tracker/progress.js';
