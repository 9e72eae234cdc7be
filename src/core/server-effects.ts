import type { Address, Message } from "../protocol/messages.ts";
import type { StoreChange } from "../store/offline-store.ts";

export type ServerInput =
  | { readonly kind: "datagram"; readonly from: Address; readonly bytes: Uint8Array }
  | { readonly kind: "tick" };

export type LogLevel = "info" | "debug" | "warn";

/**
 * What the shell carries out, in order. A step's `persist` always comes first, so
 * nothing sent in the same step can claim more than what has been committed.
 */
export type ServerEffect =
  | { readonly kind: "persist"; readonly changes: readonly StoreChange[] }
  | { readonly kind: "send"; readonly to: Address; readonly message: Message }
  | { readonly kind: "log"; readonly level: LogLevel; readonly text: string };

/** Counts of datagrams dropped without being acted on, by reason. */
export interface DropCounts {
  malformed: number;
  unauthenticated: number;
  unexpected: number;
  rateLimited: number;
}

export interface ServerDeps {
  /** A fresh unguessable session token (TOKEN_LENGTH lowercase hex characters). */
  newToken(): string;
  /** A random starting point for the server's own request ids, so a restarted server never reuses them. */
  firstRequestId: number;
  /**
   * The registration cookie for an address in one period of time (COOKIE_LENGTH lowercase
   * hex): unguessable without the server's secret, so echoing it proves the sender
   * receives at that address.
   */
  cookieFor(address: Address, period: number): string;
}
