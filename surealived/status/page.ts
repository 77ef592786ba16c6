// The status page: one static HTML text with its own small CSS and script (no framework). The
// script renders the JSON model with DOM text nodes only (never markup built from names), refreshes it
// every few seconds, and loads a virtual's reals a page at a time when it is opened.

import { createHash } from 'node:crypto';

const STYLE = `
:root{--down:#c62828;--disabled:#b26a00;--pending:#607d8b;--up:#2e7d32;--line:#ddd;--dim:#666}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:8px 12px;color:#222;background:#fafafa}
h1{font-size:18px;margin:4px 0}
h2{font-size:16px;margin:16px 0 6px}
.dim{color:var(--dim)}
#error{display:none;background:#fdecea;color:var(--down);padding:6px 8px;border-radius:4px;margin:6px 0}
.chips{display:inline-flex;flex-wrap:wrap;gap:4px;vertical-align:middle}
.chip,.badge{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px;line-height:18px;white-space:nowrap}
.down{--c:var(--down)}.disabled{--c:var(--disabled)}.pending{--c:var(--pending)}.up{--c:var(--up)}
.chip,.badge{background:var(--c)}
details{background:#fff;border:1px solid var(--line);border-radius:6px;margin:6px 0}
summary{cursor:pointer;padding:8px;list-style-position:inside}
summary b{word-break:break-all}
.reals{padding:0 8px 8px;overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);vertical-align:top}
td{word-break:break-word}
th{font-weight:600;white-space:nowrap}
tr.down td:first-child{box-shadow:inset 3px 0 var(--down)}
.pager{margin:6px 0;display:flex;flex-wrap:wrap;gap:8px;align-items:center}
button,select{font:inherit;padding:4px 10px;min-height:32px}
@media (max-width:700px){
 thead{display:none}
 table,tbody,tr,td{display:block;width:100%}
 tr{border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:4px}
 td{border:0;display:flex;gap:8px;padding:2px 4px}
 td::before{content:attr(data-label);flex:0 0 88px;color:var(--dim)}
}
`;

