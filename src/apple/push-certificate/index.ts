import fs from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../../config.js';
import type { Core } from '../../server/module.js';
import { DAY } from '../../shared/time.js';
import { pushCertificateRoutes } from './routes.js';
import { EXPIRY_CHECK_JOB, PushCertificateService } from './service.js';
import { mdmVendorCredentials, type MdmVendorCredentials } from './vendor-csr.js';

export { PushCertificateService, EXPIRY_ALERT_MESSAGE, EXPIRY_CHECK_JOB, PUSH_CERTIFICATE_TYPE } from './service.js';
export type { ExpiryAlert, PushCertificateEntity, ReadyPushCertificate } from './service.js';

/** Reads the MDM vendor files once at start-up, so a bad file stops the server with a clear message. */
export function loadMdmVendor(files: Config['mdmVendor']): MdmVendorCredentials | undefined {
  if (!files) return undefined;
  try {
    return mdmVendorCredentials(
      fs.readFileSync(files.certFile),
      fs.readFileSync(files.keyFile, 'utf8'),
      files.chainFile ? fs.readFileSync(files.chainFile) : undefined,
    );
  } catch (err) {
    throw new Error(`MDM vendor certificate (OPENENROLL_MDM_VENDOR_*_FILE): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

export interface PushCertificateFeature {
  service: PushCertificateService;
  routes: FastifyPluginAsync;
  start(): Promise<void>;
}

export function createPushCertificateFeature(core: Core): PushCertificateFeature {
  const service = new PushCertificateService({
    store: core.store,
    secrets: core.secrets,
    audit: core.audit,
    clock: core.clock,
    jobs: core.jobs,
    logger: core.logger,
    vendor: loadMdmVendor(core.config.mdmVendor),
  });
  core.jobs.register(EXPIRY_CHECK_JOB, async (_payload, ctx) => {
    await service.checkExpiry(ctx.job.tenantId);
  });
  return {
    service,
    routes: pushCertificateRoutes(service),
    // Uploads schedule the daily check; this re-creates it for certificates stored before (or by a restore).
    async start() {
      const rows = await core.store.db.selectFrom('apple_push_certificates').select('tenant_id').where('certificate_pem', 'is not', null).execute();
      for (const r of rows) {
        await core.jobs.enqueue(core.store.db, { tenantId: r.tenant_id, kind: EXPIRY_CHECK_JOB, dedupeKey: EXPIRY_CHECK_JOB, intervalMs: DAY });
      }
    },
  };
}
