// The process logger (pino, JSON lines on stderr) behind the core's small Logger interface.

import { pino } from 'pino';
import type { Logger } from '../raft/logger.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface ProcessLogger extends Logger {
  flush(): void;
}

export function createLogger(level: Level, name: string): ProcessLogger {
  const dest = pino.destination({ dest: 2, sync: false });
  const p = pino({ level, name, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  return {
    debug: (m) => p.debug(m),
    info: (m) => p.info(m),
    warn: (m) => p.warn(m),
    error: (m) => p.error(m),
    flush: () => {
      try {
        dest.flushSync();
      } catch {
        /* not yet ready: nothing buffered */
      }
    },
  };
}
