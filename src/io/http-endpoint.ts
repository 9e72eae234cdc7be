import { BindError, bindProblem, PortInUseError } from "./errors.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./prometheus-text.ts";

export type Health = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface HttpEndpointOptions {
  readonly port: number;
  readonly hostname: string;
  readonly health: () => Health;
  /** The metrics in the Prometheus text format. */
  readonly metrics: () => string;
  readonly onProblem: (text: string) => void;
}

export interface HttpEndpoint {
  readonly port: number;
  /** Where it listens, as a URL (IPv6 in brackets). */
  readonly url: string;
  close(): void;
}

const TEXT = "text/plain; charset=utf-8";

/**
 * `GET /healthz` and `GET /metrics` with `Bun.serve`; any other path is 404, any
 * other method on those two 405. Nothing here reads a request body.
 */
export function openHttpEndpoint(options: HttpEndpointOptions): HttpEndpoint {
  const { port, hostname } = options;
  let server: Bun.Server<undefined>;
  try {
    server = Bun.serve({
      port,
      hostname,
      development: false,
      // With development off, Bun.serve otherwise sets SO_REUSEPORT: a second server on
      // the same port starts without a word and the kernel splits requests between them.
      reusePort: false,
      maxRequestBodySize: 1024,
      fetch: (request) => respond(request, options),
      error: (error) => {
        options.onProblem(`error while answering an HTTP request: ${String(error)}`);
        return new Response("internal error\n", { status: 500, headers: { "content-type": TEXT } });
      },
    });
  } catch (error) {
    const code = errorCode(error);
    if (code === "EADDRINUSE") throw new PortInUseError(port, "HTTP");
    throw new BindError(hostname, port, bindProblem(code, String(error)), "HTTP");
  }
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    port: server.port ?? port,
    url: `http://${host}:${server.port ?? port}`,
    close() {
      server.stop(true);
    },
  };
}

function respond(request: Request, options: HttpEndpointOptions): Response {
  const path = new URL(request.url).pathname;
  if (path !== "/healthz" && path !== "/metrics") return plain(404, "not found");
  if (request.method !== "GET" && request.method !== "HEAD") {
    return plain(405, "only GET and HEAD", { allow: "GET, HEAD" });
  }
  if (path === "/metrics") {
    return new Response(options.metrics(), {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
    });
  }
  const health = options.health();
  return health.ok ? plain(200, "ok") : plain(503, health.reason);
}

function plain(status: number, text: string, headers: Record<string, string> = {}): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { "content-type": TEXT, "cache-control": "no-store", ...headers },
  });
}

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error
    ? String((error as { code: unknown }).code)
    : undefined;
}
