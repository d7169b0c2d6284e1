import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { applySelect } from '../../graph/collection.js';
import { actorOf, entityBody, primitiveBody } from '../../graph/http.js';
import type { EntityModel } from '../../graph/odata/model.js';
import { parseQueryOptions } from '../../graph/odata/query-options.js';
import { GraphBody, Nullable, ODataQueryString } from '../../graph/schemas.js';
import { PUSH_CERTIFICATE_TYPE, type PushCertificateService } from './service.js';

const PATH = '/deviceManagement/applePushNotificationCertificate';
const CONTEXT = 'deviceManagement/applePushNotificationCertificate';
const tags = ['applePushNotificationCertificate'];
const read = { permission: 'enrollment.read' as const };
// Tenant-wide: a scoped administrator mustn't replace or delete what every Apple device depends on.
const write = { permission: 'enrollment.write' as const, requireUnscoped: true };

/** For $select on the singleton. */
export const pushCertificateModel: EntityModel = {
  typeName: PUSH_CERTIFICATE_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string' },
    appleIdentifier: { type: 'string' },
    topicIdentifier: { type: 'string' },
    lastModifiedDateTime: { type: 'datetime' },
    expirationDateTime: { type: 'datetime' },
    certificateUploadStatus: { type: 'string' },
    certificateUploadFailureReason: { type: 'string' },
    certificateSerialNumber: { type: 'string' },
    certificate: { type: 'string' },
    status: { type: 'string' },
    daysUntilExpiration: { type: 'int' },
    gracePeriodEndDateTime: { type: 'datetime' },
    subjectId: { type: 'string' },
  },
};

const PatchBody = GraphBody({
  appleIdentifier: Type.String({ minLength: 1, maxLength: 256 }),
  // Clients echo the entity's null back; a PEM certificate with its chain stays well under 64 KiB.
  certificate: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 65_536 }))),
});

export function pushCertificateRoutes(service: PushCertificateService): FastifyPluginAsync {
  return async (app) => {
    app.get(PATH, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) => {
      const { select } = parseQueryOptions(pushCertificateModel, req.query as Record<string, unknown>);
      const entity = await service.get(actorOf(req));
      return entityBody(req, select ? `${CONTEXT}(${select.join(',')})` : CONTEXT, PUSH_CERTIFICATE_TYPE, applySelect({ ...entity }, select));
    });

    app.patch(PATH, { schema: { tags, body: PatchBody }, config: write }, async (req) => {
      const body = req.body as { appleIdentifier: string; certificate?: string | null };
      return entityBody(req, CONTEXT, PUSH_CERTIFICATE_TYPE, { ...(await service.upload(actorOf(req), body)) });
    });

    app.delete(PATH, { schema: { tags }, config: write }, async (req, reply) => {
      await service.delete(actorOf(req));
      return reply.code(204).send();
    });

    app.post(`${PATH}/generateApplePushNotificationCertificateSigningRequest`, { schema: { tags }, config: write }, async (req) =>
      primitiveBody(req, 'Edm.String', await service.generateSigningRequest(actorOf(req))),
    );

    app.get(`${PATH}/downloadApplePushNotificationCertificateSigningRequest`, { schema: { tags }, config: read }, async (req) =>
      primitiveBody(req, 'Edm.String', await service.downloadSigningRequest(actorOf(req))),
    );
  };
}
