/**
 * Characters a peer could use to move the cursor, run terminal escape sequences,
 * forge extra lines or reorder what the reader sees:
 * C0 and C1 controls and DEL (Cc), lone surrogates (Cs), the bidi marks,
 * embeddings, overrides and isolates, the line and paragraph separators, the
 * deprecated shaping and mirroring controls (U+206A–U+206F) and the interlinear
 * annotation controls (U+FFF9–U+FFFB).
 * ZWJ and ZWNJ (U+200D, U+200C), variation selectors and tag characters stay:
 * emoji and many scripts need them, and they cannot move text around.
 */
const unsafe =
  /[\p{Cc}\p{Cs}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029\u206A-\u206F\uFFF9-\uFFFB]/gu;

function escapeCodePoint(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  const hex = code.toString(16).toUpperCase();
  return code < 0x100 ? `\\x${hex.padStart(2, "0")}` : `\\u{${hex.padStart(4, "0")}}`;
}

/**
 * Makes text from the network safe to print on one terminal line: every unsafe
 * character is shown as `\xHH` (below U+0100) or `\u{HHHH}`, never interpreted.
 */
export function sanitiseForTerminal(text: string): string {
  // A literal backslash is left alone: `\x1B` typed by a peer is harmless text, and
  // doubling every backslash would garble paths and emoticons for no safety gain.
  return text.replace(unsafe, escapeCodePoint);
}
