import type { FastifyPluginAsync } from 'fastify';
import { GraphError } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import type { Store } from '../../store/db.js';
import { appleDevicePaths } from '../device-urls.js';
import { handleMachineInfoPost, type MachineInfoEnrollment } from './machine-info-post.js';
import type { ConfiguratorDeviceContext, ConfiguratorEnrollmentService } from './configurator-enrollment.js';
import { MACHINE_INFO_LIMITS, type MachineInfoAnchors } from './machine-info.js';
import type { SignInThrottle } from './web-signin.js';

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

export function configuratorDeviceRoutes(deps: ConfiguratorDeviceRoutesDeps): FastifyPluginAsync {
  const { service } = deps;
  const notFound = () => new GraphError(404, 'ResourceNotFound', 'This enrollment URL does not exist.');

  const machineInfoEnrollment: MachineInfoEnrollment<ConfiguratorDeviceContext> = {
    resolve: (tenantId, profileId, machine) => service.resolve(tenantId, profileId, machine),
    needsUser: (ctx) => service.needsUser(ctx),
    enroll: (ctx, user) => service.enroll(ctx, user),
    displayName: (ctx) => ctx.profile.display_name,
  };

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
      return handleMachineInfoPost(req, reply, machineInfoEnrollment, deps);
    });
  };
}
