import { describe, expect, test } from "bun:test";
import { commandUsage, helpLines, parseCommandLine } from "../../src/core/client-commands.ts";

describe("parseCommandLine", () => {
  test("send keeps the spaces inside the message and trims its ends", () => {
    expect(parseCommandLine("send bob hello   there  world  ")).toEqual({
      kind: "command",
      command: { kind: "send", to: "bob", text: "hello   there  world" },
    });
    expect(parseCommandLine("  send\tbob\t x y ")).toEqual({
      kind: "command",
      command: { kind: "send", to: "bob", text: "x y" },
    });
  });

  test("send takes any Unicode text, including what looks like a command", () => {
    for (const text of ["Grüße 世界 👋🏽", "send bob x", "dereg me", "a\\nb", "🎉"]) {
      expect(parseCommandLine(`send bob ${text}`)).toEqual({
        kind: "command",
        command: { kind: "send", to: "bob", text },
      });
    }
  });

  test("send_all keeps the whole rest of the line", () => {
    expect(parseCommandLine("send_all  hello  all ")).toEqual({
      kind: "command",
      command: { kind: "send-all", text: "hello  all" },
    });
  });

  test("missing arguments give the command's usage", () => {
    expect(parseCommandLine("send")).toEqual({ kind: "usage", usage: commandUsage.send });
    expect(parseCommandLine("send bob")).toEqual({ kind: "usage", usage: commandUsage.send });
    expect(parseCommandLine("send bob    ")).toEqual({ kind: "usage", usage: commandUsage.send });
    expect(parseCommandLine("send_all")).toEqual({ kind: "usage", usage: commandUsage.sendAll });
    expect(parseCommandLine("send_all   ")).toEqual({ kind: "usage", usage: commandUsage.sendAll });
    expect(parseCommandLine("dereg")).toEqual({ kind: "usage", usage: commandUsage.dereg });
    expect(parseCommandLine("reg")).toEqual({ kind: "usage", usage: commandUsage.reg });
  });

  test("extra arguments are refused where none belong", () => {
    expect(parseCommandLine("dereg bob now")).toEqual({ kind: "usage", usage: commandUsage.dereg });
    expect(parseCommandLine("reg bob x")).toEqual({ kind: "usage", usage: commandUsage.reg });
    expect(parseCommandLine("list all")).toEqual({ kind: "usage", usage: commandUsage.list });
    expect(parseCommandLine("help me")).toEqual({ kind: "usage", usage: commandUsage.help });
    expect(parseCommandLine("quit now")).toEqual({ kind: "usage", usage: commandUsage.quit });
  });

  test("dereg, reg, list, help and quit", () => {
    expect(parseCommandLine("dereg bob")).toEqual({
      kind: "command",
      command: { kind: "dereg", name: "bob" },
    });
    expect(parseCommandLine(" reg bob ")).toEqual({
      kind: "command",
      command: { kind: "reg", name: "bob" },
    });
    expect(parseCommandLine("list")).toEqual({ kind: "command", command: { kind: "list" } });
    expect(parseCommandLine("help")).toEqual({ kind: "command", command: { kind: "help" } });
    expect(parseCommandLine("quit")).toEqual({ kind: "command", command: { kind: "quit" } });
  });

  test("unknown commands name the word; commands are case-sensitive", () => {
    expect(parseCommandLine("sned bob hi")).toEqual({ kind: "unknown", word: "sned" });
    expect(parseCommandLine("SEND bob hi")).toEqual({ kind: "unknown", word: "SEND" });
    expect(parseCommandLine("send-all hi")).toEqual({ kind: "unknown", word: "send-all" });
    expect(parseCommandLine("\u001b[2J")).toEqual({ kind: "unknown", word: "\u001b[2J" });
  });

  test("blank lines are empty", () => {
    for (const line of ["", " ", "\t", "  \t  "])
      expect(parseCommandLine(line)).toEqual({ kind: "empty" });
  });

  test("help lists every command", () => {
    for (const usage of Object.values(commandUsage)) {
      expect(helpLines.some((line) => line.startsWith(usage))).toBe(true);
    }
  });
});
