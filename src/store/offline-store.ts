/** A client as the server's table holds it. `name` keeps the case it registered with. */
export interface ClientRecord {
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  readonly online: boolean;
  /** The session id of its current session. */
  readonly token: string;
  /** The public keys the name is bound to (base64url): trust on first use. */
  readonly sk: string;
  readonly ak: string;
  /** The current session's key (base64url), so sessions outlive a server restart. */
  readonly sessionKey: string;
  /** When it last registered or went offline, epoch ms UTC: a name is forgotten a retention period after. */
  readonly lastSeen: number;
}

export type StoredMessageKind = "direct" | "channel";

/**
 * A message kept for a recipient that was offline; `receivedAt` is the server's clock,
 * epoch ms UTC. `ref` is the id the sender gave the message: with the sender's name it
 * names the message wherever a copy of it travels, so no copy is shown twice.
 */
export interface StoredMessage {
  readonly id: number;
  readonly recipient: string;
  readonly sender: string;
  readonly kind: StoredMessageKind;
  readonly text: string;
  readonly receivedAt: number;
  readonly ref: number;
}

export type StoreChange =
  | { readonly kind: "put-client"; readonly client: ClientRecord }
  | { readonly kind: "remove-client"; readonly name: string }
  | { readonly kind: "put-message"; readonly message: StoredMessage }
  | { readonly kind: "remove-messages"; readonly ids: readonly number[] };

export interface StoreSnapshot {
  /** In order of first registration, as the table shows them. */
  readonly clients: readonly ClientRecord[];
  /** Ordered by id, which is the order of receipt. */
  readonly messages: readonly StoredMessage[];
}

/**
 * The durable side of the server: the core keeps the whole state in memory and
 * writes every change through here. `apply` returns only once the changes are committed,
 * all of them or none, so an acknowledgement sent after it never outruns the disk.
 */
export interface OfflineStore {
  load(): StoreSnapshot;
  apply(changes: readonly StoreChange[]): void;
  close(): void;
}
