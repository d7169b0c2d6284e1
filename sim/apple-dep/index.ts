import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DepDevice, DepProfile } from '../../src/apple/ade/dep-api.js';
import type { Clock } from '../../src/shared/time.js';
import { handleControl, handleDep, validateFault, type Fault, type HttpContext, type RequestRecord } from './http.js';
import { AbmModel, type AssignmentOutcome } from './model.js';

/**
 * A strict simulator of Apple's device assignment service: the Apple Business/School Manager portal
 * (MDM servers, public key upload, server token download, device assignment) and the DEP API at
 * mdmenrollment.apple.com. See README.md for the behaviours and the choices made where Apple is silent.
 */

export { oauth1AuthorizationHeader, type OAuth1Credentials } from './oauth1.js';
export { decryptServerToken } from './token.js';
export { SKIP_SETUP_ITEMS } from './profile.js';
export type { Fault as AbmFault, RequestRecord as AbmRequestRecord, AssignmentOutcome };

export interface AbmSimulatorOptions {
  clock?: Clock;
  host?: string;
  port?: number;
  /** Default 30 minutes. */
  sessionTtlMs?: number;
  /** Default 7 days (Apple: EXPIRED_CURSOR past that). */
  cursorTtlMs?: number;
  /** Advertised in /account urls; default {default: 100, maximum: 1000}. */
  limits?: { default: number; maximum: number };
  orgName?: string;
  orgType?: 'org' | 'edu';
  /** Log each DEP request to the console. */
  logger?: boolean;
  /** Send error codes in double quotes, as Apple's depsim does (`"INVALID_CURSOR"`); default plain. */
  quotedErrors?: boolean;
}

export interface AbmSimulator {
  /** http://127.0.0.1:<port>, the base URL of the DEP API (the control surface is under /_sim/). */
  url: string;
  close(): Promise<void>;
  createMdmServer(name: string): { serverUuid: string };
  uploadPublicKey(serverUuid: string, certPem: string): void;
  downloadServerToken(serverUuid: string, opts?: { expiresAt?: Date }): string;
  addDevices(devices: Array<Partial<DepDevice> & { serial_number: string }>, opts?: { orderNumber?: string }): void;
  generateDevices(count: number, opts?: { prefix?: string; orderNumber?: string; serverUuid?: string }): string[];
  assignDevicesToServer(serverUuid: string, by: { serials?: string[]; orderNumber?: string; csv?: string }): string[];
  unassignDevices(serials: string[]): void;
  releaseDevices(serials: string[]): void;
  device(serial: string): (DepDevice & { serverUuid: string | null }) | undefined;
  profile(profileUuid: string): DepProfile | undefined;
  setTermsSigned(signed: boolean): void;
  injectFault(f: Fault): void;
  /** Remove every pending fault. */
  clearFaults(): void;
  expireSessions(): void;
  expireCursors(): void;
  /** The device fetched its profile in Setup Assistant: profile_status "pushed" and a modified op. */
  pushProfile(serial: string): void;
  /** Profile assignment answers FAILED or THROTTLED for these devices until set back to null. */
  setAssignmentOutcome(serials: string[], outcome: AssignmentOutcome | null, retryAfterSeconds?: number): void;
  /** Every DEP request answered (or hanging), in the order they ended. */
  readonly requests: RequestRecord[];
}

const systemClock: Clock = { now: () => new Date() };

export async function startAbmSimulator(opts: AbmSimulatorOptions = {}): Promise<AbmSimulator> {
  const clock = opts.clock ?? systemClock;
  const limits = opts.limits ?? { default: 100, maximum: 1000 };
  if (!(Number.isSafeInteger(limits.default) && Number.isSafeInteger(limits.maximum) && limits.default >= 1 && limits.default <= limits.maximum)) {
    throw new Error('limits need 1 <= default <= maximum');
  }
  const model = new AbmModel({
    clock,
    sessionTtlMs: opts.sessionTtlMs ?? 30 * 60_000,
    cursorTtlMs: opts.cursorTtlMs ?? 7 * 86_400_000,
    limits,
    orgName: opts.orgName ?? 'Simulated Organisation',
    orgType: opts.orgType ?? 'org',
  });
  const ctx: HttpContext = {
    model,
    clock,
    faults: [],
    requests: [],
    quotedErrors: opts.quotedErrors ?? false,
    logger: opts.logger ?? false,
    timers: new Set(),
    hanging: new Set<ServerResponse>(),
  };

  const server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://sim.invalid');
    } catch {
      res.writeHead(400).end();
      return;
    }
    const isControl = url.pathname === '/_sim' || url.pathname.startsWith('/_sim/');
    (isControl ? handleControl(ctx, req, res, url) : handleDep(ctx, req, res, url)).catch((err: unknown) => {
      if (opts.logger) console.error('[abm-sim] internal error', err);
      if (!res.headersSent && !res.destroyed) res.writeHead(500, { 'Content-Type': 'text/plain;charset=UTF-8' }).end('INTERNAL_SERVER_ERROR');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host && !['0.0.0.0', '::', '127.0.0.1'].includes(opts.host) ? opts.host : '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closed: Promise<void> | undefined;
  return {
    url,
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const t of ctx.timers) clearTimeout(t);
        ctx.timers.clear();
        for (const res of ctx.hanging) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
    createMdmServer: (name) => model.createMdmServer(name),
    uploadPublicKey: (uuid, pem) => model.uploadPublicKey(uuid, pem),
    downloadServerToken: (uuid, o) => model.downloadServerToken(uuid, o),
    addDevices: (devices, o) => model.addDevices(devices, o),
    generateDevices: (count, o) => model.generateDevices(count, o),
    assignDevicesToServer: (uuid, by) => model.assignDevicesToServer(uuid, by),
    unassignDevices: (serials) => model.unassignDevices(serials),
    releaseDevices: (serials) => model.releaseDevices(serials),
    device: (serial) => model.device(serial),
    profile: (uuid) => model.profile(uuid),
    setTermsSigned: (signed) => {
      model.termsSigned = signed;
    },
    injectFault: (f) => {
      ctx.faults.push(validateFault(f as unknown as Record<string, unknown>));
    },
    clearFaults: () => {
      ctx.faults.length = 0;
    },
    expireSessions: () => model.expireSessions(),
    expireCursors: () => model.expireCursors(),
    pushProfile: (serial) => model.pushProfile(serial),
    setAssignmentOutcome: (serials, outcome, retry) => model.setAssignmentOutcome(serials, outcome, retry),
    get requests() {
      return ctx.requests;
    },
  };
}
