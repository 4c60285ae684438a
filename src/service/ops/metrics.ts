import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RunCounts } from '../../load/runs.js';
import type { ControlDb } from '../control/control-db.js';

/**
 * How many distinct objects get a label value of their own; later ones are
 * counted under "other". Object names come from API callers, and each label
 * value is a time series kept for the process's life: without a bound, a
 * caller could grow /metrics (and the scraper's storage) without end.
 */
export const MAX_OBJECT_LABELS = 100;
/** The label value of objects past MAX_OBJECT_LABELS. */
export const OTHER_OBJECTS = 'other';

/**
 * The service's Prometheus metrics, on a registry of its own (several
 * services may live in one process, as in the tests). Counters count what
 * this process did; runs by status is read from the control database at
 * scrape time, so every process reports the same truth.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly rowsLanded: Counter<'object' | 'outcome'>;
  readonly runsFinished: Counter<'origin' | 'status'>;
  readonly batchSeconds: Histogram<'step'>;
  readonly webhookDeliveries: Counter<'result'>;
  readonly webhookFailures: Counter<'reason'>;
  readonly inboundWebhooks: Counter<'result'>;
  private readonly objectLabels = new Set<string>();

  constructor(ctl: ControlDb) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'pgland_' });
    this.rowsLanded = new Counter({
      name: 'pgland_rows_landed_total',
      help: `Rows landed by committed runs, by object and outcome (inserted, updated, deleted); objects past the first ${MAX_OBJECT_LABELS} count as "${OTHER_OBJECTS}".`,
      labelNames: ['object', 'outcome'],
      registers,
    });
    this.runsFinished = new Counter({
      name: 'pgland_runs_finished_total',
      help: 'Runs finished by this process, by origin (http, schedule) and status.',
      labelNames: ['origin', 'status'],
      registers,
    });
    new Gauge({
      name: 'pgland_runs',
      help: 'Runs known to the control database, by status.',
      labelNames: ['status'],
      registers,
      async collect() {
        this.reset();
        try {
          const { rows } = await ctl.pool.query<{ status: string; n: string }>(`SELECT status, count(*) AS n FROM ${ctl.table('runs')} GROUP BY status`);
          for (const r of rows) this.set({ status: r.status }, Number(r.n));
        } catch {
          // The control database is down: /readyz says so; the other metrics are still worth a scrape.
        }
      },
    });
    this.batchSeconds = new Histogram({
      name: 'pgland_batch_duration_seconds',
      help: 'Time to stage one HTTP batch (step=stage), to commit a run (step=commit), to run a scheduled load (step=scheduled).',
      labelNames: ['step'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.webhookDeliveries = new Counter({
      name: 'pgland_webhook_deliveries_total',
      help: 'Outbound webhook attempts, by result (delivered, failed: will retry, dead: gave up).',
      labelNames: ['result'],
      registers,
    });
    this.webhookFailures = new Counter({
      name: 'pgland_webhook_failures_total',
      help: 'Outbound webhook attempts that failed, by reason (http_status, network, timeout, refused: an address pgland does not connect to).',
      labelNames: ['reason'],
      registers,
    });
    this.inboundWebhooks = new Counter({
      name: 'pgland_inbound_webhooks_total',
      help: 'Inbound webhooks, by result (accepted, or the reason they were refused).',
      labelNames: ['result'],
      registers,
    });
  }

  /** The label value of an object: itself while fewer than MAX_OBJECT_LABELS are labelled, else "other". */
  objectLabel(object: string): string {
    if (this.objectLabels.has(object)) return object;
    if (this.objectLabels.size >= MAX_OBJECT_LABELS) return OTHER_OBJECTS;
    this.objectLabels.add(object);
    return object;
  }

  landed(name: string, counts: RunCounts): void {
    const object = this.objectLabel(name);
    this.rowsLanded.inc({ object, outcome: 'inserted' }, counts.inserted);
    this.rowsLanded.inc({ object, outcome: 'updated' }, counts.updated);
    this.rowsLanded.inc({ object, outcome: 'deleted' }, counts.deleted);
  }
}