const SCRIPT = `
'use strict';
(() => {
  const params = new URLSearchParams(location.search);
  const REFRESH_MS = Math.max(1, Number(params.get('refresh')) || 2) * 1000;
  const PAGE = 100;
  const open = new Set((params.get('open') || '').split(',').filter((s) => /^\\d+$/.test(s)).map(Number));
  const pages = new Map();
  let voffset = 0;
  let overview = JSON.parse(document.getElementById('initial').textContent);
  let refreshes = 0;
  let busy = false;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function ago(s) {
    if (s === null || s === undefined) return '\\u2014';
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h';
    return Math.floor(s / 86400) + ' d';
  }
  const hostport = (a, p) => (a.includes(':') ? '[' + a + ']' : a) + ':' + p;
  function chips(counts) {
    const d = el('span', { class: 'chips' });
    for (const k of ['down', 'disabled', 'pending', 'up']) if (counts[k]) d.append(el('span', { class: 'chip ' + k, title: k }, counts[k] + ' ' + k));
    return d;
  }
  function overrideText(r) {
    const parts = [];
    if (r.rstate !== 'ONLINE') parts.push(r.rstate);
    if (r.override) parts.push('weight ' + r.override.weight + (r.override.percent ? '%' : ''));
    return parts.length ? parts.join(', ') : '\\u2014';
  }
  function probeText(r) {
    if (!r.last_probe) return 'not yet';
    return r.last_probe + (r.detail ? ': ' + r.detail : '') + (r.latency_ms !== null ? ' (' + r.latency_ms.toFixed(1) + ' ms)' : '');
  }
  const COLS = ['Real', 'State', 'Weight', 'Override', 'Last probe', 'Changed', 'Probe age'];
  function realRow(r, v) {
    const cells = [
      el('span', {}, el('b', {}, r.name), ' ', el('span', { class: 'dim' }, hostport(r.addr, r.port))),
      el('span', { class: 'badge ' + r.state }, r.state),
      r.weight + ' / ' + r.configured_weight,
      overrideText(r),
      probeText(r),
      ago(r.changed_s_ago),
      ago(r.probed_s_ago) + (r.probe_late_s > 0 ? ', late ' + ago(r.probe_late_s) : ''),
    ];
    const labels = v === undefined ? COLS : ['Virtual'].concat(COLS);
    if (v !== undefined) cells.unshift(v);
    const tr = el('tr', { class: r.state, 'data-real': r.name, 'data-state': r.state });
    cells.forEach((c, i) => tr.append(el('td', { 'data-label': labels[i] }, c)));
    return tr;
  }
  function table(labels, rows) {
    const head = el('tr');
    for (const l of labels) head.append(el('th', {}, l));
    return el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows));
  }
  function pager(offset, limit, total, go) {
    if (total <= limit && offset === 0) return null;
    const last = Math.min(offset + limit, total);
    const prev = el('button', { type: 'button' }, '\\u2039 prev');
    const next = el('button', { type: 'button' }, 'next \\u203a');
    prev.disabled = offset === 0;
    next.disabled = last >= total;
    prev.onclick = () => go(Math.max(0, offset - limit));
    next.onclick = () => go(offset + limit);
    return el('div', { class: 'pager' }, prev, el('span', {}, (total ? offset + 1 : 0) + '\\u2013' + last + ' of ' + total), next);
  }
  async function getJson(query) {
    const res = await fetch('status.json' + query, { cache: 'no-store' });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error('HTTP ' + res.status);
    return res.json();
  }
  async function loadReals(i) {
    let p = pages.get(i);
    if (!p) pages.set(i, (p = { offset: 0, state: '', data: null }));
    const data = await getJson('?virtual=' + i + '&offset=' + p.offset + '&limit=' + PAGE + (p.state ? '&state=' + p.state : ''));
    if (data === null) {
      pages.delete(i);
      open.delete(i);
    } else p.data = data;
  }
  function renderReals(body, i) {
    const p = pages.get(i);
    if (!p || !p.data) {
      body.replaceChildren('loading\\u2026');
      return;
    }
    const d = p.data;
    const filter = el('select', { 'aria-label': 'show reals' });
    for (const s of ['', 'down', 'disabled', 'pending', 'up']) {
      const n = s ? d.virtual.counts[s] : d.virtual.reals;
      const o = el('option', { value: s }, (s || 'all') + ' (' + n + ')');
      if (s === p.state) o.selected = true;
      filter.append(o);
    }
    filter.onchange = () => {
      p.state = filter.value;
      p.offset = 0;
      loadReals(i).then(render, fail);
    };
    const go = (off) => {
      p.offset = off;
      loadReals(i).then(render, fail);
    };
    body.replaceChildren(
      el('div', { class: 'pager' }, el('span', {}, 'show'), filter),
      table(COLS, d.reals.map((r) => realRow(r))),
      pager(d.offset, d.limit, d.total, go) || '',
    );
  }
  function virtualBlock(v) {
    const d = el('details', { 'data-virtual': v.index, 'data-name': v.name });
    d.open = open.has(v.index);
    const where = v.proto === 'fwmark' ? 'fwmark ' + v.fwmark : hostport(v.addr, v.port) + '/' + v.proto;
    d.append(
      el('summary', {}, el('b', {}, v.name), ' ', el('span', { class: 'dim' }, where), ' ', chips(v.counts), ' ',
        v.panic ? el('span', { class: 'chip down', 'data-panic': '1' }, 'PANIC: verdicts disregarded') : '', ' ',
        v.sorry && v.sorry.active ? el('span', { class: 'chip down', 'data-sorry': '1' }, 'sorry server ' + v.sorry.name + ' in service') : '', ' ',
        el('span', { class: 'dim' }, 'weight ' + v.weight + '/' + v.configured_weight + ' \\u00b7 ' + v.tester + ' every ' + v.loopdelay_s + ' s, detects in ' + v.detect_s + ' s')),
    );
    const body = el('div', { class: 'reals' });
    d.append(body);
    if (d.open) renderReals(body, v.index);
    d.addEventListener('toggle', () => {
      if (d.open === open.has(v.index)) return;
      if (d.open) {
        open.add(v.index);
        renderReals(body, v.index);
        loadReals(v.index).then(render, fail);
      } else open.delete(v.index);
      syncUrl();
    });
    return d;
  }
  function syncUrl() {
    const p = new URLSearchParams(location.search);
    if (open.size) p.set('open', [...open].sort((a, b) => a - b).join(','));
    else p.delete('open');
    const q = p.toString();
    history.replaceState(null, '', location.pathname + (q ? '?' + q : ''));
  }
  function render() {
    const o = overview;
    const late = o.lateness ? ' \\u00b7 probes start ' + (o.lateness.mean_s * 1000).toFixed(1) + ' ms late on average, ' + (o.lateness.over_100ms * 100).toFixed(1) + '% over 100 ms' : '';
    $('summary').replaceChildren(el('span', {}, o.reals_total + ' reals in ' + o.virtuals_total + ' virtuals '), chips(o.counts), el('span', { class: 'dim' }, late));
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString() + ' \\u00b7 up ' + ago(o.uptime_s) + ' \\u00b7 every ' + REFRESH_MS / 1000 + ' s';
    document.body.dataset.refreshes = String(refreshes);
    $('problems-title').textContent = 'Needs attention (' + o.problems_total + ')';
    $('problems').replaceChildren(
      o.problems_total === 0 ? el('p', { class: 'dim' }, 'Every real is up.') : table(['Virtual'].concat(COLS), o.problems.map((r) => realRow(r, r.virtual_name))),
      o.problems_total > o.problems.length ? el('p', { class: 'dim' }, 'showing the first ' + o.problems.length + '; open a virtual and filter by state for the rest') : '',
    );
    $('virtuals-title').textContent = 'Virtuals (' + o.virtuals_total + ')';
    $('virtuals').replaceChildren(
      ...o.virtuals.map(virtualBlock),
      pager(o.offset, o.limit, o.virtuals_total, (off) => {
        voffset = off;
        refresh();
      }) || '',
    );
  }
  function fail(e) {
    $('error').style.display = 'block';
    $('error').textContent = 'status unavailable (' + (e && e.message ? e.message : e) + '); retrying';
  }
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const o = await getJson('?offset=' + voffset);
      if (o) overview = o;
      await Promise.all([...open].map(loadReals));
      refreshes++;
      $('error').style.display = 'none';
      render();
    } catch (e) {
      fail(e);
    } finally {
      busy = false;
    }
  }
  render();
  Promise.all([...open].map(loadReals)).then(render, fail);
  setInterval(() => {
    if (!document.hidden) refresh();
  }, REFRESH_MS);
})();
`;

/** `script-src` of the Content-Security-Policy: only our own script runs, whatever a name contains. */
const SCRIPT_HASH = createHash('sha256').update(SCRIPT).digest('base64');

export const STATUS_PAGE_CSP =
  `default-src 'none'; script-src 'sha256-${SCRIPT_HASH}'; style-src 'unsafe-inline'; connect-src 'self'; ` + `img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/** The page, with the overview it starts from (JSON already made safe by `jsonForHtml`). */
export function statusPageHtml(initialJson: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>surealived status</title>
<style>${STYLE}</style>
</head>
<body>
<h1>surealived status</h1>
<div id="updated" class="dim"></div>
<div id="error" role="alert"></div>
<div id="summary"></div>
<h2 id="problems-title">Needs attention</h2>
<div id="problems"></div>
<h2 id="virtuals-title">Virtuals</h2>
<div id="virtuals"></div>
<p class="dim">JSON: <a href="status.json">status.json</a>, <code>status.json?virtual=N&amp;state=down&amp;offset=0&amp;limit=100</code> · <a href="metrics">metrics</a></p>
<script type="application/json" id="initial">${initialJson}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
