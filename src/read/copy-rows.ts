import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/*
 * One COPY … TO STDOUT statement, its output handed over line by line (a
 * line is a row in COPY's text format, without its newline). Reading the
 * stream is the back-pressure: while the handler's promise is pending the
 * stream is not read, pg-copy-streams pauses the connection's socket and the
 * server waits, so this process holds a chunk or two whatever the size of
 * the page or of the table.
 *
 * A handler that throws or whose promise rejects ends the delivery of lines,
 * but the rest of the statement's output is still read (a page is bounded):
 * the connection then stays usable for the ROLLBACK, and the error is thrown.
 * A statement that is not bounded (a snapshot read: the whole table) passes
 * `abandon`, which is called instead and ends the connection, so that a
 * failure does not read the table to its end first.
 */

export type LineHandler = (src: Buffer, start: number, end: number) => void | Promise<void>;

/** Runs `sql` (a COPY … TO STDOUT) and calls `onLine` for each line; resolves with the number of lines. */
export async function copyLines(client: pg.ClientBase, sql: string, onLine: LineHandler, abandon?: () => void): Promise<number> {
  const stream = client.query(copyTo(sql));
  // The start of a line not yet complete, in pieces: a row larger than many
  // chunks is joined once, when its newline arrives, not once per chunk.
  // Only that line is joined: the rest of the chunk is read where it is.
  let pending: Buffer[] = [];
  let lines = 0;
  let failed: { error: unknown } | undefined;
  /** Hands over the lines of src from `at` on; returns where the incomplete last one starts. */
  const deliver = async (src: Buffer, at: number): Promise<number> => {
    for (let nl = src.indexOf(0x0a, at); nl >= 0; nl = src.indexOf(0x0a, at)) {
      const wait = onLine(src, at, nl);
      at = nl + 1;
      lines++;
      if (wait) await wait;
    }
    return at;
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (failed) continue;
    let at = 0;
    if (pending.length > 0) {
      const nl = chunk.indexOf(0x0a);
      if (nl < 0) {
        pending.push(chunk);
        continue;
      }
      pending.push(chunk.subarray(0, nl + 1));
      const joined = Buffer.concat(pending);
      pending = [];
      at = nl + 1;
      try {
        await deliver(joined, 0);
      } catch (error) {
        failed = { error };
      }
    }
    if (!failed) {
      try {
        at = await deliver(chunk, at);
      } catch (error) {
        failed = { error };
      }
    }
    if (failed) {
      if (abandon) {
        abandon();
        break;
      }
      continue;
    }
    if (at < chunk.length) pending.push(chunk.subarray(at));
  }
  if (failed) throw failed.error;
  return lines;
}
