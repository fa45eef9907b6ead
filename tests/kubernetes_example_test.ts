/**
 * Tests of the Kubernetes example in `docs/kubernetes/`: every manifest is a
 * Kubernetes object, the balancer's config in the ConfigMap is valid, and the
 * pieces agree with one another (the probes and the admin port, the grace
 * period and the drain, the discovery name and the headless Service, the
 * mount and `--config`, the Services and the admin port). Each check also
 * runs on a copy of the example broken on purpose, so that it is known to
 * fail when the example goes wrong.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { type Config, ConfigError, parseConfig, poolConfigs } from "../src/config/config.ts";

const EXAMPLE_DIR = new URL("../docs/kubernetes/", import.meta.url);
/** What Kubernetes gives a pod that sets no `terminationGracePeriodSeconds`. */
const DEFAULT_GRACE_SECONDS = 30;
/** A probe's defaults when it sets none. */
const DEFAULT_PERIOD_SECONDS = 10;
const DEFAULT_FAILURE_THRESHOLD = 3;
const CLUSTER_DOMAIN = "svc.cluster.local";
const ANY_ADDRESS = ["0.0.0.0", "::", "[::]"];

// The parts of the Kubernetes objects the checks read; everything is optional
// because the YAML may lack it, and a check says so rather than crash.

interface Metadata {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
}

interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: Metadata;
  data?: Record<string, string>;
  spec?: unknown;
}

interface DeploymentSpec {
  replicas?: number;
  selector?: { matchLabels?: Record<string, string> };
  template?: { metadata?: Metadata; spec?: PodSpec };
}

interface PodSpec {
  terminationGracePeriodSeconds?: number;
  containers?: Container[];
  volumes?: Volume[];
}

interface Container {
  name?: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort?: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds?: number }; exec?: { command?: string[] } } };
  volumeMounts?: { name?: string; mountPath?: string; subPath?: string }[];
}

interface Probe {
  httpGet?: { path?: string; port?: number | string; scheme?: string };
  periodSeconds?: number;
  failureThreshold?: number;
}

interface Volume {
  name?: string;
  configMap?: { name?: string; items?: { key?: string; path?: string }[] };
}

interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  selector?: Record<string, string>;
  ports?: { name?: string; port?: number; targetPort?: number | string; protocol?: string }[];
}

interface NetworkPolicySpec {
  podSelector?: { matchLabels?: Record<string, string> };
  policyTypes?: string[];
  ingress?: {
    from?: { ipBlock?: { cidr?: string } }[];
    ports?: { port?: number | string }[];
  }[];
}

/** One YAML file of the example. */
interface ExampleFile {
  name: string;
  text: string;
}

/** Every `.yaml` file of `docs/kubernetes/`, in name order. */
async function readExample(): Promise<ExampleFile[]> {
  const files: ExampleFile[] = [];
  for await (const entry of Deno.readDir(EXAMPLE_DIR)) {
    if (!entry.isFile || !/\.ya?ml$/.test(entry.name)) continue;
    files.push({
      name: entry.name,
      text: await Deno.readTextFile(new URL(entry.name, EXAMPLE_DIR)),
    });
  }
  files.sort((a, b) => a.name < b.name ? -1 : 1);
  return files;
}

/** Every document of every file, failing on a YAML error or an empty document. */
function parseManifests(files: readonly ExampleFile[]): Manifest[] {
  const manifests: Manifest[] = [];
  for (const file of files) {
    const docs = parseAllDocuments(file.text);
    assert.ok(Array.isArray(docs), `${file.name}: holds no YAML document`);
    docs.forEach((doc, index) => {
      const where = `${file.name}, document ${index + 1}`;
      assert.deepEqual(doc.errors.map((error) => error.message), [], `${where}: invalid YAML`);
      const value: unknown = doc.toJS();
      assert.ok(
        typeof value === "object" && value !== null && !Array.isArray(value),
        `${where}: expected a mapping, got ${JSON.stringify(value)}`,
      );
      manifests.push(value as Manifest);
    });
  }
  return manifests;
}

/** The example as parsed, with the lookups every check needs. */
class Example {
  constructor(readonly manifests: Manifest[]) {}

  ofKind(kind: string): Manifest[] {
    return this.manifests.filter((manifest) => manifest.kind === kind);
  }

  /** The one Deployment: the balancer's. */
  get deployment(): Manifest {
    const deployments = this.ofKind("Deployment");
    assert.equal(deployments.length, 1, "expected exactly one Deployment, the balancer's");
    return deployments[0];
  }

