/** Resolves on a later event-loop turn (after pending I/O callbacks): how long work lets others run. */
export const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));
