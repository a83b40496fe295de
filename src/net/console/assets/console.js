/*
 * Monarch web console: the single-page app that monarchd's admin port serves under /ui/.
 * Plain JavaScript, no build step, no framework. It talks only to /api/... on its own origin
 * (the contract: notes/console-api.md); charts use the vendored uPlot (global `uPlot`).
 * The page runs under a strict Content-Security-Policy: no inline script, no style attribute
 * (element.style through the CSSOM is allowed), no request to another origin.
 *
 * Routes (hash): #/overview, #/queries, #/queries/<queryShapeHash>, #/plan, #/operations,
 * #/collections, #/log.
 *
 * Stable ids and classes (tests/browser/console_test.py relies on them):
 *   header       #nav a[data-page=<page>] (.active on the current one), #server-info,
 *                #token-form, #token-input, #token-submit, #token-message, #token-clear
 *   errors       #error-box (hidden when there is none; [data-code], .error-code,
 *                .error-codename, .error-message)
 *   pages        #page-overview, #page-queries, #page-shape (a query shape's detail),
 *                #page-plan, #page-operations, #page-collections, #page-log, #page-notfound;
 *                one at a time inside #content
 *   overview     #tiles .tile[data-tile=uptime|version|engine|status|connections|cursors|cache|disk]
 *                with .tile-value and .tile-sub; charts #chart-ops, #chart-latency,
 *                #chart-conns, #chart-journal (each holds a uPlot canvas)
 *   queries      #shapes-table, th[data-sort=<field>] (click to sort), rows
 *                tr.shape-row[data-hash] with td.ns (a.shape-link to #/queries/<hash>), td.command
 *   shape        #shape-summary, #shape-histogram .hist-bar[data-micros][data-count],
 *                #shape-plans, #shape-samples, #shape-explain (holds the plan view below)
 *   plan view    #plan-hint (.hint-message, .hint-index[data-index=<index key as JSON>]),
 *                #plan-summary (.summary-item[data-summary=<field>]), #plan-tree,
 *                .plan-node[data-stage] with .stage-name and
 *                .stat[data-stat=nReturned|keysExamined|docsExamined|executionTimeMillisEstimate][data-value],
 *                .detail[data-detail=<field>], #rejected-plans (.rejected-plan), #plan-raw
 *   plan form    #plan-db, #plan-command, #plan-verbosity, #plan-explain (the button), #plan-result
 *   operations   #ops-table, tr.op-row[data-opid], button.kill-op (only for operators),
 *                #ops-pause, #killop-result
 *   collections  #collections, section.database[data-db], table.collections-table,
 *                tr.collection-row[data-collection] with td.col-count[data-value],
 *                tr.collection-indexes[data-collection] with tr.index-row[data-index]
 *   log          #log-level, #log-component, #log-limit, #log-pause, #log-total, #log-scroll,
 *                #log-table[data-level][data-component], tr.log-row[data-severity][data-component]
 *   Tables and views get [data-loaded] once data has been drawn into them.
 */
'use strict';

