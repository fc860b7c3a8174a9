// Drives Debian's Chromium (headless, through playwright-core: no browser download) through the
// dashboard as a newcomer would. Run by tests/browser_e2e.rs, which owns the broker, the server
// and the consumer; the two sides take turns over stdin/stdout:
//   this script prints "ZIP <path>" after downloading the bundle, then waits for "NEXT";
//   prints "LAGGING <n>" once the Streaming tab shows the consumer group behind, waits for "NEXT";
//   prints "CAUGHTUP" once the tab shows the group's lag back at zero, waits for "NEXT";
//   prints "WAF <rows> <live section px> <page px> <first row>" once WAF events show, adds an
//   alert rule on the Alerts tab, then prints "DONE".
// Environment: BASE (server URL), TOKEN (operator token), OUT (screenshot directory),
// DOWNLOADS (where the zip goes), CHROMIUM (browser binary, default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const { BASE, TOKEN, OUT, DOWNLOADS } = process.env;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async () => {
  const { value } = await lines.next();
  if (value?.trim() !== "NEXT") throw new Error(`expected NEXT, got ${value}`);
};
mkdirSync(OUT, { recursive: true });
let step = 0;
const shot = async (page, name) => {
  step += 1;
  await page.screenshot({ path: join(OUT, `${String(step).padStart(2, "0")}-${name}.png`), fullPage: true });
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
try {
  page.setDefaultTimeout(30_000);

  // Sign in with the operator token (the token form sits in a <details>).
  await page.goto(`${BASE}/login`);
  await shot(page, "sign-in");
  await page.getByText("Sign in with an API token instead").click();
  await page.getByLabel("Operator or tenant token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in with token" }).click();
  await page.waitForURL(`${BASE}/tenants`);
  await shot(page, "tenants");

  // Create tenant 83 and activate streaming.
  await page.getByLabel("Tenant id (1–999999)").fill("83");
  await page.getByLabel("Name", { exact: true }).fill("Acme Browser Test");
  await page.getByRole("button", { name: "Create tenant" }).click();
  await page.waitForURL(/\/tenants\/83\/streaming/);
  await shot(page, "tenant-created");
  await page.getByRole("button", { name: "Activate streaming" }).click();
  await page.getByText("Streaming activated").waitFor();
  await shot(page, "activated");

  // Allowlist a consumer address.
  await page.getByLabel("IPv4/IPv6 address or CIDR").fill("198.51.100.7");
  await page.getByRole("button", { name: "Add address" }).click();
  await page.getByRole("cell", { name: /^198\.51\.100\.7/ }).waitFor();
  await shot(page, "allowlisted");

  // Wait until Kafka has the tenant, then download the zip.
  for (let i = 0; i < 60 && !(await page.getByText("ready", { exact: true }).first().isVisible()); i++) {
    await page.waitForTimeout(500);
    await page.reload();
  }
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: /^Download c83\.zip/ }).click(),
  ]);
  const zip = join(DOWNLOADS, download.suggestedFilename());
  await download.saveAs(zip);
  await shot(page, "downloaded");
  console.log(`ZIP ${zip}`);
  await next();

  // The consumer ran once, then more records arrived: the group is behind.
  const totalLag = page.locator('table[data-group="c83_python"] .total-lag');
  await page.reload();
  // All 30 new records (15 per partition): partitions' ends are read one by one, so an early
  // refresh may show only part of them.
  await page.waitForFunction(
    () => Number(document.querySelector('table[data-group="c83_python"] .total-lag')?.textContent) >= 30,
    null,
    { timeout: 60_000 },
  );
  await totalLag.scrollIntoViewIfNeeded();
  await shot(page, "consumer-lagging");
  console.log(`LAGGING ${await totalLag.textContent()}`);
  await next();

  // The consumer caught up: the live section (refreshed by the page's script) shows zero.
  await page.waitForFunction(
    () => document.querySelector('table[data-group="c83_python"] .total-lag')?.textContent === "0",
    null,
    { timeout: 60_000 },
  );
  await totalLag.scrollIntoViewIfNeeded();
  await shot(page, "consumer-caught-up");
  console.log("CAUGHTUP");
  await next();

  // WAF events arrived (split by the real splitter): the table shows them, the tab stays compact.
  await page.waitForFunction(
    () => document.querySelectorAll("table.waf-events tbody tr[data-offset]").length >= 20,
    null,
    { timeout: 60_000 },
  );
  const rows = await page.locator("table.waf-events tbody tr[data-offset]").count();
  const live = await page.locator("[data-live]").boundingBox();
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.locator("table.waf-events").scrollIntoViewIfNeeded();
  await shot(page, "waf-events");
  await page.getByText(/^Raw record/).first().click();
  await page.locator("table.waf-events pre").first().waitFor();
  await shot(page, "waf-event-raw");
  const first = (await page.locator("table.waf-events tbody tr[data-offset]").first().innerText()).replace(/\s+/g, " ");
  console.log(`WAF ${rows} ${Math.round(live.height)} ${height} ${first}`);

  // The Alerts tab: the tenant's default rules, a preset added.
  await page.getByRole("link", { name: /^Alerts/ }).click();
  await page.getByText("Consumer stalled", { exact: false }).first().waitFor();
  await page.getByRole("radio", { name: "One scanner address: 50/min" }).check();
  await page.getByRole("button", { name: "Add rule" }).click();
  await page.getByText("Alert rule added").waitFor();
  await shot(page, "alerts");
  console.log("ALERTS");
  await next();

  // Usage the broker's agent reported: the Streaming tab's chart, and the operators' ranking.
  await page.goto(`${BASE}/tenants/83/streaming`);
  await page.locator("svg.usage-chart rect").first().waitFor();
  await page.locator("svg.usage-chart").scrollIntoViewIfNeeded();
  await shot(page, "usage-chart");
  const bars = await page.locator("svg.usage-chart rect").count();
  await page.goto(`${BASE}/usage`);
  await shot(page, "usage-ranking");
  const ranked = (await page.locator("table tbody tr").first().innerText()).replace(/\s+/g, " ");
  console.log(`USAGE ${bars} ${ranked}`);
  console.log("DONE");
} catch (e) {
  // What the page showed when a step gave up, for the test's failure message.
  await page.screenshot({ path: join(OUT, "failed.png"), fullPage: true }).catch(() => {});
  const live = await page.locator("[data-live]").innerText().catch(() => "(no live section)");
  console.error(`FAILED at step ${step}: ${e.message}\nlive section:\n${live.slice(0, 4000)}`);
  throw e;
} finally {
  await browser.close();
}
