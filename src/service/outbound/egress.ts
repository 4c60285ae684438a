import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { PglandError } from '../../errors.js';

/**
 * Which addresses the service's outbound requests (webhooks, URL sources) may
 * reach. An API caller names these URLs, so by default pgland refuses every
 * address that is not on the public internet: loopback, link-local (the cloud
 * metadata service), private, unique-local, CGNAT, unspecified, multicast and
 * reserved ranges, and IPv6 forms that embed such an IPv4 address. The
 * operator allows named networks with PGLAND_ALLOW_NETWORKS.
 *
 * The check is made on the addresses a host name resolves to, every one of
 * them, inside the connection's own lookup: the address checked is the address
 * connected to, so a name that resolves differently the second time (DNS
 * rebinding) gains nothing.
 */

const DENIED_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local: the cloud metadata service
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking, used as internal space
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

const DENIED_V6: [string, number][] = [
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible form
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

/** The IPv4 address a well-known NAT64 address (64:ff9b::/96) carries. */
function nat64Embedded(address: string): string | undefined {
  const m = /^64:ff9b::(?:([0-9a-f]{1,4}):)?([0-9a-f]{1,4})$/i.exec(new URL(`http://[${address}]/`).hostname.slice(1, -1));
  if (!m) return undefined;
  const n = (parseInt(m[1] ?? '0', 16) << 16) | parseInt(m[2]!, 16);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function blockList(entries: [string, number][], family: 'ipv4' | 'ipv6', into = new BlockList()): BlockList {
  for (const [net, prefix] of entries) into.addSubnet(net, prefix, family);
  return into;
}

const DENIED = blockList(DENIED_V6, 'ipv6', blockList(DENIED_V4, 'ipv4'));

/** Parses "10.1.0.0/16, ::1/128" (the PGLAND_ALLOW_NETWORKS syntax); a bare address is its own /32 or /128. */
export function parseNetworks(spec: string): string[] {
  const out: string[] = [];
  for (const item of spec.split(/[\s,]+/).filter(Boolean)) {
    const [address, bits, extra] = item.split('/');
    const family = isIP(address ?? '');
    const max = family === 6 ? 128 : 32;
    const prefix = bits === undefined ? max : Number(bits);
    if (!family || extra !== undefined || !/^\d{1,3}$/.test(bits ?? String(max)) || prefix > max) {
      throw new PglandError('config_invalid', `PGLAND_ALLOW_NETWORKS: "${item.slice(0, 60)}" is not an address or a CIDR network`, {
        hint: 'e.g. PGLAND_ALLOW_NETWORKS="10.20.0.0/16,fd00:1::/64"',
      });
    }
    out.push(`${address}/${prefix}`);
  }
  return out;
}

export class Egress {
  private readonly allowed = new BlockList();

  /** `allowNetworks`: CIDRs (parseNetworks) reachable even though they are not public. */
  constructor(readonly allowNetworks: readonly string[] = []) {
    for (const cidr of parseNetworks(allowNetworks.join(','))) {
      const [address, bits] = cidr.split('/') as [string, string];
      this.allowed.addSubnet(address, Number(bits), isIP(address) === 6 ? 'ipv6' : 'ipv4');
    }
  }

  /** Whether pgland may connect to this IP address. */
  allows(address: string): boolean {
    const family = isIP(address);
    if (!family) return false;
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (this.allowed.check(address, type)) return true;
    if (DENIED.check(address, type)) return false;
    const embedded = family === 6 ? nat64Embedded(address) : undefined;
    return embedded === undefined || this.allows(embedded);
  }

  /** Throws when the URL's host is an IP address pgland may not connect to (a name is checked when it is resolved). */
  checkLiteral(url: URL): void {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && !this.allows(host)) throw refused(url.hostname);
  }

  /**
   * A `lookup` for net.connect / http.request: resolves as usual, then refuses
   * the host if any of its addresses is not allowed.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true } as LookupAllOptions, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      if (addresses.length === 0 || addresses.some((a) => !this.allows(a.address))) return callback(refused(hostname), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      return callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/** The refusal: it names the host as the caller gave it, never the address it resolved to. */
export function refused(host: string): PglandError {
  return new PglandError(
    'egress_refused',
    `${host.slice(0, 100)} is not a public address (loopback, private, link-local or reserved), and pgland does not connect to those`,
    {
      hint: 'use a public address, or have the operator allow the network with PGLAND_ALLOW_NETWORKS (docs/security.md)',
    },
  );
}

export function isEgressRefused(err: unknown): err is PglandError {
  return err instanceof PglandError && err.code === 'egress_refused';
}
