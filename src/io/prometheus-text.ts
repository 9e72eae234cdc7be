/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: a few
 * counters, gauges and histograms need no client library.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels?: Labels;
  readonly value: number;
}

export interface HistogramSample {
  readonly labels?: Labels;
  readonly histogram: Histogram;
}

export type MetricFamily =
  | {
      readonly name: string;
      readonly help: string;
      readonly type: "counter" | "gauge";
      readonly samples: readonly Sample[];
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: "histogram";
      readonly samples: readonly HistogramSample[];
    };

/**
 * Observations counted into buckets by upper bound. Each bucket holds only its own
 * observations here; the text makes them cumulative, as the format wants.
 */
export class Histogram {
  readonly bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!((bounds[i] ?? 0) > (bounds[i - 1] ?? 0))) {
        throw new Error(`histogram bounds must increase: ${bounds.join(", ")}`);
      }
    }
    this.bounds = [...bounds];
    this.#counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    const index = this.bounds.findIndex((bound) => value <= bound);
    if (index !== -1) this.#counts[index] = (this.#counts[index] ?? 0) + 1;
  }

  get sum(): number {
    return this.#sum;
  }

  get count(): number {
    return this.#count;
  }

  /** Observations at or below each bound, in the order of the bounds. */
  cumulative(): number[] {
    let total = 0;
    return this.#counts.map((count) => {
      total += count;
      return total;
    });
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The families in order, each with its HELP and TYPE lines; `common` labels go on every sample. */
export function formatMetrics(families: readonly MetricFamily[], common: Labels = {}): string {
  const lines: string[] = [];
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new Error(`bad metric name: ${family.name}`);
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    if (family.type === "histogram") {
      for (const { labels, histogram } of family.samples) {
        const base = { ...common, ...labels };
        const cumulative = histogram.cumulative();
        histogram.bounds.forEach((bound, index) => {
          const le = formatNumber(bound);
          lines.push(sampleLine(`${family.name}_bucket`, { ...base, le }, cumulative[index] ?? 0));
        });
        lines.push(sampleLine(`${family.name}_bucket`, { ...base, le: "+Inf" }, histogram.count));
        lines.push(sampleLine(`${family.name}_sum`, base, histogram.sum));
        lines.push(sampleLine(`${family.name}_count`, base, histogram.count));
      }
      continue;
    }
    for (const { labels, value } of family.samples) {
      lines.push(sampleLine(family.name, { ...common, ...labels }, value));
    }
  }
  return `${lines.join("\n")}\n`;
}

function sampleLine(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([label, text]) => {
    if (!LABEL_NAME.test(label)) throw new Error(`bad label name: ${label}`);
    return `${label}="${escapeLabelValue(text)}"`;
  });
  const set = pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
  return `${name}${set} ${formatNumber(value)}`;
}

export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function escapeLabelValue(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}
