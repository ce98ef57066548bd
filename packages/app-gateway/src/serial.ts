/** Small promise tools for the gateway's lifecycle: one task at a time, and a bounded wait. */

/** Runs tasks one at a time, in arrival order. */
export class Serial {
  private tail: Promise<void> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
  /** Settles once every task queued so far has finished. */
  idle(): Promise<void> {
    return this.tail;
  }
}

/** Resolves when the promise settles or `ms` passed, whichever comes first; true when it settled. */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
