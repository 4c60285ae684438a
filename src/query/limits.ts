/** A query action's defaults (seed 001): a statement runs at most 60 s, and its rows come to at most 10 MB of JSON. */
export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
