/**
 * The JSON text of an array that goes to many receivers (a table push's entries),
 * computed once: the datagram's body and the digest its MAC covers read the same text.
 */
const texts = new WeakMap<readonly unknown[], string>();

export function sharedJson(values: readonly unknown[]): string {
  let text = texts.get(values);
  if (text === undefined) {
    text = JSON.stringify(values);
    texts.set(values, text);
  }
  return text;
}
