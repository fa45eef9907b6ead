/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core.
 * The page loads while traffic flows, shows what `/status` says, drains a
 * backend on a click, and leaves a screenshot in the test's temp dir.
 * Skipped, saying so, only where /usr/bin/chromium is not installed
 * (`.ci/run` installs it).
 */

import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { AcmeStorage } from "../src/acme/acme_storage.ts";
import { parseConfig } from "../src/config/config.ts";
import { startBalancer } from "../src/server.ts";
import { makeTestCertificates } from "./test_certificates.ts";
import type { Status } from "../src/observability/telemetry.ts";
import {
  adminUrl,
  adminYaml,
  baseUrl,
  defaultPool,
  getJson,
  startBackend,
  startTestBalancer,
  waitFor,
} from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const TOKEN = "dashboard-token-0123456789";
const chromiumInstalled = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!chromiumInstalled) {
  console.warn(
    `dashboard test skipped: ${CHROMIUM} is not installed (apt-get install -y chromium)`,
  );
}

/** Debian's Chromium, headless, quiet on the network. */
function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** What a backend's row shows, by field, as text. */
async function rowTexts(page: Page): Promise<Record<string, Record<string, string>>> {
  return await page.$$eval("tr[data-backend-id]", (rows) =>
    Object.fromEntries(rows.map((row) => [
      row.getAttribute("data-backend-id")!,
      Object.fromEntries(
        [...row.querySelectorAll("[data-field]")].map((cell) => [
          cell.getAttribute("data-field")!,
          cell.textContent!.trim(),
        ]),
      ),
    ])));
}

/** The texts the page should show for `status`. */
function expectedTexts(status: Status): Record<string, Record<string, string>> {
  const ms = (value: number | null) => value === null ? "–" : `${value} ms`;
  return Object.fromEntries(status.backends.map((backend) => [backend.id, {
    url: backend.url,
    state: backend.state,
    weight: `${backend.effective_weight}/${backend.weight}`,
    in_flight: String(backend.in_flight),
    p50: ms(backend.latency_ms.p50),
    p95: ms(backend.latency_ms.p95),
    p99: ms(backend.latency_ms.p99),
    last_check: backend.last_check === null
      ? "pending"
      : backend.last_check.ok
      ? "ok"
      : backend.last_check.detail,
  }]));
}

