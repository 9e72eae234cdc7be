import { EventEmitter } from "node:events";
import { StringDecoder } from "node:string_decoder";

/**
 * Lines of a pipe or file, split on "\n" (and "\r\n") only. readline also ends lines at
 * U+2028 and U+2029, which would cut a message in two and run its tail as a command.
 * Emits `line` for each line and `close` once at the end; close() stops reading.
 */
export class PipeLines extends EventEmitter {
  private readonly decoder = new StringDecoder("utf8");
  private pending = "";
  private closed = false;

  constructor(private readonly input: NodeJS.ReadableStream) {
    super();
    input.on("data", this.onData);
    input.on("end", this.onEnd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.input.off("data", this.onData);
    this.input.off("end", this.onEnd);
    this.input.pause();
    this.emit("close");
  }

  private readonly onData = (chunk: string | Buffer): void => {
    if (this.closed) return;
    this.pending += typeof chunk === "string" ? chunk : this.decoder.write(chunk);
    let newline = this.pending.indexOf("\n");
    while (newline !== -1 && !this.closed) {
      const line = this.pending.slice(0, newline);
      this.pending = this.pending.slice(newline + 1);
      this.emit("line", line.endsWith("\r") ? line.slice(0, -1) : line);
      newline = this.pending.indexOf("\n");
    }
  };

  private readonly onEnd = (): void => {
    if (this.closed) return;
    const rest = this.pending + this.decoder.end();
    this.pending = "";
    if (rest !== "") this.emit("line", rest.endsWith("\r") ? rest.slice(0, -1) : rest);
    this.close();
  };
}
