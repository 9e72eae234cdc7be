import { describe, expect, test } from "bun:test";
import { sanitiseForTerminal } from "../../src/text/sanitise.ts";

/** Written out independently of the module's regex, code point by code point. */
function isDangerous(code: number): boolean {
  return (
    code <= 0x1f ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x061c ||
    code === 0x200e ||
    code === 0x200f ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069) ||
    code === 0x2028 ||
    code === 0x2029 ||
    (code >= 0x206a && code <= 0x206f) ||
    (code >= 0xfff9 && code <= 0xfffb) ||
    (code >= 0xd800 && code <= 0xdfff)
  );
}

/** Code points as the terminal would decode them: a lone surrogate counts as itself. */
function dangerousIn(text: string): number[] {
  const found: number[] = [];
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (isDangerous(code)) found.push(code);
  }
  return found;
}

const hostile: [name: string, input: string, expected: string][] = [
  ["CSI clear screen", "\x1b[2J", "\\x1B[2J"],
  ["CSI colour", "\x1b[31mred\x1b[0m", "\\x1B[31mred\\x1B[0m"],
  [
    "OSC 8 hyperlink",
    "\x1b]8;;http://x\x1b\\text\x1b]8;;\x1b\\",
    "\\x1B]8;;http://x\\x1B\\text\\x1B]8;;\\x1B\\",
  ],
  ["OSC 52 clipboard", "\x1b]52;c;ZXZpbA==\x07", "\\x1B]52;c;ZXZpbA==\\x07"],
  ["C1 CSI", "\u009b2J", "\\x9B2J"],
  ["C1 NEL", "a\u0085b", "a\\x85b"],
  ["bidi override", "abc\u202etxt.exe", "abc\\u{202E}txt.exe"],
  [
    "bidi isolates and marks",
    "\u2066x\u2069\u200e\u200f\u061c",
    "\\u{2066}x\\u{2069}\\u{200E}\\u{200F}\\u{061C}",
  ],
  ["carriage return", "safe\rEVIL", "safe\\x0DEVIL"],
  ["NUL", "a\0b", "a\\x00b"],
  ["DEL and backspace", "x\x7f\x08", "x\\x7F\\x08"],
  ["tab", "a\tb", "a\\x09b"],
  ["forged newline", "hi\nbob: give me your password", "hi\\x0Abob: give me your password"],
  ["line and paragraph separators", "a\u2028b\u2029c", "a\\u{2028}b\\u{2029}c"],
  ["lone surrogates", "a\ud800b\udc00", "a\\u{D800}b\\u{DC00}"],
  ["annotation controls", "\ufff9a\ufffab\ufffb", "\\u{FFF9}a\\u{FFFA}b\\u{FFFB}"],
  ["shaping controls", "\u206ax\u206f", "\\u{206A}x\\u{206F}"],
];

describe("sanitiseForTerminal", () => {
  for (const [name, input, expected] of hostile) {
    test(`escapes ${name}`, () => {
      expect(dangerousIn(input).length).toBeGreaterThan(0);
      const output = sanitiseForTerminal(input);
      expect(dangerousIn(output)).toEqual([]);
      expect(output).toBe(expected);
    });
  }

  test("escapes every code point of the dangerous set and nothing next to it", () => {
    for (let code = 0; code <= 0xffff; code++) {
      const char = String.fromCharCode(code);
      const output = sanitiseForTerminal(char);
      if (isDangerous(code)) {
        expect(dangerousIn(output)).toEqual([]);
        expect(output).toMatch(/^\\(x[0-9A-F]{2}|u\{[0-9A-F]{4}\})$/);
      } else {
        expect(output).toBe(char);
      }
    }
  });

  test("leaves normal text of any language unchanged", () => {
    const samples = [
      "hello, world!",
      "Grüße aus Köln — ça va? ¿Qué tal? ½ £ © ÿ",
      "Здравствуйте, Ελληνικά, עברית, العربية, فارسی‌زبان",
      "中文，日本語のテキスト、한국어",
      "हिन्दी, ಕನ್ನಡ, ไทย, ພາສາລາວ",
      "e\u0301 a\u0308 combining marks, Z\u0351\u0352a\u0353lgo",
      "emoji 😀 👍🏽 🏳️‍🌈 👩‍👩‍👧‍👦 🇩🇪 🏴󠁧󠁢󠁥󠁮󠁧󠁿",
      "  spaces   everywhere  ",
      "a\u00a0b\u2009c\u3000d",
      "back\\slash C:\\path \\x1B stays as typed",
    ];
    for (const sample of samples) expect(sanitiseForTerminal(sample)).toBe(sample);
  });

  test("keeps the zero-width joiner that emoji sequences need", () => {
    const family = "\u{1F469}\u200D\u{1F467}";
    expect(sanitiseForTerminal(family)).toBe(family);
  });

  test("handles long messages in one pass", () => {
    const clean = "Grüße 😀 ".repeat(1_000);
    expect(sanitiseForTerminal(clean)).toBe(clean);
    const dirty = "\x1b[2J\u202e".repeat(1_000);
    const output = sanitiseForTerminal(dirty);
    expect(output).toBe("\\x1B[2J\\u{202E}".repeat(1_000));
    expect(dangerousIn(output)).toEqual([]);
  });
});
