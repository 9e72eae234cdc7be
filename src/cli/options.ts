import type { FaultSpec } from "../io/fault-injection.ts";

export type LogLevel = "quiet" | "normal" | "verbose";

export interface ServerOptions {
  readonly port: number;
  /** An IP literal to listen on; all interfaces when omitted. */
  readonly bind?: string;
  readonly dataDir: string;
  /** Offline names with nothing stored are forgotten after this many days. */
  readonly retentionDays: number;
  /** Stored messages the server keeps in all, at most. */
  readonly storeQuota: number;
  readonly logLevel: LogLevel;
  readonly simulate?: FaultSpec;
  /** Serve /healthz and /metrics over HTTP (`--http`, `--http-bind`); off when omitted. */
  readonly http?: HttpOptions;
  /** This node's name in the log and metrics; the host name and UDP port when omitted. */
  readonly nodeName?: string;
  /** `--redis URL` (or CHATAPP_REDIS_URL): the store is that Redis instead of SQLite. */
  readonly redis?: string;
}

export interface HttpOptions {
  readonly port: number;
  /** An IP literal; 127.0.0.1 unless told. */
  readonly bind: string;
}

export interface ClientOptions {
  readonly name: string;
  /** An IP literal (names such as `localhost` are resolved before this point). */
  readonly serverIp: string;
  readonly serverPort: number;
  readonly clientPort: number;
  /** `--identity FILE`; otherwise the file under the user's config directory. */
  readonly identity?: string;
  readonly simulate?: FaultSpec;
}
