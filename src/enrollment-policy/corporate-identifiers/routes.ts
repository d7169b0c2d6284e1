import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { countResponse, listCollection } from '../../graph/collection.js';
import { graphErrorHandler } from '../../graph/error-handler.js';
import { actorOf, contextUrl, requireCsvBody, sendEntity } from '../../graph/http.js';
import type { EntityModel } from '../../graph/odata/model.js';
import { GraphBody, IdParam, Nullable, ODataQueryString, ODataType } from '../../graph/schemas.js';
import { CORPORATE_IDENTIFIER_LIMITS as LIMITS, ENROLLMENT_STATES, IDENTITY_PLATFORMS, IDENTITY_TYPES, type IdentityType } from './rules.js';
import {
  IMPORTED_DEVICE_IDENTITY_RESULT_TYPE,
  IMPORTED_DEVICE_IDENTITY_TYPE,
  toImportedDeviceIdentity,
  type CorporateIdentifierService,
  type IdentityInput,
  type ImportOutcome,
} from './service.js';

export const importedDeviceIdentityModel: EntityModel = {
  typeName: IMPORTED_DEVICE_IDENTITY_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id', filterOps: ['eq', 'ne'] },
    importedDeviceIdentifier: { type: 'string', column: 'identifier', caseInsensitive: true },
    importedDeviceIdentityType: { type: 'enum', column: 'identity_type', enumValues: IDENTITY_TYPES },
    lastModifiedDateTime: { type: 'datetime', column: 'updated_at' },
    createdDateTime: { type: 'datetime', column: 'created_at' },
    lastContactedDateTime: { type: 'datetime', column: 'last_contacted_at' },
    description: { type: 'string', column: 'description', caseInsensitive: true },
    enrollmentState: { type: 'enum', column: 'enrollment_state', enumValues: ENROLLMENT_STATES },
    platform: { type: 'enum', column: 'platform', enumValues: IDENTITY_PLATFORMS },
  },
};

const IdentityType = Type.Enum([...IDENTITY_TYPES]);
const Platform = Type.Enum([...IDENTITY_PLATFORMS]);
// Clients send back what they read: read-only properties are accepted and ignored.
const readOnly = {
  id: Type.Optional(Type.String()),
  enrollmentState: Type.Optional(Type.String()),
  lastContactedDateTime: Type.Optional(Type.String()),
  createdDateTime: Type.Optional(Type.String()),
  lastModifiedDateTime: Type.Optional(Type.String()),
};
// Lengths are checked by the rules, whose messages name the limit (details: 128 characters).
const identityProperties = {
  importedDeviceIdentifier: Type.String({ minLength: 1, maxLength: 1024 }),
  importedDeviceIdentityType: IdentityType,
  description: Type.Optional(Nullable(Type.String({ maxLength: 4096 }))),
  platform: Type.Optional(Platform),
  ...readOnly,
};
const CreateBody = GraphBody(identityProperties);
const PatchBody = GraphBody({
  ...identityProperties,
  importedDeviceIdentifier: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  importedDeviceIdentityType: Type.Optional(IdentityType),
});
const ImportListBody = GraphBody({
  importedDeviceIdentities: Type.Array(Type.Object({ ...identityProperties, '@odata.type': ODataType }, { additionalProperties: false }), { maxItems: LIMITS.maxRows }),
  overwriteImportedDeviceIdentities: Type.Optional(Type.Boolean()),
});
const SearchBody = GraphBody({
  importedDeviceIdentities: Type.Array(
    Type.Object(
      {
        ...identityProperties,
        importedDeviceIdentityType: Type.Optional(Type.Enum([...IDENTITY_TYPES, 'unknown'])),
        '@odata.type': ODataType,
      },
      { additionalProperties: false },
    ),
    { maxItems: LIMITS.maxRows },
  ),
});
const CsvQuery = Type.Object(
  {
    type: Type.Enum([...IDENTITY_TYPES], { description: 'The one identifier type of every row in the file.' }),
    overwrite: Type.Optional(Type.Enum(['true', 'false'], { description: 'Replace the details of identifiers already imported (default false).' })),
  },
  { additionalProperties: true },
);

const BASE = 'deviceManagement/importedDeviceIdentities';
const tags = ['importedDeviceIdentities'];
const read = { permission: 'enrollment.read' as const };
const write = { permission: 'enrollment.write' as const };

/** importedDeviceIdentityResult: the identity (as stored, or as given when it failed) and status. */
function resultEntity(input: IdentityInput, o: ImportOutcome): Record<string, unknown> {
  const identity = o.identity ?? {
    id: null,
    importedDeviceIdentifier: input.importedDeviceIdentifier,
    importedDeviceIdentityType: input.importedDeviceIdentityType,
    lastModifiedDateTime: null,
    createdDateTime: null,
    lastContactedDateTime: null,
    description: input.description ?? null,
    enrollmentState: 'unknown',
    platform: input.platform ?? 'unknown',
  };
  const status = o.status === 'created' || o.status === 'overwritten' || o.status === 'unchanged';
  return {
    '@odata.type': `#${IMPORTED_DEVICE_IDENTITY_RESULT_TYPE}`,
    ...identity,
    status,
    // An OData property annotation: Graph clients ignore it, people reading the answer learn why.
    ...(o.error ? { 'status@openEnroll.message': o.error } : {}),
  };
}

