import pg from 'pg';
import { PglandError } from '../errors.js';

/** node-postgres settings, plus whether a cleartext password may go over an unencrypted connection. */
export interface GuardedClientConfig extends pg.ClientConfig {
  allowCleartextPassword?: boolean;
  /** host:port as configured, for the error message. */
  target?: string;
}

interface ClientInternals {
  connection: { stream?: { encrypted?: boolean; destroy(): void }; emit(event: 'error', err: Error): void };
}

type AuthHandler = (this: pg.Client, msg: unknown) => void;

// node-postgres answers AuthenticationCleartextPassword in this method, and
// offers no option to refuse it; fail loudly if an upgrade renames it.
const answerCleartext = (pg.Client.prototype as unknown as { _handleAuthCleartextPassword?: AuthHandler })._handleAuthCleartextPassword;
if (typeof answerCleartext !== 'function')
  throw new Error('node-postgres no longer has Client#_handleAuthCleartextPassword: pgland cannot guard cleartext passwords');

/**
 * A node-postgres client that does not send the password in cleartext over
 * an unencrypted connection. With sslmode=prefer a server (or anything that
 * answers on its address) may decline TLS and then ask for the password in
 * cleartext (pg_hba.conf method `password`); node-postgres would send it.
 * Like libpq's require_auth=!password, pgland refuses unless the config
 * allows it (allow_cleartext_password). Over TLS it is sent: the channel is
 * encrypted. An SSH tunnel does not count: it ends at the bastion.
 */
export class GuardedClient extends pg.Client {
  private readonly allowCleartext: boolean;
  private readonly target: string;

  constructor(config: GuardedClientConfig = {}) {
    super(config);
    this.allowCleartext = config.allowCleartextPassword === true;
    this.target = config.target ?? `${config.host ?? 'localhost'}:${config.port ?? 5432}`;
  }

  _handleAuthCleartextPassword(msg: unknown): void {
    const { connection } = this as unknown as ClientInternals;
    if (this.allowCleartext || connection.stream?.encrypted === true) {
      answerCleartext!.call(this, msg);
      return;
    }
    connection.emit('error', refusal(this.target));
    connection.stream?.destroy();
  }
}

function refusal(target: string): PglandError {
  return new PglandError(
    'cleartext_password_refused',
    `the server at ${target} asked for the password in cleartext over a connection that is not encrypted: pgland did not send it`,
    {
      hint:
        'turn TLS on at the server and set sslmode to require or verify-full; or change the pg_hba.conf method from password to scram-sha-256; ' +
        'only if the network between pgland and the server is trusted, set "allow_cleartext_password": true',
    },
  );
}
