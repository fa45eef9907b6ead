/**
 * Route matching: the request target taken apart and normalised, then the
 * route table searched, with 20 mixed routes and with 1,000 host routes,
 * for the first route, the last and a miss. Parsing the target alone is the
 * baseline of each group.
 *
 * @module
 */

import { parseConfig, routeConfigs } from "../src/config/config.ts";
import { parseTarget } from "../src/routing/request_target.ts";
import { Router } from "../src/routing/router.ts";

/** A router over two pools with `routes` (YAML list items). */
function router(routes: string[]): Router {
  const config = parseConfig(
    "pools:\n  a: { backends: [{ url: http://127.0.0.1:9001 }] }\n" +
      `  b: { backends: [{ url: http://127.0.0.1:9002 }] }\nroutes:\n${routes.join("\n")}\n`,
    "bench.yaml",
  );
  return new Router(routeConfigs(config));
}

const mixed = Array.from({ length: 19 }, (_, i) => {
  const kinds = [
    `  - { match: { host: app${i}.example.com, path_prefix: /v${i} }, pool: a }`,
    `  - { match: { host: "*.svc${i}.example.com" }, pool: b }`,
    `  - { match: { path_prefix: /static${i}, methods: [GET, HEAD] }, pool: a }`,
    `  - { match: { path: /exact${i}, headers: { x-canary: "1" } }, pool: b }`,
  ];
  return kinds[i % kinds.length];
});
const hosts = Array.from(
  { length: 1000 },
  (_, i) => `  - { match: { host: h${i}.example.com, path_prefix: /api }, pool: a }`,
);
const tables = [
  ["20 routes", router([...mixed, "  - pool: b"])],
  ["1,000 host routes", router([...hosts, "  - pool: b"])],
] as const;
const requests = {
  "first route": new Request("http://app0.example.com/v0/users?id=7"),
  "last (catch-all)": new Request("http://unknown.example.org/some/path?q=1"),
  "a host route deep in the table": new Request("http://h999.example.com/api/x"),
};

for (const [label, table] of tables) {
  const group = label;
  Deno.bench({
    name: `parse the target only (${label})`,
    group,
    baseline: true,
    fn: () => void parseTarget(requests["first route"].url),
  });
  for (const [name, request] of Object.entries(requests)) {
    Deno.bench({
      name: `${name} (${label})`,
      group,
      fn: () => void table.route(parseTarget(request.url), request),
    });
  }
}
