import { describe, expect, test } from "bun:test";
import {
  checkName,
  DEFAULT_DATA_DIR,
  parseBindAddress,
  parseClientArgs,
  parsePort,
  parseReleaseArgs,
  parseServerArgs,
  parseServerIp,
} from "../../src/cli/parse-args.ts";
import { routeArgv } from "../../src/cli/route-argv.ts";
import { USAGE_ANY, USAGE_CLIENT, USAGE_RELEASE, USAGE_SERVER } from "../../src/cli/usage.ts";
import { UsageError } from "../../src/cli/usage-error.ts";
import { NAME_RULE } from "../../src/protocol/names.ts";

function refusal(run: () => unknown): UsageError {
  try {
    run();
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error("expected a UsageError, got none");
}

function expectRefused(run: () => unknown, message: string, usage: string): void {
  const error = refusal(run);
  expect(error.message).toBe(message);
  expect(error.usage).toBe(usage);
}

const client =
  (...args: string[]) =>
  () =>
    parseClientArgs(args);
const server =
  (...args: string[]) =>
  () =>
    parseServerArgs(args);

describe("parseServerArgs", () => {
  test("--retention and --store-quota take whole numbers from 1 up", () => {
    expect(parseServerArgs(["5000", "--retention", "7", "--store-quota=500"])).toMatchObject({
      retentionDays: 7,
      storeQuota: 500,
    });
    for (const bad of [
      ["--retention", "0"],
      ["--retention", "1.5"],
      ["--store-quota", "-3"],
      ["--store-quota", "1e6"],
      ["--retention", "007"],
    ]) {
      expect(() => parseServerArgs(["5000", ...bad])).toThrow(
        /must be a number of (days|messages) from 1 up/,
      );
    }
    expect(() => parseServerArgs(["5000", "--retention"])).toThrow(
      /--retention needs a number of days/,
    );
    expect(() => parseServerArgs(["5000", "--store-quota", "5", "--store-quota", "6"])).toThrow(
      /given twice/,
    );
  });

  test("a port alone gives the defaults", () => {
    expect(parseServerArgs(["5000"])).toEqual({
      port: 5000,
      dataDir: DEFAULT_DATA_DIR,
      retentionDays: 30,
      storeQuota: 100_000,
      logLevel: "normal",
    });
    expect(DEFAULT_DATA_DIR).toBe("./chatapp-data");
  });

  test("options before or after the port, with = or a separate value", () => {
    expect(parseServerArgs(["--data-dir", "/tmp/d", "5000", "--quiet"])).toEqual({
      port: 5000,
      dataDir: "/tmp/d",
      retentionDays: 30,
      storeQuota: 100_000,
      logLevel: "quiet",
    });
    expect(parseServerArgs(["65535", "--data-dir=rel/dir", "--verbose"])).toEqual({
      port: 65535,
      dataDir: "rel/dir",
      retentionDays: 30,
      storeQuota: 100_000,
      logLevel: "verbose",
    });
    expect(parseServerArgs(["1024", "--quiet", "--quiet"]).logLevel).toBe("quiet");
  });

  test("-- ends the options", () => {
    expect(parseServerArgs(["--", "5000"]).port).toBe(5000);
  });

  test("refusals", () => {
    const cases: [string[], string][] = [
      [[], "missing argument <port>"],
      [["--quiet"], "missing argument <port>"],
      [["5000", "6000"], 'unexpected argument "6000" (server mode takes 1 argument, got 2)'],
      [["80"], 'port must be an integer from 1024 to 65535, got "80"'],
      [["1023"], 'port must be an integer from 1024 to 65535, got "1023"'],
      [["65536"], 'port must be an integer from 1024 to 65535, got "65536"'],
      [["-5"], 'port must be an integer from 1024 to 65535, got "-5"'],
      [["5000.5"], 'port must be an integer from 1024 to 65535, got "5000.5"'],
      [["0x1400"], 'port must be an integer from 1024 to 65535, got "0x1400"'],
      [["abc"], 'port must be an integer from 1024 to 65535, got "abc"'],
      [[""], 'port must be an integer from 1024 to 65535, got ""'],
      [
        ["5000", "--foo"],
        'unknown option "--foo" (server options: --bind, --data-dir, --retention, --store-quota, --quiet, --verbose, --simulate, --http, --http-bind, --node-name, --redis)',
      ],
      [
        ["5000", "-q"],
        'unknown option "-q" (server options: --bind, --data-dir, --retention, --store-quota, --quiet, --verbose, --simulate, --http, --http-bind, --node-name, --redis)',
      ],
      [["5000", "--quiet", "--verbose"], "--quiet and --verbose cannot be used together"],
      [["5000", "--quiet=yes"], '--quiet takes no value, got "--quiet=yes"'],
      [["5000", "--data-dir"], "--data-dir needs a directory, as in --data-dir ./chatapp-data"],
      [
        ["5000", "--data-dir", "--quiet"],
        "--data-dir needs a directory, as in --data-dir ./chatapp-data",
      ],
      [["5000", "--data-dir="], "--data-dir must not be empty"],
      [["5000", "--data-dir", "a", "--data-dir", "b"], "--data-dir is given twice"],
    ];
    for (const [args, message] of cases) expectRefused(server(...args), message, USAGE_SERVER);
  });
});

describe("--bind", () => {
  test("an address of either family, localhost, or all interfaces", () => {
    expect(parseServerArgs(["5000", "--bind", "127.0.0.1"]).bind).toBe("127.0.0.1");
    expect(parseServerArgs(["--bind=::1", "5000"]).bind).toBe("::1");
    expect(parseServerArgs(["5000", "--bind", "[::1]"]).bind).toBe("::1");
    expect(parseServerArgs(["5000", "--bind", "localhost"]).bind).toBe("127.0.0.1");
    expect(parseBindAddress("0.0.0.0")).toBe("0.0.0.0");
    expect(parseBindAddress("::")).toBe("::");
    expect(parseBindAddress("0:0::0")).toBe("::");
    expect(parseServerArgs(["5000"]).bind).toBeUndefined();
  });

  test("refused like the server IP, naming --bind", () => {
    const cases: [string[], string][] = [
      [["5000", "--bind"], "--bind needs an address, as in --bind 127.0.0.1"],
      [["5000", "--bind", "--quiet"], "--bind needs an address, as in --bind 127.0.0.1"],
      [["5000", "--bind="], "--bind must not be empty"],
      [["5000", "--bind", "::1", "--bind", "::1"], "--bind is given twice"],
      [
        ["5000", "--bind", "127.0.0.01"],
        '--bind "127.0.0.01" is not a valid IPv4 address: "01" has a leading zero',
      ],
      [
        ["5000", "--bind", "0.1.2.3"],
        '--bind "0.1.2.3" is not an address of this machine; 0.0.0.0 means all IPv4 interfaces',
      ],
      [
        ["5000", "--bind", "224.0.0.1"],
        '--bind "224.0.0.1" is a multicast address; give an address of this machine',
      ],
      [["5000", "--bind", "1::2::3"], '--bind "1::2::3" is not a valid IPv6 address'],
      [
        ["5000", "--bind", "example.com"],
        '--bind must be an IPv4 address such as 127.0.0.1, an IPv6 address or localhost, got "example.com" (host names other than localhost are not looked up)',
      ],
    ];
    for (const [args, message] of cases) expectRefused(server(...args), message, USAGE_SERVER);
  });
});

describe("--http, --http-bind and --node-name", () => {
  test("--http takes a TCP port and listens on 127.0.0.1 unless --http-bind says otherwise", () => {
    expect(parseServerArgs(["5000", "--http", "9100"]).http).toEqual({
      port: 9100,
      bind: "127.0.0.1",
    });
    expect(parseServerArgs(["5000", "--http=9100", "--http-bind", "::"]).http).toEqual({
      port: 9100,
      bind: "::",
    });
    expect(parseServerArgs(["--http-bind=[::1]", "--http", "9100", "5000"]).http).toEqual({
      port: 9100,
      bind: "::1",
    });
    expect(parseServerArgs(["5000", "--http", "5000", "--http-bind", "localhost"]).http).toEqual({
      port: 5000,
      bind: "127.0.0.1",
    });
    expect(parseServerArgs(["5000"]).http).toBeUndefined();
  });

  test("--node-name: short and plain; absent unless given", () => {
    expect(parseServerArgs(["5000", "--node-name", "chat-1.eu"]).nodeName).toBe("chat-1.eu");
    expect(parseServerArgs(["5000", "--node-name=eu_1:5000"]).nodeName).toBe("eu_1:5000");
    expect(parseServerArgs(["5000", "--node-name", "x".repeat(64)]).nodeName).toHaveLength(64);
    expect(parseServerArgs(["5000"]).nodeName).toBeUndefined();
  });

  test("refusals name the option", () => {
    const rule =
      "a node name is 1 to 64 characters: ASCII letters, digits, _ . : - [ ], starting with a letter or digit";
    const cases: [string[], string][] = [
      [["5000", "--http"], "--http needs a TCP port, as in --http 9100"],
      [["5000", "--http", "--quiet"], "--http needs a TCP port, as in --http 9100"],
      [["5000", "--http", "80"], '--http must be an integer from 1024 to 65535, got "80"'],
      [["5000", "--http", "09100"], '--http "09100" has a leading zero; write 9100'],
      [["5000", "--http", "9100", "--http", "9101"], "--http is given twice"],
      [
        ["5000", "--http-bind", "127.0.0.1"],
        "--http-bind needs --http, as in --http 9100 --http-bind 127.0.0.1",
      ],
      [
        ["5000", "--http", "9100", "--http-bind"],
        "--http-bind needs an address, as in --http-bind 127.0.0.1",
      ],
      [
        ["5000", "--http", "9100", "--http-bind", "224.0.0.1"],
        '--http-bind "224.0.0.1" is a multicast address; give an address of this machine',
      ],
      [
        ["5000", "--http", "9100", "--http-bind", "example.com"],
        '--http-bind must be an IPv4 address such as 127.0.0.1, an IPv6 address or localhost, got "example.com" (host names other than localhost are not looked up)',
      ],
      [
        ["5000", "--http", "9100", "--http-bind=::1", "--http-bind=::1"],
        "--http-bind is given twice",
      ],
      [["5000", "--node-name"], "--node-name needs a name, as in --node-name chat-1"],
      [["5000", "--node-name", "a", "--node-name", "b"], "--node-name is given twice"],
      [["5000", "--node-name="], `--node-name "" is not allowed: ${rule}`],
      [["5000", "--node-name", "a b"], `--node-name "a b" is not allowed: ${rule}`],
      [["5000", "--node-name", "a/b"], `--node-name "a/b" is not allowed: ${rule}`],
      [["5000", "--node-name", "-x"], "--node-name needs a name, as in --node-name chat-1"],
      [["5000", "--node-name", ".x"], `--node-name ".x" is not allowed: ${rule}`],
      [
        ["5000", "--node-name", "x".repeat(65)],
        `--node-name "${"x".repeat(60)}…" is not allowed: ${rule}`,
      ],
    ];
    for (const [args, message] of cases) expectRefused(server(...args), message, USAGE_SERVER);
  });
});

describe("--redis", () => {
  test("a Redis URL, from the flag or else from CHATAPP_REDIS_URL; absent unless given", () => {
    const url = "redis://127.0.0.1:6379/0";
    expect(parseServerArgs(["5000", "--redis", url]).redis).toBe(url);
    expect(parseServerArgs(["5000", "--redis=rediss://user:pw@cache:6380"]).redis).toBe(
      "rediss://user:pw@cache:6380",
    );
    expect(parseServerArgs(["5000"], { CHATAPP_REDIS_URL: url }).redis).toBe(url);
    expect(
      parseServerArgs(["5000", "--redis", "redis://a:1"], { CHATAPP_REDIS_URL: url }).redis,
    ).toBe("redis://a:1");
    expect(parseServerArgs(["5000"], { CHATAPP_REDIS_URL: "" }).redis).toBeUndefined();
    expect(parseServerArgs(["5000"]).redis).toBeUndefined();
  });

  test("refusals say what a Redis URL looks like", () => {
    const cases: [string[], string][] = [
      [["5000", "--redis"], "--redis needs a URL, as in --redis redis://127.0.0.1:6379/0"],
      [
        ["5000", "--redis", "--quiet"],
        "--redis needs a URL, as in --redis redis://127.0.0.1:6379/0",
      ],
      [
        ["5000", "--redis", "localhost:6379"],
        '--redis must start with redis:// or rediss://, as in redis://127.0.0.1:6379/0; got "localhost:6379"',
      ],
      [
        ["5000", "--redis", "not a url"],
        '--redis must be a Redis URL, as in redis://127.0.0.1:6379/0; got "not a url"',
      ],
      [
        ["5000", "--redis", "redis://h:1/0/x"],
        "--redis may end with a database number only, as in redis://127.0.0.1:6379/0",
      ],
      [["5000", "--redis", "redis://a:1", "--redis", "redis://b:1"], "--redis is given twice"],
    ];
    for (const [args, message] of cases) expectRefused(server(...args), message, USAGE_SERVER);
    expect(() => parseServerArgs(["5000"], { CHATAPP_REDIS_URL: "http://x" })).toThrow(
      'CHATAPP_REDIS_URL must start with redis:// or rediss://, as in redis://127.0.0.1:6379/0; got "http://x"',
    );
  });
});

describe("parseReleaseArgs", () => {
  test("a name and where it is bound: a data directory, or Redis from --redis or CHATAPP_REDIS_URL", () => {
    const url = "redis://127.0.0.1:6379/0";
    expect(parseReleaseArgs(["alice"])).toEqual({ name: "alice", dataDir: "./chatapp-data" });
    expect(parseReleaseArgs(["alice", "--data-dir", "d"])).toEqual({ name: "alice", dataDir: "d" });
    expect(parseReleaseArgs(["alice", "--redis", url])).toEqual({
      name: "alice",
      dataDir: "./chatapp-data",
      redis: url,
    });
    expect(parseReleaseArgs(["alice"], { CHATAPP_REDIS_URL: url }).redis).toBe(url);
    // A data directory named on the command line wins over the environment.
    expect(
      parseReleaseArgs(["alice", "--data-dir", "d"], { CHATAPP_REDIS_URL: url }).redis,
    ).toBeUndefined();
  });

  test("refusals", () => {
    const cases: [string[], string][] = [
      [["alice", "--redis"], "--redis needs a URL"],
      [
        ["alice", "--redis", "http://x"],
        '--redis must start with redis:// or rediss://, as in redis://127.0.0.1:6379/0; got "http://x"',
      ],
      [
        ["alice", "--redis", "redis://a:1", "--data-dir", "d"],
        "--data-dir and --redis cannot be used together: the name is in one or the other",
      ],
      [["alice", "--redis", "redis://a:1", "--redis", "redis://a:1"], "--redis is given twice"],
    ];
    for (const [args, message] of cases) {
      expectRefused(() => parseReleaseArgs(args), message, USAGE_RELEASE);
    }
  });
});

describe("parseClientArgs", () => {
  test("good arguments", () => {
    expect(parseClientArgs(["alice", "127.0.0.1", "5000", "5001"])).toEqual({
      name: "alice",
      serverIp: "127.0.0.1",
      serverPort: 5000,
      clientPort: 5001,
    });
    expect(parseClientArgs(["Bob.B-2_x", "localhost", "1024", "65535"])).toEqual({
      name: "Bob.B-2_x",
      serverIp: "127.0.0.1",
      serverPort: 1024,
      clientPort: 65535,
    });
    expect(parseClientArgs(["c", "::1", "5000", "5001"]).serverIp).toBe("::1");
  });

  test("wrong number of arguments", () => {
    expectRefused(
      client(),
      "missing argument <name> (client mode takes 4 arguments, got 0)",
      USAGE_CLIENT,
    );
    expectRefused(
      client("bob"),
      "missing argument <server-ip> (client mode takes 4 arguments, got 1)",
      USAGE_CLIENT,
    );
    expectRefused(
      client("bob", "127.0.0.1"),
      "missing argument <server-port> (client mode takes 4 arguments, got 2)",
      USAGE_CLIENT,
    );
    expectRefused(
      client("bob", "127.0.0.1", "5000"),
      "missing argument <client-port> (client mode takes 4 arguments, got 3)",
      USAGE_CLIENT,
    );
    expectRefused(
      client("bob", "127.0.0.1", "5000", "5001", "hello"),
      'unexpected argument "hello" (client mode takes 4 arguments, got 5)',
      USAGE_CLIENT,
    );
  });

  test("unknown options are refused, naming the ones a client takes", () => {
    expectRefused(
      client("bob", "127.0.0.1", "5000", "5001", "--verbose"),
      'unknown option "--verbose" (client options: --identity, --simulate)',
      USAGE_CLIENT,
    );
    expectRefused(
      client("-bob", "127.0.0.1", "5000", "5001"),
      'unknown option "-bob" (client options: --identity, --simulate)',
      USAGE_CLIENT,
    );
  });

  test("--identity FILE chooses the identity file, before or after the arguments", () => {
    expect(parseClientArgs(["bob", "127.0.0.1", "5000", "5001"]).identity).toBeUndefined();
    expect(
      parseClientArgs(["bob", "127.0.0.1", "5000", "5001", "--identity", "keys/bob.identity"])
        .identity,
    ).toBe("keys/bob.identity");
    expect(parseClientArgs(["--identity=/k/b", "bob", "127.0.0.1", "5000", "5001"]).identity).toBe(
      "/k/b",
    );
    expectRefused(
      client("bob", "127.0.0.1", "5000", "5001", "--identity"),
      "--identity needs a file, as in --identity ./alice.identity",
      USAGE_CLIENT,
    );
    expectRefused(
      client("bob", "127.0.0.1", "5000", "5001", "--identity="),
      "--identity must not be empty",
      USAGE_CLIENT,
    );
    expectRefused(
      client("bob", "127.0.0.1", "5000", "5001", "--identity", "a", "--identity", "b"),
      "--identity is given twice",
      USAGE_CLIENT,
    );
  });

  test("each port is named in its message", () => {
    expectRefused(
      client("bob", "127.0.0.1", "80", "5001"),
      'server-port must be an integer from 1024 to 65535, got "80"',
      USAGE_CLIENT,
    );
    expectRefused(
      client("bob", "127.0.0.1", "5000", "80"),
      'client-port must be an integer from 1024 to 65535, got "80"',
      USAGE_CLIENT,
    );
  });

  test("the name is checked before the address and the ports", () => {
    expectRefused(
      client("", "nowhere", "1", "2"),
      `name "" is not allowed: it is empty; a name is ${NAME_RULE}`,
      USAGE_CLIENT,
    );
  });
});

describe("parsePort", () => {
  test("the bounds are inclusive", () => {
    expect(parsePort("port", "1024", USAGE_SERVER)).toBe(1024);
    expect(parsePort("port", "65535", USAGE_SERVER)).toBe(65535);
  });

  test("a leading zero is refused, as in an IPv4 address", () => {
    expectRefused(
      () => parsePort("port", "05001", USAGE_SERVER),
      'port "05001" has a leading zero; write 5001',
      USAGE_SERVER,
    );
    expectRefused(
      client("x", "127.0.0.1", "5000", "006001"),
      'client-port "006001" has a leading zero; write 6001',
      USAGE_CLIENT,
    );
    expectRefused(
      client("x", "127.0.0.01", "5000", "6001"),
      'server-ip "127.0.0.01" is not a valid IPv4 address: "01" has a leading zero',
      USAGE_CLIENT,
    );
    expectRefused(
      () => parsePort("port", "0", USAGE_SERVER),
      'port must be an integer from 1024 to 65535, got "0"',
      USAGE_SERVER,
    );
  });

  test("no whitespace, signs or exponents", () => {
    for (const text of [" 5000", "5000 ", "+5000", "5e3", "999999"]) {
      expectRefused(
        () => parsePort("client-port", text, USAGE_CLIENT),
        `client-port must be an integer from 1024 to 65535, got "${text}"`,
        USAGE_CLIENT,
      );
    }
  });
});

describe("parseServerIp", () => {
  test("IP literals and localhost", () => {
    expect(parseServerIp("127.0.0.1")).toBe("127.0.0.1");
    expect(parseServerIp("192.168.1.20")).toBe("192.168.1.20");
    expect(parseServerIp("10.0.0.255")).toBe("10.0.0.255");
    expect(parseServerIp("localhost")).toBe("127.0.0.1");
    expect(parseServerIp("LocalHost")).toBe("127.0.0.1");
    expect(parseServerIp("::1")).toBe("::1");
    expect(parseServerIp("[::1]")).toBe("::1");
    expect(parseServerIp("FE80::1")).toBe("fe80::1");
    expect(parseServerIp("::ffff:127.0.0.1")).toBe("::ffff:127.0.0.1");
  });

  test("refusals say why", () => {
    const cases: [string, string][] = [
      ["", "server-ip must not be empty"],
      [
        "1.2.3",
        'server-ip "1.2.3" is not a valid IPv4 address: it needs four numbers from 0 to 255 separated by dots',
      ],
      [
        "1.2.3.4.5",
        'server-ip "1.2.3.4.5" is not a valid IPv4 address: it needs four numbers from 0 to 255 separated by dots',
      ],
      [
        "1..3.4",
        'server-ip "1..3.4" is not a valid IPv4 address: it needs four numbers from 0 to 255 separated by dots',
      ],
      ["1.2.3.256", 'server-ip "1.2.3.256" is not a valid IPv4 address: 256 is greater than 255'],
      ["127.0.0.01", 'server-ip "127.0.0.01" is not a valid IPv4 address: "01" has a leading zero'],
      [
        "0.0.0.0",
        'server-ip "0.0.0.0" is not a destination address; for a server on this machine use 127.0.0.1',
      ],
      [
        "255.255.255.255",
        'server-ip "255.255.255.255" is the broadcast address; give the address of the machine the server runs on',
      ],
      [
        "224.0.0.1",
        'server-ip "224.0.0.1" is a multicast address; give the address of the machine the server runs on',
      ],
      [
        "240.1.2.3",
        'server-ip "240.1.2.3" is a reserved address; give the address of the machine the server runs on',
      ],
      ["1:2", 'server-ip "1:2" is not a valid IPv6 address'],
      ["::", 'server-ip "::" is the unspecified address; for a server on this machine use ::1'],
      [
        "ff02::1",
        'server-ip "ff02::1" is a multicast address; give the address of the machine the server runs on',
      ],
      [
        "example.com",
        'server-ip must be an IPv4 address such as 127.0.0.1, an IPv6 address or localhost, got "example.com" (host names other than localhost are not looked up)',
      ],
      [
        "my host",
        'server-ip must be an IPv4 address such as 127.0.0.1, an IPv6 address or localhost, got "my host"',
      ],
    ];
    for (const [text, message] of cases) {
      expectRefused(() => parseServerIp(text), message, USAGE_CLIENT);
    }
  });
});

describe("checkName", () => {
  test("accepted names", () => {
    for (const name of ["a", "Z", "7", "alice", "bob.smith", "x_y-z", "a".repeat(32)]) {
      expect(checkName(name)).toBe(name);
    }
  });

  test("refusals say why", () => {
    const cases: [string, string][] = [
      ["", "it is empty"],
      ["a".repeat(33), "it has 33 characters"],
      ["_bob", 'it starts with "_"'],
      [".bob", 'it starts with "."'],
      ["bob smith", 'it contains " "'],
      ["josé", 'it contains "é"'],
      ["bob!", 'it contains "!"'],
    ];
    for (const [name, why] of cases) {
      expectRefused(
        () => checkName(name),
        `name "${name}" is not allowed: ${why}; a name is ${NAME_RULE}`,
        USAGE_CLIENT,
      );
    }
  });

  test("control characters are shown escaped, never sent to the terminal", () => {
    const message = refusal(() => checkName("bob\u001b[31m")).message;
    expect(message).toBe(
      `name "bob\\x1B[31m" is not allowed: it contains "\\x1B"; a name is ${NAME_RULE}`,
    );
    expect(message).not.toContain("\u001b");
  });

  test("a huge argument is cut short in the message", () => {
    const message = refusal(() => checkName("x".repeat(10_000))).message;
    expect(message).toStartWith(
      `name "${"x".repeat(60)}…" is not allowed: it has 10000 characters`,
    );
  });
});

describe("routeArgv", () => {
  test("-s and -c become citty subcommands", () => {
    expect(routeArgv(["-s", "5000"])).toEqual({ kind: "command", rawArgs: ["server", "5000"] });
    expect(routeArgv(["-c", "a", "b"])).toEqual({ kind: "command", rawArgs: ["client", "a", "b"] });
    expect(routeArgv(["server", "5000"])).toEqual({ kind: "command", rawArgs: ["server", "5000"] });
    expect(routeArgv(["client"])).toEqual({ kind: "command", rawArgs: ["client"] });
  });

  test("help anywhere goes to citty, even after a bad first argument", () => {
    expect(routeArgv(["--help"])).toEqual({ kind: "command", rawArgs: ["--help"] });
    expect(routeArgv(["-s", "--help"])).toEqual({ kind: "command", rawArgs: ["server", "--help"] });
    expect(routeArgv(["-c", "bob", "-h"])).toEqual({
      kind: "command",
      rawArgs: ["client", "bob", "-h"],
    });
    expect(routeArgv(["what", "--help"])).toEqual({ kind: "command", rawArgs: ["what", "--help"] });
  });

  test("version, alone", () => {
    expect(routeArgv(["--version"])).toEqual({ kind: "version" });
    expect(routeArgv(["-v"])).toEqual({ kind: "version" });
    expectRefused(
      () => routeArgv(["--version", "extra"]),
      '--version takes no other arguments, got "extra"',
      USAGE_ANY,
    );
    expectRefused(
      () => routeArgv(["-s", "5000", "-v"]),
      '-v takes no other arguments, got "-s"',
      USAGE_ANY,
    );
  });

  test("options before the mode are moved after it", () => {
    expect(routeArgv(["--data-dir", "X", "-s", "5000"])).toEqual({
      kind: "command",
      rawArgs: ["server", "--data-dir", "X", "5000"],
    });
    expect(routeArgv(["--quiet", "--bind=::1", "-s", "5000"])).toEqual({
      kind: "command",
      rawArgs: ["server", "--quiet", "--bind=::1", "5000"],
    });
    expect(routeArgv(["--simulate", "loss=0.1", "-c", "x", "::1", "5000", "6001"])).toEqual({
      kind: "command",
      rawArgs: ["client", "--simulate", "loss=0.1", "x", "::1", "5000", "6001"],
    });
    // A value that looks like a mode is still the option's value.
    expect(routeArgv(["--data-dir", "-c", "-s", "5000"])).toEqual({
      kind: "command",
      rawArgs: ["server", "--data-dir", "-c", "5000"],
    });
    expect(
      routeArgv(["--http", "9100", "--node-name", "n1", "--retention", "7", "-s", "5000"]),
    ).toEqual({
      kind: "command",
      rawArgs: ["server", "--http", "9100", "--node-name", "n1", "--retention", "7", "5000"],
    });
    expect(routeArgv(["--data-dir", "X", "-s", "--help"])).toEqual({
      kind: "command",
      rawArgs: ["server", "--data-dir", "X", "--help"],
    });
  });

  test("refusals", () => {
    expectRefused(
      () => routeArgv([]),
      "no mode given: use -s to run a server or -c to run a client",
      USAGE_ANY,
    );
    expectRefused(
      () => routeArgv(["chat"]),
      'unknown mode "chat": use -s to run a server or -c to run a client',
      USAGE_ANY,
    );
    expectRefused(
      () => routeArgv(["--server", "5000"]),
      'unknown option "--server": use -s to run a server or -c to run a client',
      USAGE_ANY,
    );
    expectRefused(
      () => routeArgv(["__proto__"]),
      'unknown mode "__proto__": use -s to run a server or -c to run a client',
      USAGE_ANY,
    );
    // Options only, or a word before the mode: no mode was given first.
    expectRefused(
      () => routeArgv(["--data-dir", "X", "5000"]),
      "no mode given: use -s to run a server or -c to run a client",
      USAGE_ANY,
    );
    expectRefused(
      () => routeArgv(["5000", "-s"]),
      'unknown mode "5000": use -s to run a server or -c to run a client',
      USAGE_ANY,
    );
  });
});

describe("--simulate", () => {
  test("both modes take a fault spec; without seed= the seed is the process's own port", () => {
    expect(
      parseServerArgs(["5000", "--simulate", "loss=0.2,dup=0.1,delay=0-300,seed=7"]).simulate,
    ).toEqual({
      loss: 0.2,
      duplication: 0.1,
      delayMinMs: 0,
      delayMaxMs: 300,
      seed: 7,
    });
    expect(
      parseClientArgs(["x", "127.0.0.1", "5000", "6001", "--simulate=loss=0.3"]).simulate,
    ).toEqual({
      loss: 0.3,
      duplication: 0,
      delayMinMs: 0,
      delayMaxMs: 0,
      seed: 6001,
    });
    expect(parseServerArgs(["5000", "--simulate", "loss=0.3"]).simulate?.seed).toBe(5000);
    expect(parseServerArgs(["5000"]).simulate).toBeUndefined();
  });

  test("bad specs are refused with the reason and the syntax", () => {
    const syntax = "expected loss=P,dup=P,delay=MIN-MAX,seed=N (P from 0 to 1, delays in ms)";
    expectRefused(
      server("5000", "--simulate", "loss=2"),
      `--simulate loss must be a number from 0 to 1, got "2"; ${syntax}`,
      USAGE_SERVER,
    );
    expectRefused(
      client("x", "127.0.0.1", "5000", "6001", "--simulate", "jitter=3"),
      `--simulate unknown fault "jitter"; ${syntax}`,
      USAGE_CLIENT,
    );
    expectRefused(
      server("5000", "--simulate", "delay=300-10"),
      `--simulate delay range "300-10" runs backwards; ${syntax}`,
      USAGE_SERVER,
    );
    expectRefused(
      server("5000", "--simulate"),
      "--simulate needs faults, as in --simulate loss=0.2,dup=0.1",
      USAGE_SERVER,
    );
    expectRefused(
      server("5000", "--simulate", "loss=0.1", "--simulate", "loss=0.2"),
      "--simulate is given twice",
      USAGE_SERVER,
    );
  });
});
