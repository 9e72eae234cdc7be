/**
 * Every line a client user sees, in one place. The bracketed ones are SPEC.md's
 * strings, to the letter; the terminal puts the `>>> ` in front of each.
 */
export const notices = {
  welcome: "[Welcome, You are registered.]",
  tableUpdated: "[Client table updated.]",
  messageReceivedBy: (name: string) => `[Message received by ${name}.]`,
  noAckSentToServer: (name: string) => `[No ACK from ${name}, message sent to server.]`,
  offlineBye: "[You are Offline. Bye.]",
  serverNotResponding: "[Server not responding]",
  exiting: "[Exiting]",
  clientExists: (name: string) => `[Client ${name} exists!!]`,
  savedByServer: "[Messages received by the server and saved]",
  youHaveMessages: "[You have messages]",
  channelReceivedByServer: "[Message received by Server.]",
  channelServerNotResponding: "[Server not responding.]",

  directMessage: (sender: string, text: string) => `${sender}: ${text}`,
  storedDirectMessage: (sender: string, timestamp: string, text: string) =>
    `${sender}: ${timestamp} ${text}`,
  storedChannelMessage: (sender: string, timestamp: string, text: string) =>
    `Channel-Message ${sender}: ${timestamp} ${text}`,
  channelMessage: (sender: string, text: string) => `[Channel_Message ${sender}: ${text}]`,

  nameTaken: (name: string) => `[The name ${name} is in use by another online client.]`,
  unknownRecipient: (name: string) =>
    `[No client named ${name} in the table. Type list to see who is there.]`,
  serverRefusedUnknownRecipient: (name: string) => `[The server has no client named ${name}.]`,
  messageTooLong: (length: number, limit: number) =>
    `[Message too long: ${length} characters, the limit is ${limit}.]`,
  mailboxFull: (name: string) => `[The server holds too many messages for ${name}; not saved.]`,
  storeFull: "[The server's message store is full; not saved.]",
  storeFailed: "[The server could not write to its disk; nothing was saved. Try again later.]",
  slowDown: "[The server refused: too many new names from this address. Try again in a minute.]",
  channelNotStoredFor: (count: number) =>
    `[The server could not keep the message for ${count} offline member${count === 1 ? "" : "s"} (mailbox or store full).]`,
  notRegistered: "[You are offline. Type reg <name> to come back first.]",
  alreadyRegistered: "[You are already registered.]",
  alreadyOffline: "[You are already offline. Type reg <name> to come back.]",
  badName: (name: string) => `[The server refused the name ${name}.]`,
  serverTooLong: (limit: number) => `[The server refused the message: over ${limit} characters.]`,
  tableHeading: (total: number, matching?: number, prefix?: string) =>
    `[Client table: ${tableCount(total, matching, prefix)}]`,
  tableHeadingOffline: (total: number, matching?: number, prefix?: string) =>
    `[Client table: ${tableCount(total, matching, prefix)}, as it was when you went offline]`,
  tableRow: (name: string, address: string, online: boolean) =>
    `  ${name}  ${address}  ${online ? "online" : "offline"}`,
  tableCount: (shown: number, online: number) =>
    `[${clients(shown)} shown, ${online.toLocaleString("en-US")} online]`,
  notYourName: (own: string) => `[You are ${own}; you can only use your own name here.]`,
  finishingBeforeQuit:
    "[Leaving once the messages on their way have an answer. Type quit again to leave now.]",
  unknownCommand: (word: string) => `[Unknown command: ${word}. Type help for the list.]`,
  usage: (line: string) => `[Usage: ${line}]`,
  otherAddressFamily: (name: string, theirs: string, ours: string) =>
    `[Cannot reach ${name} directly: ${name} registered over ${theirs}, you over ${ours}. Start both clients with the same kind of server address.]`,
  unusableKey: (name: string) =>
    `[Cannot seal a message for ${name}: the key the table holds for ${name} is unusable. Nothing was sent.]`,
  registeringAgain: "[The server lost track of you; registering again.]",
  sessionExpired:
    "[The server no longer knows this session. Restart the client to register again.]",
  released: (name: string, dropped: number) =>
    `Released the name ${name}: its next registration binds the key it shows.${dropped > 0 ? ` ${dropped} stored message(s) for the old key were deleted.` : ""}`,
  /** `where`: "the data directory DIR" or "Redis at URL". */
  releaseUnknown: (name: string, where: string) => `no name ${name} is bound in ${where}`,
  wrongKey: (name: string) =>
    `[The server refused the name ${name}: it belongs to another key. Use the identity file you registered it with (--identity FILE), or ask the server's operator to release the name.]`,
  serverKeyChanged: (address: string, pinned: string, offered: string) =>
    `[WARNING: the server at ${address} offers key ${offered}, not ${pinned} as pinned on an earlier run. Someone may be impersonating it: not registering. If its operator really changed its keys, remove its line from your .servers file.]`,
  whois: (name: string, where: string, online: boolean, fingerprint: string) =>
    `[${name}: ${where}, ${online ? "online" : "offline"}, key ${fingerprint}]`,
  whoisSelf: (name: string, where: string | undefined, online: boolean, fingerprint: string) =>
    `[${name} (you): ${where === undefined ? "" : `${where}, `}${online ? "online" : "offline"}, key ${fingerprint}]`,
  whoisChangedKey: (
    name: string,
    where: string,
    online: boolean,
    offered: string,
    trusted: string,
  ) =>
    `[${name}: ${where}, ${online ? "online" : "offline"}, key ${offered}, NOT the key ${trusted} first seen for ${name}. Type trust ${name} to accept it.]`,
  peerKeyChanged: (name: string, trusted: string, offered: string) =>
    `[WARNING: the key of ${name} changed from ${trusted} to ${offered}. Someone may be impersonating ${name}, or ${name} made a new identity: ask ${name}, by other means, for the key their whois ${name} shows. Not sending to ${name} until you type trust ${name}.]`,
  storedKeyRefused: (name: string, count: number, offered: string, trusted: string) =>
    `[WARNING: ${count} stored message${count === 1 ? "" : "s"} from ${name} ${count === 1 ? "was" : "were"} sealed with key ${offered}, not ${trusted}, the key you accepted for ${name}: not shown, and the server does not keep ${count === 1 ? "it" : "them"}. Someone may be impersonating ${name}, or ${name} made a new identity: ask ${name}, by other means, for the key their whois ${name} shows; if it is the new one, type trust ${name} and ask ${name} to send again.]`,
  notSendingChangedKey: (name: string) =>
    `[Not sending to ${name}: its key changed and you have not accepted the new one. See whois ${name}; type trust ${name} to accept it.]`,
  trustedNewKey: (name: string, fingerprint: string) =>
    `[Trusting the new key of ${name}: ${fingerprint}.]`,
  keyUnchanged: (name: string, fingerprint: string) =>
    `[The key of ${name} has not changed; ${fingerprint} is trusted already.]`,
  trustSelf: (name: string) => `[${name} is you: your own key needs no trust.]`,
} as const;

function clients(count: number): string {
  return `${count.toLocaleString("en-US")} client${count === 1 ? "" : "s"}`;
}

function tableCount(
  total: number,
  matching: number | undefined,
  prefix: string | undefined,
): string {
  if (matching === undefined || prefix === undefined) return clients(total);
  return `${matching.toLocaleString("en-US")} of ${clients(total)} with names starting "${prefix}"`;
}
