import pino, { type Logger } from 'pino';
import { LOG_REDACT_PATHS } from '../audit/redact.js';

/** The server's JSON logger, secrets redacted. Its own module so the cluster primary can log without loading the HTTP stack. */
export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' }, base: { service: 'openenroll' } });
}
