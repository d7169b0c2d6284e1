import type { TestProject } from 'vitest/node';
import { startPgCluster, type PgCluster } from './pg-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

let cluster: PgCluster | undefined;

export async function setup(project: TestProject) {
  if (process.env.DATABASE_URL) {
    project.provide('pgUrl', process.env.DATABASE_URL);
    return;
  }
  cluster = await startPgCluster();
  project.provide('pgUrl', cluster.url);
}

export async function teardown() {
  await cluster?.stop();
}
