export type LogLevel = "quiet" | "normal" | "verbose";

export interface ServerOptions {
  readonly port: number;
  readonly dataDir: string;
  readonly logLevel: LogLevel;
}

export interface ClientOptions {
  readonly name: string;
  /** An IP literal (names such as `localhost` are resolved before this point). */
  readonly serverIp: string;
  readonly serverPort: number;
  readonly clientPort: number;
}
