// flashstock dashboard: plain JavaScript, no build step, no dependencies.
//
// Data, all same-origin and relative to the node's root (the page lives at <root>/ui/):
//   ../v1/cluster                  every 2 s: members, roles, leader, term, applied index
//   ../v1/skus?limit=100&...stale  every 1 s: the SKU table and the deductions/s chart
//   ../v1/skus/{sku}/watch         server-sent events for the first few SKUs (live rows)
//   ../metrics                     every 2 s: rejections/s, if the node exports a counter
'use strict';

(() => {
  const ROOT = new URL('../', document.baseURI);
  const CLUSTER_EVERY_MS = 2000;
  const SKUS_EVERY_MS = 1000;
  const METRICS_EVERY_MS = 2000;
  const REQUEST_TIMEOUT_MS = 3000;
  const HISTORY_SECONDS = 60;
  const SKU_LIMIT = 100;
  // A browser opens at most 6 HTTP/1.1 connections per host and every server-sent event
  // stream holds one, so over plain HTTP only a few rows are live (the rest are polled);
  // over HTTPS the streams share one HTTP/2 connection.
  const MAX_WATCHED = location.protocol === 'https:' ? 20 : 3;
  const WATCH_RETRY_MS = 5000;
  // Prometheus counters summed (over every label set) into rejections/s; the first found wins.
  const REJECTION_COUNTERS = ['flashstock_rejections_total'];

  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat('en-US');
  const num = (n) => (typeof n === 'number' && isFinite(n) ? fmt.format(n) : '—');

  const state = {
    token: sessionStorage.getItem('flashstock.token') || '',
    cluster: null, clusterError: null, lastLeader: undefined,
    skus: new Map(), // sku -> SKU JSON, the newest version seen from either source
    order: [], // SKU ids in list order
    skusError: null,
    watches: new Map(), // sku -> {close(), live}
    watchFailed: new Map(), // sku -> time of the last failure
    soldSeen: null, // sku -> sold at the previous sample
    deductions: [], // per-second samples: {t, v}
    rejections: [], rejectionsTotal: null, rejectionsAt: 0, rejectionsWhy: 'waiting for /metrics',
  };

  // ---- HTTP ----

  class APIError extends Error {
    constructor(status, code, message) {
      super(`${status}${code ? ' ' + code : ''}: ${message}`);
      this.status = status;
      this.code = code;
    }
  }

  function headers() {
    return state.token ? { Authorization: 'Bearer ' + state.token } : {};
  }

  async function get(path, as = 'json') {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
    let resp;
    try {
      resp = await fetch(new URL(path, ROOT), { headers: headers(), signal: ctl.signal, cache: 'no-store' });
      if (!resp.ok) {
        let code = '', message = resp.statusText;
        try {
          const body = await resp.json();
          if (body && body.error) ({ code, message } = body.error);
        } catch (_) { /* not the API's error body */ }
        if (resp.status === 401) showTokenForm();
        throw new APIError(resp.status, code, message);
      }
      return as === 'json' ? await resp.json() : await resp.text();
    } catch (err) {
      if (err.name === 'AbortError') throw new Error(`GET /${path.replace(/^\.\.\//, '')}: no answer in ${REQUEST_TIMEOUT_MS / 1000} s`);
      if (err instanceof APIError) throw err;
      throw new Error(`GET /${path.replace(/^\.\.\//, '')}: ${err.message} (is the node up?)`);
    } finally {
      clearTimeout(timer);
    }
  }

  // every runs fn now and then every ms after it settles (never two at once).
  function every(ms, fn) {
    const loop = async () => {
      try { await fn(); } catch (err) { console.error(err); }
      setTimeout(loop, ms);
    };
    loop();
  }

  // ---- cluster ----

  async function pollCluster() {
    try {
      state.cluster = await get('v1/cluster');
      state.clusterError = null;
    } catch (err) {
      state.clusterError = err.message;
    }
    renderCluster();
    renderStatus();
  }

  function renderCluster() {
    const c = state.cluster;
    $('cluster-table').classList.toggle('stale', !!state.clusterError);
    if (!c) {
      if (state.clusterError) setEmpty('cluster-table', 8, 'No cluster view yet: ' + state.clusterError);
      return;
    }
    const nodes = c.nodes || [];
    const leader = nodes.find((n) => n.id === c.leader);
    const maxApplied = Math.max(0, ...nodes.filter((n) => n.role !== 'unknown').map((n) => n.applied_index || 0));

    const card = $('leader-card');
    card.classList.toggle('none', !c.leader);
    $('leader-id').textContent = c.leader || 'no leader';
    $('leader-addr').textContent = c.leader ? (leader ? leader.http_addr : '') : 'writes and strong reads fail until one is elected';
    $('term').textContent = num(c.term);
    const voters = nodes.filter((n) => n.suffrage !== 'nonvoter').length;
    const down = nodes.filter((n) => n.role === 'unknown').length;
    $('members').textContent = String(nodes.length);
    $('members-sub').textContent = `${voters} voter${voters === 1 ? '' : 's'}, ${nodes.length - voters} nonvoter${nodes.length - voters === 1 ? '' : 's'}` +
      (down ? `, ${down} unreachable` : '');
    $('members-sub').className = 'sub' + (down ? ' bad' : '');
    $('applied').textContent = num(maxApplied);
    $('applied-sub').textContent = 'highest among reachable members';

    if (state.lastLeader !== undefined && state.lastLeader !== c.leader) {
      announce(c.leader ? `Leader is now ${c.leader} (term ${c.term}).` : 'The cluster has no leader.');
    }
    state.lastLeader = c.leader;

    // Rejections are counted by the leader: say so when this page is served by another node.
    const note = $('reject-note');
    if (leader && leader.http_addr && leader.http_addr !== location.host) {
      const a = document.createElement('a');
      a.href = `${location.protocol}//${leader.http_addr}/ui/`;
      a.textContent = `open on ${leader.id}`;
      note.replaceChildren('counted by the leader: ', a);
    } else {
      note.replaceChildren();
    }

    const tbody = $('cluster-table').tBodies[0];
    const rows = nodes.map((n) => {
      const tr = document.createElement('tr');
      tr.dataset.node = n.id;
      const isLeader = n.id === c.leader;
      const down = n.role === 'unknown';
      if (isLeader) tr.classList.add('is-leader');
      if (down) tr.classList.add('down');
      const lag = down ? null : maxApplied - (n.applied_index || 0);
      const contact = isLeader || down || n.last_contact_ms < 0 ? null : n.last_contact_ms;
      tr.append(
        cell(n.id + (isLeader ? ' \u2605' : ''), '', isLeader ? `${n.id}, the leader` : undefined),
        badgeCell(down ? 'unknown' : n.role, down ? 'unreachable' : n.role),
        cell(n.suffrage === 'nonvoter' ? 'nonvoter' : 'voter'),
        cell(n.http_addr || '—', 'addr mono'),
        cell(n.raft_addr || '—', 'addr mono'),
        cell(down ? '—' : num(n.applied_index), 'num'),
        cell(lag === null ? '—' : num(lag), 'num' + (lag > 1000 ? ' bad' : lag > 100 ? ' warn' : '')),
        cell(contact === null ? '—' : `${num(contact)} ms`, 'num' + (contact > 1000 ? ' bad' : contact > 300 ? ' warn' : '')),
      );
      return tr;
    });
    tbody.replaceChildren(...rows);
    if (!rows.length) setEmpty('cluster-table', 8, 'No members in the configuration.');
    renderGroups(c);
  }

  // renderGroups lists the raft groups: one data group in a cluster created without
  // --groups, else the meta group (0, the placement) and the data groups, each with its
  // own leader. A node knows the leaders of the groups it hosts only, so a leader it does
  // not know is shown as such, not as an alarm: on five nodes every node hosts some groups
  // and not others.
  function renderGroups(c) {
    const groups = c.groups || [];
    const data = groups.filter((g) => g.kind === 'data').length;
    const leaderless = groups.filter((g) => !g.leader).length;
    $('groups-sub').textContent = `${data} data group${data === 1 ? '' : 's'}` +
      (groups.length > data ? ' + meta' : '') + (c.placement_version ? `, placement v${c.placement_version}` : '') +
      (leaderless ? `, ${leaderless} with no leader known here` : '');
    const rows = groups.map((g) => {
      const tr = document.createElement('tr');
      tr.dataset.group = String(g.id);
      const reps = (g.replicas || []).map((r) => r.node + (r.role === 'nonvoter' ? ' (nonvoter)' : '')).join(', ');
      const slots = (g.slots || []).map((r) => r.to - r.from === 1 ? `${r.from}` : `${r.from}\u2013${r.to - 1}`).join(', ');
      tr.append(
        cell(String(g.id), 'num'),
        cell(g.kind),
        g.leader ? cell(g.leader) : badgeCell('unknown', 'not known here'),
        cell(reps || '\u2014'),
        cell(slots || (g.kind === 'meta' ? 'placement' : '\u2014'), 'mono'),
      );
      return tr;
    });
    $('group-table').tBodies[0].replaceChildren(...rows);
    if (!rows.length) setEmpty('group-table', 5, 'This node lists no groups.');
  }

  // ---- SKUs ----

  async function pollSKUs() {
    try {
      const list = await get(`v1/skus?limit=${SKU_LIMIT}&consistency=stale`);
      state.skusError = null;
      state.order = (list.skus || []).map((s) => s.sku);
      const keep = new Set(state.order);
      for (const sku of state.skus.keys()) if (!keep.has(sku)) state.skus.delete(sku);
      for (const s of list.skus || []) upsert(s);
      syncWatches();
      sampleDeductions(); // right after the poll, so polled and live rows are of one moment
    } catch (err) {
      state.skusError = err.message;
    }
    renderSKUs();
    renderStatus();
  }

  // upsert keeps the newest state of a SKU: the poll and the watch may arrive out of order.
  function upsert(s) {
    const old = state.skus.get(s.sku);
    if (!old || s.version >= old.version) state.skus.set(s.sku, s);
  }

  function renderSKUs() {
    $('sku-table').classList.toggle('stale', !!state.skusError);
    const tbody = $('sku-table').tBodies[0];
    if (!state.order.length) {
      setEmpty('sku-table', 8, state.skusError ? 'No SKUs: ' + state.skusError : 'No SKUs yet. Create one: PUT /v1/skus/{sku} {"stock":N}');
      $('skus-sub').textContent = '';
      return;
    }
    const existing = new Map([...tbody.querySelectorAll('tr[data-sku]')].map((tr) => [tr.dataset.sku, tr]));
    const rows = state.order.map((sku) => {
      const s = state.skus.get(sku);
      let tr = existing.get(sku);
      if (!tr) {
        tr = document.createElement('tr');
        tr.dataset.sku = sku;
        for (const cls of ['sku mono', 'num available', 'num reserved', 'num sold', 'bar', 'num limit', 'num version', 'updates']) {
          tr.append(cell('', cls));
        }
      }
      const c = tr.cells;
      c[0].textContent = sku;
      c[1].textContent = num(s.available);
      c[1].classList.toggle('soldout', s.available === 0);
      if (s.available === 0) c[1].textContent = 'sold out';
      c[2].textContent = num(s.reserved);
      c[3].textContent = num(s.sold);
      c[4].replaceChildren(stockBar(s));
      c[5].textContent = s.per_user_limit ? num(s.per_user_limit) : 'none';
      c[6].textContent = num(s.version);
      const w = state.watches.get(sku);
      const live = !!(w && w.live);
      const badge = c[7].firstChild;
      if (!badge || badge.dataset.live !== String(live)) {
        const b = document.createElement('span');
        b.className = 'badge ' + (live ? 'live' : 'polled');
        b.dataset.live = String(live);
        b.textContent = live ? '\u25cf live' : 'polled 1 s';
        c[7].replaceChildren(b);
      }
      return tr;
    });
    tbody.replaceChildren(...rows);
    const more = state.order.length >= SKU_LIMIT ? ` (first ${SKU_LIMIT})` : '';
    $('skus-sub').textContent = `${state.order.length} SKU${state.order.length === 1 ? '' : 's'}${more}; ` +
      `first ${Math.min(MAX_WATCHED, state.order.length)} live by server-sent events`;
  }

  function stockBar(s) {
    const total = s.available + s.reserved + s.sold;
    const bar = document.createElement('div');
    bar.className = 'stockbar';
    bar.setAttribute('role', 'img');
    bar.setAttribute('aria-label', `${s.available} available, ${s.reserved} reserved, ${s.sold} sold of ${total}`);
    bar.title = bar.getAttribute('aria-label');
    for (const [cls, v] of [['a', s.available], ['r', s.reserved], ['s', s.sold]]) {
      if (!total || !v) continue;
      const seg = document.createElement('span');
      seg.className = cls;
      seg.style.width = (100 * v / total).toFixed(2) + '%';
      bar.append(seg);
    }
    return bar;
  }

  // ---- watches (server-sent events) ----

  function syncWatches() {
    const want = new Set(document.hidden ? [] : state.order.slice(0, MAX_WATCHED));
    for (const [sku, w] of state.watches) {
      if (!want.has(sku)) { w.close(); state.watches.delete(sku); }
    }
    for (const sku of want) {
      if (state.watches.has(sku)) continue;
      const failed = state.watchFailed.get(sku);
      if (failed && Date.now() - failed < WATCH_RETRY_MS) continue;
      state.watches.set(sku, state.token ? watchWithFetch(sku) : watchWithEventSource(sku));
    }
  }

  function watchPath(sku) {
    return new URL(`v1/skus/${encodeURIComponent(sku)}/watch`, ROOT);
  }

  function onSKUEvent(sku, w, data) {
    try {
      upsert(JSON.parse(data));
      w.live = true;
      renderSKUs();
    } catch (err) {
      console.error('bad sku event', sku, err);
    }
  }

  function watchFailed(sku, w) {
    w.close();
    if (state.watches.get(sku) === w) state.watches.delete(sku);
    state.watchFailed.set(sku, Date.now());
    renderSKUs();
  }

  // EventSource reconnects by itself after a dropped stream; an HTTP error closes it for good,
  // and syncWatches tries again later.
  function watchWithEventSource(sku) {
    const es = new EventSource(watchPath(sku));
    const w = { live: false, close: () => es.close() };
    es.addEventListener('sku', (e) => onSKUEvent(sku, w, e.data));
    es.addEventListener('error', () => {
      w.live = false;
      if (es.readyState === EventSource.CLOSED) watchFailed(sku, w);
      else renderSKUs();
    });
    return w;
  }

  // With a token the stream is read with fetch, because EventSource cannot send headers.
  function watchWithFetch(sku) {
    const ctl = new AbortController();
    const w = { live: false, close: () => ctl.abort() };
    (async () => {
      const resp = await fetch(watchPath(sku), { headers: { ...headers(), Accept: 'text/event-stream' }, signal: ctl.signal });
      if (!resp.ok) throw new Error(`watch ${sku}: HTTP ${resp.status}`);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const ev = parseEvent(buf.slice(0, end));
          buf = buf.slice(end + 2);
          if (ev.event === 'sku') onSKUEvent(sku, w, ev.data);
        }
      }
    })().catch((err) => { if (err.name !== 'AbortError') console.warn(err.message); })
      .finally(() => { w.live = false; if (!ctl.signal.aborted) watchFailed(sku, w); });
    return w;
  }

  function parseEvent(block) {
    const ev = { event: 'message', data: '' };
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') ev.event = value;
      else if (field === 'data') data.push(value);
    }
    ev.data = data.join('\n');
    return ev;
  }

  document.addEventListener('visibilitychange', syncWatches);

  // ---- rates ----

  // sampleDeductions adds units sold per second since the previous sample, summed per SKU
  // over the SKUs seen in both samples (a SKU that just appeared is not a burst of sales).
  function sampleDeductions() {
    const now = Date.now();
    const sold = new Map([...state.skus].map(([k, s]) => [k, s.sold]));
    if (state.soldSeen) {
      let delta = 0;
      for (const [k, v] of sold) {
        const before = state.soldSeen.values.get(k);
        if (before !== undefined && v > before) delta += v - before;
      }
      push(state.deductions, now, delta / ((now - state.soldSeen.at) / 1000));
    }
    state.soldSeen = { at: now, values: sold };
    drawDeductions();
  }

  function drawDeductions() {
    const last = state.deductions[state.deductions.length - 1];
    $('deduct-rate').textContent = last ? rate(last.v) : '—';
    drawChart($('deduct-chart'), state.deductions, { line: 'chart', fill: 'chart-fill' });
  }

  // sumCounter adds up every sample of a Prometheus counter in a text exposition, or gives
  // null when the counter is not there.
  function sumCounter(text, name) {
    let total = null;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
      const rest = line[name.length] === '{' ? line.slice(line.indexOf('}') + 1) : line.slice(name.length);
      const v = parseFloat(rest.trim().split(/\s+/)[0]);
      if (isFinite(v)) total = (total || 0) + v;
    }
    return total;
  }

  async function pollMetrics() {
    const now = Date.now();
    let total = null;
    try {
      const text = await get('metrics', 'text');
      for (const name of REJECTION_COUNTERS) {
        total = sumCounter(text, name);
        if (total !== null) break;
      }
      state.rejectionsWhy = total === null ? `no ${REJECTION_COUNTERS.join(' or ')} on this node (yet)` : '';
    } catch (err) {
      state.rejectionsWhy = err.message;
    }
    if (total === null) {
      state.rejectionsTotal = null;
      state.rejections = [];
    } else {
      if (state.rejectionsTotal !== null) {
        const d = total - state.rejectionsTotal; // a restart resets the counter
        push(state.rejections, now, Math.max(0, d) / ((now - state.rejectionsAt) / 1000));
      }
      state.rejectionsTotal = total;
      state.rejectionsAt = now;
    }
    drawRejections();
  }

  function drawRejections() {
    const na = state.rejectionsTotal === null;
    const last = state.rejections[state.rejections.length - 1];
    const el = $('reject-rate');
    el.textContent = na ? 'n/a' : last ? rate(last.v) : '—';
    el.title = state.rejectionsWhy;
    drawChart($('reject-chart'), na ? null : state.rejections,
      { line: 'chart2', fill: 'chart2-fill', why: 'n/a: ' + state.rejectionsWhy });
  }

  function push(series, t, v) {
    series.push({ t, v });
    while (series.length && series[0].t < t - HISTORY_SECONDS * 1000) series.shift();
  }

  function rate(v) {
    return v >= 100 ? fmt.format(Math.round(v)) : v.toFixed(1);
  }

  // ---- drawing ----

  function drawChart(canvas, series, opts) {
    const css = getComputedStyle(document.documentElement);
    const color = (name) => css.getPropertyValue('--' + name).trim();
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = color('muted');
    g.strokeStyle = color('line');
    g.lineWidth = 1;
    const left = 36, top = 6, bottom = h - 16, right = w - 4;
    if (series === null) {
      g.textAlign = 'center';
      g.fillText(opts.why, w / 2, h / 2);
      canvas.setAttribute('aria-label', opts.why);
      return;
    }
    const now = Date.now();
    // The time axis spans the samples there are, from 10 s up to HISTORY_SECONDS.
    const span = Math.min(HISTORY_SECONDS * 1000, Math.max(10000, series.length ? now - series[0].t : 0));
    const max = niceMax(Math.max(1, ...series.map((p) => p.v)));
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const f of [0, 0.5, 1]) {
      const y = bottom - f * (bottom - top);
      g.beginPath(); g.moveTo(left, y + 0.5); g.lineTo(right, y + 0.5); g.stroke();
      g.fillText(rate(max * f).replace(/\.0$/, ''), left - 4, y);
    }
    g.textAlign = 'left';
    g.textBaseline = 'alphabetic';
    g.fillText(`last ${Math.round(span / 1000)} s`, left, h - 3);
    g.textAlign = 'right';
    g.fillText('now', right, h - 3);
    if (series.length < 2) return;
    const x = (t) => right - (now - t) / span * (right - left);
    const y = (v) => bottom - v / max * (bottom - top);
    g.beginPath();
    series.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
    g.strokeStyle = color(opts.line);
    g.lineWidth = 2;
    g.stroke();
    g.lineTo(x(series[series.length - 1].t), bottom);
    g.lineTo(x(series[0].t), bottom);
    g.closePath();
    g.fillStyle = color(opts.fill);
    g.fill();
    const last = series[series.length - 1].v;
    const peak = Math.max(...series.map((p) => p.v));
    canvas.setAttribute('aria-label', `now ${rate(last)} per second, peak ${rate(peak)} in the last ${Math.round(span / 1000)} seconds`);
  }

  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // ---- page chrome ----

  function cell(text, cls, label) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    if (label) td.setAttribute('aria-label', label);
    return td;
  }

  function badgeCell(kind, text) {
    const td = document.createElement('td');
    const b = document.createElement('span');
    b.className = 'badge ' + (['leader', 'follower', 'candidate'].includes(kind) ? kind : 'unknown');
    b.textContent = text || 'unknown';
    td.className = 'role';
    td.append(b);
    return td;
  }

  function setEmpty(tableId, cols, text) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    const td = document.createElement('td');
    td.colSpan = cols;
    td.textContent = text;
    tr.append(td);
    $(tableId).tBodies[0].replaceChildren(tr);
  }

  function renderStatus() {
    const errors = [state.clusterError, state.skusError].filter(Boolean);
    const banner = $('banner');
    const text = errors.length ? 'This node does not answer as it should: ' + [...new Set(errors)].join('; ') +
      '. Showing the last data received (dimmed).' : '';
    banner.hidden = !errors.length;
    if (banner.textContent !== text) banner.textContent = text; // role=alert: speak only changes
    const st = $('status');
    st.classList.toggle('bad', !!errors.length);
    st.textContent = errors.length ? 'Degraded' : `Live \u00b7 updated ${new Date().toLocaleTimeString('en-GB')}`;
  }

  // announce tells screen readers about what matters (leader changes), not every refresh.
  function announce(text) {
    $('announcer').textContent = text;
  }

  function showTokenForm() {
    $('token-form').hidden = false;
  }

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.token = $('token-input').value.trim();
    sessionStorage.setItem('flashstock.token', state.token);
    $('token-form').hidden = true;
    for (const w of state.watches.values()) w.close();
    state.watches.clear();
    state.watchFailed.clear();
    pollCluster();
    pollSKUs();
  });

  $('origin').textContent = ROOT.origin;
  // For tests and the curious: the pure helpers.
  window.flashstock = Object.freeze({ sumCounter, parseEvent, niceMax, maxWatched: MAX_WATCHED });

  every(CLUSTER_EVERY_MS, pollCluster);
  every(SKUS_EVERY_MS, pollSKUs);
  every(METRICS_EVERY_MS, pollMetrics);
  window.addEventListener('resize', () => { drawDeductions(); drawRejections(); });
})();
