/**
 * Runs tasks one at a time, in the order they were queued: what keeps two calls on one pipeline from ever being
 * inside GenAI at once. A failed task does not stop the ones behind it.
 */
export class TaskQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /** How many tasks are queued or running. */
  get size(): number {
    return this.#pending;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.#pending += 1;
    const result = this.#tail.then(task);
    this.#tail = result.then(
      () => this.#settle(),
      () => this.#settle(),
    );
    return result;
  }

  /** Resolves once every task queued so far has settled. */
  async drain(): Promise<void> {
    await this.#tail;
  }

  #settle(): void {
    this.#pending -= 1;
  }
}
