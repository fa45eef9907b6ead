/**
 * Why a file could not be read, in the words config errors use.
 *
 * @module
 */

/**
 * A short reason for a failed read, e.g. `not found`.
 *
 * @example
 * ```ts
 * readErrorReason(new Deno.errors.NotFound("x")); // "not found"
 * ```
 */
export function readErrorReason(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  if (error instanceof Error) return error.message;
  return String(error);
}
