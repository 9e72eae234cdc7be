import { describe, expect, test } from "bun:test";
import { formatMetrics, formatNumber, Histogram } from "../../src/io/prometheus-text.ts";
import { parseMetrics, sampleValue } from "../helpers/prometheus-parse.ts";

describe("the Prometheus text format", () => {
  test("HELP and TYPE before each family's samples; common labels on every sample", () => {
    const text = formatMetrics(
      [
        {
          name: "chatapp_saves_total",
          help: "Messages saved for offline clients.",
          type: "counter",
          samples: [{ value: 3 }],
        },
        {
          name: "chatapp_datagrams_dropped_total",
          help: "Datagrams dropped, by cause.",
          type: "counter",
          samples: [
            { labels: { cause: "malformed" }, value: 2 },
            { labels: { cause: "oversized" }, value: 0 },
          ],
        },
      ],
      { node: "host:5000" },
    );
    expect(text).toBe(
      [
        "# HELP chatapp_saves_total Messages saved for offline clients.",
        "# TYPE chatapp_saves_total counter",
        'chatapp_saves_total{node="host:5000"} 3',
        "# HELP chatapp_datagrams_dropped_total Datagrams dropped, by cause.",
        "# TYPE chatapp_datagrams_dropped_total counter",
        'chatapp_datagrams_dropped_total{node="host:5000",cause="malformed"} 2',
        'chatapp_datagrams_dropped_total{node="host:5000",cause="oversized"} 0',
        "",
      ].join("\n"),
    );
  });

  test("a histogram: cumulative buckets, +Inf equal to _count, and _sum", () => {
    const histogram = new Histogram([0.001, 0.01, 0.1]);
    for (const value of [0.0005, 0.001, 0.005, 0.05, 0.05, 2]) histogram.observe(value);
    const text = formatMetrics(
      [{ name: "x_seconds", help: "h", type: "histogram", samples: [{ histogram }] }],
      { node: "n" },
    );
    expect(text).toBe(
      [
        "# HELP x_seconds h",
        "# TYPE x_seconds histogram",
        'x_seconds_bucket{node="n",le="0.001"} 2',
        'x_seconds_bucket{node="n",le="0.01"} 3',
        'x_seconds_bucket{node="n",le="0.1"} 5',
        'x_seconds_bucket{node="n",le="+Inf"} 6',
        `x_seconds_sum{node="n"} ${0.0005 + 0.001 + 0.005 + 0.05 + 0.05 + 2}`,
        'x_seconds_count{node="n"} 6',
        "",
      ].join("\n"),
    );
  });

  test("an empty histogram still shows every bucket at 0", () => {
    const text = formatMetrics([
      { name: "h", help: "h", type: "histogram", samples: [{ histogram: new Histogram([1, 2]) }] },
    ]);
    expect(text).toContain('h_bucket{le="1"} 0\nh_bucket{le="2"} 0\nh_bucket{le="+Inf"} 0\n');
    expect(text).toContain("h_sum 0\nh_count 0\n");
  });

  test("label values and help text are escaped; what is written reads back the same", () => {
    const awkward = 'a "quoted" \\ back\nslash';
    const text = formatMetrics(
      [
        {
          name: "g",
          help: "line one\nline two \\ done",
          type: "gauge",
          samples: [{ labels: { what: awkward }, value: -1.5 }],
        },
      ],
      { node: "n" },
    );
    expect(text).toContain("# HELP g line one\\nline two \\\\ done\n");
    expect(text).toContain('g{node="n",what="a \\"quoted\\" \\\\ back\\nslash"} -1.5\n');
    const parsed = parseMetrics(text);
    expect(parsed.types.get("g")).toBe("gauge");
    expect(sampleValue(parsed, "g", { what: awkward })).toBe(-1.5);
  });

  test("special numbers are spelled as the format wants", () => {
    expect(formatNumber(Number.POSITIVE_INFINITY)).toBe("+Inf");
    expect(formatNumber(Number.NEGATIVE_INFINITY)).toBe("-Inf");
    expect(formatNumber(Number.NaN)).toBe("NaN");
    expect(formatNumber(0.00025)).toBe("0.00025");
    expect(formatNumber(12)).toBe("12");
  });

  test("bad names and bounds are programming errors, refused at once", () => {
    expect(() => new Histogram([1, 1])).toThrow(/must increase/);
    expect(() =>
      formatMetrics([{ name: "bad-name", help: "", type: "gauge", samples: [] }]),
    ).toThrow(/bad metric name/);
    expect(() =>
      formatMetrics([
        { name: "g", help: "", type: "gauge", samples: [{ labels: { "a-b": "x" }, value: 1 }] },
      ]),
    ).toThrow(/bad label name/);
  });
});
