// hostwatch dashboard: all but the charts: sampler, tiles, problems,
// services, processes, alerts, audit. Each shows an answer app.js fetched;
// the buttons act through HW.act, which asks for a token when needed.
(function () {
  'use strict';
  const HW = window.HW;
  const el = HW.el;

  // The latest answers, which the problems strip is worked out from.
  const S = (HW.state = { sampler: null, system: null, services: [], firing: [], receivers: [] });

  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  const short = (v) => (v == null ? '–' : String(+v.toFixed(2)));
  const seconds = (v) => (v >= 120 && v % 60 === 0 ? v / 60 + ' min' : v + ' s');

  // ---- sampler -------------------------------------------------------------

  function showSampler(s) {
    S.sampler = s;
    const last = s.last_check_at ? ' · last check ' + HW.when(s.last_check_at) : '';
    const st = HW.$('#sampler-state');
    st.textContent = (s.running ? 'running · every ' + seconds(s.interval_seconds) : 'stopped') + last;
    st.className = s.running ? 'ok' : 'warn';
    st.title = s.last_error ? 'Latest check\'s problem: ' + s.last_error : '';
    // Both stay usable (starting a running sampler is harmless); the one
    // that changes something stands out.
    HW.$('#sampler-start').classList.toggle('quiet', s.running);
    HW.$('#sampler-stop').classList.toggle('quiet', !s.running);
    problems();
  }

  function samplerAction(what) {
    HW.act(cap(what) + ' sampler', () => HW.request('POST', 'api/v1/sampler/' + what), (s) => {
      showSampler(s);
      return s.running ? 'The sampler is running: a check every ' + seconds(s.interval_seconds) + '.' : 'The sampler is stopped.';
    });
  }

  // ---- live tiles ------------------------------------------------------------

  const tiles = new Map();

  function tile(key, label, value, sub, pct, aside) {
    let t = tiles.get(key);
    if (!t) {
      t = el('div', { class: 'tile', 'data-tile': key },
        el('span', { class: 'label', text: label }), el('span', { class: 'value' }),
        el('span', { class: 'sub' }), el('span', { class: 'bar' }, el('i')));
      HW.$('#tiles').append(t);
      tiles.set(key, t);
    }
    const v = t.querySelector('.value');
    v.textContent = value;
    if (aside) v.append(el('small', { text: aside }));
    t.querySelector('.sub').textContent = sub;
    const bar = t.querySelector('.bar');
    bar.hidden = pct == null;
    if (pct != null) bar.firstChild.style.width = Math.min(100, Math.max(0, pct)) + '%';
    t.classList.toggle('warn', pct >= 75 && pct < 90);
    t.classList.toggle('bad', pct >= 90);
  }

  function showSystem(sys) {
    S.system = sys;
    systemStale(false);
    const host = sys.host_name || 'this host';
    HW.$('#host-name').textContent = host;
    document.title = host + ' · hostwatch';
    HW.$('#host-info').textContent = [sys.os, sys.kernel && 'kernel ' + sys.kernel,
      sys.uptime_seconds != null && 'up ' + HW.duration(sys.uptime_seconds)].filter(Boolean).join(' · ');

    tile('cpu', 'CPU', HW.pct(sys.cpu_percent), sys.cores.length + (sys.cores.length === 1 ? ' core' : ' cores'), sys.cpu_percent);
    const m = sys.memory;
    if (m) {
      tile('memory', 'Memory', HW.pct(m.percent), HW.bytes(m.used_bytes) + ' of ' + HW.bytes(m.total_bytes), m.percent);
      tile('swap', 'Swap', HW.pct(m.swap_percent),
        m.swap_total_bytes ? HW.bytes(m.swap_used_bytes) + ' of ' + HW.bytes(m.swap_total_bytes) : 'no swap', m.swap_percent);
    }
    // Load 1 large, 5 and 15 smaller: three at full size do not fit.
    const l = sys.load;
    tile('load', 'Load', l ? l[0].toFixed(2) : '–', '1 / 5 / 15 min', null,
      l && ' / ' + l[1].toFixed(2) + ' / ' + l[2].toFixed(2));

    const mounts = new Set();
    for (const p of sys.partitions) {
      mounts.add('disk:' + p.mount);
      // A filesystem that did not answer statfs has no sizes, only its error.
      const sub = p.error ? p.error : HW.bytes(p.used_bytes) + ' of ' + HW.bytes(p.total_bytes);
      tile('disk:' + p.mount, 'Disk ' + p.mount, HW.pct(p.percent),
        sub + (p.read_only ? ' · read-only' : ''), p.percent);
    }
    for (const [key, t] of tiles) {
      if (key.startsWith('disk:') && !mounts.has(key)) { t.remove(); tiles.delete(key); }
    }
    problems();
  }

  // /system answered 503 (the host reader is busy) or not at all: the last
  // figures stay, dimmed, until the next answer.
  function systemStale(stale) {
    HW.$('#tiles').classList.toggle('stale', stale);
  }

  // ---- problems now ----------------------------------------------------------

  function problems() {
    const items = [];
    for (const a of S.firing) {
      items.push(['bad', 'Alert ' + a.rule + ': ' + a.subject + (a.value != null ? ' at ' + short(a.value) : '') +
        ' (' + a.op + ' ' + short(a.limit) + ') since ' + HW.when(a.fired_at || a.started_at)]);
    }
    for (const s of S.services) {
      if (s.state === 'failed' || s.state === 'stopped') items.push(['bad', 'Service ' + s.name + ' is ' + s.state]);
      else if (s.healthy === false) items.push(['bad', 'Service ' + s.name + ' fails its health probe']);
    }
    for (const p of S.system ? S.system.partitions : []) {
      if (p.error) {
        items.push(['bad', 'Disk ' + p.mount + ' does not answer: ' + p.error]);
      } else if (p.percent >= 90) {
        items.push(['bad', 'Disk ' + p.mount + ' is ' + HW.pct(p.percent) + ' used (' + HW.bytes(p.total_bytes - p.used_bytes) + ' free)']);
      }
    }
    if (S.sampler && S.sampler.storage_error) items.push(['bad', 'Checks are not being stored: ' + S.sampler.storage_error]);
    // A receiver the history is pushed to that is not keeping up; what it
    // missed is sent once it is back, so this is a warning, not a loss.
    for (const r of S.receivers) {
      const behind = ' (' + Math.round(r.backlog_seconds) + ' s of checks wait)';
      if (r.state === 'failing') items.push(['warn', 'Remote write to ' + r.name + ' fails since ' + HW.when(r.failing_since) + behind]);
      else if (r.state === 'rejecting') items.push(['bad', 'Remote write to ' + r.name + ' refuses samples since ' + HW.when(r.failing_since)]);
      else if (r.state === 'behind') items.push(['warn', 'Remote write to ' + r.name + ' is catching up' + behind]);
    }

    const ul = HW.$('#problems');
    ul.classList.toggle('none', items.length === 0);
    // "No problems" is the list's own text, not an item: every <li> is a problem.
    if (!items.length) { ul.textContent = 'No problems'; return; }
    if (!ul.firstElementChild) ul.textContent = '';
    HW.fill(ul, items.map(([kind, text]) => el('li', { class: kind, text })));
  }

  // ---- tables ----------------------------------------------------------------

  const placeholder = (cols, text) => el('tr', { class: 'none' }, el('td', { colspan: cols, text }));
  const cell = (tr, cls, text) => { tr.querySelector('.' + cls).textContent = text; };

  const svcRows = new Map();

  function managerText(m) {
    if (!m) return '';
    if (m.kind === 'systemd') return 'systemd ' + m.unit;
    if (m.kind === 'sysv') return 'init script ' + m.script;
    return m.kind === 'none' ? 'no manager found' : m.kind;
  }

  function serviceRow(s) {
    let tr = svcRows.get(s.name);
    if (!tr) {
      tr = el('tr', { 'data-service': s.name },
        el('td', { class: 'name', text: s.name }), el('td', { class: 'state' }), el('td', { class: 'detail' }),
        el('td', { class: 'actions' }, ...['start', 'stop', 'restart'].map((a) =>
          el('button', { type: 'button', 'data-action': a, text: cap(a) }))));
      svcRows.set(s.name, tr);
    }
    // .state holds exactly the agent's word for it; health goes beside it.
    cell(tr, 'state', s.state);
    tr.querySelector('.state').className = 'state s-' + s.state;
    const health = s.healthy == null ? '' : (s.healthy ? 'healthy' : 'health probe failing') + (s.probe_ms != null ? ' (' + Math.round(s.probe_ms) + ' ms)' : '');
    cell(tr, 'detail', [managerText(s.manager), health, s.detail].filter(Boolean).join(' · '));
    return tr;
  }

  function showReceivers(answer) {
    S.receivers = answer.receivers;
    problems();
  }

  function showServices(list) {
    S.services = list;
    const names = new Set(list.map((s) => s.name));
    for (const name of svcRows.keys()) if (!names.has(name)) svcRows.delete(name);
    HW.fill(HW.$('#services tbody'), list.length ? list.map(serviceRow) : [placeholder(4, 'No services are watched.')]);
    problems();
  }

  function serviceAction(button) {
    const tr = button.closest('tr'), name = tr.dataset.service, action = button.dataset.action;
    const buttons = tr.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    HW.act(cap(action) + ' ' + name,
      () => HW.request('POST', 'api/v1/services/' + encodeURIComponent(name) + '/' + action),
      (v) => { serviceRow(v); return 'Service ' + name + ' is ' + v.state + ' now.'; })
      .finally(() => {
        buttons.forEach((b) => { b.disabled = false; });
        HW.app.refresh('services');
      });
  }

  const procRows = new Map();

  function processRow(p) {
    let tr = procRows.get(p.pid);
    if (!tr) {
      tr = el('tr', { 'data-pid': p.pid },
        el('td', { class: 'num', text: p.pid }), el('td', { class: 'name' }), el('td', { class: 'user' }),
        el('td', { class: 'num cpu' }), el('td', { class: 'num mem' }), el('td', { class: 'started' }),
        el('td', { class: 'actions' }, el('button', { type: 'button', 'data-action': 'kill', text: 'Kill' })));
      procRows.set(p.pid, tr);
    }
    cell(tr, 'name', p.name || '?');
    cell(tr, 'user', p.username || '–');
    cell(tr, 'cpu', HW.num(p.cpu_percent, 1));
    cell(tr, 'mem', HW.num(p.memory_percent, 1));
    cell(tr, 'started', HW.when(p.create_time));
    // Sent with a kill: the agent refuses (409) if the pid has been reused
    // by another process since this row was drawn.
    tr.dataset.started = p.create_time || '';
    return tr;
  }

  function showProcesses(list, filtered) {
    const pids = new Set(list.processes.map((p) => p.pid));
    for (const pid of procRows.keys()) if (!pids.has(pid)) procRows.delete(pid);
    const rows = list.processes.map(processRow);
    HW.fill(HW.$('#processes tbody'), rows.length ? rows : [placeholder(7, filtered ? 'No process matches.' : 'No processes.')]);
    HW.$('#process-count').textContent = list.total + (filtered ? ' matching' : ' in all');
  }

  // Killing takes two clicks: the first turns the button into "Confirm?"
  // for 4 s, so a stray tap on a phone ends nothing.
  function disarm(b) {
    clearTimeout(Number(b.dataset.timer));
    delete b.dataset.armed;
    b.textContent = 'Kill';
    b.classList.remove('armed');
  }

  function killAction(b) {
    if (!b.dataset.armed) {
      b.dataset.armed = '1';
      b.textContent = 'Confirm?';
      b.classList.add('armed');
      b.dataset.timer = setTimeout(() => disarm(b), 4000);
      return;
    }
    disarm(b);
    const tr = b.closest('tr'), pid = tr.dataset.pid, what = pid + ' (' + tr.querySelector('.name').textContent + ')';
    b.disabled = true;
    // wait=2s: the answer says whether the process is gone, which is what
    // the person clicking wants to know.
    HW.act('Kill ' + what, () => HW.request('DELETE', 'api/v1/processes/' + pid + '?signal=TERM&wait=2s' +
      (tr.dataset.started ? '&started=' + encodeURIComponent(tr.dataset.started) : '')),
      (r) => 'Sent TERM to ' + what + (r.gone === false ? '; it was still running 2 s later.' : '; it has ended.'))
      .finally(() => {
        b.disabled = false;
        HW.app.refresh('processes');
      });
  }

  function showAlerts(firing, recent) {
    S.firing = firing;
    const seen = new Set(), all = [];
    for (const a of firing.concat(recent)) if (!seen.has(a.id)) { seen.add(a.id); all.push(a); }
    const rank = { firing: 0, pending: 1, resolved: 2 };
    all.sort((a, b) => rank[a.state] - rank[b.state] || Date.parse(b.started_at) - Date.parse(a.started_at));
    const rows = all.slice(0, 25).map((a) => el('tr', { 'data-alert': a.id, class: 'a-' + a.state },
      el('td', { class: 'state', text: a.state }), el('td', { text: a.rule }), el('td', { text: a.subject }),
      el('td', { class: 'num', text: short(a.value) + ' ' + a.op + ' ' + short(a.limit) }),
      el('td', { text: HW.when(a.fired_at || a.started_at) }), el('td', { text: a.resolved_at ? HW.when(a.resolved_at) : '–' })));
    HW.fill(HW.$('#alerts tbody'), rows.length ? rows : [placeholder(6, 'No alerts.')]);
    problems();
  }

  // The audit needs a control token: its section shows only while one is held.
  function showAudit(list) {
    const rows = list.map((r) => el('tr', { 'data-audit': r.id },
      el('td', { text: HW.when(r.at) }), el('td', { text: r.actor }), el('td', { text: r.action }),
      el('td', { text: r.target || '–' }), el('td', { class: 'outcome', text: r.outcome }), el('td', { text: r.detail || '' })));
    HW.fill(HW.$('#audit tbody'), rows.length ? rows : [placeholder(6, 'Nothing done yet.')]);
  }

  function auditNote(text) {
    HW.fill(HW.$('#audit tbody'), [placeholder(6, text)]);
  }

  function showToken(held) {
    HW.$('#token-state').textContent = held ? 'token in memory' : 'no token';
    HW.$('#token-forget').hidden = !held;
    HW.$('#token-give').hidden = held;
    HW.$('#audit').hidden = !held;
    if (!held) HW.fill(HW.$('#audit tbody'), []);
  }

  function wire() {
    HW.$('#sampler-start').addEventListener('click', () => samplerAction('start'));
    HW.$('#sampler-stop').addEventListener('click', () => samplerAction('stop'));
    HW.$('#services').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-action]');
      if (b) serviceAction(b);
    });
    HW.$('#processes').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-action="kill"]');
      if (b) killAction(b);
    });
    HW.$('#process-filter').addEventListener('input', HW.debounce(() => HW.app.refresh('processes'), 250));
    HW.$('#token-forget').addEventListener('click', () => {
      HW.token.forget();
      HW.say('The token is forgotten.', 'ok');
    });
    HW.token.onChange(showToken);
    showToken(false);
    for (const t of document.querySelectorAll('#tiles .tile')) tiles.set(t.dataset.tile, t);
  }

  HW.panels = { wire, showSampler, showSystem, systemStale, showServices, showReceivers, showProcesses, showAlerts, showAudit, auditNote };
})();
