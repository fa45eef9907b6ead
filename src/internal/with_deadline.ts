/**
 * Waiting for work with a time limit, as a drain does: the work goes on, the
 * wait ends.
 *
 * @module
 */

/**
 * Resolves to true when `work` settles within `ms`, else to false at the
 * deadline; the timer is cleared either way.
 *
 * @example
 * ```ts
 * const drained = await withDeadline(server.shutdown(), 10_000);
 * ```
 */
export async function withDeadline(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([work.then(() => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