(function () {
  // ------------------------------------------------------------------ formatting

  const NF = [0, 1, 2].map((d) => new Intl.NumberFormat('en-US', { maximumFractionDigits: d }));
  const DASH = '\u2014';

  /** A number from a plain or extended-JSON value ({"$numberLong": "5"} ...); null otherwise. */
  function num(v) {
    if (v === null || v === undefined) return null;
    if (typeof v === 'number') return Number.isFinite(v) ? v : null;
    if (typeof v === 'string') {
      if (v.trim() === '') return null;
      const n = Number(v);
      return Number.isFinite(n) ? n : null;
    }
    if (typeof v === 'object') {
      for (const k of ['$numberLong', '$numberInt', '$numberDouble', '$numberDecimal']) {
        if (k in v) return num(v[k]);
      }
    }
    return null;
  }

  /** Three significant digits or so: 1.23, 12.3, 123. */
  function sig(x) {
    const a = Math.abs(x);
    return NF[a < 10 ? 2 : a < 100 ? 1 : 0].format(x);
  }

  function fmtCount(v) {
    const n = num(v);
    if (n === null) return DASH;
    return Number.isInteger(n) ? NF[0].format(n) : sig(n);
  }

  function fmtMicros(v) {
    const us = num(v);
    if (us === null) return DASH;
    if (Math.abs(us) < 1000) return (Number.isInteger(us) ? NF[0].format(us) : sig(us)) + ' \u00b5s';
    if (Math.abs(us) < 1e6) return sig(us / 1000) + ' ms';
    if (Math.abs(us) < 60e6) return sig(us / 1e6) + ' s';
    return fmtDuration(us / 1e6);
  }

  function fmtMillis(v) {
    const ms = num(v);
    if (ms === 0) return '0 ms';
    return ms === null ? DASH : fmtMicros(ms * 1000);
  }

  function fmtBytes(v) {
    const b = num(v);
    if (b === null) return DASH;
    if (Math.abs(b) < 1024) return NF[0].format(b) + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let x = b / 1024;
    let i = 0;
    while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return sig(x) + ' ' + units[i];
  }

  function fmtDuration(v) {
    const s = num(v);
    if (s === null) return DASH;
    if (s < 60) return sig(s) + ' s';
    const total = Math.floor(s);
    const d = Math.floor(total / 86400);
    const hh = Math.floor((total % 86400) / 3600);
    const mm = Math.floor((total % 3600) / 60);
    const ss = total % 60;
    const pad = (x) => String(x).padStart(2, '0');
    if (d > 0) return `${d}d ${hh}h`;
    if (hh > 0) return `${hh}h ${pad(mm)}m`;
    return `${mm}m ${pad(ss)}s`;
  }

  function fmtRatio(v) {
    const n = num(v);
    return n === null ? DASH : sig(n);
  }

  /** A Date from {"$date": ...} (ISO string, millis, {"$numberLong"}), a string or millis. */
  function parseDate(v) {
    if (v === null || v === undefined) return null;
    if (typeof v === 'object' && !(v instanceof Date)) {
      if ('$date' in v) return parseDate(v.$date);
      const n = num(v);
      return n === null ? null : new Date(n);
    }
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function pad2(x) { return String(x).padStart(2, '0'); }

  function fmtDate(v) {
    const d = parseDate(v);
    if (!d) return DASH;
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
      `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }

  function fmtTime(v) {
    const d = parseDate(v);
    if (!d) return DASH;
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.` +
      String(d.getMilliseconds()).padStart(3, '0');
  }

  /** One-line JSON with a space after ':' and ',' : {"x": {"$gt": 5}}. */
  function compactJson(v) {
    if (v === undefined) return '';
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    if (Array.isArray(v)) return '[' + v.map(compactJson).join(', ') + ']';
    const keys = Object.keys(v);
    if (keys.length === 0) return '{}';
    return '{' + keys.map((k) => JSON.stringify(k) + ': ' + compactJson(v[k])).join(', ') + '}';
  }

  function truncate(s, n) {
    return s.length > n ? s.slice(0, n - 1) + '\u2026' : s;
  }

  // ------------------------------------------------------------------ DOM helpers

  function $(sel, root) { return (root || document).querySelector(sel); }

  /** h('td', {class: 'num', 'data-x': 1, on: {click: f}}, child, 'text', [more]) */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    let value;
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k === 'value') value = v;
        else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
        else if (k === 'style') throw new Error('no style attributes under the CSP');
        else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'selected') el[k] = !!v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(el, children);
    if (value !== undefined) el.value = value;
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  /** A table cell holding `text`, with `title` when the text was shortened. */
  function jsonCell(v, max, cls) {
    const full = compactJson(v);
    const shown = truncate(full, max);
    return h('td', { class: 'json ' + (cls || ''), title: shown === full ? null : full, text: shown });
  }

  function emptyRow(cols, text) {
    return h('tr', { class: 'empty-row' }, h('td', { colspan: cols, text }));
  }

  // ------------------------------------------------------------------ API and token

  const TOKEN_KEY = 'monarch.console.token';

  class ApiError extends Error {
    constructor(status, body, message) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  function storedToken() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  let tokenWaiter = null;
  let tokenResolve = null;

  /** Shows the token form; resolves once the user has given a token. */
  function askToken(reason, refused) {
    const form = $('#token-form');
    $('#token-message').textContent = (refused ? 'The admin token was refused' : 'This server requires the admin token') +
      (reason ? `: ${reason}` : '') + '.';
    const wasHidden = form.hidden;
    form.hidden = false;
    if (wasHidden) $('#token-input').focus();
    if (!tokenWaiter) tokenWaiter = new Promise((resolve) => { tokenResolve = resolve; });
    return tokenWaiter;
  }

  function setupToken() {
    const form = $('#token-form');
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = $('#token-input');
      const token = input.value.trim();
      if (!token) { input.focus(); return; }
      try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode: kept nowhere */ }
      input.value = '';
      form.hidden = true;
      updateTokenClear();
      const resolve = tokenResolve;
      tokenWaiter = null;
      tokenResolve = null;
      if (resolve) resolve();
    });
    $('#token-clear').addEventListener('click', () => {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing kept */ }
      updateTokenClear();
      route();
    });
    updateTokenClear();
  }

  function updateTokenClear() {
    $('#token-clear').hidden = !storedToken();
  }

  function errorFromBody(status, body, what) {
    if (body && typeof body === 'object') {
      if (body.errmsg !== undefined || body.codeName !== undefined) {
        return new ApiError(status, body, String(body.errmsg || body.codeName || `HTTP ${status}`));
      }
      if (body.reason !== undefined) return new ApiError(status, body, String(body.reason));
    }
    return new ApiError(status, body, `${what}: HTTP ${status}`);
  }

  /** Calls the API; on 401 asks for the token and retries. Throws ApiError otherwise. */
  async function api(path, options) {
    const method = (options && options.method) || 'GET';
    const body = options && options.body;
    for (;;) {
      const token = storedToken();
      const headers = { Accept: 'application/json' };
      if (token) headers.Authorization = 'Bearer ' + token;
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      let resp;
      try {
        resp = await fetch(path, {
          method, headers, cache: 'no-store', credentials: 'same-origin',
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (e) {
        throw new ApiError(0, null, `${method} ${path}: no answer from the server (${e.message})`);
      }
      const text = await resp.text();
      let data = null;
      if (text) {
        try { data = JSON.parse(text); } catch (e) { data = null; }
      }
      if (resp.status === 401) {
        // Another call may have stored a new token meanwhile: retry with it before asking.
        if (storedToken() !== token) continue;
        // A refused token is forgotten: the form asks for another.
        if (token) {
          try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing kept */ }
          updateTokenClear();
        }
        await askToken(data && data.reason, !!token);
        continue;
      }
      if (!resp.ok) throw errorFromBody(resp.status, data, `${method} ${path}`);
      if (data === null) throw new ApiError(resp.status, null, `${method} ${path}: the answer is not JSON`);
      return data;
    }
  }

  // ------------------------------------------------------------------ error box

  let errorSource = null;

  function showError(err, source) {
    const box = $('#error-box');
    const body = err && err.body;
    const code = body && typeof body === 'object' ? body.code : undefined;
    const codeName = body && typeof body === 'object' ? body.codeName : undefined;
    box.replaceChildren(
      h('span', { class: 'error-title', text: 'Error' }),
      code !== undefined ? h('span', { class: 'error-code', text: `code ${code}` }) : null,
      codeName !== undefined ? h('span', { class: 'error-codename', text: String(codeName) }) : null,
      h('span', { class: 'error-message', text: (err && err.message) || String(err) }),
      h('button', {
        class: 'error-close', type: 'button', title: 'Dismiss', 'aria-label': 'Dismiss', text: '\u00d7',
        on: { click: () => clearError() },
      }),
    );
    if (code !== undefined) box.dataset.code = String(code); else delete box.dataset.code;
    if (err && err.status !== undefined) box.dataset.status = String(err.status); else delete box.dataset.status;
    box.hidden = false;
    errorSource = source || 'page';
  }

  /** Hides the error box; with a source, only when the error shown came from there. */
  function clearError(source) {
    if (source !== undefined && source !== errorSource) return;
    const box = $('#error-box');
    box.hidden = true;
    box.replaceChildren();
    delete box.dataset.code;
    delete box.dataset.status;
    errorSource = null;
  }

  // ------------------------------------------------------------------ server info (header)

  let serverInfo = null;

  function setServerInfo(server) {
    if (!server) return;
    serverInfo = server;
    const parts = [server.host, `MongoDB ${server.version}`];
    if (server.monarchVersion) parts.push(`Monarch ${server.monarchVersion}`);
    if (server.replicaSet) parts.push(`replica set ${server.replicaSet}`);
    const el = $('#server-info');
    el.textContent = parts.filter(Boolean).join(' \u00b7 ');
    el.title = el.textContent;
  }

  async function refreshServerInfo() {
    try {
      const d = await api('/api/overview');
      setServerInfo(d.server);
    } catch (e) {
      if (!serverInfo) $('#server-info').textContent = 'server info unavailable';
    }
    return serverInfo;
  }

  // ------------------------------------------------------------------ page context and polling

  function newContext() {
    const ctx = { alive: true, charts: {}, cleanups: [] };
    ctx.onDispose = (fn) => ctx.cleanups.push(fn);
    ctx.dispose = () => {
      ctx.alive = false;
      for (const fn of ctx.cleanups) {
        try { fn(); } catch (e) { /* already gone */ }
      }
      for (const c of Object.values(ctx.charts)) c.plot.destroy();
      ctx.charts = {};
    };
    return ctx;
  }

  /**
   * Runs fn every ms after the previous run finished, from p.start() until the page changes.
   * p.now() runs it at once (again right after the current run, when one is under way);
   * p.setPaused(true) skips the runs until p.setPaused(false). Errors go to the error box.
   */
  function poller(ctx, ms, fn, source) {
    const p = { paused: false, running: false, again: false, timer: null };
    async function tick() {
      clearTimeout(p.timer);
      p.timer = null;
      if (!ctx.alive) return;
      if (p.running) { p.again = true; return; }
      if (!p.paused) {
        p.running = true;
        try {
          do {
            p.again = false;
            await fn();
          } while (p.again && ctx.alive && !p.paused);
          if (ctx.alive) clearError(source);
        } catch (e) {
          if (ctx.alive) showError(e, source);
        } finally {
          p.running = false;
        }
      }
      if (ctx.alive) {
        clearTimeout(p.timer);
        p.timer = setTimeout(tick, ms);
      }
    }
    p.start = tick;
    p.now = tick;
    p.setPaused = (paused) => {
      p.paused = paused;
      if (!paused) tick();
    };
    ctx.onDispose(() => clearTimeout(p.timer));
    return p;
  }

  function pauseButton(id, p) {
    const btn = h('button', { id, class: 'toggle', type: 'button', 'aria-pressed': 'false', text: 'Pause' });
    btn.addEventListener('click', () => {
      const paused = !p.paused;
      btn.setAttribute('aria-pressed', String(paused));
      btn.textContent = paused ? 'Resume' : 'Pause';
      p.setPaused(paused);
    });
    return btn;
  }

  function stamp(el) {
    el.textContent = 'updated ' + fmtTime(new Date()).slice(0, 8);
  }

  function pageRoot(name, title, ...children) {
    const root = h('section', { id: 'page-' + name, class: 'page' });
    append(root, children);
    $('#content').replaceChildren(root);
    document.title = `${title} \u00b7 Monarch console`;
    return root;
  }

  function pageHead(title, ...extra) {
    return h('div', { class: 'page-head' }, h('h2', { text: title }), h('span', { class: 'spacer' }), extra);
  }

  // ------------------------------------------------------------------ charts (uPlot)

  const PALETTE = ['#1f5fbf', '#cf222e', '#1a7f37', '#bf8700', '#8250df', '#0a7a8f', '#bc4c00',
    '#d1246e', '#57606a', '#4d7c0f', '#6639ba', '#0969da'];

  function chartCard(id, title) {
    return h('div', { class: 'card chart-card' }, h('h3', { text: title }), h('div', { id, class: 'chart' }));
  }

  const INTEGER_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8, 1e9];

  /**
   * Draws (or updates) a uPlot line chart; series: [{label, color, dash}], data: [xs, ...ys].
   * opts.emptyMax: the y axis' top when there is nothing above 0; opts.integer: whole-number ticks.
   */
  function lineChart(ctx, id, series, data, fmt, opts) {
    const emptyMax = (opts && opts.emptyMax) || 1;
    const el = document.getElementById(id);
    if (!el || typeof uPlot === 'undefined') return;
    const sig = series.map((s) => s.label).join('\u0000');
    const current = ctx.charts[id];
    if (current && current.sig === sig) {
      current.plot.setData(data);
      return;
    }
    if (current) current.plot.destroy();
    el.replaceChildren();
    const axis = { stroke: '#57606a', grid: { stroke: '#eaeef2', width: 1 }, ticks: { stroke: '#d8dee4', width: 1 } };
    const yAxis = Object.assign({}, axis, { size: 72, values: (u, splits) => splits.map((v) => fmt(v)) });
    if (opts && opts.integer) yAxis.incrs = INTEGER_INCRS;
    const config = {
      width: Math.max(el.clientWidth, 200),
      height: 200,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        // At least the last minute, so that a chart of one sample does not span years.
        x: {
          time: true,
          range: (u) => {
            const xs = u.data[0] || [];
            if (!xs.length) { const now = Date.now() / 1000; return [now - 60, now]; }
            const lo = xs[0];
            const hi = xs[xs.length - 1];
            return hi - lo < 60 ? [hi - 60, hi] : [lo, hi];
          },
        },
        y: { range: (u, min, max) => uPlot.rangeNum(0, max > 0 ? max : emptyMax, 0.1, true) },
      },
      axes: [axis, yAxis],
      series: [{ value: (u, v) => (v === null ? DASH : fmtTime(new Date(v * 1000)).slice(0, 8)) }].concat(series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 1.5,
        dash: s.dash,
        value: (u, v) => (v === null || v === undefined ? DASH : fmt(v)),
      }))),
    };
    ctx.charts[id] = { plot: new uPlot(config, data, el), sig, el };
  }

  function resizeCharts(ctx) {
    for (const c of Object.values(ctx.charts)) {
      c.plot.setSize({ width: Math.max(c.el.clientWidth, 200), height: 200 });
    }
  }

  // ------------------------------------------------------------------ overview

  const TILES = [
    ['uptime', 'Uptime'], ['version', 'Version'], ['engine', 'Engine'], ['status', 'Status'],
    ['connections', 'Connections'], ['cursors', 'Open cursors'], ['cache', 'Cache'], ['disk', 'Disk'],
  ];

  function renderOverview(ctx) {
    const tiles = h('div', { id: 'tiles', class: 'tiles' });
    const tileEls = {};
    for (const [key, label] of TILES) {
      const value = h('div', { class: 'tile-value', text: DASH });
      const sub = h('div', { class: 'tile-sub' });
      tileEls[key] = { tile: h('div', { class: 'tile', 'data-tile': key }, h('div', { class: 'tile-label', text: label }), value, sub), value, sub };
      tiles.append(tileEls[key].tile);
    }
    const updated = h('span', { class: 'updated' });
    pageRoot('overview', 'Overview',
      pageHead('Overview', updated),
      tiles,
      h('div', { class: 'charts' },
        chartCard('chart-ops', 'Operations per second, by command'),
        chartCard('chart-latency', 'Latency p50 (solid) and p99 (dashed), by class'),
        chartCard('chart-conns', 'Connections and cursors'),
        chartCard('chart-journal', 'Journal sync p99')));

    let frame = 0;
    const onResize = () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => resizeCharts(ctx));
    };
    window.addEventListener('resize', onResize);
    ctx.onDispose(() => { window.removeEventListener('resize', onResize); cancelAnimationFrame(frame); });

    poller(ctx, 2000, async () => {
      const d = await api('/api/overview');
      if (!ctx.alive) return;
      setServerInfo(d.server);
      fillTiles(tileEls, d);
      drawOverviewCharts(ctx, Array.isArray(d.samples) ? d.samples : []);
      $('#tiles').dataset.loaded = '';
      stamp(updated);
    }, 'overview').start();
  }

  function setTile(t, value, sub, cls) {
    t.value.textContent = value;
    t.value.title = value;
    t.value.className = 'tile-value' + (cls ? ' ' + cls : '');
    t.sub.textContent = sub || '';
    t.sub.title = sub || '';
  }

  function fillTiles(t, d) {
    const s = d.server || {};
    const last = d.samples && d.samples.length ? d.samples[d.samples.length - 1] : {};
    setTile(t.uptime, fmtDuration(s.uptimeSeconds), s.host || '');
    setTile(t.version, s.version || DASH, s.monarchVersion ? `Monarch ${s.monarchVersion}` : '');
    setTile(t.engine, s.engine || DASH, s.replicaSet ? `replica set ${s.replicaSet}` : 'standalone');
    const ready = s.ready === true;
    const status = ready ? (s.writable ? 'ready' : 'ready, read-only') : 'not ready';
    setTile(t.status, status, ready ? (s.writable ? 'writable' : 'not writable') : (s.readyReason || ''),
      ready && s.writable ? 'good' : ready ? 'warn' : 'bad');
    setTile(t.connections, fmtCount(last.connections),
      num(last.activeConnections) === null ? '' : `${fmtCount(last.activeConnections)} active`);
    setTile(t.cursors, fmtCount(last.cursors), '');
    const cache = num(last.cacheBytes);
    const max = num(last.cacheMaxBytes);
    setTile(t.cache, fmtBytes(cache), max ? `of ${fmtBytes(max)} (${sig(100 * (cache || 0) / max)}%)` : '');
    setTile(t.disk, fmtBytes(last.diskBytes), '');
  }

  function drawOverviewCharts(ctx, samples) {
    const xs = samples.map((s) => num(s.t) / 1000);

    const commands = new Set();
    for (const s of samples) for (const k of Object.keys(s.opsPerSecond || {})) commands.add(k);
    const cmds = [...commands].sort();
    lineChart(ctx, 'chart-ops',
      cmds.map((c, i) => ({ label: c, color: PALETTE[i % PALETTE.length] })),
      [xs, ...cmds.map((c) => samples.map((s) => num((s.opsPerSecond || {})[c]) || 0))],
      (v) => sig(v));

    const classes = [['reads', PALETTE[0]], ['writes', PALETTE[1]], ['commands', PALETTE[2]]];
    const latSeries = [];
    const latData = [xs];
    for (const [cls, color] of classes) {
      for (const q of ['p50', 'p99']) {
        latSeries.push({ label: `${cls} ${q}`, color, dash: q === 'p99' ? [5, 4] : undefined });
        latData.push(samples.map((s) => {
          const l = (s.latencyMicros || {})[cls];
          if (!l || !num(l.ops)) return null;
          return num(l[q]);
        }));
      }
    }
    lineChart(ctx, 'chart-latency', latSeries, latData, fmtMicros, { emptyMax: 1000 });

    lineChart(ctx, 'chart-conns', [
      { label: 'connections', color: PALETTE[0] },
      { label: 'active', color: PALETTE[2] },
      { label: 'cursors', color: PALETTE[4] },
    ], [xs, samples.map((s) => num(s.connections)), samples.map((s) => num(s.activeConnections)),
      samples.map((s) => num(s.cursors))], fmtCount, { integer: true });

    lineChart(ctx, 'chart-journal', [{ label: 'sync p99', color: PALETTE[3] }],
      [xs, samples.map((s) => (num(s.journalSyncs) ? num(s.journalSyncP99Micros) : null))], fmtMicros, { emptyMax: 1000 });
  }

  // ------------------------------------------------------------------ queries (shapes)

  const SHAPE_COLUMNS = [
    { key: 'ns', label: 'Namespace', numeric: false },
    { key: 'command', label: 'Shape', numeric: false, sortable: false },
    { key: 'count', label: 'Count', fmt: fmtCount },
    { key: 'totalMillis', label: 'Total time', fmt: fmtMillis },
    { key: 'p50Micros', label: 'p50', fmt: fmtMicros },
    { key: 'p95Micros', label: 'p95', fmt: fmtMicros },
    { key: 'p99Micros', label: 'p99', fmt: fmtMicros },
    { key: 'maxMicros', label: 'Max', fmt: fmtMicros },
    { key: 'docsExaminedPerReturned', label: 'Docs examined / returned', fmt: fmtRatio },
  ];
  const shapeSort = { key: 'totalMillis', desc: true };

  function shapeHref(hash) {
    return '#/queries/' + encodeURIComponent(hash);
  }

  function renderQueries(ctx) {
    const updated = h('span', { class: 'updated' });
    const count = h('span', { class: 'note' });
    const thead = h('thead');
    const tbody = h('tbody');
    const table = h('table', { id: 'shapes-table', class: 'data' }, thead, tbody);
    let rows = [];
    pageRoot('queries', 'Queries',
      pageHead('Query shapes', count, updated,
        h('button', { id: 'shapes-refresh', type: 'button', text: 'Refresh', on: { click: () => p.now() } })),
      h('p', { class: 'note', text: 'Query shapes by total time. Click a column to sort, a row for its latency histogram, plans and plan tree.' }),
      h('div', { class: 'table-wrap' }, table));

    function drawHead() {
      const tr = h('tr');
      for (const c of SHAPE_COLUMNS) {
        const sortable = c.sortable !== false;
        const cls = [c.numeric === false ? '' : 'num', sortable ? 'sortable' : '',
          shapeSort.key === c.key ? (shapeSort.desc ? 'sorted-desc' : 'sorted-asc') : ''].join(' ').trim();
        const th = h('th', { class: cls, 'data-sort': sortable ? c.key : null, text: c.label });
        if (sortable) {
          th.addEventListener('click', () => {
            if (shapeSort.key === c.key) shapeSort.desc = !shapeSort.desc;
            else { shapeSort.key = c.key; shapeSort.desc = c.numeric !== false; }
            drawHead();
            drawBody();
          });
          th.setAttribute('aria-sort', shapeSort.key === c.key ? (shapeSort.desc ? 'descending' : 'ascending') : 'none');
        }
        tr.append(th);
      }
      thead.replaceChildren(tr);
    }

    function drawBody() {
      const col = SHAPE_COLUMNS.find((c) => c.key === shapeSort.key) || SHAPE_COLUMNS[3];
      const sorted = rows.slice().sort((a, b) => {
        let r;
        if (col.numeric === false) r = String(a[col.key] || '').localeCompare(String(b[col.key] || ''));
        else r = (num(a[col.key]) ?? -Infinity) - (num(b[col.key]) ?? -Infinity);
        return shapeSort.desc ? -r : r;
      });
      tbody.replaceChildren(...sorted.map((r) => {
        const href = shapeHref(r.queryShapeHash);
        const tr = h('tr', { class: 'shape-row', 'data-hash': r.queryShapeHash, 'data-ns': r.ns },
          h('td', { class: 'ns' }, h('a', { class: 'shape-link', href, text: r.ns || DASH })),
          jsonCell(r.command, 180, 'command'),
          SHAPE_COLUMNS.slice(2).map((c) => {
            const v = num(r[c.key]);
            const warn = c.key === 'docsExaminedPerReturned' && v !== null && v >= 100;
            return h('td', { class: 'num ' + c.key + (warn ? ' warn' : ''), 'data-value': v === null ? null : v, text: c.fmt(r[c.key]) });
          }));
        tr.addEventListener('click', (ev) => {
          if (ev.target.closest('a') || window.getSelection().toString()) return;
          location.hash = href;
        });
        return tr;
      }));
      if (!sorted.length) tbody.append(emptyRow(SHAPE_COLUMNS.length, 'No query shapes recorded yet.'));
    }

    drawHead();
    const p = poller(ctx, 5000, async () => {
      const d = await api('/api/shapes?limit=100');
      if (!ctx.alive) return;
      rows = Array.isArray(d.shapes) ? d.shapes : [];
      count.textContent = `${fmtCount(rows.length)} shape${rows.length === 1 ? '' : 's'}`;
      drawBody();
      table.dataset.loaded = '';
      stamp(updated);
    }, 'queries');
    p.start();
  }

  async function renderShape(ctx, hash) {
    const summary = h('dl', { id: 'shape-summary', class: 'summary' });
    const command = h('div', { class: 'json shape-command', id: 'shape-command' });
    const histogram = h('div', { id: 'shape-histogram', class: 'histogram' });
    const plans = h('table', { id: 'shape-plans', class: 'data' });
    const samples = h('ul', { id: 'shape-samples', class: 'samples' });
    const explain = h('div', { id: 'shape-explain' }, h('p', { class: 'note', text: 'Loading\u2026' }));
    const openPlan = h('button', { id: 'shape-open-plan', type: 'button', text: 'Open in Plan', hidden: true });
    pageRoot('shape', 'Query shape',
      h('div', { class: 'page-head' },
        h('a', { href: '#/queries', text: '\u2190 Queries' }),
        h('h2', {}, 'Query shape ', h('span', { class: 'hash', text: hash })),
        h('span', { class: 'spacer' }), openPlan),
      h('div', { class: 'card' }, summary, h('div', { class: 'note', text: 'Shape (values redacted)' }), command),
      h('div', { class: 'shape-grid' },
        h('div', { class: 'card' }, h('h3', { text: 'Latency histogram' }), histogram),
        h('div', { class: 'card' }, h('h3', { text: 'Plans it ran with' }), plans,
          h('h3', { class: 'samples-title', text: 'Recent runs (redacted)' }), samples)),
      h('div', { class: 'card' }, h('h3', { text: 'Plan tree' }), explain));

    let d;
    try {
      d = await api('/api/shapes/' + encodeURIComponent(hash));
    } catch (e) {
      if (!ctx.alive) return;
      showError(e, 'shape');
      explain.replaceChildren(h('p', { class: 'note', text: 'No plan: the shape could not be loaded.' }));
      return;
    }
    if (!ctx.alive) return;
    const s = d.shape || {};
    const items = [
      ['Namespace', s.ns || DASH], ['Count', fmtCount(s.count)], ['Total time', fmtMillis(s.totalMillis)],
      ['p50', fmtMicros(s.p50Micros)], ['p95', fmtMicros(s.p95Micros)], ['p99', fmtMicros(s.p99Micros)],
      ['Max', fmtMicros(s.maxMicros)], ['Docs examined / returned', fmtRatio(s.docsExaminedPerReturned)],
    ];
    summary.replaceChildren(...items.map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', { text: v, title: v }))));
    command.textContent = compactJson(s.command === undefined ? null : s.command);

    drawHistogram(histogram, Array.isArray(d.histogram) ? d.histogram : []);

    const planRows = (Array.isArray(d.plans) ? d.plans : []).map((pl) => h('tr', { class: 'plan-row' },
      h('td', { class: 'json', text: pl.summary || DASH }),
      h('td', { class: 'num', text: fmtCount(pl.count) }),
      h('td', { class: 'num', text: fmtDate(pl.lastSeen) })));
    plans.replaceChildren(
      h('thead', {}, h('tr', {}, h('th', { text: 'Plan' }), h('th', { class: 'num', text: 'Runs' }), h('th', { class: 'num', text: 'Last seen' }))),
      h('tbody', {}, planRows.length ? planRows : emptyRow(3, 'No plan recorded.')));

    const sampleList = Array.isArray(d.samples) ? d.samples : [];
    samples.replaceChildren(...(sampleList.length
      ? sampleList.map((c) => h('li', { text: compactJson(c) }))
      : [h('li', { class: 'muted', text: 'No sample.' })]));
    $('#page-shape').dataset.loaded = '';

    const ex = d.explainable;
    if (!ex || !ex.command) {
      explain.replaceChildren(h('p', { class: 'note', text: 'This shape cannot be explained from the console.' }));
      return;
    }
    openPlan.hidden = false;
    openPlan.addEventListener('click', () => {
      savePlanForm({ db: ex.db || 'test', command: JSON.stringify(ex.command, null, 2), verbosity: 'executionStats', run: true });
      location.hash = '#/plan';
    });
    explain.replaceChildren(h('p', { class: 'note', text: 'Explaining\u2026' }));
    try {
      const r = await api('/api/explain', { method: 'POST', body: { db: ex.db, command: ex.command, verbosity: 'executionStats' } });
      if (!ctx.alive) return;
      renderExplain(explain, r, 'executionStats');
    } catch (e) {
      if (!ctx.alive) return;
      showError(e, 'shape');
      explain.replaceChildren(h('p', { class: 'note', text: 'The explain failed (see the error above).' }));
    }
  }

  function drawHistogram(el, buckets) {
    if (!buckets.length) {
      el.replaceChildren(h('p', { class: 'note', text: 'No latency recorded.' }));
      return;
    }
    const max = Math.max(1, ...buckets.map((b) => num(b.count) || 0));
    el.replaceChildren(...buckets.map((b) => {
      const count = num(b.count) || 0;
      const bar = h('div', { class: 'hist-bar', 'data-micros': num(b.micros), 'data-count': count,
        title: `${fmtMicros(b.micros)}: ${fmtCount(count)} run${count === 1 ? '' : 's'}` });
      bar.style.height = `${Math.max(1, (100 * count) / max) * 0.85}%`; // CSSOM, allowed by the CSP
      return h('div', { class: 'hist-col' },
        h('div', { class: 'hist-count', text: fmtCount(count) }), bar,
        h('div', { class: 'hist-label', text: fmtMicros(b.micros) }));
    }));
    el.dataset.loaded = '';
  }

  // ------------------------------------------------------------------ explain drawing

  const CHILD_KEYS = ['inputStage', 'outerStage', 'innerStage', 'thenStage', 'elseStage'];
  const STAT_KEYS = [
    ['nReturned', 'returned', fmtCount],
    ['keysExamined', 'keys examined', fmtCount],
    ['docsExamined', 'docs examined', fmtCount],
    ['executionTimeMillisEstimate', 'time est.', fmtMillis],
  ];
  const DETAIL_KEYS = ['indexName', 'keyPattern', 'filter', 'direction', 'indexBounds', 'sortPattern',
    'limitAmount', 'skipAmount', 'transformBy', 'spec'];

  /** SBE-shaped plans wrap the tree in {queryPlan: ..., slotBasedPlan: ...}. */
  function unwrapPlan(p) {
    if (p && typeof p === 'object' && !p.stage && p.queryPlan && typeof p.queryPlan === 'object') return p.queryPlan;
    return p;
  }

  /** A plan stage as {fields, children}. */
  function normPlan(p) {
    p = unwrapPlan(p);
    if (!p || typeof p !== 'object' || Array.isArray(p)) return null;
    const kids = [];
    for (const k of CHILD_KEYS) if (p[k] && typeof p[k] === 'object') kids.push(p[k]);
    if (Array.isArray(p.inputStages)) kids.push(...p.inputStages);
    return { fields: p, children: kids.map(normPlan).filter(Boolean) };
  }

  /** Overlays the execution figures onto the planner's tree; null when the shapes differ. */
  function mergePlans(plan, exec) {
    if (!plan) return exec;
    if (!exec) return plan;
    if (plan.fields.stage !== exec.fields.stage || plan.children.length !== exec.children.length) return null;
    const children = [];
    for (let i = 0; i < plan.children.length; i++) {
      const m = mergePlans(plan.children[i], exec.children[i]);
      if (!m) return null;
      children.push(m);
    }
    return { fields: Object.assign({}, plan.fields, exec.fields), children };
  }

  function planSignature(t) {
    if (!t) return '';
    const f = t.fields;
    return `${f.stage}${f.indexName ? '[' + f.indexName + ']' : ''}(${t.children.map(planSignature).join(',')})`;
  }

  function planChain(t) {
    const names = [];
    for (let n = t; n; n = n.children[0]) names.push(n.fields.stage);
    return names.reverse().join(' \u2192 ');
  }

  const isClassic = (t) => !!t && /^[A-Z_]+$/.test(String(t.fields.stage || ''));

  /** The parts of a find- or aggregate-shaped explain, ready to draw. */
  function explainModel(e) {
    e = e || {};
    let qp = e.queryPlanner;
    let es = e.executionStats;
    let pipeline = null;
    if (Array.isArray(e.stages)) {
      pipeline = e.stages;
      const first = e.stages[0] || {};
      if (first.$cursor) {
        qp = first.$cursor.queryPlanner;
        es = first.$cursor.executionStats;
      }
    }
    const notes = [];
    const planTree = qp ? normPlan(qp.winningPlan) : null;
    const execTree = es ? normPlan(es.executionStages) : null;
    let tree = mergePlans(planTree, execTree);
    if (!tree) {
      if (isClassic(execTree)) tree = execTree;
      else {
        tree = planTree;
        notes.push('The execution stages do not match the winning plan (slot-based engine); the tree is the planner\'s, the figures are in the summary and the raw explain.');
      }
    }

    if (pipeline) {
      // The output on top: the last stage is the root, each stage's input the one before it,
      // and the $cursor's plan tree under the $cursor.
      let below = null;
      pipeline.forEach((stage, i) => {
        const name = Object.keys(stage).find((k) => k.startsWith('$')) || `stage ${i}`;
        const fields = { stage: name, pipelineStage: true };
        if (stage.nReturned !== undefined) fields.nReturned = stage.nReturned;
        if (stage.executionTimeMillisEstimate !== undefined) fields.executionTimeMillisEstimate = stage.executionTimeMillisEstimate;
        const children = [];
        if (name === '$cursor') {
          if (fields.nReturned === undefined && es) fields.nReturned = es.nReturned;
          if (tree) children.push(tree);
        } else {
          fields.spec = stage[name];
        }
        if (below) children.unshift(below);
        below = { fields, children };
      });
      if (below) tree = below;
    }

    const allPlans = es && Array.isArray(es.allPlans) ? es.allPlans.map((a) => ({ stats: a, tree: normPlan(a.executionStages) })) : [];
    const rejected = (qp && Array.isArray(qp.rejectedPlans) ? qp.rejectedPlans : []).map((r) => {
      const t = normPlan(r);
      const match = allPlans.find((a) => a.tree && planSignature(a.tree) === planSignature(t));
      return { tree: (match && mergePlans(t, match.tree)) || t, trial: match ? match.stats : null };
    });

    const summary = [];
    if (qp && qp.namespace) summary.push(['namespace', 'Namespace', qp.namespace]);
    if (planTree) summary.push(['winningPlan', 'Winning plan', planChain(planTree)]);
    if (es) {
      summary.push(['nReturned', 'Returned', fmtCount(es.nReturned)]);
      summary.push(['totalKeysExamined', 'Keys examined', fmtCount(es.totalKeysExamined)]);
      summary.push(['totalDocsExamined', 'Docs examined', fmtCount(es.totalDocsExamined)]);
      summary.push(['executionTimeMillis', 'Time', fmtMillis(es.executionTimeMillis)]);
    }
    if (qp && qp.indexFilterSet) summary.push(['indexFilterSet', 'Index filter', 'set']);
    return { tree, rejected, summary, notes };
  }

  function planNode(fields) {
    const stage = String(fields.stage || '?');
    const stats = h('div', { class: 'stats' });
    for (const [key, label, fmt] of STAT_KEYS) {
      if (fields[key] === undefined) continue;
      const v = num(fields[key]);
      stats.append(h('span', { class: 'stat', 'data-stat': key, 'data-value': v === null ? null : v },
        h('span', { class: 'stat-label', text: label + ' ' }), h('span', { class: 'stat-value', text: fmt(fields[key]) })));
    }
    const details = h('div', { class: 'details' });
    for (const key of DETAIL_KEYS) {
      if (fields[key] === undefined) continue;
      const full = compactJson(fields[key]);
      const shown = truncate(full, 200);
      details.append(h('div', { class: 'detail', 'data-detail': key, title: shown === full ? null : full },
        h('span', { class: 'detail-key', text: key + ': ' }), h('span', { class: 'detail-value', text: shown })));
    }
    const cls = 'plan-node stage-' + stage.toLowerCase().replace(/[^a-z0-9_]/g, '') +
      (fields.pipelineStage ? ' stage-pipeline' : '');
    return h('div', { class: cls, 'data-stage': stage },
      h('div', { class: 'stage-name', text: stage }),
      stats.childNodes.length ? stats : null,
      details.childNodes.length ? details : null);
  }

  function treeItem(t) {
    const li = h('li', {}, planNode(t.fields));
    if (t.children.length) li.append(h('ul', {}, t.children.map(treeItem)));
    return li;
  }

  function drawTree(t, attrs) {
    return h('ul', Object.assign({ class: 'tree' }, attrs || {}), t ? treeItem(t) : null);
  }

  /** Draws an /api/explain answer into container: hint, summary, tree, rejected plans, raw. */
  function renderExplain(container, resp, verbosity) {
    const m = explainModel(resp && resp.explain);
    const parts = [];
    const hint = resp && resp.hint;
    if (hint) {
      const idx = hint.suggestedIndex;
      parts.push(h('div', { id: 'plan-hint', class: 'hint', role: 'status' },
        h('span', { class: 'hint-title', text: 'Hint' }),
        h('span', { class: 'hint-message', text: hint.message || '' }),
        idx ? [h('span', { class: 'muted', text: 'suggested index' }),
          h('code', { class: 'hint-index', 'data-index': JSON.stringify(idx), text: compactJson(idx) })] : null));
    }
    parts.push(h('dl', { id: 'plan-summary', class: 'summary card' },
      m.summary.map(([key, label, value]) => h('div', { class: 'summary-item', 'data-summary': key },
        h('dt', { text: label }), h('dd', { text: value, title: value })))));
    const side = h('div', { id: 'rejected-plans', class: 'plan-side card' },
      h('h3', { text: `Rejected plans (${m.rejected.length})` }));
    if (m.rejected.length) {
      m.rejected.forEach((r, i) => {
        const trial = r.trial;
        const head = trial
          ? `#${i + 1} \u00b7 trial: ${fmtCount(trial.nReturned)} returned, ${fmtCount(trial.totalKeysExamined)} keys, ${fmtCount(trial.totalDocsExamined)} docs`
          : `#${i + 1}`;
        side.append(h('div', { class: 'rejected-plan', 'data-rejected': i }, h('h4', { text: head }), drawTree(r.tree)));
      });
    } else {
      side.append(h('p', { class: 'note', text: 'The planner considered no other plan.' }));
    }
    parts.push(h('div', { class: 'plan-layout' },
      h('div', { class: 'plan-main card' },
        h('h3', { text: 'Winning plan' + (verbosity && verbosity !== 'queryPlanner' ? ' (with execution figures)' : '') }),
        m.notes.map((n) => h('p', { class: 'plan-note', text: n })),
        m.tree ? drawTree(m.tree, { id: 'plan-tree', 'data-loaded': '' })
          : h('div', { id: 'plan-tree', 'data-loaded': '' }, h('p', { class: 'note', text: 'The explain holds no plan.' }))),
      side));
    parts.push(h('details', { id: 'plan-raw', class: 'plan-raw' }, h('summary', { text: 'Raw explain' }),
      h('pre', { class: 'json', text: JSON.stringify(resp && resp.explain, null, 2) })));
    container.replaceChildren(...parts);
  }

  // ------------------------------------------------------------------ plan page

  const PLAN_KEY = 'monarch.console.plan';
  const PLAN_DEFAULT = { db: 'test', command: '{"find": "c", "filter": {"x": {"$gt": 5}}}', verbosity: 'executionStats' };

  function loadPlanForm() {
    try {
      const v = JSON.parse(sessionStorage.getItem(PLAN_KEY) || 'null');
      if (v && typeof v === 'object') return Object.assign({}, PLAN_DEFAULT, v);
    } catch (e) { /* fall through */ }
    return Object.assign({}, PLAN_DEFAULT);
  }

  function savePlanForm(v) {
    try { sessionStorage.setItem(PLAN_KEY, JSON.stringify(v)); } catch (e) { /* not kept */ }
  }

  function renderPlan(ctx) {
    const saved = loadPlanForm();
    const db = h('input', { id: 'plan-db', name: 'db', type: 'text', spellcheck: 'false', autocomplete: 'off', value: saved.db });
    const command = h('textarea', { id: 'plan-command', name: 'command', rows: 5, spellcheck: 'false', value: saved.command });
    const verbosity = h('select', { id: 'plan-verbosity', name: 'verbosity', value: saved.verbosity },
      ['queryPlanner', 'executionStats', 'allPlansExecution'].map((v) => h('option', { value: v, text: v })));
    const button = h('button', { id: 'plan-explain', class: 'primary', type: 'submit', text: 'Explain' });
    const result = h('div', { id: 'plan-result' });
    const form = h('form', { id: 'plan-form', class: 'plan-form card', autocomplete: 'off' },
      h('div', { class: 'field' }, h('label', { for: 'plan-db', text: 'Database' }), db),
      h('div', { class: 'field' }, h('label', { for: 'plan-command', text: 'Command (JSON: find, aggregate, count or distinct)' }), command),
      h('div', { class: 'field' }, h('label', { for: 'plan-verbosity', text: 'Verbosity' }), verbosity,
        h('div', { class: 'actions' }, button, h('span', { class: 'note', text: 'Ctrl+Enter' }))));
    pageRoot('plan', 'Plan', pageHead('Explain a command'), form, result);

    command.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearError();
      const v = { db: db.value.trim(), command: command.value, verbosity: verbosity.value };
      savePlanForm(v);
      let parsed;
      try {
        parsed = JSON.parse(v.command);
      } catch (e) {
        result.replaceChildren();
        showError(new Error(`The command is not valid JSON: ${e.message}`), 'plan');
        return;
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
        result.replaceChildren();
        showError(new Error('The command must be a JSON object, e.g. {"find": "c", "filter": {}}'), 'plan');
        return;
      }
      if (!v.db) {
        result.replaceChildren();
        showError(new Error('The database name is empty.'), 'plan');
        return;
      }
      button.disabled = true;
      button.textContent = 'Explaining\u2026';
      result.replaceChildren(h('p', { class: 'note', text: 'Explaining\u2026' }));
      try {
        const r = await api('/api/explain', { method: 'POST', body: { db: v.db, command: parsed, verbosity: v.verbosity } });
        if (!ctx.alive) return;
        renderExplain(result, r, v.verbosity);
      } catch (e) {
        if (!ctx.alive) return;
        result.replaceChildren();
        showError(e, 'plan');
      } finally {
        button.disabled = false;
        button.textContent = 'Explain';
      }
    });
    if (saved.run) {
      delete saved.run;
      savePlanForm(saved);
      form.requestSubmit();
    }
  }

  // ------------------------------------------------------------------ operations

  let pendingKill = null; // {key, until}

  function opKey(opid) {
    return typeof opid === 'object' ? JSON.stringify(opid) : String(opid);
  }

  function renderOperations(ctx) {
    const updated = h('span', { class: 'updated' });
    const result = h('div', { id: 'killop-result', class: 'killop-result', hidden: true, role: 'status' });
    const tbody = h('tbody');
    const table = h('table', { id: 'ops-table', class: 'data' },
      h('thead', {}, h('tr', {},
        ['opid', 'op', 'namespace', 'running', 'client', 'appName', 'plan', 'traceId', 'command', '']
          .map((t, i) => h('th', { class: i === 3 ? 'num' : null, text: t })))),
      tbody);
    let operator = !!(serverInfo && serverInfo.operator);
    let ops = [];

    function draw() {
      const now = Date.now();
      if (pendingKill && pendingKill.until < now) pendingKill = null;
      tbody.replaceChildren(...ops.map((op) => {
        const key = opKey(op.opid);
        const running = num(op.microsecs_running) ?? (num(op.secs_running) === null ? null : num(op.secs_running) * 1e6);
        let kill = null;
        if (operator && op.opid !== undefined) {
          const confirming = pendingKill && pendingKill.key === key;
          kill = h('button', {
            class: 'kill-op danger' + (confirming ? ' confirm' : ''), type: 'button', 'data-opid': key,
            text: confirming ? 'Confirm kill' : 'Kill',
            on: { click: () => onKill(op.opid) },
          });
        }
        return h('tr', { class: 'op-row', 'data-opid': key },
          h('td', { class: 'mono', text: key }),
          h('td', { text: op.op || DASH, title: op.desc || null }),
          h('td', { class: 'ns', text: op.ns || DASH }),
          h('td', { class: 'num', text: fmtMicros(running) }),
          h('td', { class: 'mono', text: op.client || DASH }),
          h('td', { text: op.appName || DASH }),
          h('td', { class: 'mono', text: op.planSummary || DASH }),
          h('td', { class: 'mono', text: op.traceId || DASH }),
          jsonCell(op.command, 160, 'command'),
          h('td', {}, kill));
      }));
      if (!ops.length) tbody.append(emptyRow(10, 'No active operations.'));
    }

    async function onKill(opid) {
      const key = opKey(opid);
      if (!pendingKill || pendingKill.key !== key) {
        pendingKill = { key, until: Date.now() + 5000 };
        draw();
        return;
      }
      pendingKill = null;
      draw();
      let op = opid;
      if (op && typeof op === 'object' && num(op) !== null && Number.isSafeInteger(num(op))) op = num(op);
      result.hidden = false;
      result.className = 'killop-result';
      result.textContent = `Killing operation ${key}\u2026`;
      try {
        const r = await api('/api/killOp', { method: 'POST', body: { op } });
        result.className = 'killop-result ok';
        result.textContent = `killOp ${key}: ${compactJson(r)}`;
      } catch (e) {
        result.className = 'killop-result failed';
        const b = e.body || {};
        result.textContent = `killOp ${key} failed: ${e.message}` + (b.codeName ? ` (${b.codeName})` : '');
      }
      poll.now();
    }

    const poll = poller(ctx, 2000, async () => {
      const d = await api('/api/operations');
      if (!ctx.alive) return;
      ops = (Array.isArray(d.inprog) ? d.inprog : []).slice().sort((a, b) =>
        (num(b.microsecs_running) ?? (num(b.secs_running) || 0) * 1e6) - (num(a.microsecs_running) ?? (num(a.secs_running) || 0) * 1e6));
      draw();
      table.dataset.loaded = '';
      stamp(updated);
    }, 'operations');
    pageRoot('operations', 'Operations',
      pageHead('Active operations', updated, pauseButton('ops-pause', poll)),
      result,
      h('div', { class: 'table-wrap' }, table));
    poll.start();

    refreshServerInfo().then((s) => {
      if (!ctx.alive || !s) return;
      const was = operator;
      operator = s.operator === true;
      if (was !== operator) draw();
    });
  }

  // ------------------------------------------------------------------ collections

  function renderCollections(ctx) {
    const updated = h('span', { class: 'updated' });
    const container = h('div', { id: 'collections' }, h('p', { class: 'note', text: 'Loading\u2026' }));
    pageRoot('collections', 'Collections',
      pageHead('Collections', updated, h('button', { id: 'collections-refresh', type: 'button', text: 'Refresh', on: { click: () => load() } })),
      container);

    const COLS = [
      ['Collection', null], ['Type', null], ['Documents', 'num'], ['Size', 'num'], ['Storage size', 'num'],
      ['Avg object', 'num'], ['Index size', 'num'], ['Indexes', 'num'],
    ];

    function dbSection(db) {
      const colls = (Array.isArray(db.collections) ? db.collections : []).slice().sort((a, b) => String(a.name).localeCompare(String(b.name)));
      const tbody = h('tbody');
      for (const c of colls) {
        const indexes = Array.isArray(c.indexes) ? c.indexes : [];
        tbody.append(h('tr', { class: 'collection-row', 'data-collection': c.name, 'data-type': c.type || 'collection' },
          h('td', { class: 'col-name', text: c.name }),
          h('td', { class: 'col-type', text: c.type || 'collection' }),
          h('td', { class: 'num col-count', 'data-value': num(c.count), text: fmtCount(c.count) }),
          h('td', { class: 'num col-size', 'data-value': num(c.size), text: fmtBytes(c.size) }),
          h('td', { class: 'num col-storage', 'data-value': num(c.storageSize), text: fmtBytes(c.storageSize) }),
          h('td', { class: 'num col-avg', 'data-value': num(c.avgObjSize), text: fmtBytes(c.avgObjSize) }),
          h('td', { class: 'num col-indexsize', 'data-value': num(c.totalIndexSize), text: fmtBytes(c.totalIndexSize) }),
          h('td', { class: 'num col-nindexes', text: fmtCount(indexes.length) })));
        if (indexes.length) {
          tbody.append(h('tr', { class: 'collection-indexes', 'data-collection': c.name },
            h('td', { colspan: COLS.length },
              h('table', { class: 'data indexes-table' },
                h('thead', {}, h('tr', {}, h('th', { text: 'Index' }), h('th', { text: 'Key' }), h('th', { class: 'num', text: 'Size' }),
                  h('th', { class: 'num', text: 'Accesses' }), h('th', { class: 'num', text: 'Since' }))),
                h('tbody', {}, indexes.map((ix) => h('tr', { class: 'index-row', 'data-index': ix.name },
                  h('td', { class: 'index-name', text: ix.name }),
                  jsonCell(ix.key, 120, 'index-key'),
                  h('td', { class: 'num index-size', 'data-value': num(ix.size), text: fmtBytes(ix.size) }),
                  h('td', { class: 'num index-ops', 'data-value': num(ix.accesses && ix.accesses.ops), text: fmtCount(ix.accesses && ix.accesses.ops) }),
                  h('td', { class: 'num index-since', text: fmtDate(ix.accesses && ix.accesses.since) }))))))));
        }
      }
      if (!colls.length) tbody.append(emptyRow(COLS.length, 'No collections.'));
      return h('section', { class: 'database', 'data-db': db.name },
        h('h3', {}, h('span', { text: db.name }), h('span', { class: 'muted', text: `${fmtBytes(db.sizeOnDisk)} on disk \u00b7 ${fmtCount(colls.length)} collection${colls.length === 1 ? '' : 's'}` })),
        h('div', { class: 'table-wrap' }, h('table', { class: 'data collections-table' },
          h('thead', {}, h('tr', {}, COLS.map(([t, cls]) => h('th', { class: cls, text: t })))), tbody)));
    }

    async function load() {
      try {
        const d = await api('/api/collections');
        if (!ctx.alive) return;
        const dbs = (Array.isArray(d.databases) ? d.databases : []).slice().sort((a, b) => String(a.name).localeCompare(String(b.name)));
        container.replaceChildren(...(dbs.length ? dbs.map(dbSection) : [h('p', { class: 'note', text: 'No database.' })]));
        container.dataset.loaded = '';
        stamp(updated);
        clearError('collections');
      } catch (e) {
        if (ctx.alive) showError(e, 'collections');
      }
    }
    load();
  }

  // ------------------------------------------------------------------ log

  const LEVELS = [['', 'All levels'], ['D', 'Debug and worse'], ['I', 'Info and worse'], ['W', 'Warning and worse'], ['E', 'Error and worse']];
  const logState = { level: '', component: '', limit: 200 };
  const seenComponents = new Set();

  function renderLog(ctx) {
    const level = h('select', { id: 'log-level', name: 'level', value: logState.level },
      LEVELS.map(([v, t]) => h('option', { value: v, text: t })));
    const component = h('select', { id: 'log-component', name: 'component' });
    const limit = h('input', { id: 'log-limit', name: 'limit', type: 'number', min: 1, max: 100000, step: 1, value: String(logState.limit) });
    const total = h('span', { id: 'log-total', class: 'note' });
    const updated = h('span', { class: 'updated' });
    const tbody = h('tbody');
    const table = h('table', { id: 'log-table', class: 'data' },
      h('thead', {}, h('tr', {}, ['time', 's', 'component', 'id', 'context', 'message', 'attributes'].map((t) => h('th', { text: t })))),
      tbody);
    const scroller = h('div', { id: 'log-scroll', class: 'log-scroll' }, table);

    function fillComponents() {
      const opts = [h('option', { value: '', text: 'All components' })];
      const names = new Set(seenComponents);
      if (logState.component) names.add(logState.component);
      for (const c of [...names].sort()) opts.push(h('option', { value: c, text: c }));
      component.replaceChildren(...opts);
      component.value = logState.component;
    }
    fillComponents();

    let lastKey = null;
    let forceBottom = true;
    const poll = poller(ctx, 2000, async () => {
      const params = new URLSearchParams();
      params.set('limit', String(logState.limit));
      if (logState.level) params.set('level', logState.level);
      if (logState.component) params.set('component', logState.component);
      const asked = Object.assign({}, logState);
      const d = await api('/api/log?' + params.toString());
      if (!ctx.alive) return;
      const lines = Array.isArray(d.lines) ? d.lines : [];
      let grew = false;
      for (const l of lines) {
        if (l.c && !seenComponents.has(l.c)) { seenComponents.add(l.c); grew = true; }
      }
      if (grew) fillComponents();
      total.textContent = `${fmtCount(lines.length)} shown of ${fmtCount(d.total)}`;
      stamp(updated);
      const last = lines[lines.length - 1];
      const key = JSON.stringify([asked, d.total, lines.length, last ? [last.t, last.id, last.ctx, last.msg] : null]);
      if (key === lastKey) return;
      lastKey = key;
      const atBottom = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 4;
      tbody.replaceChildren(...lines.map((l) => {
        const sev = String(l.s || '?');
        const attr = l.attr === undefined ? '' : compactJson(l.attr);
        return h('tr', { class: 'log-row sev-' + sev.charAt(0), 'data-severity': sev, 'data-component': l.c || '' },
          h('td', { class: 'time', text: fmtTime(l.t), title: fmtDate(l.t) }),
          h('td', {}, h('span', { class: 'sev', text: sev })),
          h('td', { class: 'component', text: l.c || '' }),
          h('td', { class: 'num', text: l.id === undefined ? '' : String(l.id) }),
          h('td', { class: 'ctx', text: l.ctx || '' }),
          h('td', { class: 'msg', text: l.msg || '' }),
          h('td', { class: 'attr', text: truncate(attr, 400), title: attr.length > 400 ? attr : null }));
      }));
      if (!lines.length) tbody.append(emptyRow(7, 'No log line matches.'));
      table.dataset.level = asked.level;
      table.dataset.component = asked.component;
      table.dataset.loaded = '';
      if (atBottom || forceBottom) scroller.scrollTop = scroller.scrollHeight;
      forceBottom = false;
    }, 'log');
    pageRoot('log', 'Log',
      h('div', { class: 'page-head' }, h('h2', { text: 'Log' }),
        h('div', { class: 'toolbar' },
          h('label', { for: 'log-level', text: 'Level' }), level,
          h('label', { for: 'log-component', text: 'Component' }), component,
          h('label', { for: 'log-limit', text: 'Lines' }), limit, pauseButton('log-pause', poll)),
        h('span', { class: 'spacer' }), total, updated),
      scroller);
    poll.start();

    const refilter = () => { forceBottom = true; poll.now(); };
    level.addEventListener('change', () => { logState.level = level.value; refilter(); });
    component.addEventListener('change', () => { logState.component = component.value; refilter(); });
    limit.addEventListener('change', () => {
      const n = Math.floor(Number(limit.value));
      logState.limit = Number.isFinite(n) && n > 0 ? Math.min(n, 100000) : 200;
      limit.value = String(logState.limit);
      refilter();
    });
  }

  // ------------------------------------------------------------------ router

  const PAGES = {
    overview: renderOverview,
    queries: renderQueries,
    plan: renderPlan,
    operations: renderOperations,
    collections: renderCollections,
    log: renderLog,
  };
  let current = null;

  function route() {
    const path = location.hash.replace(/^#\/?/, '');
    if (!path) {
      location.replace('#/overview');
      return;
    }
    const [name, ...rest] = path.split('/');
    if (current) current.dispose();
    current = newContext();
    clearError();
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
    window.scrollTo(0, 0);
    if (name === 'queries' && rest.length && rest.join('/')) {
      let hash = rest.join('/');
      try { hash = decodeURIComponent(hash); } catch (e) { /* keep it as it is */ }
      renderShape(current, hash);
    } else if (PAGES[name]) {
      PAGES[name](current);
    } else {
      pageRoot('notfound', 'Not found', pageHead('Not found'),
        h('p', {}, 'No page ', h('code', { text: '#/' + path }), '. ', h('a', { href: '#/overview', text: 'Go to the overview' }), '.'));
    }
  }

  function start() {
    setupToken();
    window.addEventListener('hashchange', route);
    const first = location.hash.replace(/^#\/?/, '').split('/')[0];
    route();
    // The overview page fills the header itself; others ask once.
    if (first !== 'overview' && first !== '') refreshServerInfo();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
