import { api } from '../api.js';

/** The API's objects as the pages read them (docs/openapi.json has every field). */
export interface Destination {
  id: string;
  name: string;
  config: Record<string, any>;
  created_at: string;
  updated_at: string;
}

export interface Run {
  id: string;
  destination_id: string | null;
  origin: string;
  schedule_id: string | null;
  /** The sync.requested webhook that asked for the run (origin "webhook"), in a pgland that has them. */
  inbound_id?: string | null;
  provider: string;
  customer_id: string;
  object: string;
  kind: string;
  mode: string;
  write: string;
  status: string;
  counts: Record<string, number> | null;
  watermark: string | null;
  error: string | null;
  /** What schema evolution did to the landed table in the run (null: nothing), in a pgland that keeps it with the run. */
  evolution?: Evolution | null;
  created_at: string;
  finished_at: string | null;
}

/** A run's evolution report: the run's `evolution`, and the data of its schema.evolved webhook. */
export interface Evolution {
  table: string;
  schema: string;
  change: string;
  reasons: string[];
  not_restored: { label: string; error: string }[];
  problems: number;
  full_refresh_required: string | null;
}

export async function destinations(): Promise<Destination[]> {
  return (await api<{ destinations: Destination[] }>('GET', '/destinations')).destinations;
}

/** Destination names by id, for lists that show runs or schedules. */
export async function destinationNames(): Promise<Map<string, string>> {
  return new Map((await destinations()).map((d) => [d.id, d.name]));
}

/** Whether the API has a route (a newer pgland may add some): read from its OpenAPI document. */
let paths: Promise<Record<string, Record<string, unknown>>> | undefined;
export async function hasRoute(method: string, path: string): Promise<boolean> {
  paths ??= api<{ paths: Record<string, Record<string, unknown>> }>('GET', '/openapi.json').then((d) => d.paths);
  return Boolean((await paths)[path]?.[method.toLowerCase()]);
}
