// URL helpers shared by the client API server, the peer transport and the corruption checks.

/** A member URL as a gRPC target: "http://127.0.0.1:2380" -> "127.0.0.1:2380" (default ports 80/443). */
export function grpcTarget(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${urlPort(u)}`;
}

/**
 * The port a URL names. WHATWG's URL drops a scheme's default port (`http://h:80` has port ''),
 * where etcd's URLs always carry theirs.
 */
export function urlPort(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' || u.protocol === 'unixs:' ? 443 : 80;
}

/** The host a URL names as listen and lookup take it: an IPv6 literal without its brackets. */
export function urlHost(u: URL): string {
  return u.hostname.replace(/^\[|\]$/g, '');
}

/** Go's net.JoinHostPort: "host:port", an IPv6 literal in brackets. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Whether `url` names a host and port a member can dial or listen on. */
export function dialable(url: string): boolean {
  try {
    return new URL(url).hostname !== '';
  } catch {
    return false; // a port over 65535, a malformed host, ...
  }
}

/** The schemes etcd takes in a member's URLs (types.NewURLs). */
export const MEMBER_URL_SCHEMES: readonly string[] = ['http', 'https', 'unix', 'unixs'];

/**
 * Why `s` is not a URL etcd would take (its types.NewURLs, with its messages), or undefined: a
 * scheme of `schemes`, an address of the form host:port (any digits for the port, as Go's
 * net/url and net.SplitHostPort read it), and no path.
 */
export function etcdUrlProblem(s: string, schemes: readonly string[] = MEMBER_URL_SCHEMES): string | undefined {
  const u = s.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(u)?.[1]?.toLowerCase();
  if (scheme === undefined || !schemes.includes(scheme)) return `URL scheme must be ${schemeList(schemes)}: ${u}`;
  const m = /^[^:]*:\/\/([^/?#]*)([^?#]*)/.exec(u);
  // The address after any user info: host:port, the host an [IPv6] literal or free of colons.
  const hostPort = m?.[1]!.slice(m[1]!.lastIndexOf('@') + 1);
  if (hostPort === undefined || !/^(\[[^\]]*\]|[^:[\]]*):\d*$/.test(hostPort)) return `URL address does not have the form "host:port": ${u}`;
  if (m![2] !== '') return `URL must not contain a path: ${u}`;
  return undefined;
}

const schemeList = (schemes: readonly string[]): string =>
  schemes.length <= 2 ? schemes.join(' or ') : `${schemes.slice(0, -1).join(', ')}, or ${schemes[schemes.length - 1]}`;

/**
 * An HTTP request's target as a URL, or undefined if it is not one: Node's HTTP parser accepts
 * targets (`//[`, `//a:99999/`) that `new URL` throws on, and a throw in a request handler
 * would take the member down.
 */
export function requestUrl(target: string | undefined): URL | undefined {
  try {
    // A path (`//version` too: Go reads it as a path, where a URL resolved against a base
    // would take `version` for a host), or an absolute URL.
    if (target === undefined) return new URL('http://localhost/');
    return target.startsWith('/') ? new URL(`http://localhost${target}`) : new URL(target, 'http://localhost');
  } catch {
    return undefined;
  }
}

/** etcd's URLsMap.String(): `name=url` pairs, sorted, comma-separated. */
export function urlsMapString(m: ReadonlyMap<string, readonly string[]>): string {
  return [...m]
    .flatMap(([name, urls]) => urls.map((u) => `${name}=${u}`))
    .sort()
    .join(',');
}
