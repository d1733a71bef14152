// URL helpers shared by the client API server, the peer transport and the corruption checks.

/** A member URL as a gRPC target: "http://127.0.0.1:2380" -> "127.0.0.1:2380" (default ports 80/443). */
export function grpcTarget(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
}

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