  get deploymentSpec(): DeploymentSpec {
    return (this.deployment.spec ?? {}) as DeploymentSpec;
  }

  get podSpec(): PodSpec {
    const spec = this.deploymentSpec.template?.spec;
    assert.ok(spec !== undefined, "the Deployment has no spec.template.spec");
    return spec;
  }

  get podLabels(): Record<string, string> {
    return this.deploymentSpec.template?.metadata?.labels ?? {};
  }

  get namespace(): string {
    return namespaceOf(this.deployment);
  }

  /** The container that runs the balancer: the one given `--config`. */
  get container(): Container {
    const containers = (this.podSpec.containers ?? []).filter((container) =>
      configFlag(container) !== undefined
    );
    assert.equal(
      containers.length,
      1,
      "expected exactly one container started with --config PATH (the balancer)",
    );
    return containers[0];
  }

  /** The path `--config` names. */
  get configPath(): string {
    return configFlag(this.container)!;
  }

  /** The ConfigMap, key and text that the container sees at `configPath`. */
  get configSource(): { configMap: string; key: string; text: string } {
    const path = this.configPath;
    assert.ok(path.startsWith("/"), `--config ${path}: expected an absolute path`);
    const volumes = this.podSpec.volumes ?? [];
    for (const mount of this.container.volumeMounts ?? []) {
      const mountPath = (mount.mountPath ?? "").replace(/\/+$/, "");
      let relative: string | undefined;
      if (mount.subPath !== undefined) {
        if (mount.mountPath === path) relative = mount.subPath;
      } else if (path.startsWith(`${mountPath}/`)) {
        relative = path.slice(mountPath.length + 1);
      }
      if (relative === undefined) continue;
      const volume = volumes.find((candidate) => candidate.name === mount.name);
      assert.ok(volume !== undefined, `volumeMount ${mount.name}: no volume of that name`);
      const source = volume.configMap;
      assert.ok(source?.name !== undefined, `volume ${volume.name}: expected a configMap volume`);
      const items = source.items;
      const key = items === undefined
        ? relative
        : items.find((item) => item.path === relative)?.key;
      assert.ok(
        key !== undefined,
        `volume ${volume.name}: no item of ConfigMap ${source.name} is mounted as ${relative}`,
      );
      const configMap = this.ofKind("ConfigMap").find((candidate) =>
        candidate.metadata?.name === source.name && namespaceOf(candidate) === this.namespace
      );
      assert.ok(
        configMap !== undefined,
        `no ConfigMap ${source.name} in namespace ${this.namespace}, which volume ${volume.name} mounts`,
      );
      const text = configMap.data?.[key];
      assert.ok(
        typeof text === "string",
        `ConfigMap ${source.name} has no data key ${key}, which --config ${path} reads`,
      );
      return { configMap: source.name, key, text };
    }
    return assert.fail(`no volumeMount of the balancer container holds --config ${path}`);
  }

  /** The balancer's config as `parseConfig` reads it. */
  get config(): Config {
    const { configMap, key, text } = this.configSource;
    return parseConfig(text, `ConfigMap ${configMap} ${key}`);
  }

  /** The container port `port` (a number or a port's name) stands for. */
  containerPort(port: number | string | undefined): number | undefined {
    if (typeof port === "number") return port;
    return this.container.ports?.find((candidate) => candidate.name === port)?.containerPort;
  }

  /** The Services whose selector picks the balancer's pods. */
  get balancerServices(): Manifest[] {
    return this.ofKind("Service").filter((service) => {
      const selector = (service.spec as ServiceSpec | undefined)?.selector;
      return namespaceOf(service) === this.namespace && selector !== undefined &&
        Object.keys(selector).length > 0 && selects(selector, this.podLabels);
    });
  }
}

function namespaceOf(manifest: Manifest): string {
  return manifest.metadata?.namespace ?? "default";
}

/** Whether every label of `selector` is in `labels`. */
function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([name, value]) => labels[name] === value);
}

/** The value of `--config` in the container's command line, if given. */
function configFlag(container: Container): string | undefined {
  const words = [...container.command ?? [], ...container.args ?? []];
  for (let i = 0; i < words.length; i++) {
    if (words[i] === "--config") return words[i + 1];
    if (words[i].startsWith("--config=")) return words[i].slice("--config=".length);
  }
  return undefined;
}

