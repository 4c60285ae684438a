/**
 * Polls `fn` until it returns something truthy, and returns that; fails after
 * `ms` naming what was awaited. Tests wait for a condition this way (a row, a
 * lock in pg_locks, a line of output) rather than sleeping for a guessed time.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  ms = 60_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
