import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { graphErrorHandler } from '../graph/error-handler.js';
import { actorOf, contextUrl, requireCsvBody, sendEntity, type ApiVersion } from '../graph/http.js';
import { countResponse, listCollection } from '../graph/collection.js';
import { GraphBody, IdParam, Nullable, ODataQueryString } from '../graph/schemas.js';
import { USER_LIMITS, USER_TYPES, type UserFields } from './directory-rules.js';
import { CSV_LIMITS } from './csv-users.js';
import type { UserCsvImport } from './csv-import.js';
import { GROUP_TYPE, groupModel, toGroup, toUser, USER_TYPE, userModel } from './entities.js';
import type { CreateUserInput, UserService } from './users-service.js';

const text = (max: number, min = 0) => Type.String({ minLength: min, maxLength: max });
const optionalText = (max: number) => Type.Optional(Nullable(text(max)));

const PasswordProfile = Type.Object(
  {
    password: text(USER_LIMITS.passwordMax, 1),
    forceChangePasswordNextSignIn: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, description: 'Write-only: never returned.' },
);

function userProperties(version: ApiVersion) {
  return {
    userPrincipalName: Type.Optional(text(USER_LIMITS.userPrincipalName, 1)),
    displayName: Type.Optional(text(USER_LIMITS.displayName, 1)),
    givenName: optionalText(USER_LIMITS.givenName),
    surname: optionalText(USER_LIMITS.surname),
    mail: optionalText(USER_LIMITS.mail),
    mailNickname: Type.Optional(text(USER_LIMITS.mailNickname, 1)),
    accountEnabled: Type.Optional(Type.Boolean()),
    jobTitle: optionalText(USER_LIMITS.jobTitle),
    department: optionalText(USER_LIMITS.department),
    officeLocation: optionalText(USER_LIMITS.officeLocation),
    mobilePhone: optionalText(USER_LIMITS.mobilePhone),
    usageLocation: optionalText(2),
    userType: Type.Optional(Type.Enum([...USER_TYPES])),
    employeeId: optionalText(USER_LIMITS.employeeId),
    passwordProfile: Type.Optional(PasswordProfile),
    ...(version === 'beta'
      ? {
          deviceEnrollmentLimit: Type.Optional(
            Nullable(Type.Integer({ minimum: USER_LIMITS.deviceEnrollmentLimitMin, maximum: USER_LIMITS.deviceEnrollmentLimitMax })),
          ),
        }
      : {}),
  };
}

function createBody(version: ApiVersion) {
  const p = userProperties(version);
  return GraphBody({ ...p, userPrincipalName: text(USER_LIMITS.userPrincipalName, 1), displayName: text(USER_LIMITS.displayName, 1) });
}

// Clients often send back what they read; read-only properties are accepted and ignored.
const patchBody = (version: ApiVersion) =>
  GraphBody({ ...userProperties(version), id: Type.Optional(Type.String()), createdDateTime: Type.Optional(Type.String()) });

const IMPORT_RESULT_TYPE = 'Collection(microsoft.graph.openEnrollUserImportResult)';
const tags = ['users'];
const read = { permission: 'directory.read' as const };
const write = { permission: 'directory.write' as const };

export function userRoutes(users: UserService, csvImport: UserCsvImport, version: ApiVersion): FastifyPluginAsync {
  const model = userModel(version);
  const CreateBody = createBody(version);
  const PatchBody = patchBody(version);
  return async (app) => {
    app.get('/users', { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) =>
      listCollection(req, {
        model,
        base: users.base(actorOf(req)),
        toEntity: (rows) => rows.map((r) => ({ '@odata.type': `#${USER_TYPE}`, ...toUser(r, version) })),
        contextFragment: 'users',
      }),
    );
    app.get('/users/$count', { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, model, users.base(actorOf(req)))),
    );
    app.get('/users/:id', { schema: { tags, params: IdParam, description: 'By id or by userPrincipalName.' }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, 'users', USER_TYPE, await users.get(actorOf(req), id, version));
    });
    app.get('/users/:id/memberOf', { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const actor = actorOf(req);
      const user = await users.getRow(actor, id);
      return listCollection(req, {
        model: groupModel,
        base: users.memberOfBase(actor, user.id),
        toEntity: (rows) => rows.map((r) => ({ '@odata.type': `#${GROUP_TYPE}`, ...toGroup(r) })),
        contextFragment: 'directoryObjects',
      });
    });
    app.post('/users', { schema: { tags, body: CreateBody }, config: write }, async (req, reply) =>
      sendEntity(reply, req, 'users', USER_TYPE, await users.create(actorOf(req), req.body as CreateUserInput, version), 201),
    );
    app.patch('/users/:id', { schema: { tags, params: IdParam, body: PatchBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { id: _id, createdDateTime: _created, ...patch } = req.body as UserFields & { id?: string; createdDateTime?: string };
      return sendEntity(reply, req, 'users', USER_TYPE, await users.update(actorOf(req), id, patch, version));
    });
    app.delete('/users/:id', { schema: { tags, params: IdParam }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await users.delete(actorOf(req), id);
      return reply.code(204).send();
    });

    // The CSV import gets its own scope: only here is text/csv parsed, with a larger body limit.
    await app.register(async (csv) => {
      csv.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: CSV_LIMITS.maxBytes }, (_req, body, done) => done(null, body));
      csv.setErrorHandler(graphErrorHandler(CSV_LIMITS.maxBytes));
      csv.post(
        '/users/importCsv',
        {
          schema: {
            tags,
            consumes: ['text/csv'],
            description:
              'OpenEnroll extension: creates users from a CSV file (Content-Type: text/csv, at most 5 MiB and 50,000 rows). ' +
              "Accepts Entra's bulk-create template (optional 'version:v1.0' line, headers like 'User name [userPrincipalName] Required') " +
              'or plain property-name headers. Each row is checked on its own and the valid rows are created in one transaction; the result lists every row.',
          },
          config: write,
        },
        async (req) => {
          await requireCsvBody(req);
          const value = await csvImport.run(actorOf(req), req.body as string);
          return { '@odata.context': contextUrl(req, IMPORT_RESULT_TYPE), value };
        },
      );
    });
  };
}
