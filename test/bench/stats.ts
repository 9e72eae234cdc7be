/** Small statistics and the one table format every benchmark prints. */

export function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil(fraction * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  if (sorted.length % 2 === 1) return upper;
  return ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

export function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

export type Unit = "ms" | "s" | "/s" | "count" | "B" | "MB";

/** A figure with its unit, or a plain text cell (for "—" and notes). */
export type Cell = { readonly value: number; readonly unit: Unit } | string;

export interface Row {
  readonly what: string;
  readonly chatapp: Cell;
  readonly baseline: Cell;
}

export const ms = (value: number): Cell => ({ value, unit: "ms" });
export const seconds = (value: number): Cell => ({ value, unit: "s" });
export const perSecond = (value: number): Cell => ({ value, unit: "/s" });
export const count = (value: number): Cell => ({ value, unit: "count" });
export const bytes = (value: number): Cell => ({ value, unit: "B" });
/** Bytes, printed in MiB. */
export const megabytes = (value: number): Cell => ({ value, unit: "MB" });
export const NONE: Cell = "—";

function formatNumber(value: number, digits: number): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function formatCell(cell: Cell): string {
  if (typeof cell === "string") return cell;
  const { value, unit } = cell;
  if (!Number.isFinite(value)) return "n/a";
  switch (unit) {
    case "ms":
      return `${formatNumber(value, value < 10 ? 3 : value < 100 ? 2 : 1)} ms`;
    case "s":
      return `${formatNumber(value, 2)} s`;
    case "/s":
      return `${formatNumber(value, 0)} /s`;
    case "B":
      return `${formatNumber(value, 0)} B`;
    case "MB":
      return `${formatNumber(value / 1_048_576, 1)} MB`;
    case "count":
      return formatNumber(value, Number.isInteger(value) ? 0 : 1);
    default:
      return unit satisfies never;
  }
}

/** chatapp ÷ baseline when both are figures of the same unit and the baseline is not zero. */
export function formatRatio(row: Row): string {
  const { chatapp, baseline } = row;
  if (typeof chatapp === "string" || typeof baseline === "string") return "";
  if (chatapp.unit !== baseline.unit || baseline.value === 0) return "";
  const ratio = chatapp.value / baseline.value;
  if (!Number.isFinite(ratio)) return "";
  return `${formatNumber(ratio, ratio < 10 ? 2 : 1)}x`;
}

/** Prints one benchmark: a title, a table (what, chatapp, baseline, ratio) and notes below it. */
export function printTable(
  title: string,
  rows: readonly Row[],
  notes: readonly string[] = [],
): void {
  const header = ["what", "chatapp", "baseline", "ratio"] as const;
  const lines = rows.map((row) => [
    row.what,
    formatCell(row.chatapp),
    formatCell(row.baseline),
    formatRatio(row),
  ]);
  printLines(title, header, lines, notes);
}

/** A row of a side-by-side table: one cell per column. */
export interface ColumnsRow {
  readonly what: string;
  readonly cells: readonly Cell[];
}

/** Prints figures side by side (one column per setup measured), with notes below. */
export function printColumns(
  title: string,
  columns: readonly string[],
  rows: readonly ColumnsRow[],
  notes: readonly string[] = [],
): void {
  const header = ["what", ...columns];
  const lines = rows.map((row) => [
    row.what,
    ...columns.map((_, column) => formatCell(row.cells[column] ?? NONE)),
  ]);
  printLines(title, header, lines, notes);
}

/** A title, a header, aligned columns (the first to the left, figures to the right) and notes. */
function printLines(
  title: string,
  header: readonly string[],
  lines: readonly (readonly string[])[],
  notes: readonly string[],
): void {
  const widths = header.map((name, column) =>
    Math.max(name.length, ...lines.map((line) => (line[column] ?? "").length)),
  );
  const render = (cells: readonly string[]) =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return column === 0 ? cell.padEnd(width) : cell.padStart(width);
      })
      .join("  ")
      .trimEnd();
  console.log(`\n${title}`);
  console.log(render(header));
  console.log(widths.map((width) => "-".repeat(width)).join("  "));
  for (const line of lines) console.log(render(line));
  for (const note of notes) console.log(`  ${note}`);
}
