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
  /** In a cluster: the node its session is (or last was) at. */
  readonly node?: string;
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
  /** A channel message's text; empty for a sealed one, whose text the server never sees. */
  readonly text: string;
  readonly receivedAt: number;
  readonly ref: number;
  /** A direct message as its sender sealed it for the recipient. */
  readonly sealed?: SealedContent;
}

/**
 * A sealed direct message as the server keeps it: the nonce and box it cannot open, and
 * the sender's agreement key as bound when it was saved, which the recipient opens it
 * with (the sender's name may be forgotten and bound anew before it is delivered).
 */
export interface SealedContent {
  readonly n: string;
  readonly box: string;
  readonly ak: string;
}

/**
 * What the server keeps in memory of a stored message: all but its content (text or
 * sealed box), which is read from the store when the message is delivered, so memory
 * does not grow with it.
 */
export type StoredSummary = Omit<StoredMessage, "text" | "sealed"> & {
  /** The content's size as it is on disk (contentBytes): what the store quota counts. */
  readonly textBytes: number;
};

export function summaryOf(message: StoredMessage): StoredSummary {
  const { text: _text, sealed: _sealed, ...rest } = message;
  return { ...rest, textBytes: contentBytes(message) };
}

/** The bytes a stored message's content takes: its text in UTF-8, and a sealed one's fields (ASCII). */
export function contentBytes(message: Pick<StoredMessage, "text" | "sealed">): number {
  const { sealed } = message;
  const sealedBytes = sealed ? sealed.n.length + sealed.box.length + sealed.ak.length : 0;
  return utf8Length(message.text) + sealedBytes;
}

/** Bytes of a text in UTF-8; a lone surrogate counts as the U+FFFD that replaces it on disk. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

export type StoreChange =
  | { readonly kind: "put-client"; readonly client: ClientRecord }
  | { readonly kind: "remove-client"; readonly name: string }
  | { readonly kind: "put-message"; readonly message: StoredMessage }
  | {
      readonly kind: "remove-messages";
      readonly ids: readonly number[];
      /** The recipient's name key, so other nodes of a cluster find them in their index. */
      readonly recipient?: string;
    };

/** What the server starts from: the table and the index of stored messages, no texts. */
export interface ServerSnapshot {
  /** In order of first registration, as the table shows them. */
  readonly clients: readonly ClientRecord[];
  /** Ordered by id, which is the order of receipt. */
  readonly messages: readonly StoredSummary[];
}

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
  /** Everything, texts included: for tools and tests. */
  load(): StoreSnapshot;
  /** What the server keeps in memory at start. */
  loadSummary(): ServerSnapshot;
  /** The committed messages with these ids (those not on disk are left out), by id. */
  readMessages(ids: readonly number[]): StoredMessage[];
  apply(changes: readonly StoreChange[]): void;
  close(): void;
}
