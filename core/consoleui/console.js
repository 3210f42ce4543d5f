// The live console: polls /console/api/state every second and draws every
// process of the deployment. Read-only. With a token, it comes from the
// URL fragment (#token=...) or a prompt, stays in this tab's
// sessionStorage and goes out as the Authorization header.
'use strict';
(() => {
  const HISTORY = 120; // samples kept per series (two minutes)
  const SPAN = 60000;  // what the overview charts show, ms
  const $ = id => document.getElementById(id);
  let token = tokenFromFragment() || sessionStorage.getItem('mqantConsoleToken') || '';
  const series = new Map(); // series key -> [[time, value], ...]
  const lastSeen = new Map(); // process key -> report time already sampled
  let polls = 0;

  function tokenFromFragment() {
    const m = /(?:^|[#&])token=([^&]*)/.exec(location.hash);
    if (!m) return '';
    const t = decodeURIComponent(m[1]);
    sessionStorage.setItem('mqantConsoleToken', t);
    // Out of the address bar, so it is not shared with a screenshot.
    window.history.replaceState(null, '', location.pathname + location.search);
    return t;
  }

  $('token-form').addEventListener('submit', ev => {
    ev.preventDefault();
    token = $('token').value;
    sessionStorage.setItem('mqantConsoleToken', token);
    $('token-form').hidden = true;
    poll();
  });

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }

  function ms(sec) { return sec > 0 ? Charts.fmt(sec * 1000) : '–'; }
  function ago(msec) { return msec < 1500 ? 'now' : Math.round(msec / 1000) + 's ago'; }
  function bytes(n) { return n > 0 ? (n / 1048576).toFixed(0) + ' MiB' : '–'; }
  function uptime(startMs, nowMs) {
    let s = Math.max(0, Math.round((nowMs - startMs) / 1000));
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return (h ? h + 'h' : '') + (h || m ? m + 'm' : '') + s + 's';
  }

  function push(key, t, v) {
    let h = series.get(key);
    if (!h) { h = []; series.set(key, h); }
    h.push([t, v]);
    if (h.length > HISTORY) h.shift();
  }

  // sample adds each process's new report to the histories, once per
  // report (the page may poll faster than processes report).
  function sample(st) {
    let rate = 0, p99 = 0, fresh = false;
    for (const p of st.processes) {
      if (lastSeen.get(p.key) === p.time) continue;
      lastSeen.set(p.key, p.time);
      fresh = true;
      for (const h of p.handlers || []) {
        const k = p.key + '|' + h.module + '/' + h.method;
        push(k + '|rate', st.time, h.rate);
        push(k + '|p99', st.time, h.p99 * 1000);
      }
    }
    if (!fresh) return;
    for (const p of st.processes) {
      if (p.stale) continue;
      for (const h of p.handlers || []) { rate += h.rate; p99 = Math.max(p99, h.p99 * 1000); }
    }
    push('all|rate', st.time, rate);
    push('all|p99', st.time, p99);
  }

  function render(st) {
    sample(st);
    const live = st.processes.filter(p => !p.stale).length;
    $('summary').textContent = `${st.processes.length} processes (${live} live) · reports via ${st.bus}` +
      (st.rejected ? ` · ${st.rejected} reports refused: ${st.lastReject}` : '');
    Charts.line($('chart-rate'), [{name: 'calls/s', values: series.get('all|rate') || []}], SPAN, st.time);
    Charts.line($('chart-p99'), [{name: 'p99 ms', values: series.get('all|p99') || []}], SPAN, st.time);
    $('processes').replaceChildren(...st.processes.map(p => renderProcess(p, st)));
    const errs = [];
    for (const p of st.processes) for (const e of p.errors || []) errs.push([p, e]);
    errs.sort((a, b) => b[1].time - a[1].time);
    $('errors').tBodies[0].replaceChildren(...errs.slice(0, 50).map(([p, e]) => el('tr', {'data-error-id': e.id || ''},
      el('td', null, new Date(e.time).toLocaleTimeString()), el('td', null, p.process), el('td', null, e.module),
      el('td', null, e.method || e.handler), el('td', {class: 'err'}, e.kind), el('td', null, el('code', null, e.id || '')),
      el('td', {class: 'msg'}, e.msg))));
  }

  function renderProcess(p, st) {
    const self = p.key === st.self;
    const card = el('section', {class: 'proc' + (p.stale ? ' stale' : ''), 'data-process': p.process, 'data-key': p.key},
      el('h2', null, p.process,
        self ? el('span', {class: 'badge'}, 'this process') : null,
        p.stale ? el('span', {class: 'badge warn'}, 'stale: last report ' + ago(p.age)) : el('span', {class: 'badge ok'}, 'live')),
      el('div', {class: 'meta'}, `${p.host} pid ${p.pid} · v${p.version} · up ${uptime(p.started, p.time)} · ${p.goroutines} goroutines · RSS ${bytes(p.rss)}`),
      el('div', {class: 'line'}, 'Modules: ', ...(p.instances || []).map(i => el('span', {class: 'chip', 'data-instance': i.id}, `${i.type} ${i.id}`))));
    for (const b of p.brokers || []) {
      const state = !b.connected ? el('span', {class: 'badge bad'}, 'disconnected') :
        b.blocked ? el('span', {class: 'badge warn'}, 'blocked') : el('span', {class: 'badge ok'}, 'connected');
      card.append(el('div', {class: 'line broker', 'data-broker': b.broker}, `Broker ${b.broker} `, state, ` · ${b.reconnects} reconnects`));
    }
    if ((p.gates || []).length) {
      card.append(el('table', {class: 'gates'},
        el('thead', null, el('tr', null, el('th', null, 'Gate'), el('th', {class: 'num'}, 'Connections'), el('th', {class: 'num'}, 'Online users'))),
        el('tbody', null, ...p.gates.map(g => el('tr', {'data-gate': g.id},
          el('td', null, g.id), el('td', {class: 'num connections'}, g.connections), el('td', {class: 'num users'}, g.users))))));
    }
    if ((p.handlers || []).length) {
      card.append(el('table', {class: 'handlers'},
        el('thead', null, el('tr', null, ...['Handler', 'Calls', 'Rate/s', 'p50 ms', 'p99 ms', 'Errors', 'Timeouts', 'Rate', 'p99']
          .map((h, i) => el('th', {class: i > 0 && i < 7 ? 'num' : ''}, h)))),
        el('tbody', null, ...p.handlers.map(h => {
          const k = p.key + '|' + h.module + '/' + h.method;
          const rate = (series.get(k + '|rate') || []).map(x => x[1]);
          const lat = (series.get(k + '|p99') || []).map(x => x[1]);
          return el('tr', {'data-handler': h.module + '/' + h.method},
            el('td', null, h.module + '/' + h.method), el('td', {class: 'num calls'}, h.calls),
            el('td', {class: 'num rate'}, Charts.fmt(h.rate)), el('td', {class: 'num'}, ms(h.p50)), el('td', {class: 'num'}, ms(h.p99)),
            el('td', {class: 'num errors' + (h.errors ? ' err' : '')}, h.errors), el('td', {class: 'num timeouts' + (h.timeouts ? ' err' : '')}, h.timeouts),
            el('td', null, Charts.spark(rate.slice(-30), '#2b6cb0')), el('td', null, Charts.spark(lat.slice(-30), '#c05621')));
        }))));
    }
    return card;
  }

  function setStatus(text, ok) {
    const s = $('status');
    s.textContent = text;
    s.className = 'status ' + (ok ? 'ok' : 'bad');
  }

  async function poll() {
    try {
      const r = await fetch('api/state', {headers: token ? {Authorization: 'Bearer ' + token} : {}, cache: 'no-store'});
      if (r.status === 401) {
        setStatus(token ? 'token refused' : 'token required', false);
        $('token-form').hidden = false;
        return;
      }
      if (!r.ok) throw new Error('HTTP ' + r.status + ': ' + (await r.text()).slice(0, 200));
      const st = await r.json();
      polls++;
      document.body.dataset.polls = polls;
      render(st);
      setStatus('live · ' + new Date(st.time).toLocaleTimeString(), true);
    } catch (e) {
      // The process is gone or restarting: keep what is shown, say so.
      setStatus('no answer from this process: ' + e.message, false);
    }
  }

  poll();
  setInterval(() => { if ($('token-form').hidden) poll(); }, 1000);
})();
