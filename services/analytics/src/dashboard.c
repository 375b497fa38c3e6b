/*
 * dashboard.c: GET /dashboard, one self-contained page (no CDN, no external font or script:
 * works offline) that reads /v1/analytics/summary, /kpis and /series from this daemon and
 * shows the KPIs against their thresholds, the totals and rates, a chart of sent, delivered,
 * read and failed over time (inline SVG), failures by code with their meaning, top templates
 * and cost. The numbers are the API's own, so they are identical for the same period (query
 * parameters are passed through). Each number's element carries the API value in data-value
 * (tests/browser/dashboard.mjs checks them in headless Chromium).
 */
#include <string.h>

#include "analytics.h"
#include "wa/httpd.h"

/* clang-format off */
static const char page[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<title>wa-analytics</title>\n"
    "<link rel=\"icon\" href=\"data:,\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>\n"
    "body{font:14px system-ui,sans-serif;margin:24px;color:#1b1b1b;background:#fafafa}\n"
    "h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:24px 0 8px}\n"
    ".muted{color:#666}.cards{display:flex;gap:12px;flex-wrap:wrap}\n"
    ".card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;min-width:170px}\n"
    ".card .v{font-size:22px;font-weight:600}.pass{color:#1a7f37}.fail{color:#c62828}\n"
    "table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:4px 10px;text-align:left}\n"
    "th{background:#f0f0f0}td.n{text-align:right}svg{background:#fff;border:1px solid #ddd}\n"
    ".legend span{margin-right:14px}\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>WhatsApp delivery and engagement</h1>\n"
    "<div class=\"muted\" id=\"period\">loading</div>\n"
    "<h2>Go-live checks</h2>\n"
    "<div class=\"cards\" id=\"kpis\"></div>\n"
    "<h2>Totals</h2>\n"
    "<div class=\"cards\" id=\"totals\"></div>\n"
    "<h2>Over time</h2>\n"
    "<div class=\"legend\" id=\"legend\"></div>\n"
    "<svg id=\"chart\" width=\"900\" height=\"260\" viewBox=\"0 0 900 260\" role=\"img\" aria-label=\"messages over time\"></svg>\n"
    "<h2>Failures by code</h2>\n"
    "<table id=\"failures\"><thead><tr><th>code</th><th>meaning</th><th>messages</th></tr></thead><tbody></tbody></table>\n"
    "<h2>Top templates</h2>\n"
    "<table id=\"templates\"><thead><tr><th>template</th><th>sent</th><th>delivered</th><th>read</th><th>failed</th></tr></thead><tbody></tbody></table>\n"
    "<h2>Cost</h2>\n"
    "<div class=\"cards\" id=\"cost\"></div>\n"
    "<script>\n"
    "\"use strict\";\n"
    "const COLORS = {sent: \"#1565c0\", delivered: \"#2e7d32\", read: \"#6a1b9a\", failed: \"#c62828\"};\n"
    "function el(tag, attrs, text) {\n"
    "  const e = document.createElement(tag);\n"
    "  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);\n"
    "  if (text !== undefined) e.textContent = text;\n"
    "  return e;\n"
    "}\n"
    "function pct(v) { return v === null ? \"n/a\" : (v * 100).toFixed(2) + \"%\"; }\n"
    "function num(v) { return v === null ? \"n/a\" : String(v); }\n"
    "function card(parent, id, label, value, shown, cls) {\n"
    "  const c = el(\"div\", {\"class\": \"card\", \"id\": id, \"data-value\": value === null ? \"null\" : String(value)});\n"
    "  c.appendChild(el(\"div\", {\"class\": \"muted\"}, label));\n"
    "  c.appendChild(el(\"div\", {\"class\": \"v \" + (cls || \"\")}, shown));\n"
    "  parent.appendChild(c);\n"
    "}\n"
    "async function get(path) {\n"
    "  const r = await fetch(path);\n"
    "  if (!r.ok) throw new Error(path + \": HTTP \" + r.status);\n"
    "  return r.json();\n"
    "}\n"
    "function chart(series) {\n"
    "  const svg = document.getElementById(\"chart\"), W = 900, H = 260, L = 50, B = 30, T = 10;\n"
    "  const keys = [\"sent\", \"delivered\", \"read\", \"failed\"], ns = \"http://www.w3.org/2000/svg\";\n"
    "  let max = 1;\n"
    "  for (const p of series) for (const k of keys) max = Math.max(max, p.totals[k]);\n"
    "  const x = i => L + (series.length < 2 ? (W - L - 10) / 2 : i * (W - L - 10) / (series.length - 1));\n"
    "  const y = v => H - B - v * (H - B - T) / max;\n"
    "  const line = (x1, y1, x2, y2) => {\n"
    "    const l = document.createElementNS(ns, \"line\");\n"
    "    l.setAttribute(\"x1\", x1); l.setAttribute(\"y1\", y1); l.setAttribute(\"x2\", x2); l.setAttribute(\"y2\", y2);\n"
    "    l.setAttribute(\"stroke\", \"#999\"); svg.appendChild(l);\n"
    "  };\n"
    "  const text = (tx, ty, s, anchor) => {\n"
    "    const t = document.createElementNS(ns, \"text\");\n"
    "    t.setAttribute(\"x\", tx); t.setAttribute(\"y\", ty); t.setAttribute(\"font-size\", \"11\");\n"
    "    t.setAttribute(\"text-anchor\", anchor || \"middle\"); t.textContent = s; svg.appendChild(t);\n"
    "  };\n"
    "  line(L, T, L, H - B); line(L, H - B, W - 10, H - B);\n"
    "  text(L - 6, T + 8, String(max), \"end\"); text(L - 6, H - B, \"0\", \"end\");\n"
    "  series.forEach((p, i) => { if (series.length <= 12 || i % Math.ceil(series.length / 12) === 0) text(x(i), H - 10, p.period_start); });\n"
    "  for (const k of keys) {\n"
    "    const pl = document.createElementNS(ns, \"polyline\");\n"
    "    pl.setAttribute(\"points\", series.map((p, i) => x(i) + \",\" + y(p.totals[k])).join(\" \"));\n"
    "    pl.setAttribute(\"fill\", \"none\"); pl.setAttribute(\"stroke\", COLORS[k]); pl.setAttribute(\"stroke-width\", \"2\");\n"
    "    pl.setAttribute(\"data-series\", k);\n"
    "    svg.appendChild(pl);\n"
    "    series.forEach((p, i) => {\n"
    "      const c = document.createElementNS(ns, \"circle\");\n"
    "      c.setAttribute(\"cx\", x(i)); c.setAttribute(\"cy\", y(p.totals[k])); c.setAttribute(\"r\", \"3\");\n"
    "      c.setAttribute(\"fill\", COLORS[k]); svg.appendChild(c);\n"
    "    });\n"
    "    document.getElementById(\"legend\").appendChild(el(\"span\", {\"style\": \"color:\" + COLORS[k]}, \"\\u25a0 \" + k));\n"
    "  }\n"
    "}\n"
    "async function main() {\n"
    "  const q = new URLSearchParams(location.search);\n"
    "  const base = new URLSearchParams();\n"
    "  for (const k of [\"from\", \"to\", \"tz\", \"phone_number_id\", \"template\", \"category\", \"country\"]) if (q.has(k)) base.set(k, q.get(k));\n"
    "  const [s, k] = await Promise.all([get(\"/v1/analytics/summary?\" + base), get(\"/v1/analytics/kpis?\" + base)]);\n"
    "  const span = s.period.to_ms - s.period.from_ms, g = new URLSearchParams(base);\n"
    "  g.set(\"granularity\", q.get(\"granularity\") || (span <= 2 * 86400000 ? \"hour\" : \"day\"));\n"
    "  const series = await get(\"/v1/analytics/series?\" + g);\n"
    "  document.getElementById(\"period\").textContent = s.period.from + \" to \" + s.period.to + \" (\" + s.period.tz + \")\";\n"
    "  const kp = document.getElementById(\"kpis\");\n"
    "  for (const x of k.kpis) {\n"
    "    const thr = x.threshold.op === \"between\" ? x.threshold.min + \" to \" + x.threshold.max : x.threshold.op + \" \" + x.threshold.value;\n"
    "    const shown = x.value === null ? \"n/a\" : (x.name.endsWith(\"rate\") ? pct(x.value) : x.value.toFixed(3) + \" s\");\n"
    "    card(kp, \"kpi-\" + x.name, x.name.replace(/_/g, \" \") + \" (\" + thr + \")\", x.value, shown + (x.pass ? \" pass\" : \" fail\"), x.pass ? \"pass\" : \"fail\");\n"
    "  }\n"
    "  const tt = document.getElementById(\"totals\");\n"
    "  for (const n of [\"requested\", \"accepted\", \"sent\", \"delivered\", \"read\", \"failed\"]) card(tt, \"total-\" + n, n, s.totals[n], num(s.totals[n]));\n"
    "  card(tt, \"delivery-rate\", \"delivery rate (\" + s.rates.delivery.numerator + \"/\" + s.rates.delivery.denominator + \")\", s.rates.delivery.value, pct(s.rates.delivery.value));\n"
    "  card(tt, \"read-rate\", \"read rate\", s.rates.read.value, pct(s.rates.read.value));\n"
    "  card(tt, \"reply-rate\", \"reply rate\", s.reply_rate.value, pct(s.reply_rate.value));\n"
    "  card(tt, \"latency-p90\", \"sent to delivered p90 (ms)\", s.latency_ms.sent_to_delivered.p90, num(s.latency_ms.sent_to_delivered.p90));\n"
    "  chart(series.series);\n"
    "  const fb = document.querySelector(\"#failures tbody\");\n"
    "  for (const f of s.failures_by_code) {\n"
    "    const tr = el(\"tr\", {\"data-code\": String(f.code)});\n"
    "    tr.appendChild(el(\"td\", {}, f.code !== null ? num(f.code) : (f.reason || \"n/a\"))); tr.appendChild(el(\"td\", {}, f.meaning)); tr.appendChild(el(\"td\", {\"class\": \"n\"}, String(f.count)));\n"
    "    fb.appendChild(tr);\n"
    "  }\n"
    "  const tb = document.querySelector(\"#templates tbody\");\n"
    "  for (const t of s.templates) {\n"
    "    const tr = el(\"tr\", {\"data-template\": t.name});\n"
    "    tr.appendChild(el(\"td\", {}, t.name));\n"
    "    for (const n of [\"sent\", \"delivered\", \"read\", \"failed\"]) tr.appendChild(el(\"td\", {\"class\": \"n\"}, String(t[n])));\n"
    "    tb.appendChild(tr);\n"
    "  }\n"
    "  const cc = document.getElementById(\"cost\");\n"
    "  card(cc, \"cost-total\", \"total (\" + (s.cost.currency || \"no rate card\") + \")\", s.cost.total, s.cost.total.toFixed(4));\n"
    "  for (const c in s.cost.by_category) card(cc, \"cost-\" + c, c, s.cost.by_category[c], s.cost.by_category[c].toFixed(4));\n"
    "  document.body.setAttribute(\"data-ready\", \"1\");\n"
    "}\n"
    "main().catch(e => { document.getElementById(\"period\").textContent = \"error: \" + e.message; document.body.setAttribute(\"data-ready\", \"error\"); });\n"
    "</script>\n"
    "</body>\n"
    "</html>\n"
    "\n";
/* clang-format on */

static void
get_dashboard(struct wa_http_req *req, void *arg)
{
    (void)arg;
    wa_http_reply_header(req, "Content-Security-Policy",
                         "default-src 'self'; img-src data:; script-src 'unsafe-inline'; "
                         "style-src 'unsafe-inline'");
    wa_http_reply(req, 200, "text/html; charset=utf-8", page, sizeof(page) - 1);
}

enum wa_err
an_dashboard_start(struct an *an, struct wa_error *error)
{
    enum wa_err err =
        wa_httpd_route(wa_service_httpd(an->svc), "GET", "/dashboard", 0, get_dashboard, an);

    return err != WA_OK ? wa_error_set(error, err, "cannot add GET /dashboard") : WA_OK;
}
