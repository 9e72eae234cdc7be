/** The UDP port could not be bound because another program holds it. */
export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(`Port ${port} is already in use. Choose another port or stop the program that holds it.`);
    this.name = "PortInUseError";
  }
}

/** The data directory or its database could not be opened. */
export class StoreOpenError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`Cannot open the message store at ${path}: ${reason}`);
    this.name = "StoreOpenError";
  }
}
