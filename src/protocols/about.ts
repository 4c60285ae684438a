import { PGLAND_VERSION } from '../package.js';
import { connectionSpecification } from './spec.js';

/*
 * `target-pgland --about [--format text|json|markdown]`, as Singer SDK
 * targets answer it: Meltano reads it to learn a plugin's settings. The
 * settings are pgland's destination keys (the same JSON Schema `pgland
 * airbyte spec` prints, so the three cannot drift apart) with the Singer
 * defaults, plus the keys of Meltano's Postgres target that pgland reads
 * (docs/protocols.md). It needs no config.
 */

export type AboutFormat = 'text' | 'json' | 'markdown';

interface Setting {
  type: string;
  default?: unknown;
  secret?: boolean;
  description: string;
}

/** The keys of Meltano's target-postgres that singerConfig translates (config.ts). */
const MELTANO_SETTINGS: Record<string, Setting> = {
  sqlalchemy_url: { type: 'string', secret: true, description: 'A SQLAlchemy URL (postgresql+psycopg://…), read as url.' },
  default_target_schema: { type: 'string', description: 'The schema to land in (pgland: schema).' },
  ssl_enable: { type: 'boolean', default: false, description: 'Use the ssl_* keys below.' },
  ssl_mode: { type: 'string', default: 'verify-full', description: 'TLS mode when ssl_enable is true (pgland: sslmode).' },
  ssl_certificate_authority: { type: 'string', description: 'CA certificate when ssl_enable is true (pgland: sslrootcert).' },
  ssl_client_certificate_enable: { type: 'boolean', default: false, description: 'Present a client certificate.' },
  ssl_client_certificate: { type: 'string', description: 'Client certificate (pgland: sslcert).' },
  ssl_client_private_key: { type: 'string', secret: true, description: 'Client certificate key (pgland: sslkey).' },
  hard_delete: { type: 'boolean', default: false, description: 'Remove deleted rows instead of marking them (pgland: delete_mode hard).' },
  activate_version: { type: 'boolean', default: true, description: 'Act on ACTIVATE_VERSION: delete the rows of older versions.' },
  batch_size_rows: { type: 'integer', description: 'Records per batch (pgland: batch_size).' },
  batch_wait_limit_seconds: { type: 'number', description: 'Minimum seconds between two commits caused by STATE messages.' },
  load_method: { type: 'string', default: 'upsert', description: 'upsert, or append-only (keys ignored, every record appended).' },
};

/** Singer's defaults where they differ from Airbyte's. */
const SINGER_DEFAULTS: Record<string, unknown> = { provider: 'singer', missing_key: 'fail' };

/** A setting's type; a key that also takes its text form ("true") is its first type, as the config file gives it. */
function typeOf(prop: Record<string, unknown>): string {
  if (typeof prop.type === 'string') return prop.type;
  const first = Array.isArray(prop.anyOf) ? (prop.anyOf[0] as { type?: unknown } | undefined)?.type : undefined;
  return typeof first === 'string' ? first : 'string';
}

function settings(): Record<string, Setting> {
  const out: Record<string, Setting> = {};
  for (const [key, prop] of Object.entries(connectionSpecification().properties ?? {})) {
    const def = Object.hasOwn(SINGER_DEFAULTS, key) ? SINGER_DEFAULTS[key] : prop.default;
    out[key] = {
      type: typeOf(prop),
      ...(def === undefined ? {} : { default: def }),
      ...(prop.airbyte_secret === true ? { secret: true } : {}),
      description: typeof prop.description === 'string' ? prop.description : '',
    };
  }
  return { ...out, ...MELTANO_SETTINGS };
}

/** What `--about --format json` prints, in the shape of the Singer SDK's. */
export function aboutInfo(): Record<string, unknown> {
  const s = settings();
  return {
    name: 'target-pgland',
    description: 'pgland as a Singer target: lands each stream in a PostgreSQL table named after it, with schema evolution and exact numbers',
    version: PGLAND_VERSION,
    // datatype-failsafe: a value that does not fit its column lands as NULL, kept in the raw payload, with a problem row.
    capabilities: ['about', 'activate-version', 'hard-delete', 'datatype-failsafe'],
    settings: {
      type: 'object',
      properties: Object.fromEntries(
        Object.entries(s).map(([k, v]) => [
          k,
          {
            type: [v.type, 'null'],
            ...(v.default === undefined ? {} : { default: v.default }),
            ...(v.secret ? { secret: true, writeOnly: true } : {}),
            description: v.description,
          },
        ]),
      ),
    },
  };
}

const cell = (v: unknown): string => (v === undefined ? '' : String(typeof v === 'string' ? v : JSON.stringify(v)).replace(/\|/g, '\\|'));

/** The about text in one of the SDK's three formats. */
export function aboutText(format: AboutFormat): string {
  const info = aboutInfo();
  if (format === 'json') return JSON.stringify(info, null, 2);
  const s = settings();
  const caps = info.capabilities as string[];
  if (format === 'markdown') {
    return [
      `# \`${String(info.name)}\``,
      '',
      String(info.description),
      '',
      `Version: ${String(info.version)}`,
      '',
      '## Capabilities',
      '',
      ...caps.map((c) => `* \`${c}\``),
      '',
      '## Settings',
      '',
      '| Setting | Type | Default | Secret | Description |',
      '|:--------|:-----|:--------|:-------|:------------|',
      ...Object.entries(s).map(([k, v]) => `| ${k} | ${v.type} | ${cell(v.default)} | ${v.secret ? 'yes' : ''} | ${cell(v.description)} |`),
    ].join('\n');
  }
  return [
    `Name: ${String(info.name)}`,
    `Description: ${String(info.description)}`,
    `Version: ${String(info.version)}`,
    `Capabilities: ${caps.join(', ')}`,
    'Settings:',
    ...Object.entries(s).map(
      ([k, v]) => `  ${k} (${v.type}${v.default === undefined ? '' : `, default ${cell(v.default)}`}${v.secret ? ', secret' : ''}): ${v.description}`,
    ),
  ].join('\n');
}
