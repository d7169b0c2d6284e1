import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { decodeBase64 } from '../../pki/pem.js';
import { MAX_PKI_MESSAGE_BYTES, type ScepAnswer, type ScepService } from './service.js';

/**
 * The device-facing SCEP endpoint: /scep/{tenantId} (and …/pkiclient.exe, which many clients
 * append), GET and POST, `operation=` GetCACert | GetCACaps | PKIOperation. Devices authenticate
 * through the challenge and signatures inside the pkiMessage, not HTTP.
 */

const OPERATIONS = new Set(['GetCACert', 'GetCACaps', 'PKIOperation']);
/** Base64 of the largest accepted message, for GET PKIOperation. */
const MAX_MESSAGE_PARAM = Math.ceil(MAX_PKI_MESSAGE_BYTES / 3) * 4 + 4;

interface ScepQuery {
  operation?: unknown;
  message?: unknown;
}

function send(reply: FastifyReply, answer: ScepAnswer): FastifyReply {
  return reply.code(answer.status).header('content-type', answer.contentType).header('cache-control', 'no-store').send(answer.body);
}

const plain = (reply: FastifyReply, status: number, body: string) => send(reply, { status, contentType: 'text/plain; charset=utf-8', body: `${body}\n` });

export function scepRoutes(service: ScepService): FastifyPluginAsync {
  return async (app) => {
    // pkiMessages are binary, whatever the client labels them (application/x-pki-message, octet-stream, none).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_PKI_MESSAGE_BYTES }, (_req, body, done) => done(null, body));

    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
      const tenantId = (req.params as { tenantId?: string } | undefined)?.tenantId ?? '?';
      if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        service.refused(tenantId, { requestId: req.id }, { operation: 'PKIOperation' }, `body larger than ${MAX_PKI_MESSAGE_BYTES} bytes`);
        return plain(reply, 413, `The pkiMessage is larger than ${MAX_PKI_MESSAGE_BYTES} bytes.`);
      }
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
        service.refused(tenantId, { requestId: req.id }, {}, `HTTP ${err.statusCode}: ${err.code ?? 'client error'}`);
        return plain(reply, err.statusCode, 'The request is malformed.');
      }
      req.log.error({ err }, 'SCEP request failed');
      return plain(reply, 500, 'Internal error.');
    });

    const handler = async (req: FastifyRequest<{ Params: { tenantId: string }; Querystring: ScepQuery }>, reply: FastifyReply) => {
      const { tenantId } = req.params;
      const ctx = { requestId: req.id };
      const operation = req.query.operation;
      if (typeof operation !== 'string' || !OPERATIONS.has(operation)) {
        service.refused(tenantId, ctx, { operation: typeof operation === 'string' ? operation.slice(0, 32) : undefined }, 'unknown or missing operation');
        return plain(reply, 400, 'Unknown or missing operation (GetCACert, GetCACaps and PKIOperation are supported).');
      }
      if (!(await service.tenantExists(tenantId))) {
        service.refused(tenantId, ctx, { operation }, 'unknown tenant');
        return plain(reply, 404, 'No SCEP server here.');
      }
      if (operation === 'GetCACaps') return send(reply, { status: 200, contentType: 'text/plain; charset=utf-8', body: service.caCapabilities() });
      if (operation === 'GetCACert') return send(reply, { status: 200, contentType: 'application/x-x509-ca-cert', body: await service.caCertificate(tenantId) });

      let der: Buffer | undefined;
      if (req.method === 'POST') {
        der = Buffer.isBuffer(req.body) ? req.body : undefined;
      } else {
        const message = req.query.message;
        // A '+' the client didn't percent-encode arrives as a space.
        if (typeof message === 'string' && message.length <= MAX_MESSAGE_PARAM) der = decodeBase64(message.replace(/ /g, '+'));
        else if (typeof message === 'string') {
          service.refused(tenantId, ctx, { operation }, `message parameter larger than ${MAX_MESSAGE_PARAM} characters`);
          return plain(reply, 413, `The pkiMessage is larger than ${MAX_PKI_MESSAGE_BYTES} bytes.`);
        }
      }
      if (!der || der.length === 0) {
        service.refused(tenantId, ctx, { operation }, req.method === 'POST' ? 'empty body' : 'missing or non-base64 message parameter');
        return plain(reply, 400, 'The pkiMessage is missing or malformed.');
      }
      return send(reply, await service.pkiOperation(tenantId, der, ctx));
    };

    for (const url of ['/scep/:tenantId', '/scep/:tenantId/pkiclient.exe']) {
      app.route({ method: ['GET', 'POST'], url, handler });
    }
  };
}
