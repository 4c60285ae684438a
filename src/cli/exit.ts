/** pgland's exit codes (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The run failed; nothing of the failed batch landed. */
  failure: 1,
  /** Bad usage or configuration. */
  usage: 2,
  /** Landed, with rejects or problems recorded. */
  partial: 3,
} as const;

/** An error that ends the command with a given exit code and a message for the user. */
export class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}
