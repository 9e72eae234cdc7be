const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** One timer for a core that says when it next needs to wake: rearmed after every step. */
export class WakeTimer {
  private handle: ReturnType<typeof setTimeout> | undefined;
  private armedFor: number | undefined;

  constructor(private readonly onWake: () => void) {}

  arm(at: number | undefined, now: number): void {
    if (at === this.armedFor) return;
    this.cancel();
    if (at === undefined) return;
    this.armedFor = at;
    this.handle = setTimeout(
      () => {
        this.handle = undefined;
        this.armedFor = undefined;
        this.onWake();
      },
      // Longer delays overflow setTimeout and fire at once; waking early is harmless.
      Math.min(MAX_TIMER_DELAY_MS, Math.max(0, at - now)),
    );
  }

  cancel(): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
    this.armedFor = undefined;
  }
}