Deno.test({
  name: chromiumInstalled
    ? "dashboard: shows /status while traffic flows, drains on a click, screenshot saved"
    : `dashboard: SKIPPED, ${CHROMIUM} is not installed`,
  ignore: !chromiumInstalled,
  async fn() {
    await using fast = startBackend(() => new Response("fast"));
    await using slow = startBackend(async () => {
      await new Promise((resolve) => setTimeout(resolve, 3));
      return new Response("slow");
    });
    await using lb = startTestBalancer(
      `strategy: weighted_round_robin\nbackends:\n  - url: ${fast.url}\n    weight: 2\n` +
        `  - url: ${slow.url}\n` + adminYaml(`  token: ${TOKEN}\n`),
    );
    await lb.ready;
    const dir = await Deno.makeTempDir({ prefix: "dashboard_test_" });

    // Traffic: sequential requests until stopped, at most 60 s.
    let flowing = true;
    const traffic = (async () => {
      const deadline = Date.now() + 60_000;
      while (flowing && Date.now() < deadline) await (await fetch(baseUrl(lb))).text();
    })();

    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1500, height: 420 } });
      await page.goto(adminUrl(lb));
      // Requests per second come from the last complete 5 s slice: wait for one with traffic.
      await waitFor(
        async () => Number(await page.textContent("#rps")) > 0,
        "requests per second on the page",
        20_000,
      );
      assert.equal(await page.textContent("#strategy"), "weighted_round_robin");
      assert.equal(await page.locator("tr[data-backend-id] svg polyline").count(), 4);

      flowing = false;
      await traffic;
      let shown: Record<string, Record<string, string>> = {};
      let expected: Record<string, Record<string, string>> = {};
      await waitFor(
        async () => {
          expected = expectedTexts(await getJson<Status>(`${adminUrl(lb)}/status`));
          shown = await rowTexts(page);
          return Object.entries(expected).every(([id, fields]) =>
            Object.entries(fields).every(([field, text]) => shown[id]?.[field] === text)
          );
        },
        "the page to show what /status says",
        15_000,
      ).catch((error) => {
        assert.deepEqual(shown, expected, String(error));
      });
      const [first] = defaultPool(lb).balancer.backends;
      assert.notEqual(shown[first.id].p50, "–", "latency figures are shown");

      await page.fill("#token", TOKEN);
      await page.click(`tr[data-backend-id="${first.id}"] button[data-action="drain"]`);
      await page.waitForSelector(`tr[data-backend-id="${first.id}"] .state.draining`);
      assert.equal(
        await page.textContent(`tr[data-backend-id="${first.id}"] button`),
        "enable",
      );
      const status = await getJson<Status>(`${adminUrl(lb)}/status`);
      assert.equal(status.backends[0].state, "draining");
      assert.equal(await page.textContent("#message"), "");

      const screenshot = `${dir}/dashboard.png`;
      await page.screenshot({ path: screenshot, fullPage: true });
      const bytes = await Deno.readFile(screenshot);
      assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
      console.log(`dashboard screenshot: ${screenshot}`);
    } finally {
      flowing = false;
      await traffic;
      await browser.close();
    }
  },
});

Deno.test({
  name: chromiumInstalled
    ? "dashboard: shows each ACME certificate's names, expiry, next order and last error"
    : `dashboard: SKIPPED, ${CHROMIUM} is not installed`,
  ignore: !chromiumInstalled,
  async fn() {
    await using certs = await makeTestCertificates();
    await using backend = startBackend(() => new Response("ok"));
    // A stored certificate for localhost, and a CA that cannot be reached for its renewal.
    const acme = { storage: `${certs.dir}/acme`, directory: "https://127.0.0.1:1/dir" };
    const files = new AcmeStorage(acme).certificateFiles(["localhost"]);
    const site = await certs.server("site");
    await Deno.mkdir(files.cert.slice(0, files.cert.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(site.cert, files.cert);
    await Deno.copyFile(site.key, files.key);
    const config = parseConfig(
      `listen:
  - { host: 127.0.0.1, port: 0 }
  - host: 127.0.0.1
    port: 0
    tls:
      acme: { directory: "${acme.directory}", domains: [localhost], storage: "${acme.storage}", renew_before: 3650d }
backends: [{ url: ${backend.url} }]
` + adminYaml(),
      "dashboard.yaml",
    );
    await using lb = startBalancer(config, () => {}, () => {});
    await lb.ready;
    await waitFor(async () => {
      const status = await getJson<Status>(`${adminUrl(lb)}/status`);
      return status.certificates[0]?.last_error !== null;
    }, "the failed renewal");
    const [certificate] = (await getJson<Status>(`${adminUrl(lb)}/status`)).certificates;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(adminUrl(lb));
      await page.waitForSelector("#certificates tr");
      const cells = await page.$$eval(
        "#certificates [data-field]",
        (found) => Object.fromEntries(found.map((cell) => [cell.dataset.field, cell.textContent])),
      );
      const minute = (iso: string) => iso.slice(0, 16).replace("T", " ");
      assert.deepEqual(cells, {
        names: "localhost",
        not_after: minute(certificate.not_after!),
        renew_at: minute(certificate.renew_at!),
        last_error: certificate.last_error,
      });
      assert.match(cells.last_error!, /cannot reach the CA for directory/);
      assert.equal(await page.isVisible("#certificates-section"), true);
    } finally {
      await browser.close();
    }
  },
});
