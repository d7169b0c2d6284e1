import type { Core, OpenEnrollModule } from '../../server/module.js';
import type { TermsService } from '../terms/service.js';
import { EnrollmentGate } from './gate.js';

export interface EnrollmentGateModule extends OpenEnrollModule {
  /** The one enrollment decision; platform modules call gate.decide / gate.recordSuccess. */
  gate: EnrollmentGate;
}

export function createEnrollmentGateModule(core: Core, deps: { terms: TermsService }): EnrollmentGateModule {
  return { name: 'enrollment-gate', gate: new EnrollmentGate(core.store, core.clock, deps.terms) };
}
