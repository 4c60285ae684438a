import { existsSync } from 'node:fs';
import { request } from 'node:http';
import type { TestProject } from 'vitest/node';
import { startEmbedded, type EmbeddedServer } from '../../src/embedded/server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A superuser URL on the server the tests use; each test file creates its own database on it. */
    adminUrl: string;
    /** Which server: env, container or embedded. */
    serverKind: string;
  }
}

/** Whether a Docker-compatible engine answers on its socket within a second. */
function containerRuntimeAnswers(): Promise<boolean> {
  const socket = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice(7) : '/var/run/docker.sock';
  if (!process.env.DOCKER_HOST && !existsSync(socket)) return Promise.resolve(false);
  if (process.env.DOCKER_HOST && !process.env.DOCKER_HOST.startsWith('unix://')) return Promise.resolve(true);
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

let stop: (() => Promise<unknown>) | undefined;

/**
 * Gives the tests a real PostgreSQL: PGLAND_TEST_DATABASE_URL when set (a
 * superuser URL); else a container when an engine answers; else an embedded
 * server with durability off for speed.
 */
export async function setup(project: TestProject): Promise<void> {
  if (process.env.PGLAND_TEST_DATABASE_URL) {
    project.provide('adminUrl', process.env.PGLAND_TEST_DATABASE_URL);
    project.provide('serverKind', 'env');
    return;
  }
  if (process.env.PGLAND_TEST_NO_CONTAINERS !== '1' && (await containerRuntimeAnswers())) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer(process.env.PGLAND_TEST_IMAGE ?? 'postgres:17-alpine')
      .withCommand(['postgres', '-c', 'fsync=off', '-c', 'max_connections=200'])
      .start();
    stop = () => container.stop();
    project.provide('adminUrl', container.getConnectionUri());
    project.provide('serverKind', 'container');
    return;
  }
  const server: EmbeddedServer = await startEmbedded({ fast: true });
  stop = () => server.stop();
  project.provide('adminUrl', server.url);
  project.provide('serverKind', 'embedded');
}

export async function teardown(): Promise<void> {
  await stop?.();
}
