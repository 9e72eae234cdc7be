import { runCliAndExit } from "./cli/run-cli.ts";

await runCliAndExit(process.argv.slice(2));
