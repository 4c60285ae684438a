import { PglandError } from '../../errors.js';

/**
 * How large one write-through may be (docs/service.md, "Write-through").
 * Past these bounds a run (open, batches, commit) lands the same records for
 * less: the defaults come from bench/write-through.ts (docs/benchmarks.md,
 * "Write-through or a run").
 */
export interface WriteThroughLimits {
  /** The most records one call takes. */
  maxRecords: number;
  /** The largest JSON body one call takes, in bytes. */
  maxBytes: number;
}

/**
 * 1 MiB: about where a write-through stops costing less CPU in all (serve
 * and server) than a run (1 to 1.6 MB measured). 1,000 records: where
 * serve's own CPU per 620-byte record stops favouring it, and one
 * transaction lands them in about a tenth of a second.
 */
export const WRITE_THROUGH_DEFAULTS: WriteThroughLimits = { maxRecords: 1000, maxBytes: 1024 * 1024 };

/**
 * The most a server setting may raise them to. A write-through's body is
 * parsed whole (JSON): serve's peak RSS grew by 30 to 70 MB per MiB of body
 * in the benchmark, where a run streams its batches. And the object's lease
 * stays taken while the one transaction lands them.
 */
export const WRITE_THROUGH_CEILING: WriteThroughLimits = { maxRecords: 10_000, maxBytes: 8 * 1024 * 1024 };

/** What to do instead, in every answer past a bound. */
export const USE_A_RUN = 'send larger sets as a run: POST /runs, PUT /runs/{id}/batches/1 (NDJSON, as many batches as needed), then POST /runs/{id}/commit';

/** Refuses a write-through of more records than `limits` allow, before any is read. */
export function checkWriteThroughRecords(count: number, limits: WriteThroughLimits): void {
  if (count > limits.maxRecords) {
    throw new PglandError(
      'body_too_large',
      `a write-through takes at most ${limits.maxRecords} records (the server's PGLAND_WRITE_THROUGH_MAX_RECORDS); this one has ${count}`,
      { hint: USE_A_RUN },
    );
  }
}

/** The answer to a write-through body past `maxBytes` (fastify refuses it before it is parsed). */
export function writeThroughBodyTooLarge(limits: WriteThroughLimits, sent: number | undefined): PglandError {
  const size = sent === undefined ? '' : `; this one has ${sent}`;
  return new PglandError(
    'body_too_large',
    `a write-through takes a body of at most ${limits.maxBytes} bytes (the server's PGLAND_WRITE_THROUGH_MAX_BYTES)${size}`,
    { hint: USE_A_RUN },
  );
}
