import type {
  ClientRecord,
  StoreChange,
  StoredMessage,
  StoredMessageKind,
} from "./offline-store.ts";

export function isStoredMessageKind(value: unknown): value is StoredMessageKind {
  return value === "direct" || value === "channel";
}

/** A change that no store may accept; thrown before anything of its batch is written. */
export class InvalidStoreChangeError extends Error {
  constructor(
    readonly index: number,
    reason: string,
  ) {
    super(`Store change ${index} is invalid: ${reason}`);
    this.name = "InvalidStoreChangeError";
  }
}

const isNonEmptyString = (value: unknown): value is string =>
  typeof value === "string" && value.length > 0;

/** Why a client record cannot be stored, or undefined when it can. Checks values, not just types: callers may be plain JS. */
export function clientProblem(client: ClientRecord): string | undefined {
  if (!isNonEmptyString(client.name)) return `client name must be a non-empty string`;
  if (typeof client.ip !== "string") return `client ${client.name} has an ip that is not a string`;
  if (!Number.isInteger(client.port) || client.port < 0 || client.port > 65_535) {
    return `client ${client.name} has port ${String(client.port)}, expected an integer 0-65535`;
  }
  if (typeof client.online !== "boolean") return `client ${client.name} has a non-boolean online`;
  if (typeof client.token !== "string")
    return `client ${client.name} has a token that is not a string`;
  for (const field of ["sk", "ak", "sessionKey"] as const) {
    if (typeof client[field] !== "string") {
      return `client ${client.name} has a ${field} that is not a string`;
    }
  }
  if (!Number.isSafeInteger(client.lastSeen) || client.lastSeen < 0) {
    return `client ${client.name} has lastSeen ${String(client.lastSeen)}, expected a time in ms`;
  }
  return undefined;
}

export function messageProblem(message: StoredMessage): string | undefined {
  if (!Number.isSafeInteger(message.id)) {
    return `message id ${String(message.id)} is not a safe integer`;
  }
  const at = `message ${message.id}`;
  if (!isNonEmptyString(message.recipient)) return `${at} has no recipient`;
  if (!isNonEmptyString(message.sender)) return `${at} has no sender`;
  if (!isStoredMessageKind(message.kind)) {
    return `${at} has kind ${String(message.kind)}, expected "direct" or "channel"`;
  }
  if (typeof message.text !== "string") return `${at} has a text that is not a string`;
  if (message.sealed !== undefined) {
    const { sealed } = message;
    if (message.kind !== "direct") return `${at} is sealed but not a direct message`;
    if (message.text !== "") return `${at} is sealed and has a text in clear as well`;
    if (typeof sealed !== "object" || sealed === null) return `${at} has a malformed seal`;
    for (const field of ["n", "box", "ak"] as const) {
      if (!isNonEmptyString(sealed[field])) return `${at} has a sealed ${field} that is empty`;
    }
  }
  if (!Number.isSafeInteger(message.receivedAt)) {
    return `${at} has receivedAt ${String(message.receivedAt)}, expected epoch milliseconds`;
  }
  if (!Number.isSafeInteger(message.ref) || message.ref < 0) {
    return `${at} has ref ${String(message.ref)}, expected the sender's message id`;
  }
  return undefined;
}

function changeProblem(change: StoreChange): string | undefined {
  switch (change.kind) {
    case "put-client":
      return clientProblem(change.client);
    case "put-message":
      return messageProblem(change.message);
    case "remove-client":
      return isNonEmptyString(change.name) ? undefined : "remove-client needs a name";
    case "remove-messages": {
      if (!Array.isArray(change.ids)) return "remove-messages needs an array of ids";
      const bad = change.ids.find((id) => !Number.isSafeInteger(id));
      return bad === undefined ? undefined : `message id ${String(bad)} is not a safe integer`;
    }
    default:
      return `unknown change kind ${String((change satisfies never as { kind: unknown }).kind)}`;
  }
}

/** Throws InvalidStoreChangeError for the first change that no store could accept. */
export function checkStoreChanges(changes: readonly StoreChange[]): void {
  changes.forEach((change, index) => {
    const problem = changeProblem(change);
    if (problem !== undefined) throw new InvalidStoreChangeError(index, problem);
  });
}

/*
 * SQLite stores text as UTF-8, which turns a lone surrogate into U+FFFD; the
 * copies do the same so that every store gives back the same strings.
 */

export function copyClient(client: ClientRecord): ClientRecord {
  return {
    name: client.name.toWellFormed(),
    ip: client.ip.toWellFormed(),
    port: client.port,
    online: client.online,
    token: client.token.toWellFormed(),
    sk: client.sk.toWellFormed(),
    ak: client.ak.toWellFormed(),
    sessionKey: client.sessionKey.toWellFormed(),
    lastSeen: client.lastSeen,
    ...(client.node === undefined ? {} : { node: client.node.toWellFormed() }),
  };
}

export function copyMessage(message: StoredMessage): StoredMessage {
  return {
    id: message.id,
    recipient: message.recipient.toWellFormed(),
    sender: message.sender.toWellFormed(),
    kind: message.kind,
    text: message.text.toWellFormed(),
    receivedAt: message.receivedAt,
    ref: message.ref,
    ...(message.sealed === undefined
      ? {}
      : { sealed: { n: message.sealed.n, box: message.sealed.box, ak: message.sealed.ak } }),
  };
}
