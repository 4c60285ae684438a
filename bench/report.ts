import { cpus, totalmem, release } from 'node:os';
import type { Measurement } from './contenders.js';

/** Every repetition of one contender's load at one size, summarised. */
export interface Summary {
  size: number;
  /** Bytes per NDJSON record of the dataset (620 or 2300). */
  recordSize: number;
  /** Round-trip time in ms of the link to the server; 0 for the direct path. */
  rttMs: number;
  name: string;
  rows: number;
  inputBytes: number;
  ms: number[];
  medianMs: number;
  rowsPerSec: number;
  mbPerSec: number;
  /** The highest peak RSS over the repetitions (Node contenders only). */
  maxRssMb?: number;
  /** Median CPU seconds of the client (psql or the Node process) and of the server. */
  clientCpuS?: number;
  serverCpuS?: number;
  detail?: Record<string, unknown>;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarise(size: number, recordSize: number, measurements: readonly Measurement[], rttMs = 0): Summary[] {
  const byName = new Map<string, Measurement[]>();
  for (const m of measurements) byName.set(m.name, [...(byName.get(m.name) ?? []), m]);
  return [...byName.entries()].map(([name, ms]) => {
    const first = ms[0]!;
    const medianMs = median(ms.map((m) => m.ms));
    const rss = ms.map((m) => m.maxRssMb).filter((x): x is number => x !== undefined);
    const cpu = (pick: (m: Measurement) => number | undefined): number | undefined => {
      const xs = ms.map(pick).filter((x): x is number => x !== undefined);
      return xs.length ? median(xs) : undefined;
    };
    const clientCpuS = cpu((m) => m.clientCpuS);
    const serverCpuS = cpu((m) => m.serverCpuS);
    return {
      size,
      recordSize,
      rttMs,
      name,
      rows: first.rows,
      inputBytes: first.inputBytes,
      ms: ms.map((m) => Math.round(m.ms)),
      medianMs,
      rowsPerSec: first.rows / (medianMs / 1000),
      mbPerSec: first.inputBytes / 1e6 / (medianMs / 1000),
      ...(rss.length ? { maxRssMb: Math.max(...rss) } : {}),
      ...(clientCpuS !== undefined ? { clientCpuS } : {}),
      ...(serverCpuS !== undefined ? { serverCpuS } : {}),
      ...(ms[ms.length - 1]!.detail ? { detail: ms[ms.length - 1]!.detail } : {}),
    };
  });
}

/** pgland against each baseline: throughput ratios (above 1 means pgland is faster). */
export function ratios(summaries: readonly Summary[], pgland = 'pgland'): Record<string, number> {
  const rate = (n: string): number | undefined => summaries.find((s) => s.name === n)?.rowsPerSec;
  const out: Record<string, number> = {};
  const pairs: [string, string, string][] = [
    ['pgland first / A', `${pgland} first`, 'A'],
    ['pgland first / B first', `${pgland} first`, 'B first'],
    ['pgland incr / B incr', `${pgland} incr`, 'B incr'],
    ['pgland first / D', `${pgland} first`, 'D'],
  ];
  for (const [label, a, b] of pairs) {
    const x = rate(a);
    const y = rate(b);
    if (x !== undefined && y !== undefined) out[label] = x / y;
  }
  return out;
}

/**
 * Peak RSS of each Node contender at every size run, and its growth from the
 * smallest size to the largest: memory must not grow with the input.
 */
export function memoryBySize(summaries: readonly Summary[]): string[] {
  const withRss = summaries.filter((s) => s.maxRssMb !== undefined);
  const keys = [...new Set(withRss.map((s) => `${s.name}\t${s.recordSize}\t${s.rttMs}`))];
  return keys.map((key) => {
    const [name, recordSize, rtt] = key.split('\t') as [string, string, string];
    const bySize = withRss.filter((s) => `${s.name}\t${s.recordSize}\t${s.rttMs}` === key).sort((a, b) => a.size - b.size);
    const parts = bySize.map((s) => `${s.maxRssMb!.toFixed(0)} MB at ${s.size.toLocaleString('en-US')}`);
    const first = bySize[0]!.maxRssMb!;
    const last = bySize[bySize.length - 1]!.maxRssMb!;
    const growth =
      bySize.length > 1 ? ` (${last >= first ? '+' : ''}${(((last - first) / first) * 100).toFixed(0)}% from the smallest size to the largest)` : '';
    return `  ${name} (${recordSize}-byte records${rtt === '0' ? '' : `, RTT ${rtt} ms`}): peak RSS ${parts.join(', ')}${growth}`;
  });
}

function cell(text: string, width: number, right = true): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/** The table for one size, as printed and as docs/benchmarks.md shows it. */
export function table(summaries: readonly Summary[]): string {
  const a = summaries.find((s) => s.name === 'A')?.rowsPerSec;
  const head = ['contender', 'rows', 'median s', 'rows/s', 'MB/s', 'vs A', 'client CPU s', 'server CPU s', 'peak RSS MB', 'runs (ms)'];
  const lines = summaries.map((s) => [
    s.name,
    String(s.rows),
    (s.medianMs / 1000).toFixed(2),
    Math.round(s.rowsPerSec).toLocaleString('en-US'),
    s.mbPerSec.toFixed(1),
    a ? (s.rowsPerSec / a).toFixed(2) : '',
    s.clientCpuS !== undefined ? s.clientCpuS.toFixed(2) : '',
    s.serverCpuS !== undefined ? s.serverCpuS.toFixed(2) : '',
    s.maxRssMb !== undefined ? s.maxRssMb.toFixed(0) : '',
    s.ms.join(' '),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => '| ' + cells.map((c, i) => cell(c, widths[i]!, i > 0)).join(' | ') + ' |';
  return [row(head), '|' + widths.map((w, i) => (i > 0 ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|', ...lines.map(row)].join('\n');
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  ramGb: number;
  kernel: string;
  node: string;
}

export function machine(): Machine {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? '?',
    ramGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
  };
}
