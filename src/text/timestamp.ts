/** The server's time of receipt as users see it: ISO 8601 in UTC, to the second. */
export function formatTimestamp(epochMs: number): string {
  return `${new Date(epochMs).toISOString().slice(0, 19)}Z`;
}