/** Seconds the preStop hook sleeps: its sleep action, or an exec of `sleep N`. */
function preStopSeconds(container: Container): number {
  const preStop = container.lifecycle?.preStop;
  if (preStop?.sleep?.seconds !== undefined) return preStop.sleep.seconds;
  const command = preStop?.exec?.command?.join(" ");
  const match = command === undefined ? null : /(?:^|[\s/])sleep\s+(\d+(?:\.\d+)?)/.exec(command);
  assert.ok(
    match !== null,
    "the balancer container has no preStop sleep (lifecycle.preStop.sleep.seconds, or an exec of sleep N): " +
      "without it, SIGTERM may come before the endpoint removal reached every load balancer",
  );
  return Number(match[1]);
}

// The checks. Each throws an AssertionError (or a ConfigError) saying what is wrong.

/** Every document is a Kubernetes object, and no two share kind, namespace and name. */
function checkObjects(example: Example): void {
  const seen = new Set<string>();
  example.manifests.forEach((manifest, index) => {
    const where = `document ${index + 1} (${manifest.kind ?? "no kind"})`;
    assert.ok(
      typeof manifest.apiVersion === "string" && manifest.apiVersion !== "",
      `${where}: no apiVersion`,
    );
    assert.ok(typeof manifest.kind === "string" && manifest.kind !== "", `${where}: no kind`);
    const name = manifest.metadata?.name;
    assert.ok(typeof name === "string" && name !== "", `${where}: no metadata.name`);
    const id = `${manifest.kind} ${namespaceOf(manifest)}/${name}`;
    assert.ok(!seen.has(id), `${id} is defined twice`);
    seen.add(id);
  });
  for (const kind of ["ConfigMap", "Deployment", "Service"]) {
    assert.ok(example.ofKind(kind).length > 0, `the example has no ${kind}`);
  }
}

/**
 * The config parses; a pool finds its backends by DNS and hashes on a key of
 * its own (the peer address of a request through a Service is often a node's).
 */
function checkConfig(example: Example): void {
  const config = example.config;
  const discovered = poolConfigs(config).filter((pool) => pool.discovery !== undefined);
  assert.ok(discovered.length > 0, "no pool of the config has discovery");
  for (const pool of discovered) {
    assert.equal(pool.strategy, "consistent_hash", `pool ${pool.name}: strategy`);
    assert.notEqual(
      pool.hash.key,
      "client_ip",
      `pool ${pool.name}: hash.key: behind a Service the connection's peer may be a node; hash on a header or cookie`,
    );
  }
  const admin = config.admin.listen;
  assert.ok(admin !== null, "the config has no admin section: nothing answers /ready");
  assert.ok(
    ANY_ADDRESS.includes(admin.host),
    `admin.listen.host ${admin.host}: the kubelet probes the pod's address, so listen on 0.0.0.0`,
  );
}

/**
 * The readiness probe asks `/ready` on the admin port; the liveness probe
 * asks `/ready` there too and tolerates the drain, or asks a fixed-response
 * route of the proxy's port.
 */
function checkProbes(example: Example): void {
  const config = example.config;
  const adminPort = config.admin.listen?.port;
  const { readinessProbe, livenessProbe } = example.container;
  const ready = readinessProbe?.httpGet;
  assert.ok(ready !== undefined, "the balancer container has no httpGet readinessProbe");
  assert.equal(ready.path, "/ready", "readinessProbe.httpGet.path");
  assert.equal(
    example.containerPort(ready.port),
    adminPort,
    `readinessProbe.httpGet.port ${ready.port}: expected the admin port, admin.listen.port ${adminPort}`,
  );
  assert.ok(
    (ready.scheme ?? "HTTP") === "HTTP",
    "readinessProbe.httpGet.scheme: the admin API is plain HTTP",
  );

  const live = livenessProbe?.httpGet;
  assert.ok(live !== undefined, "the balancer container has no httpGet livenessProbe");
  const port = example.containerPort(live.port);
  if (live.path === "/ready") {
    assert.equal(
      port,
      adminPort,
      `livenessProbe.httpGet.port ${live.port}: expected the admin port`,
    );
    const windowMs = (livenessProbe!.periodSeconds ?? DEFAULT_PERIOD_SECONDS) *
      (livenessProbe!.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD) * 1000;
    assert.ok(
      windowMs > config.timeouts.drain,
      `livenessProbe: /ready answers 503 through the drain; periodSeconds × failureThreshold ` +
        `(${windowMs} ms) must exceed timeouts.drain (${config.timeouts.drain} ms)`,
    );
    return;
  }
  assert.equal(
    port,
    config.listen.port,
    `livenessProbe.httpGet.port ${live.port}: expected listen.port`,
  );
  const route = (config.routes ?? []).find((candidate) =>
    candidate.match.path === live.path && candidate.respond !== undefined
  );
  assert.ok(
    route !== undefined,
    `livenessProbe.httpGet.path ${live.path}: neither /ready nor a route that responds to it`,
  );
}

