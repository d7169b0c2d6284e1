import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../../observability/metrics.js';
import type { CertificateInfo } from '../../pki/index.js';
import { parsePlistDict, PlistError } from '../../shared/plist.js';
import type { Clock } from '../../shared/time.js';
import { isStoreUnavailable, type Store } from '../../store/db.js';
import type { IdentityBinding, IdentityVerifier } from './contracts.js';
import { certificateFromHeader, IdentityError, readMdmSignature, trustedProxyMatcher, type MdmSignature } from './identity.js';
import { MessageError, parseCheckin, parseReport } from './messages.js';
import { MdmRefusal, type DeviceReply, type MdmContext, type MdmService } from './service.js';
import type { InFlight } from '../../shared/concurrency.js';

/**
 * The device-facing MDM endpoints (device-urls.ts): CheckInURL and ServerURL. Every message is
 * authenticated before anything else: its Mdm-Signature (or a trusted proxy's client certificate)
 * must come from a certificate this tenant's CA issued, current and unrevoked. Refusals are logged
 * (never with tokens or signatures) and change nothing. Who the sender claims to be is checked from
 * the headers alone, before the body is read, so a stranger costs no body and no parse; the
 * signature over the body is verified once it has arrived.
 */

export const CHECKIN_CONTENT_TYPE = 'application/x-apple-aspen-mdm-checkin';
export const COMMAND_CONTENT_TYPE = 'application/x-apple-aspen-mdm';
/** Check-ins are small (the largest, TokenUpdate with an UnlockToken, is a few KiB). */
export const MAX_CHECKIN_BYTES = 256 * 1024;
/** Command results can be large (ProfileList with certificates, installed application lists). */
export const MAX_REPORT_BYTES = 8 * 1024 * 1024;

const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
/** When a device may retry while the store is unreachable. */
const STORE_RETRY_AFTER_SECONDS = 5;

export interface MdmRoutesDeps {
  store: Store;
  clock: Clock;
  service: MdmService;
  identities: IdentityVerifier;
  trustProxy: boolean | string;
  /** Lower-case header name carrying a trusted proxy's client certificate. */
  clientCertHeader: string | undefined;
  metrics?: Metrics;
  /** Counts the MDM requests this node is serving (the push job paces its waves by it). */
  load?: InFlight;
}

function refusalBody(code: string, description: string): string {
  return JSON.stringify({ code, description });
}

type MessageKind = 'checkin' | 'report';

/** Without a CheckInURL a device sends check-ins to ServerURL too; the content type tells them apart. */
function kindOf(req: FastifyRequest): MessageKind {
  if (req.url.includes('/checkin')) return 'checkin';
  return req.headers['content-type']?.split(';')[0]?.trim().toLowerCase() === CHECKIN_CONTENT_TYPE ? 'checkin' : 'report';
}

/** Who sent a message, known from its headers before the body is read. */
interface Sender {
  certificate: CertificateInfo;
  binding: IdentityBinding;
  /** Mdm-Signature, still to be verified over the body (a proxy's client certificate needs no more). */
  signature: MdmSignature | undefined;
}

