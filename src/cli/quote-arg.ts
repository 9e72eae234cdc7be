import { sanitiseForTerminal } from "../text/sanitise.ts";

const MAX_SHOWN = 60;

/** An argument echoed back in an error message: quoted, cut short, and unable to drive the terminal. */
export function quoteArg(value: string): string {
  const chars = [...value];
  const shown = chars.length > MAX_SHOWN ? `${chars.slice(0, MAX_SHOWN).join("")}…` : value;
  return `"${sanitiseForTerminal(shown)}"`;
}
