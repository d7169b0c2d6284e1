import type { FastifyReply, FastifyRequest } from 'fastify';
import type { VerifiedUser } from '../../directory/passwords.js';
import type { GateDecision } from '../../enrollment-policy/gate/gate.js';
import { GraphError } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import type { Store } from '../../store/db.js';
import { AdeRefusal, refusalOf } from './ade-enrollment.js';
import { MachineInfoError, verifyMachineInfo, type MachineInfo, type MachineInfoAnchors } from './machine-info.js';
import { PASSWORD_MAX, SIGN_IN_LOCKED, signInWithPassword, USER_NAME_MAX, type SignInThrottle } from './web-signin.js';

/**
 * The POST a device makes from Setup Assistant with its CMS-signed MachineInfo, shared by the ADE
 * profile `url` and the Apple Configurator profile URL: verify, resolve the device, ask for the
 * user with HTTP Basic when the profile needs one, enroll, answer with the signed profile.
 */

export const ASPEN_CONFIG = 'application/x-apple-aspen-config';

/** What a front door's service offers this handler. */
export interface MachineInfoEnrollment<Ctx> {
  resolve(tenantId: string, urlProfileId: string, machine: MachineInfo): Promise<Ctx>;
  needsUser(ctx: Ctx): boolean;
  enroll(ctx: Ctx, user: VerifiedUser | null): Promise<{ kind: 'profile'; signedProfile: Buffer } | { kind: 'refused'; decision: GateDecision }>;
  /** The name Setup Assistant shows in its sign-in prompt. */
  displayName(ctx: Ctx): string;
}

export interface MachineInfoPostDeps {
  anchors: MachineInfoAnchors;
  store: Store;
  clock: Clock;
  throttle: SignInThrottle;
}

export function machineInfoError(err: MachineInfoError): GraphError {
  switch (err.code) {
    case 'tooLarge':
      return new GraphError(413, 'RequestEntityTooLarge', err.message);
    case 'badSignature':
    case 'untrusted':
      return new GraphError(403, 'MachineInfoUntrusted', err.message);
    case 'unsupportedProduct':
      return new GraphError(403, 'UnsupportedDevice', err.message);
    default:
      return new GraphError(400, 'MachineInfoInvalid', err.message);
  }
}

/** HTTP Basic credentials, or undefined when absent, malformed or longer than any we accept. */
export function parseBasicCredentials(header: string | undefined): { userName: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header ?? '');
  // Base64 of the longest user name and password we accept (UTF-8, up to 4 bytes a character).
  if (!m || m[1]!.length > Math.ceil(((USER_NAME_MAX + PASSWORD_MAX) * 4 + 1) / 3) * 4) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { userName: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** A realm Setup Assistant can show: printable ASCII without quotes. */
export const realmOf = (displayName: string) => displayName.replace(/[^\x20-\x7E]|["\\]/g, '').trim() || 'Device enrollment';

export function sendProfile(reply: FastifyReply, signedProfile: Buffer): FastifyReply {
  return reply.code(200).header('content-type', ASPEN_CONFIG).header('cache-control', 'no-store').send(signedProfile);
}

/** Verified MachineInfo of a request body, or the Graph error for it. */
export function machineInfoOf(body: unknown, anchors: MachineInfoAnchors): MachineInfo {
  if (!Buffer.isBuffer(body)) throw new GraphError(415, 'UnsupportedMediaType', 'Send the CMS-signed MachineInfo as application/pkcs7-signature.');
  try {
    return verifyMachineInfo(body, anchors).info;
  } catch (err) {
    if (err instanceof MachineInfoError) throw machineInfoError(err);
    throw err;
  }
}

export async function handleMachineInfoPost<Ctx>(
  req: FastifyRequest<{ Params: { tenantId: string; profileId: string } }>,
  reply: FastifyReply,
  service: MachineInfoEnrollment<Ctx>,
  deps: MachineInfoPostDeps,
): Promise<FastifyReply> {
  const { tenantId, profileId } = req.params;
  const machine = machineInfoOf(req.body, deps.anchors);
  let ctx: Ctx;
  try {
    ctx = await service.resolve(tenantId, profileId, machine);
  } catch (err) {
    if (err instanceof AdeRefusal) throw err.toGraphError();
    throw err;
  }
  let user: VerifiedUser | null = null;
  if (service.needsUser(ctx)) {
    // Setup Assistant (legacy) prompts for the user's credentials on this 401 and sends them back.
    // A modern-authentication profile gets the same here: a device only POSTs when it can't use the web page.
    const challenge = () =>
      reply
        .code(401)
        .header('www-authenticate', `Basic realm="${realmOf(service.displayName(ctx))}", charset="UTF-8"`)
        .send({ error: { code: 'Unauthorized', message: 'Sign in with your work or school account to enroll this device.' } });
    const creds = parseBasicCredentials(req.headers.authorization);
    if (!creds) return challenge();
    const signIn = await signInWithPassword({ store: deps.store, throttle: deps.throttle, clock: deps.clock }, tenantId, { ...creds, address: req.ip, deviceSerial: machine.serialNumber });
    if (!signIn.ok && signIn.reason === 'locked') throw new GraphError(429, 'TooManyRequests', SIGN_IN_LOCKED, { retryAfterSeconds: signIn.retryAfterSeconds });
    if (!signIn.ok) return challenge();
    user = signIn.user;
  }
  const result = await service.enroll(ctx, user);
  if (result.kind === 'refused') throw refusalOf(result.decision).toGraphError();
  return sendProfile(reply, result.signedProfile);
}
