import { isTombstone, type TableChange } from "./messages.ts";

/**
 * How a table entry travels: an array in a fixed order, `[name, ip, port, online, ak]`
 * (`ak` left out when a delta leaves it out), and a forgotten name as `[name]`. As an
 * object an entry was about 120 bytes, 40 of them its field names; a client receives
 * every entry of the table, so at 10,000 clients the names alone were 4 GB.
 */
export type EntryOnWire =
  | readonly [name: string]
  | readonly [name: string, ip: string, port: number, online: boolean]
  | readonly [name: string, ip: string, port: number, online: boolean, ak: string];

export function entryOnWire(change: TableChange): EntryOnWire {
  if (isTombstone(change)) return [change.name];
  const { name, ip, port, online, ak } = change;
  return ak === undefined ? [name, ip, port, online] : [name, ip, port, online, ak];
}

/**
 * The JSON text of a push's entries, computed once per array: a push goes to many
 * clients, and the datagram's body and the digest its MAC covers read the same text.
 */
const texts = new WeakMap<readonly TableChange[], string>();

export function tableEntriesJson(changes: readonly TableChange[]): string {
  let text = texts.get(changes);
  if (text === undefined) {
    text = JSON.stringify(changes.map(entryOnWire));
    texts.set(changes, text);
  }
  return text;
}

/** What one change adds to a part's text: its JSON and the comma after it. */
export function bytesOnWire(change: TableChange): number {
  return JSON.stringify(entryOnWire(change)).length + 1;
}
