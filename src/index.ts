export { openDestination, type Destination, type LoadStreamOptions, type OpenOptions, type Watermark } from './destination.js';
export { resolveDestination, type DestinationConfig } from './config/resolve.js';
export { destinationSchema, type DestinationInput } from './config/schema.js';
export type { CheckReport, StepResult } from './connection/check.js';
export type { Service, ServiceOptions } from './service/service.js';
export type { EmbeddedOptions, EmbeddedServer } from './embedded/server.js';
export { runCheck, startService, startEmbedded } from './lazy.js';
export { commonObject, commonObjects, COMMON_CATALOG_VERSION } from './catalog/common.js';
export { resolveObject, declaredColumns, tableNameFor, type DeclaredSchema } from './catalog/declared.js';
export type { ObjectDef, ColumnDef, ObjectKind } from './catalog/definition.js';
export type { LoadResult } from './load/loader.js';
export type { IntoRequest, IntoResult } from './into/run.js';
export type { IntoWrite, GroupsRequest } from './into/validate.js';
export { parseMapping, mappingsFromObject, type Mapping } from './into/mapping.js';
export type { RunCounts, RunRow, RunStatus, SyncMode } from './load/runs.js';
export type { WriteMode, DeleteMode } from './merge/merge.js';
export { planText, type EvolutionPlan } from './schema/plan.js';
export type { EvolutionReport } from './schema/apply.js';
export { connectSource, type SourceConnection, type SourceOptions } from './read/source.js';
export { readSource, type ReadOutput, type ReadResult } from './read/read.js';
export type { ReadSpec, ReadRow } from './read/reader.js';
export type { Filter } from './read/filters.js';
export type { Position } from './read/page.js';
export type { ReadState, Bookmark, ReadFormat } from './read/output.js';
export { runQuery, runExec, type ActionOptions, type QueryResult, type ExecResult, type Field } from './query/actions.js';
export { PglandError } from './errors.js';
/**
 * An NDJSON file as a load's input, read 1 MiB at a time, a read ahead, into
 * buffers reused once their lines are landed (as `pgland load --input`
 * reads it); the load closes it when it ends.
 */
export { readFileChunks as fileInput, type FileChunks } from './input/file-chunks.js';
export { ERROR_CODES, isErrorCode, type ErrorCode, type ErrorCodeInfo } from './error-codes.js';
export { quoteIdent, qualify, normaliseName } from './sql/ident.js';
export { createLogger } from './log.js';
