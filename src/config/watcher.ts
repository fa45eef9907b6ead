/**
 * Noticing that the config file changed: `Deno.watchFs` on its directory
 * (editors write a temporary file and rename it over the config, which a
 * watch on the file itself would miss, and a Kubernetes ConfigMap volume
 * swaps a `..data` link), filtered by name and debounced, and SIGHUP, the
 * signal operators send to ask for a reload.
 *
 * @module
 */

/** Events closer together than this make one change: an editor's save is several. */
const DEBOUNCE_MS = 100;

/**
 * A running watch; disposing it stops the watch and resolves once it ended.
 *
 * @example
 * ```ts
 * await using watch = watchConfigFile("config.yaml", () => console.error("changed"));
 * ```
 */
export interface ConfigWatch extends AsyncDisposable {}

/**
 * Calls `onChange` once after the file at `path` was written, replaced,
 * created or removed, or the `..data` link beside it (a ConfigMap volume's)
 * was swapped (debounced by 100 ms), and at each SIGHUP.
 *
 * @example
 * ```ts
 * const watch = watchConfigFile("/etc/deno-lb/config.yaml", () => void reload());
 * // ...
 * await watch[Symbol.asyncDispose]();
 * ```
 */
export function watchConfigFile(path: string, onChange: () => void): ConfigWatch {
  const slash = path.lastIndexOf("/");
  const directory = Deno.realPathSync(slash === -1 ? "." : path.slice(0, slash) || "/");
  const prefix = directory === "/" ? "" : directory;
  const target = `${prefix}/${path.slice(slash + 1)}`;
  // A Kubernetes ConfigMap volume updates by swapping this link, not the file's own.
  const configMapData = `${prefix}/..data`;
  const watcher = Deno.watchFs(directory, { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, DEBOUNCE_MS);
  };
  const watching = (async () => {
    for await (const event of watcher) {
      if (event.paths.includes(target) || event.paths.includes(configMapData)) changed();
    }
  })();
  const onSignal = () => onChange();
  Deno.addSignalListener("SIGHUP", onSignal);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      Deno.removeSignalListener("SIGHUP", onSignal);
      watcher.close();
      await watching.catch(() => {});
      clearTimeout(timer);
    })();
  return { [Symbol.asyncDispose]: stop };
}
