/**
 * The command line was refused. `message` says which argument is wrong and why
 * (without the `chatapp: ` prefix); `usage` is the usage line to show after it.
 */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}
