// dashboard.cjs: the wa-analytics dashboard in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core from deploy/local/browser.sh; NODE_PATH points at it).
//   node dashboard.cjs <base URL of wa-analytics> <output directory>
// Checks: the page loads and renders with no console error and no page error; every number
// shown carries the value the JSON API answers for the same period (summary, kpis); a
// screenshot lands in <output directory>/dashboard.png. Exit 0 when all hold, 1 otherwise.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");
const fs = require("fs");

const base = process.argv[2], outdir = process.argv[3];
const problems = [];

async function api(p) {
  const r = await fetch(base + p);
  if (!r.ok) throw new Error(p + ": HTTP " + r.status);
  return r.json();
}

async function main() {
  fs.mkdirSync(outdir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.WA_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
    page.on("console", m => { if (m.type() === "error") problems.push("console: " + m.text()); });
    page.on("pageerror", e => problems.push("page error: " + e.message));
    page.on("requestfailed", r => problems.push("request failed: " + r.url()));
    page.on("request", r => {
      if (!r.url().startsWith(base)) problems.push("external request: " + r.url());
    });
    await page.goto(base + "/dashboard", { waitUntil: "load" });
    await page.waitForSelector("body[data-ready]", { timeout: 30000 });
    const ready = await page.getAttribute("body", "data-ready");
    if (ready !== "1") problems.push("page not rendered: " + await page.textContent("#period"));
    const s = await api("/v1/analytics/summary"), k = await api("/v1/analytics/kpis");
    const want = {
      "#delivery-rate": s.rates.delivery.value, "#read-rate": s.rates.read.value,
      "#reply-rate": s.reply_rate.value, "#cost-total": s.cost.total,
      "#latency-p90": s.latency_ms.sent_to_delivered.p90,
    };
    for (const n of ["requested", "accepted", "sent", "delivered", "read", "failed"]) want["#total-" + n] = s.totals[n];
    for (const x of k.kpis) want["#kpi-" + x.name] = x.value;
    for (const sel in want) {
      const got = await page.getAttribute(sel, "data-value");
      const exp = want[sel] === null ? "null" : String(want[sel]);
      if (got !== exp) problems.push(sel + ": page " + got + ", API " + exp);
    }
    const shown = await page.textContent("#delivery-rate .v");
    const pct = s.rates.delivery.value === null ? "n/a" : (s.rates.delivery.value * 100).toFixed(2) + "%";
    if (shown !== pct) problems.push("delivery rate shown " + shown + ", API " + pct);
    for (const f of s.failures_by_code) {
      const row = await page.textContent('#failures tr[data-code="' + f.code + '"]').catch(() => null);
      if (row === null || !row.includes(String(f.count))) problems.push("failure " + f.code + " missing");
    }
    if ((await page.$$("#chart polyline")).length !== 4) problems.push("chart: not 4 lines");
    await page.screenshot({ path: path.join(outdir, "dashboard.png"), fullPage: true });
    console.log("dashboard: delivery rate " + shown + ", screenshot " + path.join(outdir, "dashboard.png"));
  } finally {
    await browser.close();
  }
}

main().then(() => {
  for (const p of problems) console.error("dashboard: " + p);
  process.exit(problems.length === 0 ? 0 : 1);
}, e => {
  console.error("dashboard: " + e.stack);
  process.exit(1);
});