/** The grace period covers the preStop sleep and then the whole drain. */
function checkShutdown(example: Example): void {
  const drainMs = example.config.timeouts.drain;
  const sleepMs = preStopSeconds(example.container) * 1000;
  const graceMs = (example.podSpec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
  assert.ok(
    graceMs > drainMs + sleepMs,
    `terminationGracePeriodSeconds (${graceMs} ms) must exceed the preStop sleep (${sleepMs} ms) ` +
      `plus timeouts.drain (${drainMs} ms), or the kubelet kills requests still draining`,
  );
}

/**
 * Every discovery name is a headless Service's `<name>.<namespace>.svc.cluster.local`
 * (`_<port>._<proto>.` in front for SRV), not the balancer's own pods', and an
 * A or AAAA pool asks the port the backends' pods listen on.
 */
function checkDiscovery(example: Example): void {
  const config = example.config;
  const services = example.ofKind("Service");
  for (const pool of poolConfigs(config)) {
    const discovery = pool.discovery;
    if (discovery === undefined) continue;
    const name = discovery.dns.toLowerCase().replace(/\.$/, "");
    const service = services.find((candidate) => {
      const base = `${candidate.metadata?.name}.${namespaceOf(candidate)}.${CLUSTER_DOMAIN}`;
      return name === base || name.endsWith(`._tcp.${base}`) || name.endsWith(`._udp.${base}`);
    });
    assert.ok(
      service !== undefined,
      `pool ${pool.name}: discovery.dns ${discovery.dns} is no Service's <name>.<namespace>.${CLUSTER_DOMAIN}`,
    );
    const where = `pool ${pool.name}: Service ${service.metadata?.name}`;
    const spec = (service.spec ?? {}) as ServiceSpec;
    assert.equal(spec.clusterIP, "None", `${where}: expected a headless Service (clusterIP: None)`);
    assert.ok(
      spec.selector === undefined || !selects(spec.selector, example.podLabels),
      `${where} selects the balancer's own pods`,
    );
    const ports = spec.ports ?? [];
    if (discovery.type === "SRV") {
      const [portName, protocol] = name.split(".");
      assert.ok(
        ports.some((port) =>
          `_${port.name}` === portName && `_${(port.protocol ?? "TCP").toLowerCase()}` === protocol
        ),
        `${where}: no port named ${portName.slice(1)} for the SRV name ${discovery.dns}`,
      );
      continue;
    }
    const podPorts = ports.map((port) => port.targetPort ?? port.port);
    assert.ok(
      podPorts.includes(discovery.port!),
      `pool ${pool.name}: discovery.port ${discovery.port} is none of ${where}'s target ports ` +
        `(${podPorts.join(", ")}): A records give pod addresses, so the port is the pods'`,
    );
  }
}

/** The ConfigMap is mounted where `--config` reads it (the getter asserts each step). */
function checkConfigMount(example: Example): void {
  const { text } = example.configSource;
  assert.ok(text.trim() !== "", "the mounted config is empty");
}

/**
 * Clients reach the proxy's port through a Service; no Service reaches the
 * admin port, and a NetworkPolicy admits only chosen sources to it.
 */
function checkExposure(example: Example): void {
  const config = example.config;
  const adminPort = config.admin.listen?.port;
  const services = example.balancerServices;
  assert.ok(services.length > 0, "no Service selects the balancer's pods");
  for (const service of services) {
    for (const port of (service.spec as ServiceSpec).ports ?? []) {
      const target = example.containerPort(port.targetPort ?? port.port);
      assert.notEqual(
        target,
        adminPort,
        `Service ${service.metadata?.name} port ${port.port} reaches the admin port: keep it unexposed`,
      );
      assert.equal(
        target,
        config.listen.port,
        `Service ${service.metadata?.name} port ${port.port}: expected the proxy's listen.port`,
      );
    }
  }
  const policies = example.ofKind("NetworkPolicy").filter((policy) => {
    const spec = (policy.spec ?? {}) as NetworkPolicySpec;
    return namespaceOf(policy) === example.namespace &&
      selects(spec.podSelector?.matchLabels ?? {}, example.podLabels) &&
      (spec.policyTypes ?? ["Ingress"]).includes("Ingress");
  });
  assert.ok(policies.length > 0, "no NetworkPolicy limits ingress to the balancer's pods");
  for (const policy of policies) {
    for (const rule of (policy.spec as NetworkPolicySpec).ingress ?? []) {
      const ports = rule.ports;
      const coversAdmin = ports === undefined || ports.length === 0 ||
        ports.some((port) => example.containerPort(port.port) === adminPort);
      const open = rule.from === undefined || rule.from.length === 0 ||
        rule.from.some((peer) => ["0.0.0.0/0", "::/0"].includes(peer.ipBlock?.cidr ?? ""));
      assert.ok(
        !(coversAdmin && open),
        `NetworkPolicy ${policy.metadata?.name} admits anyone to the admin port ${adminPort}`,
      );
    }
  }
}

/** Several replicas, and a selector that matches the pods of the template. */
function checkDeployment(example: Example): void {
  const spec = example.deploymentSpec;
  assert.ok(
    (spec.replicas ?? 1) >= 2,
    `replicas ${spec.replicas ?? 1}: expected several instances`,
  );
  const selector = spec.selector?.matchLabels ?? {};
  assert.ok(Object.keys(selector).length > 0, "the Deployment has no selector.matchLabels");
  assert.ok(
    selects(selector, example.podLabels),
    "the Deployment's selector misses its pods' labels",
  );
}

const CHECKS = {
  objects: checkObjects,
  config: checkConfig,
  probes: checkProbes,
  shutdown: checkShutdown,
  discovery: checkDiscovery,
  "config mount": checkConfigMount,
  exposure: checkExposure,
  deployment: checkDeployment,
};

const files = await readExample();

/** A fresh copy of the example, `change` applied to its manifests. */
function broken(change: (example: Example) => void): Example {
  const example = new Example(parseManifests(files));
  change(example);
  return example;
}

/** Replaces `from` in the ConfigMap's config, failing when it is not there. */
function editConfig(example: Example, from: string | RegExp, to: string): void {
  const { configMap, key, text } = example.configSource;
  const edited = text.replace(from, to);
  assert.notEqual(edited, text, `the config has no ${from} to replace`);
  const manifest = example.ofKind("ConfigMap").find((map) => map.metadata?.name === configMap)!;
  manifest.data![key] = edited;
}

function service(example: Example, headless: boolean): ServiceSpec {
  const found = example.ofKind("Service").find((candidate) =>
    ((candidate.spec as ServiceSpec).clusterIP === "None") === headless
  );
  assert.ok(found !== undefined, `the example has no ${headless ? "headless " : ""}Service`);
  return found.spec as ServiceSpec;
}

Deno.test("kubernetes example: docs/kubernetes holds YAML documents", () => {
  assert.ok(files.length > 0, "no .yaml file in docs/kubernetes/");
  assert.ok(parseManifests(files).length >= 4);
});

for (const [name, check] of Object.entries(CHECKS)) {
  Deno.test(`kubernetes example: ${name}`, () => check(new Example(parseManifests(files))));
}

/** Each check, and a change to the example that it must reject. */
const BREAKAGES: [
  keyof typeof CHECKS,
  string,
  (example: Example) => void,
  RegExp | typeof ConfigError,
][] = [
  ["objects", "a document without a name", (example) => {
    delete example.manifests[0].metadata!.name;
  }, /no metadata\.name/],
  ["objects", "a document without apiVersion", (example) => {
    delete example.manifests.at(-1)!.apiVersion;
  }, /no apiVersion/],
  ["config", "an invalid config", (example) => {
    editConfig(example, "strategy: consistent_hash", "strategy: least_conn");
  }, ConfigError],
  ["config", "a config without discovery", (example) => {
    editConfig(example, /discovery:\n(?: {6}.*\n)+/, "backends: [{ url: http://10.0.0.1:8080 }]\n");
  }, /no pool of the config has discovery/],
  ["config", "an admin listener on loopback", (example) => {
    editConfig(
      example,
      "listen: { host: 0.0.0.0, port: 9090 }",
      "listen: { host: 127.0.0.1, port: 9090 }",
    );
  }, /admin\.listen\.host 127\.0\.0\.1/],
  ["probes", "a readiness probe on another path", (example) => {
    example.container.readinessProbe!.httpGet!.path = "/status";
  }, /readinessProbe\.httpGet\.path/],
  ["probes", "a readiness probe on the proxy's port", (example) => {
    example.container.readinessProbe!.httpGet!.port = "http";
  }, /readinessProbe\.httpGet\.port http/],
  ["probes", "an admin port the probes do not ask", (example) => {
    editConfig(example, "port: 9090", "port: 9091");
  }, /expected the admin port, admin\.listen\.port 9091/],
  ["probes", "a liveness probe that restarts the pod during the drain", (example) => {
    example.container.livenessProbe!.failureThreshold = 1;
    editConfig(example, "drain: 10s", "drain: 20s");
  }, /must exceed timeouts\.drain/],
  ["shutdown", "a grace period shorter than the preStop sleep plus the drain", (example) => {
    example.podSpec.terminationGracePeriodSeconds = 15;
  }, /terminationGracePeriodSeconds \(15000 ms\)/],
  ["shutdown", "a drain longer than the grace period allows", (example) => {
    editConfig(example, "drain: 10s", "drain: 25s");
  }, /timeouts\.drain \(25000 ms\)/],
  ["shutdown", "no preStop sleep", (example) => {
    delete example.container.lifecycle;
  }, /no preStop sleep/],
  ["shutdown", "a preStop exec sleep that eats the grace period", (example) => {
    example.container.lifecycle = { preStop: { exec: { command: ["/bin/sh", "-c", "sleep 20"] } } };
  }, /preStop sleep \(20000 ms\)/],
  ["discovery", "a discovery name of no Service", (example) => {
    editConfig(example, "api-headless.default.svc", "api.default.svc");
  }, /is no Service's/],
  ["discovery", "the headless Service in another namespace", (example) => {
    const headless = example.ofKind("Service").find((candidate) =>
      (candidate.spec as ServiceSpec).clusterIP === "None"
    )!;
    headless.metadata!.namespace = "backends";
  }, /is no Service's/],
  ["discovery", "a Service with a cluster IP", (example) => {
    delete service(example, true).clusterIP;
  }, /expected a headless Service/],
  ["discovery", "a discovery port the pods do not listen on", (example) => {
    editConfig(example, "port: 8080 #", "port: 80 #");
  }, /discovery\.port 80 is none/],
  ["config mount", "--config somewhere nothing is mounted", (example) => {
    example.container.args = ["--config", "/etc/lb/config.yaml"];
  }, /no volumeMount .* holds --config \/etc\/lb\/config\.yaml/],
  ["config mount", "the ConfigMap mounted elsewhere", (example) => {
    example.container.volumeMounts![0].mountPath = "/config";
  }, /no volumeMount/],
  ["config mount", "a ConfigMap without the file --config reads", (example) => {
    const configMap = example.ofKind("ConfigMap")[0];
    configMap.data = { "lb.yaml": Object.values(configMap.data!)[0] };
  }, /has no data key config\.yaml/],
  ["config mount", "no --config", (example) => {
    example.container.args = [];
  }, /started with --config PATH/],
  ["exposure", "a Service port for the admin API", (example) => {
    service(example, false).ports!.push({ name: "admin", port: 9090, targetPort: "admin" });
  }, /reaches the admin port/],
  ["exposure", "a NetworkPolicy rule open to everyone on every port", (example) => {
    const policy = example.ofKind("NetworkPolicy")[0];
    (policy.spec as NetworkPolicySpec).ingress!.push({});
  }, /admits anyone to the admin port/],
  ["exposure", "no NetworkPolicy", (example) => {
    example.manifests.splice(example.manifests.indexOf(example.ofKind("NetworkPolicy")[0]), 1);
  }, /no NetworkPolicy/],
  ["deployment", "one replica", (example) => {
    example.deploymentSpec.replicas = 1;
  }, /replicas 1/],
  ["deployment", "a selector that misses the pods", (example) => {
    example.deploymentSpec.selector = { matchLabels: { app: "other" } };
  }, /selector misses/],
];

for (const [check, what, change, expected] of BREAKAGES) {
  Deno.test(`kubernetes example: ${check} fails on ${what}`, () => {
    const example = broken(change);
    assert.throws(() => CHECKS[check](example), expected);
  });
}
