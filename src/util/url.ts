// URL helpers shared by the client API server, the peer transport and the corruption checks.

/** A member URL as a gRPC target: "http://127.0.0.1:2380" -> "127.0.0.1:2380" (default ports 80/443). */
export function grpcTarget(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
}
