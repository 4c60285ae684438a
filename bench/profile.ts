import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, and
 * the share of broad categories (parsing, stringifying, escaping, line
 * splitting, socket writes, waiting). Usage: node dist/bench/profile.js <file or folder> [top]
 */
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

// V8 inlines builtins into their caller's self time: JSON.parse shows up in
// parseEnvelope, JSON.stringify in copyJson/jsonText. Natives without a name
// are labelled with their caller (see key()).
const CATEGORIES: [string, RegExp][] = [
  ['waiting: idle, the server or the disk', /^\(idle\)/],
  ['garbage collection', /^\(garbage collector\)/],
  ['parseEnvelope (JSON.parse inlined)', /^parseEnvelope /],
  ['JSON.stringify of jsonb values (copyJson, jsonText)', /^(copyJson|jsonText|fixEscapes) /],
  ['text escaping (copyText, copyRow)', /^(copyText|copyRow|RegExp: \[\\\\)/],
  ['timestamp checks (isTimestampText)', /^(isTimestampText|daysInMonth|RegExp: \^\(\\d\{4\}\))/],
  ['rest of the encoder (encodeRecord, convert)', /^(encodeRecord|convert|valueOf|inlineBytes) /],
  ['line splitting and UTF-8 decoding', /^(readLines|decode|utf8Slice|indexOf|bidirectionalIndexOf|concat) |^(slice|toString) node:buffer/],
  ['strings to bytes for the socket (Buffer.from)', /createFromString|^(fromStringFast|byteLength) |^write node:buffer/],
  ['COPY stream and socket writes', /^(write|writev|_write|_writev|writeGeneric|writevGeneric|handleWriteReq|writeOrBuffer|flush|Writable\.write) /],
  [
    'async plumbing (promises, microtasks, batch loop)',
    /^(runMicrotasks|processTicksAndRejections|peek|fill|runBatch|race|next|read|Readable\.read|onStreamRead) /,
  ],
];

function key(n: Node, parent: Node | undefined): string {
  const f = n.callFrame;
  if (!f.url && parent && (f.functionName === '' || f.functionName === '(anonymous)')) {
    return `(native) in ${parent.callFrame.functionName || '(anonymous)'}`;
  }
  const file = f.url ? f.url.replace(/^.*\/(node_modules|dist|src|bench)\//, '$1/') : '';
  return `${f.functionName || '(anonymous)'} ${file}${file ? ':' + (f.lineNumber + 1) : ''}`;
}

export function summarise(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, Node>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n);
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    const n = byId.get(profile.samples[i]!);
    if (!n) continue;
    const k = key(n, parentOf.get(n.id));
    self.set(k, (self.get(k) ?? 0) + dt);
    total += dt;
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]);
  const pct = (us: number): string => ((100 * us) / total).toFixed(1).padStart(5) + ' %';
  const out = [`total ${(total / 1e6).toFixed(2)} s sampled`, '', 'top self time:'];
  for (const [k, us] of rows.slice(0, top)) out.push(`  ${pct(us)}  ${k}`);
  out.push('', 'by category:');
  const seen = new Set<string>();
  for (const [label, re] of CATEGORIES) {
    let us = 0;
    for (const [k, v] of rows) {
      if (re.test(k) && !seen.has(k)) {
        us += v;
        seen.add(k);
      }
    }
    out.push(`  ${pct(us)}  ${label}`);
  }
  out.push(`  ${pct(rows.filter(([k]) => !seen.has(k)).reduce((s, [, v]) => s + v, 0))}  everything else`);
  return out.join('\n');
}

function main(): void {
  const target = process.argv[2];
  if (!target) {
    process.stderr.write('usage: node dist/bench/profile.js <file.cpuprofile | folder> [top]\n');
    process.exitCode = 2;
    return;
  }
  const files = target.endsWith('.cpuprofile')
    ? [target]
    : readdirSync(target)
        .filter((f) => f.endsWith('.cpuprofile'))
        .sort()
        .map((f) => join(target, f));
  for (const f of files) {
    process.stdout.write(`== ${f}\n${summarise(JSON.parse(readFileSync(f, 'utf8')) as Profile, Number(process.argv[3] ?? 25))}\n\n`);
  }
}

main();
