import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { VerifiedUser } from '../../directory/passwords.js';
import { GraphError } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import type { Store } from '../../store/db.js';
import { appleDevicePaths } from '../device-urls.js';
import { AdeRefusal, refusalOf } from './ade-enrollment.js';
import { ASPEN_CONFIG, parseBasicCredentials } from './ade-routes.js';
import type { ConfiguratorDeviceContext, ConfiguratorEnrollmentService } from './configurator-enrollment.js';
import { MACHINE_INFO_LIMITS, MachineInfoError, verifyMachineInfo, type MachineInfo, type MachineInfoAnchors } from './machine-info.js';
import { SIGN_IN_LOCKED, signInWithPassword, type SignInThrottle } from './web-signin.js';

/**
 * The Apple Configurator profile URL `{configurator(profileId)}` (-D §9.3, §9.4):
 *   GET   Configurator's MDMServiceConfig lookup when the admin adds the server (the "enrollment
 *         URL"): where devices enroll (this URL) and the anchors that URL needs (none: its TLS
 *         certificate is publicly trusted);
 *   GET   …/anchor-certs, the dep_anchor_certs_url of that answer;
 *   POST  what a prepared device sends from Setup Assistant (User-Agent CloudConfiguration/1.0):
 *         its CMS-signed MachineInfo, answered with the signed profile, as ADE's profile `url`.
 */

export interface ConfiguratorDeviceRoutesDeps {
  service: ConfiguratorEnrollmentService;
  anchors: MachineInfoAnchors;
  store: Store;
  clock: Clock;
  throttle: SignInThrottle;
  publicUrl: string | undefined;
}

const ID = /^[A-Za-z0-9._~-]{1,128}$/;
interface Params {
  tenantId: string;
  profileId: string;
}

function machineInfoError(err: MachineInfoError): GraphError {
  switch (err.code) {
    case 'tooLarge':
      return new GraphError(413, 'RequestEntityTooLarge', err.message);
    case 'badSignature':
    case 'untrusted':
    case 'unsupportedProduct':
      return new GraphError(403, err.code === 'unsupportedProduct' ? 'UnsupportedDevice' : 'MachineInfoUntrusted', err.message);
    default:
      return new GraphError(400, 'MachineInfoInvalid', err.message);
  }
}

/** A realm Setup Assistant can show: the profile's name, printable ASCII without quotes. */
const realmOf = (ctx: ConfiguratorDeviceContext) => ctx.profile.display_name.replace(/[^\x20-\x7E]|["\\]/g, '').trim() || 'Device enrollment';

export function configuratorDeviceRoutes(deps: ConfiguratorDeviceRoutesDeps): FastifyPluginAsync {
  const { service, store, throttle, clock } = deps;
  const notFound = () => new GraphError(404, 'ResourceNotFound', 'This enrollment URL does not exist.');

  return async (app) => {
    // Devices send the signed MachineInfo as application/pkcs7-signature; nothing bigger than the limit is read.
    app.addContentTypeParser(['application/pkcs7-signature', 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: MACHINE_INFO_LIMITS.signedBytes }, (_req, body, done) => done(null, body));

    const PROFILE_URL = '/enroll/apple/configurator/:tenantId/:profileId';

    app.get<{ Params: Params }>(PROFILE_URL, async (req, reply) => {
      const p = req.params;
      if (!ID.test(p.tenantId) || !ID.test(p.profileId) || !(await service.urlProfile(p.tenantId, p.profileId))) throw notFound();
      const url = `${deps.publicUrl ?? `${req.protocol}://${req.host}`}${appleDevicePaths(p.tenantId).configurator(p.profileId)}`;
      return reply.type('application/json; charset=UTF-8').header('cache-control', 'no-store').send({ dep_enrollment_url: url, dep_anchor_certs_url: `${url}/anchor-certs` });
    });

    app.get<{ Params: Params }>(`${PROFILE_URL}/anchor-certs`, async (req, reply) => {
      const p = req.params;
      if (!ID.test(p.tenantId) || !ID.test(p.profileId) || !(await service.urlProfile(p.tenantId, p.profileId))) throw notFound();
      return reply.type('application/json; charset=UTF-8').header('cache-control', 'no-store').send('[]');
    });

    app.post<{ Params: Params }>(PROFILE_URL, async (req, reply) => {
      const p = req.params;
      if (!ID.test(p.tenantId) || !ID.test(p.profileId)) throw notFound();
      if (!Buffer.isBuffer(req.body)) throw new GraphError(415, 'UnsupportedMediaType', 'Send the CMS-signed MachineInfo as application/pkcs7-signature.');
      let machine: MachineInfo;
      try {
        machine = verifyMachineInfo(req.body, deps.anchors).info;
      } catch (err) {
        if (err instanceof MachineInfoError) throw machineInfoError(err);
        throw err;
      }
      let ctx: ConfiguratorDeviceContext;
      try {
        ctx = await service.resolve(p.tenantId, p.profileId, machine);
      } catch (err) {
        if (err instanceof AdeRefusal) throw err.toGraphError();
        throw err;
      }
      let user: VerifiedUser | null = null;
      if (service.needsUser(ctx)) {
        // Setup Assistant prompts for the user's credentials on this 401 and sends them back.
        const challenge = () =>
          reply
            .code(401)
            .header('www-authenticate', `Basic realm="${realmOf(ctx)}", charset="UTF-8"`)
            .send({ error: { code: 'Unauthorized', message: 'Sign in with your work or school account to enroll this device.' } });
        const creds = parseBasicCredentials(req.headers.authorization);
        if (!creds) return challenge();
        const signIn = await signInWithPassword({ store, throttle, clock }, p.tenantId, { ...creds, address: req.ip, deviceSerial: machine.serialNumber });
        if (!signIn.ok && signIn.reason === 'locked') throw new GraphError(429, 'TooManyRequests', SIGN_IN_LOCKED, { retryAfterSeconds: signIn.retryAfterSeconds });
        if (!signIn.ok) return challenge();
        user = signIn.user;
      }
      const result = await service.enroll(ctx, user);
      if (result.kind === 'refused') throw refusalOf(result.decision).toGraphError();
      return sendProfile(reply, result.signedProfile);
    });
  };
}

function sendProfile(reply: FastifyReply, signedProfile: Buffer): FastifyReply {
  return reply.code(200).header('content-type', ASPEN_CONFIG).header('cache-control', 'no-store').send(signedProfile);
}
