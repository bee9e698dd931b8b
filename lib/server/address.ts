// Where the server listens: the host and port checked before the model loads (and the port held meanwhile), the URL
// of the bound address, and which Host names a loopback server answers to (the DNS rebinding guard).
import { lookup } from 'node:dns/promises';
import { BlockList, createServer, isIP } from 'node:net';

import { MultiloraError } from '../core/errors';
import { describe } from '../core/validate';

/** 127.0.0.0/8 and ::1; Node's BlockList also matches the IPv4-mapped form (::ffff:127.0.0.2) against the first. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether an IP address (IPv6 without brackets) is a loopback address. A host name is not. */
export function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The URL of a bound address and port: IPv6 in brackets. */
export function urlOf(address: string, port: number): string {
  return `http://${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
}

/** For an address that means every address of the machine (0.0.0.0, ::), what it means; otherwise undefined. */
export function everyAddress(address: string): string | undefined {
  if (address === '0.0.0.0') return 'every IPv4 address of this machine';
  if (isIP(address) === 6 && /^[0:]+$/.test(address)) return 'every IPv6 and IPv4 address of this machine';
  return undefined;
}

/** A Host header: a name or an IPv4 address, or an IPv6 address in brackets, and an optional port. */
const HOST_HEADER = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::\d{1,5})?$/;

/**
 * Whether a loopback server may answer a request with this Host header: any 127.x.y.z, [::1] (or an IPv4-mapped
 * loopback address), localhost, or one of `names` (the host name it was started with). A page of another site that
 * reaches the server by DNS rebinding sends its own site's name, and is refused.
 */
export function isLoopbackHost(header: string | undefined, names: ReadonlySet<string>): boolean {
  const m = HOST_HEADER.exec(header ?? '');
  if (!m) return false;
  if (m[1] !== undefined) return isIP(m[1]) === 6 && isLoopbackAddress(m[1]);
  const name = m[2].toLowerCase();
  return name === 'localhost' || names.has(name) || (isIP(name) === 4 && isLoopbackAddress(name));
}

function invalid(message: string, cause?: unknown): MultiloraError {
  return new MultiloraError('ERR_INVALID_ARGUMENT', message, { cause });
}

/** The address a host stands for: itself for an IP address, the first a name resolves to (as Node's listen takes). */
export async function resolveHost(host: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  if (/^\d+(\.\d+){3}$/.test(host)) {
    throw invalid(
      `Expected an IP address or a host name for host but received ${describe(host)}: an IPv4 address has four numbers from 0 to 255`,
    );
  }
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9.])?$/.test(host)) {
    throw invalid(`Expected an IP address or a host name for host but received ${describe(host)}`);
  }
  try {
    return (await lookup(host)).address;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'lookup failed';
    throw invalid(
      `Expected an IP address or a host name that resolves for host but received ${describe(host)} (${code})`,
      err,
    );
  }
}

/** What listening on `address`:`port` failed with, as the option to change. */
export function listenError(err: NodeJS.ErrnoException, host: string, port: number): MultiloraError {
  switch (err.code) {
    case 'EADDRINUSE':
      return invalid(
        `Expected a free port for port but received ${port}: another program listens on it (EADDRINUSE); give another port, or 0 for any free one`,
        err,
      );
    case 'EACCES':
      return invalid(
        `Expected a port this user may listen on for port but received ${port} (EACCES): ports below 1024 need privileges`,
        err,
      );
    case 'EADDRNOTAVAIL':
      return invalid(
        `Expected an address of this machine for host but received ${describe(host)} (EADDRNOTAVAIL)`,
        err,
      );
    default:
      return invalid(`Cannot listen on ${describe(host)} port ${port}: ${err.message}`, err);
  }
}

/** A port bound on an address and held until released, so that the long load after the check cannot lose it. */
export interface Reservation {
  release(): Promise<void>;
}

/**
 * Binds `address`:`port` (a connection meanwhile is closed at once), so that a port in use or an address not of this
 * machine fails in milliseconds, before a model loads for minutes. Rejects with listenError's ERR_INVALID_ARGUMENT.
 */
export function reserve(host: string, address: string, port: number): Promise<Reservation> {
  const server = createServer((socket) => socket.destroy());
  // The load or the wait that follows keeps the process alive; the reservation alone never does (a caller that
  // dropped it by mistake would otherwise hang at exit).
  server.unref();
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port)));
    server.listen({ host: address, port, exclusive: true }, () => {
      let released: Promise<void> | undefined;
      resolve({
        release: () => (released ??= new Promise<void>((done) => server.close(() => done()))),
      });
    });
  });
}