export function corporateIdentifierRoutes(service: CorporateIdentifierService): FastifyPluginAsync {
  return async (app) => {
    app.get(`/${BASE}`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) =>
      listCollection(req, {
        model: importedDeviceIdentityModel,
        base: service.base(actorOf(req)),
        toEntity: (rows) => rows.map((r) => ({ '@odata.type': `#${IMPORTED_DEVICE_IDENTITY_TYPE}`, ...toImportedDeviceIdentity(r) })),
        contextFragment: BASE,
      }),
    );
    app.get(`/${BASE}/$count`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, importedDeviceIdentityModel, service.base(actorOf(req)))),
    );
    app.get(`/${BASE}/:id`, { schema: { tags, params: IdParam }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, BASE, IMPORTED_DEVICE_IDENTITY_TYPE, { ...(await service.get(actorOf(req), id)) });
    });
    app.post(`/${BASE}`, { schema: { tags, body: CreateBody }, config: write }, async (req, reply) => {
      const body = req.body as IdentityInput;
      return sendEntity(reply, req, BASE, IMPORTED_DEVICE_IDENTITY_TYPE, { ...(await service.create(actorOf(req), body)) }, 201);
    });
    app.patch(`/${BASE}/:id`, { schema: { tags, params: IdParam, body: PatchBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const body = req.body as Partial<IdentityInput>;
      const patch = {
        ...(body.description !== undefined ? { description: body.description } : {}),
        ...(body.platform !== undefined ? { platform: body.platform } : {}),
        ...(body.importedDeviceIdentifier !== undefined ? { importedDeviceIdentifier: body.importedDeviceIdentifier } : {}),
        ...(body.importedDeviceIdentityType !== undefined ? { importedDeviceIdentityType: body.importedDeviceIdentityType } : {}),
      };
      return sendEntity(reply, req, BASE, IMPORTED_DEVICE_IDENTITY_TYPE, { ...(await service.update(actorOf(req), id, patch)) });
    });
    app.delete(`/${BASE}/:id`, { schema: { tags, params: IdParam }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await service.delete(actorOf(req), id);
      return reply.code(204).send();
    });
    app.post(
      `/${BASE}/searchExistingIdentities`,
      { schema: { tags, body: SearchBody, description: 'The stored identifiers among those given (compared as normalised: IMEIs by their first 14 digits, serials without case).' }, config: read },
      async (req) => {
        const body = req.body as { importedDeviceIdentities: { importedDeviceIdentifier: string; importedDeviceIdentityType?: IdentityType | 'unknown' }[] };
        const found = await service.searchExisting(actorOf(req), body.importedDeviceIdentities);
        return { '@odata.context': contextUrl(req, `Collection(${IMPORTED_DEVICE_IDENTITY_TYPE})`), value: found.map((f) => ({ '@odata.type': `#${IMPORTED_DEVICE_IDENTITY_TYPE}`, ...f })) };
      },
    );

    // Bulk imports get their own scope: a 5 MiB body limit, and only here is text/csv parsed.
    await app.register(async (bulk) => {
      bulk.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: LIMITS.maxBytes }, (_req, body, done) => done(null, body));
      bulk.setErrorHandler(graphErrorHandler(LIMITS.maxBytes));
      bulk.post(
        `/${BASE}/importDeviceIdentityList`,
        {
          bodyLimit: LIMITS.maxBytes,
          schema: {
            tags,
            body: ImportListBody,
            description:
              'Imports up to 5,000 identifiers; one importedDeviceIdentityResult per item, in order (status false: not imported, see the status@openEnroll.message annotation). ' +
              'An identifier already imported with other details keeps them unless overwriteImportedDeviceIdentities is true.',
          },
          config: write,
        },
        async (req) => {
          const body = req.body as { importedDeviceIdentities: IdentityInput[]; overwriteImportedDeviceIdentities?: boolean };
          const outcomes = await service.importList(actorOf(req), body.importedDeviceIdentities, body.overwriteImportedDeviceIdentities ?? false);
          return {
            '@odata.context': contextUrl(req, `Collection(${IMPORTED_DEVICE_IDENTITY_RESULT_TYPE})`),
            value: outcomes.map((o, i) => resultEntity(body.importedDeviceIdentities[i]!, o)),
          };
        },
      );
      bulk.post(
        `/${BASE}/importCsv`,
        {
          preValidation: requireCsvBody,
          schema: {
            tags,
            consumes: ['text/csv'],
            querystring: CsvQuery,
            body: Type.String({ description: 'The CSV file: no header; identifier,details per row.' }),
            description:
              "OpenEnroll extension: the admin centre's 'Upload CSV file' (Content-Type: text/csv). No header row; one identifier type per file (?type=); " +
              'each row is identifier,details, or manufacturer,model,serial,details for manufacturerModelSerial. At most 5,000 rows (more: 400) and 5 MiB (more: 413); ' +
              'details at most 128 characters; a serial number containing a period refuses the whole file. ' +
              'Answers one result per row: created, overwritten, unchanged, duplicate (already imported with other details; kept unless ?overwrite=true) or failed.',
          },
          config: write,
        },
        async (req) => {
          const q = req.query as { type: IdentityType; overwrite?: 'true' | 'false' };
          const value = await service.importCsv(actorOf(req), req.body as string, q.type, q.overwrite === 'true');
          return { '@odata.context': contextUrl(req, 'Collection(microsoft.graph.openEnrollImportedDeviceIdentityCsvResult)'), value };
        },
      );
    });
  };
}
