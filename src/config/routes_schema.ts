/**
 * The `routes` of the config: their schema, and the checks that need the
 * whole file (pools named, names unique, nothing after a catch-all), which
 * also give each route its name and normalised match.
 *
 * @module
 */

import { z } from "zod";
import { backendId } from "../pools/backend_id.ts";
import { normalizePath } from "../routing/request_target.ts";
import {
  choice,
  DURATION_TEXT,
  durationValue,
  intAtLeast,
  MAX_WEIGHT,
  section,
} from "./schema_parts.ts";
import {
  type Config,
  DEFAULT_POOL,
  type HeaderFilterConfig,
  type RouteConfig,
  type RouteMatchConfig,
} from "./types.ts";

/** Letters, digits and `_ . -`: names that read well in metric labels and log lines. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const NAME_TEXT = "a name of letters, digits and _ . - (starting with a letter or digit)";
const LABEL = "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?";
const HOST_NAME = `${LABEL}(?:\\.${LABEL})*|\\[[0-9a-f:.]+\\]`;
const MATCH_HOST_PATTERN = new RegExp(`^(?:\\*\\.)?(?:${HOST_NAME})$`, "i");
const MATCH_HOST_TEXT = 'a host name like "api.example.com" or "*.example.com", without a port';
const HOST_PATTERN = new RegExp(`^(?:${HOST_NAME})$`, "i");
const HOST_TEXT = 'a host name like "example.com", without a port';
const HOST_PORT_PATTERN = new RegExp(`^(?:${HOST_NAME})(?::\\d{1,5})?$`, "i");
const HOST_PORT_TEXT =
  'a host name with an optional port, like "api.internal" or "api.internal:8080"';
/** A path starts with `/` and has no whitespace, controls, query or fragment. */
const PATH_PATTERN = /^\/[^\s?#\p{Cc}]*$/u;
const PATH_TEXT = 'a path starting with "/", without spaces, "?" or "#"';
/** An RFC 9110 token: methods and header names. */
const TOKEN_PATTERN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const METHOD_TEXT = 'an HTTP method like "GET"';
const HEADER_NAME_TEXT = "a header name made of letters, digits and !#$%&'*+-.^_`|~";
const HEADER_VALUE_TEXT = "a header value without CR, LF or NUL";
const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;
const REDIRECT_STATUS_TEXT = `one of ${REDIRECT_STATUSES.join(" | ")}`;
const RESPOND_STATUS_TEXT = "an HTTP status from 200 to 599";
const PORT_TEXT = "an integer from 1 to 65535";
/** Statuses whose answers have no body. */
const BODILESS_STATUSES = [204, 205, 304];
/** The metrics' `pool` label of requests that reached no pool. */
const NO_POOL = "none";

const path = z.string({ error: PATH_TEXT }).regex(PATH_PATTERN, { error: PATH_TEXT });
const headerName = z.string({ error: HEADER_NAME_TEXT }).regex(TOKEN_PATTERN, {
  error: HEADER_NAME_TEXT,
});
const headerValues = z.record(
  headerName,
  z.string({ error: HEADER_VALUE_TEXT }).regex(/^[^\r\n\0]*$/, { error: HEADER_VALUE_TEXT }),
  { error: "a mapping of header names to values" },
);
const headerFilter = section({
  set: headerValues.optional(),
  add: headerValues.optional(),
  remove: z.array(headerName, { error: "a list of header names" }).optional(),
});
const scheme = choice({ http: "http", https: "https" } as const);

const routeSchema = section({
  name: z.string({ error: NAME_TEXT }).regex(NAME_PATTERN, { error: NAME_TEXT }).optional(),
  match: section({
    host: z.string({ error: MATCH_HOST_TEXT }).regex(MATCH_HOST_PATTERN, { error: MATCH_HOST_TEXT })
      .optional(),
    path_prefix: path.optional(),
    path: path.optional(),
    methods: z.array(
      z.string({ error: METHOD_TEXT }).regex(TOKEN_PATTERN, { error: METHOD_TEXT }),
      { error: "a list of HTTP methods" },
    ).min(1, { error: "at least one method" }).optional(),
    headers: headerValues.optional(),
    scheme: scheme.optional(),
  }).optional(),
  pool: z.string({ error: "a pool name" }).optional(),
  split: z.array(
    section({
      pool: z.string({ error: "a pool name" }),
      weight: intAtLeast(0, MAX_WEIGHT).default(1),
    }),
    { error: "a list of { pool, weight }" },
  ).min(1, { error: "at least one pool" }).optional(),
  redirect: section({
    scheme: scheme.optional(),
    host: z.string({ error: HOST_TEXT }).regex(HOST_PATTERN, { error: HOST_TEXT }).optional(),
    port: z.int({ error: PORT_TEXT }).min(1, { error: PORT_TEXT }).max(65535, { error: PORT_TEXT })
      .optional(),
    path: path.optional(),
    status: z.union(REDIRECT_STATUSES.map((status) => z.literal(status)), {
      error: REDIRECT_STATUS_TEXT,
    }).default(302),
  }).optional(),
  respond: section({
    status: z.int({ error: RESPOND_STATUS_TEXT }).min(200, { error: RESPOND_STATUS_TEXT })
      .max(599, { error: RESPOND_STATUS_TEXT }).default(200),
    body: z.string({ error: "a string" }).default(""),
    headers: headerValues.optional(),
  }).optional(),
  rewrite: section({
    path_prefix: path.optional(),
    host: z.string({ error: HOST_PORT_TEXT }).regex(HOST_PORT_PATTERN, { error: HOST_PORT_TEXT })
      .optional(),
  }).optional(),
  request_headers: headerFilter.optional(),
  response_headers: headerFilter.optional(),
  timeouts: section({
    response: durationValue(1, `${DURATION_TEXT}; default timeouts.response`).optional(),
    idle: durationValue(1, `${DURATION_TEXT}; default timeouts.idle`).optional(),
  }).optional(),
});

/** The `routes` list: tried in order, the first whose match holds takes the request. */
export const routesSchema = z.array(routeSchema, { error: "a list of routes" });

type RouteInput = z.output<typeof routeSchema>;
type Context = z.core.$RefinementCtx;

const ACTIONS = ["pool", "split", "redirect", "respond"] as const;

/** Reports a problem that says all of itself (no "expected ..., got ..."). */
function problem(ctx: Context, path: PropertyKey[], detail: string): void {
  ctx.addIssue({ code: "custom", message: detail, path, params: { detail } });
}

/**
 * Checks `pools` and `routes` against each other and the rest of `config`
 * (whose pools are resolved already), reporting each problem on `ctx`, and
 * returns the routes with their names and normalised matches, or undefined
 * when the file has no routes.
 */
export function resolveRouting(
  ctx: Context,
  config: Config,
  routes: RouteInput[] | undefined,
): RouteConfig[] | undefined {
  const pools = poolNames(ctx, config);
  if (routes === undefined) {
    if (config.pools !== undefined && !pools.includes(DEFAULT_POOL)) {
      problem(
        ctx,
        ["pools"],
        "pools without routes need a pool named default (or top-level backends): " +
          "without routes, every request goes to default",
      );
    }
    return undefined;
  }
  const names = new Map<string, number>();
  let catchAll: number | undefined;
  return routes.map((route, index) => {
    const name = route.name ?? `route-${index + 1}`;
    const first = names.get(name);
    if (first !== undefined) {
      problem(
        ctx,
        ["routes", index, "name"],
        `${JSON.stringify(name)} is routes.${first}'s name already: route names must be unique`,
      );
    } else names.set(name, index);
    if (catchAll !== undefined) {
      problem(
        ctx,
        ["routes", index],
        `can never match: routes.${catchAll} before it has no match and takes every request`,
      );
    }
    const match = normalizeMatch(ctx, index, route.match ?? {});
    // A match whose only key was misspelt is reported as such, not as a catch-all.
    const matchInvalid = ctx.issues.some((issue) =>
      issue.path?.[0] === "routes" && issue.path[1] === index && issue.path[2] === "match"
    );
    if (Object.keys(match).length === 0 && !matchInvalid) catchAll ??= index;
    checkAction(ctx, index, route, pools);
    return toRouteConfig(name, match, route);
  });
}

/** Every pool's name, checked: valid, not reserved, no second `default`, backend ids unique. */
function poolNames(ctx: Context, config: Config): string[] {
  const names = config.backends.length > 0 ? [DEFAULT_POOL] : [];
  const ids = new Map<string, string>();
  for (const backend of config.backends) ids.set(backendId(DEFAULT_POOL, backend.url), "backends");
  for (const [name, pool] of Object.entries(config.pools ?? {})) {
    if (!NAME_PATTERN.test(name)) {
      problem(ctx, ["pools", name], `pool name ${JSON.stringify(name)}: expected ${NAME_TEXT}`);
    } else if (name === NO_POOL) {
      problem(
        ctx,
        ["pools", name],
        `the pool name ${NO_POOL} is reserved: metrics label requests that reached no pool with it`,
      );
    } else if (name === DEFAULT_POOL && config.backends.length > 0) {
      problem(
        ctx,
        ["pools", name],
        "a pool named default beside top-level backends: those backends are the default pool",
      );
    }
    names.push(name);
    pool.backends.forEach((backend, index) => {
      const id = backendId(name, backend.url);
      const other = ids.get(id);
      // The same URL twice in one pool is reported as a duplicate URL.
      if (other !== undefined && other !== `pools.${name}`) {
        problem(
          ctx,
          ["pools", name, "backends", index, "url"],
          `the backend id ${id} of this URL is that of a backend in ${other} too: ` +
            "move the backend to another pool name",
        );
      }
      ids.set(id, `pools.${name}`);
    });
  }
  return names;
}

function normalizeMatch(ctx: Context, index: number, match: RouteMatchConfig): RouteMatchConfig {
  const normalized: RouteMatchConfig = {};
  if (match.host !== undefined) normalized.host = match.host.toLowerCase();
  if (match.path !== undefined && match.path_prefix !== undefined) {
    problem(ctx, ["routes", index, "match", "path"], "give path or path_prefix, not both");
  }
  if (match.path_prefix !== undefined) {
    const prefix = normalizePath(match.path_prefix);
    normalized.path_prefix = prefix.length > 1 && prefix.endsWith("/")
      ? prefix.slice(0, -1)
      : prefix;
  }
  if (match.path !== undefined) normalized.path = normalizePath(match.path);
  if (match.methods !== undefined) {
    normalized.methods = match.methods.map((method) => method.toUpperCase());
  }
  if (match.headers !== undefined) {
    normalized.headers = Object.fromEntries(
      Object.entries(match.headers).map(([name, value]) => [name.toLowerCase(), value]),
    );
  }
  if (match.scheme !== undefined) normalized.scheme = match.scheme;
  return normalized;
}

function checkAction(ctx: Context, index: number, route: RouteInput, pools: string[]): void {
  const at = (...keys: PropertyKey[]) => ["routes", index, ...keys];
  const actions = ACTIONS.filter((action) => route[action] !== undefined);
  if (actions.length !== 1) {
    problem(
      ctx,
      at(),
      actions.length === 0
        ? "a route needs one of pool, split, redirect or respond"
        : `a route takes one of pool, split, redirect or respond, not ${actions.join(" and ")}`,
    );
  }
  const known = pools.length === 0 ? "no pool is configured" : `one of ${pools.join(" | ")}`;
  const checkPool = (name: string, ...keys: PropertyKey[]) => {
    if (!pools.includes(name)) {
      problem(ctx, at(...keys), `expected ${known}, got ${JSON.stringify(name)}`);
    }
  };
  if (route.pool !== undefined) checkPool(route.pool, "pool");
  if (route.split !== undefined) {
    route.split.forEach((entry, i) => checkPool(entry.pool, "split", i, "pool"));
    if (route.split.every((entry) => entry.weight === 0)) {
      problem(ctx, at("split"), "the split's weights add up to 0: at least one must be above 0");
    }
  }
  if (route.pool === undefined && route.split === undefined) {
    for (const key of ["rewrite", "request_headers", "timeouts"] as const) {
      if (route[key] !== undefined) {
        problem(
          ctx,
          at(key),
          `${key} needs pool or split: a redirect or a fixed response sends nothing upstream`,
        );
      }
    }
  }
  if (route.rewrite?.path_prefix !== undefined && route.match?.path_prefix === undefined) {
    problem(
      ctx,
      at("rewrite", "path_prefix"),
      "replaces the matched prefix: give match.path_prefix too",
    );
  }
  if (route.respond !== undefined && BODILESS_STATUSES.includes(route.respond.status)) {
    if (route.respond.body !== "") {
      problem(ctx, at("respond", "body"), `a ${route.respond.status} answer has no body`);
    }
  }
}

function toRouteConfig(name: string, match: RouteMatchConfig, route: RouteInput): RouteConfig {
  const config: RouteConfig = { name, match };
  if (route.pool !== undefined) config.pool = route.pool;
  if (route.split !== undefined) config.split = route.split;
  if (route.redirect !== undefined) config.redirect = route.redirect;
  if (route.respond !== undefined) {
    config.respond = {
      status: route.respond.status,
      body: route.respond.body,
      headers: lowercaseNames(route.respond.headers ?? {}),
    };
  }
  if (route.rewrite !== undefined) {
    const rewrite: RouteConfig["rewrite"] = {};
    if (route.rewrite.path_prefix !== undefined) {
      rewrite.path_prefix = normalizePath(route.rewrite.path_prefix);
    }
    if (route.rewrite.host !== undefined) rewrite.host = route.rewrite.host;
    config.rewrite = rewrite;
  }
  if (route.request_headers !== undefined) {
    config.request_headers = toFilter(route.request_headers);
  }
  if (route.response_headers !== undefined) {
    config.response_headers = toFilter(route.response_headers);
  }
  if (route.timeouts !== undefined) config.timeouts = route.timeouts;
  return config;
}

function toFilter(filter: z.output<typeof headerFilter>): HeaderFilterConfig {
  return {
    set: lowercaseNames(filter.set ?? {}),
    add: lowercaseNames(filter.add ?? {}),
    remove: (filter.remove ?? []).map((name) => name.toLowerCase()),
  };
}

function lowercaseNames(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
}
