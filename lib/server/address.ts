// Where the server listens, as a URL, and which Host names a loopback server answers to (the DNS rebinding guard).
import { BlockList, isIP } from 'node:net';

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
  const name = m[2]!.toLowerCase();
  return name === 'localhost' || names.has(name) || (isIP(name) === 4 && isLoopbackAddress(name));
}