export function mdmDeviceRoutes(deps: MdmRoutesDeps): FastifyPluginAsync {
  const fromTrustedProxy = trustedProxyMatcher(deps.trustProxy);
  const counter = deps.metrics
    ? new Counter({
        name: 'openenroll_apple_mdm_messages_total',
        help: 'Apple MDM check-ins and command reports by kind and result (ok, refused, error)',
        labelNames: ['kind', 'result'],
        registers: [deps.metrics.registry],
      })
    : undefined;
  const load = deps.load;
  if (deps.metrics && load) {
    new Gauge({
      name: 'openenroll_apple_mdm_requests_in_progress',
      help: 'Apple MDM check-ins and command reports this process is serving now (APNs pushes wait at OPENENROLL_APNS_PUSH_BACKLOG)',
      registers: [deps.metrics.registry],
      collect() {
        this.set(load.count);
      },
    });
  }

  /** The certificate the message claims to be from (the body isn't read yet), or an IdentityError. */
  function claimedCertificate(req: FastifyRequest): { certificate: CertificateInfo; signature: MdmSignature | undefined } {
    const signature = req.headers['mdm-signature'];
    if (typeof signature === 'string' && signature.trim() !== '') {
      const read = readMdmSignature(signature);
      return { certificate: read.claimedSigner, signature: read };
    }
    if (deps.clientCertHeader) {
      const forwarded = req.headers[deps.clientCertHeader];
      // Only a proxy we trust may speak for the TLS client; anyone else's header is ignored.
      if (typeof forwarded === 'string' && forwarded.trim() !== '' && fromTrustedProxy(req.socket.remoteAddress)) {
        return { certificate: certificateFromHeader(forwarded), signature: undefined };
      }
    }
    throw new IdentityError('missingIdentity', 'the message is neither signed (Mdm-Signature) nor from a client certificate');
  }

  const senders = new WeakMap<FastifyRequest, Sender>();

  function refuser(req: FastifyRequest, reply: FastifyReply, kind: MessageKind) {
    const { tenantId } = req.params as { tenantId: string };
    const log = req.log.child({ component: 'apple-mdm', tenantId, kind });
    return (status: number, code: string, reason: string, description: string, extra: Record<string, unknown> = {}) => {
      log.warn({ reason, status, ...extra }, 'MDM message refused');
      counter?.inc({ kind, result: 'refused' });
      return reply.code(status).type('application/json').send(refusalBody(code, description));
    };
  }

  /** onRequest: the checks the headers allow, so a stranger is refused before its body is read. */
  async function authenticate(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const kind = kindOf(req);
    const refuse = refuser(req, reply, kind);
    const { tenantId } = req.params as { tenantId: string };
    if (!TENANT_ID.test(tenantId)) return refuse(404, 'com.openenroll.mdm.notFound', 'badTenantId', 'Unknown MDM server.');
    const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (kind === 'checkin' && contentType !== CHECKIN_CONTENT_TYPE) {
      return refuse(415, 'com.openenroll.mdm.badRequest', 'contentType', `Check-ins are ${CHECKIN_CONTENT_TYPE}.`, { contentType });
    }
    // Who is it? Nothing is read, parsed or written before the sender is known.
    let claimed: ReturnType<typeof claimedCertificate>;
    try {
      claimed = claimedCertificate(req);
    } catch (err) {
      if (err instanceof IdentityError) return refuse(403, 'com.openenroll.mdm.forbidden', err.reason, 'The message could not be authenticated.', { detail: err.message });
      throw err;
    }
    const { certificate } = claimed;
    const binding = await deps.identities.identify(deps.store.db, tenantId, certificate.der, deps.clock.now());
    if (!binding) {
      return refuse(403, 'com.openenroll.mdm.forbidden', 'untrustedCertificate', 'The signing certificate was not issued by this server or is no longer valid.', {
        certificateSha256: certificate.sha256Thumbprint,
        issuer: certificate.issuer.text,
      });
    }
    senders.set(req, { certificate, binding, signature: claimed.signature });
    return undefined;
  }

  async function handle(req: FastifyRequest, reply: FastifyReply, kind: MessageKind): Promise<FastifyReply> {
    const { tenantId } = req.params as { tenantId: string };
    const log = req.log.child({ component: 'apple-mdm', tenantId, kind });
    const refuse = refuser(req, reply, kind);
    const sender = senders.get(req);
    if (!sender) throw new Error('MDM message reached its handler without an authenticated sender');
    const { certificate, binding } = sender;
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) return refuse(400, 'com.openenroll.mdm.badRequest', 'emptyBody', 'The message body is empty.');
    // A check-in sent to ServerURL (no CheckInURL in the profile) keeps the check-in limit.
    if (kind === 'checkin' && body.length > MAX_CHECKIN_BYTES) return refuse(413, 'com.openenroll.mdm.badRequest', 'tooLarge', 'The message is too large.');
    if (sender.signature !== undefined) {
      // 1. The signature, now over the body: the claimed signer must really have signed these bytes.
      try {
        const signer = sender.signature.verify(body);
        if (!signer.der.equals(certificate.der)) throw new IdentityError('badSignature', 'Mdm-Signature: the verified signer is not the claimed one');
      } catch (err) {
        if (err instanceof IdentityError) return refuse(403, 'com.openenroll.mdm.forbidden', err.reason, 'The message could not be authenticated.', { detail: err.message });
        throw err;
      }
    }

    // 2. What does it say?
    let messageType: string | undefined;
    let udid: string | undefined;
    try {
      const dict = parsePlistDict(body, { maxBytes: kind === 'checkin' ? MAX_CHECKIN_BYTES : MAX_REPORT_BYTES });
      messageType = typeof dict.MessageType === 'string' ? dict.MessageType.slice(0, 64) : typeof dict.Status === 'string' ? dict.Status.slice(0, 64) : undefined;
      udid = typeof dict.UDID === 'string' ? dict.UDID.slice(0, 128) : typeof dict.EnrollmentID === 'string' ? dict.EnrollmentID.slice(0, 128) : undefined;
      const ctx: MdmContext = { tenantId, binding, certificate, requestId: req.id };
      let answer: DeviceReply;
      if (kind === 'checkin') {
        answer = await deps.service.checkin(ctx, parseCheckin(dict));
      } else {
        answer = await deps.service.report(ctx, parseReport(dict), body.toString('utf8'));
      }
      log.info({ messageType, udid, status: answer.status }, 'MDM message');
      counter?.inc({ kind, result: 'ok' });
      reply.code(answer.status);
      if (answer.body === undefined) return reply.send();
      return reply.type(answer.contentType ?? 'application/xml; charset=utf-8').send(answer.body);
    } catch (err) {
      const extra = { messageType, udid, certificateSha256: binding.thumbprintSha256 };
      if (err instanceof PlistError || err instanceof MessageError) return refuse(400, 'com.openenroll.mdm.badRequest', 'malformedMessage', 'The message is malformed.', { ...extra, detail: err.message });
      if (err instanceof MdmRefusal) return refuse(err.status, err.code, err.reason, err.message, extra);
      throw err;
    }
  }

  return async (app: FastifyInstance) => {
    // Raw bodies, in this scope only: the signature covers the exact bytes.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser([CHECKIN_CONTENT_TYPE, COMMAND_CONTENT_TYPE], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    if (load) {
      // First hook: from the headers to the last byte out (or the connection gone), whatever the outcome.
      app.addHook('onRequest', async (_req, reply) => {
        reply.raw.once('close', load.enter());
      });
    }
    app.addHook('onRequest', authenticate);
    app.setErrorHandler((err: { statusCode?: number; code?: string; message?: string }, req, reply) => {
      const log = req.log.child({ component: 'apple-mdm' });
      const kind = kindOf(req);
      if (isStoreUnavailable(err)) {
        // The store is unreachable (restart, failover): the device retries later; nothing was changed.
        log.warn({ code: err.code }, 'MDM message not handled: the data store is unavailable');
        counter?.inc({ kind, result: 'error' });
        return reply.code(503).header('Retry-After', String(STORE_RETRY_AFTER_SECONDS)).type('application/json').send(refusalBody('com.openenroll.mdm.unavailable', 'The server is temporarily unavailable; retry later.'));
      }
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) log.error({ err }, 'MDM message failed');
      else log.warn({ status, code: err.code }, 'MDM message refused');
      counter?.inc({ kind, result: status === 500 ? 'error' : 'refused' });
      const description = status === 413 ? 'The message is too large.' : status === 415 ? 'Unsupported content type.' : status === 500 ? 'Internal error.' : 'The request is invalid.';
      return reply.code(status).type('application/json').send(refusalBody(status === 500 ? 'com.openenroll.mdm.serverError' : 'com.openenroll.mdm.badRequest', description));
    });

    const params = { type: 'object', properties: { tenantId: { type: 'string', maxLength: 64 } }, required: ['tenantId'] } as const;
    const common = { schema: { params, hide: true } };
    for (const method of ['PUT', 'POST'] as const) {
      app.route({
        ...common,
        method,
        url: '/mdm/apple/:tenantId/checkin',
        bodyLimit: MAX_CHECKIN_BYTES,
        handler: async (req, reply) => handle(req, reply, 'checkin'),
      });
      app.route({
        ...common,
        method,
        url: '/mdm/apple/:tenantId/server',
        bodyLimit: MAX_REPORT_BYTES,
        handler: async (req, reply) => handle(req, reply, kindOf(req)),
      });
    }
  };
}
