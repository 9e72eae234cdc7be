import { describe, expect, test } from "bun:test";
import { commandUsage, helpLines, parseCommandLine } from "../../src/core/client-commands.ts";

describe("parseCommandLine", () => {
  test("send keeps the message as typed after the one space that separates it", () => {
    expect(parseCommandLine("send bob hello   there  world  ")).toEqual({
      kind: "command",
      command: { kind: "send", to: "bob", text: "hello   there  world  " },
    });
    expect(parseCommandLine("send bob   indented")).toEqual({
      kind: "command",
      command: { kind: "send", to: "bob", text: "  indented" },
    });
    expect(parseCommandLine("  send\tbob\t x y ")).toEqual({
      kind: "command",
      command: { kind: "send", to: "bob", text: " x y " },
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

  test("send_all keeps the whole rest of the line after the separating space", () => {
    expect(parseCommandLine("send_all  hello  all ")).toEqual({
      kind: "command",
      command: { kind: "send-all", text: " hello  all " },
    });
  });

  test("a lone colon after the name (or after send_all) separates, as in the original client", () => {
    const sends: [string, string][] = [
      ["send y : hi", "hi"],
      ["send y :  hi there ", " hi there "],
      ["send y\t:\thi", "hi"],
      ["send y : : ", ": "],
    ];
    for (const [line, text] of sends) {
      expect(parseCommandLine(line)).toEqual({
        kind: "command",
        command: { kind: "send", to: "y", text },
      });
    }
    expect(parseCommandLine("send_all : hello all")).toEqual({
      kind: "command",
      command: { kind: "send-all", text: "hello all" },
    });
  });

  test("a colon that is part of the message stays in it", () => {
    const sends: [string, string][] = [
      ["send y :-)", ":-)"],
      ["send y :hi", ":hi"],
      ["send y hi : there", "hi : there"],
      ["send y ::", "::"],
      ["send y 12:30 ok", "12:30 ok"],
    ];
    for (const [line, text] of sends) {
      expect(parseCommandLine(line)).toEqual({
        kind: "command",
        command: { kind: "send", to: "y", text },
      });
    }
    expect(parseCommandLine("send_all :-) all")).toEqual({
      kind: "command",
      command: { kind: "send-all", text: ":-) all" },
    });
    expect(parseCommandLine("send y: hi")).toEqual({
      kind: "command",
      command: { kind: "send", to: "y:", text: "hi" },
    });
  });

  test("a colon with no message after it is a usage error", () => {
    expect(parseCommandLine("send y :")).toEqual({ kind: "usage", usage: commandUsage.send });
    expect(parseCommandLine("send y :   ")).toEqual({ kind: "usage", usage: commandUsage.send });
    expect(parseCommandLine("send_all :")).toEqual({ kind: "usage", usage: commandUsage.sendAll });
  });

  test("showall is list and exit is quit", () => {
    expect(parseCommandLine("showall")).toEqual({
      kind: "command",
      command: { kind: "list", prefix: "" },
    });
    expect(parseCommandLine("exit")).toEqual({ kind: "command", command: { kind: "quit" } });
    expect(parseCommandLine("exit now")).toEqual({ kind: "usage", usage: commandUsage.quit });
  });

  test("list takes an optional prefix and nothing more", () => {
    expect(parseCommandLine("list Al")).toEqual({
      kind: "command",
      command: { kind: "list", prefix: "Al" },
    });
    expect(parseCommandLine("showall a")).toEqual({
      kind: "command",
      command: { kind: "list", prefix: "a" },
    });
    expect(parseCommandLine("list a b")).toEqual({ kind: "usage", usage: commandUsage.list });
  });

  test("missing arguments give the command's usage", () => {
    expect(parseCommandLine("send")).toEqual({ kind: "usage", usage: commandUsage.send });
    expect(parseCommandLine("send bob")).toEqual({ kind: "usage", usage: commandUsage.send });
    expect(parseCommandLine("send bob    ")).toEqual({ kind: "usage", usage: commandUsage.send });
    expect(parseCommandLine("send_all")).toEqual({ kind: "usage", usage: commandUsage.sendAll });
    expect(parseCommandLine("send_all   ")).toEqual({ kind: "usage", usage: commandUsage.sendAll });
    expect(parseCommandLine("dereg")).toEqual({ kind: "usage", usage: commandUsage.dereg });
    expect(parseCommandLine("reg")).toEqual({ kind: "usage", usage: commandUsage.reg });
    expect(parseCommandLine("whois")).toEqual({ kind: "usage", usage: commandUsage.whois });
    expect(parseCommandLine("trust ")).toEqual({ kind: "usage", usage: commandUsage.trust });
  });

  test("extra arguments are refused where none belong", () => {
    expect(parseCommandLine("dereg bob now")).toEqual({ kind: "usage", usage: commandUsage.dereg });
    expect(parseCommandLine("reg bob x")).toEqual({ kind: "usage", usage: commandUsage.reg });
    expect(parseCommandLine("help me")).toEqual({ kind: "usage", usage: commandUsage.help });
    expect(parseCommandLine("quit now")).toEqual({ kind: "usage", usage: commandUsage.quit });
    expect(parseCommandLine("whois bob carol")).toEqual({
      kind: "usage",
      usage: commandUsage.whois,
    });
    expect(parseCommandLine("trust bob now")).toEqual({ kind: "usage", usage: commandUsage.trust });
  });

  test("whois and trust take one name", () => {
    expect(parseCommandLine("whois Bob")).toEqual({
      kind: "command",
      command: { kind: "whois", name: "Bob" },
    });
    expect(parseCommandLine("  trust bob ")).toEqual({
      kind: "command",
      command: { kind: "trust", name: "bob" },
    });
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
    expect(parseCommandLine("list")).toEqual({
      kind: "command",
      command: { kind: "list", prefix: "" },
    });
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

  test("help lists every command and the aliases, its explanations in one column", () => {
    for (const usage of Object.values(commandUsage)) {
      expect(helpLines.some((line) => line.startsWith(`${usage} `))).toBe(true);
    }
    expect(helpLines.some((line) => line.includes("showall") && line.includes("exit"))).toBe(true);
    expect(helpLines.some((line) => line.startsWith("send <name> : <message> "))).toBe(true);
    const columns = helpLines.map((line) => /^\S+(?: \S+)*\s{2,}/.exec(line)?.[0].length);
    expect(new Set(columns).size).toBe(1);
    expect(columns[0]).toBeGreaterThan(0);
  });
});
