import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * CPU time, beside wall time: on a shared machine, wall time swings with
 * whatever else runs, while the CPU a load costs stays much the same. Linux
 * only (/proc); elsewhere every figure is undefined.
 */

// USER_HZ, the unit of /proc/<pid>/stat times: 100 on every mainstream Linux.
const TICKS_PER_SECOND = 100;

interface Times {
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  ppid: number;
}

function stat(pid: number | 'self'): Times | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: count fields after it.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
  } catch {
    return undefined;
  }
}

/** Seconds of CPU used by this process's children that have exited (psql, the Node contenders). */
export function childrenCpuSeconds(): number | undefined {
  const s = stat('self');
  return s ? (s.cutime + s.cstime) / TICKS_PER_SECOND : undefined;
}

/** A process's parent (a backend's is its postmaster), or undefined when /proc does not have the process. */
export function parentPid(pid: number): number | undefined {
  return stat(pid)?.ppid;
}

/** The postmaster's pid, from the first line of postmaster.pid in the data folder. */
export function postmasterPid(dataDir: string): number | undefined {
  const file = join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Seconds of CPU the whole server has used: the postmaster, its live children
 * (background writers, live backends) and the children it has reaped (the
 * backends of connections already closed).
 */
export function serverCpuSeconds(postmaster: number | undefined): number | undefined {
  if (postmaster === undefined) return undefined;
  return treeCpuSeconds(postmaster);
}

/** Seconds of CPU of a process, its live children and its reaped ones (a server forking per connection: sshd). */
export function treeCpuSeconds(pid: number): number | undefined {
  const postmaster = pid;
  const root = stat(postmaster);
  if (!root) return undefined;
  let ticks = root.utime + root.stime + root.cutime + root.cstime;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(Number(entry));
    if (s && s.ppid === postmaster) ticks += s.utime + s.stime;
  }
  return ticks / TICKS_PER_SECOND;
}

/** How many processes the postmaster has now: back to its background set once the last backend of a load has exited. */
export function serverChildren(postmaster: number | undefined): number {
  if (postmaster === undefined) return 0;
  let n = 0;
  for (const entry of readdirSync('/proc')) if (/^\d+$/.test(entry) && stat(Number(entry))?.ppid === postmaster) n++;
  return n;
}

/**
 * Seconds a process has run on a CPU, all its live threads, to the
 * nanosecond (/proc/<pid>/task/<tid>/schedstat); undefined where the kernel
 * does not give it. Per call of a few milliseconds, /proc's 10 ms ticks
 * (stat) are too coarse.
 */
export function runSeconds(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    return ns / 1e9;
  } catch {
    return undefined;
  }
}
