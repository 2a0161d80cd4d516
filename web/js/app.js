// hostwatch dashboard: the view (the charts' window), what is fetched when,
// and the first load. Panels are polled on a timer that stops while the tab
// is hidden; each view change (range, custom, zoom, double-click) fetches
// one /checks/series.
(function () {
  'use strict';
  const HW = window.HW;

  let view = { range: '1h' }; // what the charts show: {range} or {since, until} (epoch ms)
  let base = view;            // what a double-click goes back to: the last view chosen, not zoomed
  let interval = 60;          // the sampler's interval (s): no bucket finer than that
  let lastStep = null;        // the step (s) of the latest series fetch
  let lastSeriesAt = 0;
  let seriesSeq = 0;

  const windowOf = (v) => {
    if (!v.range) return { since: v.since, until: v.until };
    const until = Date.now();
    return { since: until - HW.RANGES[v.range], until };
  };

  function showView() {
    for (const b of document.querySelectorAll('button[data-range]')) {
      b.setAttribute('aria-pressed', String(b.dataset.range === view.range));
    }
    // The custom inputs show the window on screen (after a zoom, the zoomed
    // one), ready to be adjusted by hand.
    const w = windowOf(view);
    HW.$('#custom-since').value = HW.toLocalInput(w.since);
    HW.$('#custom-until').value = HW.toLocalInput(w.until);
    HW.writeHash(view);
  }

  function setView(v, isBase) {
    view = v;
    if (isBase) base = v;
    showView();
    return loadSeries();
  }

  async function loadSeries() {
    const seq = ++seriesSeq;
    const win = windowOf(view);
    const step = HW.pickStep(win.until - win.since, HW.charts.width(), interval);
    lastStep = step.s;
    lastSeriesAt = Date.now();
    const iso = (ms) => encodeURIComponent(new Date(ms).toISOString());
    const charts = HW.$('#charts');
    charts.setAttribute('aria-busy', 'true');
    try {
      const r = await HW.get('api/v1/checks/series?since=' + iso(win.since) + '&until=' + iso(win.until) + '&step=' + step.name);
      // Only the latest view asked for draws.
      if (seq === seriesSeq) HW.charts.render(r, win, interval);
    } catch (e) {
      if (seq === seriesSeq) failed('Loading the charts', e);
    } finally {
      if (seq === seriesSeq) charts.removeAttribute('aria-busy');
    }
  }

  // A drag on a chart makes its window a custom range. Synced charts may
  // report the same drag: the calls are gathered into one fetch.
  let zoomTimer = 0, zoomWin = null;
  function zoom(a, b) {
    zoomWin = [a, b];
    clearTimeout(zoomTimer);
    zoomTimer = setTimeout(() => {
      let [since, until] = zoomWin;
      // No narrower than a few checks: there would be nothing to see.
      const least = Math.max(5 * 60e3, 5 * interval * 1000);
      if (until - since < least) {
        const mid = (since + until) / 2;
        since = mid - least / 2;
        until = mid + least / 2;
      }
      setView({ since: Math.round(since), until: Math.round(until) }, false);
    }, 0);
  }

  function resetZoom() {
    if (view !== base) setView(base, false);
  }

  // Fetches again if another step now fits: the charts changed width, or
  // the sampler is slower than the 60 s assumed at first.
  function refitStep() {
    const w = windowOf(view);
    if (lastStep !== null && HW.pickStep(w.until - w.since, HW.charts.width(), interval).s !== lastStep) return loadSeries();
    return undefined;
  }

  // ---- polling -------------------------------------------------------------

  // A read that failed. With auth.public_read off, reads answer 401 until a
  // token is given: ask once, not at every poll.
  let askedToRead = false;
  function failed(label, e) {
    if (e.status === 401 && e.sent == null) {
      if (askedToRead) return;
      askedToRead = true;
      HW.say('This agent shows nothing without a token (401 Unauthorized).', 'error');
      HW.askToken('This agent shows nothing without a token (its auth.public_read is off). It is kept in this tab\'s memory only.')
        .then((given) => {
          if (!given) return;
          askedToRead = false;
          HW.say('The token is kept in memory for this tab.', 'ok');
          refreshAll();
        });
      return;
    }
    HW.explain(label, e);
  }

  const filterValue = () => HW.$('#process-filter').value.trim();

  const pollers = {
    sampler: { every: 5e3, label: 'Reading the sampler', run: () => HW.get('api/v1/sampler').then((s) => {
      interval = s.interval_seconds || 60;
      HW.panels.showSampler(s);
    }) },
    system: { every: 5e3, label: 'Reading the host', run: () => HW.get('api/v1/system').then(HW.panels.showSystem, (e) => {
      HW.panels.systemStale(true);
      // 503: the host reader is busy; the figures stay until the next poll.
      if (e.status !== 503) throw e;
    }) },
    processes: { every: 5e3, label: 'Reading processes', run: () => {
      const f = filterValue();
      return HW.get('api/v1/processes?sort=cpu&limit=15&fields=pid,name,username,cpu_percent,memory_percent,create_time' +
        (f ? '&name=' + encodeURIComponent(f) : '')).then((list) => HW.panels.showProcesses(list, f !== ''));
    } },
    // Listing services probes each one: less often than the tiles.
    services: { every: 10e3, label: 'Reading services', run: () => HW.get('api/v1/services').then(HW.panels.showServices) },
    receivers: { every: 15e3, label: 'Reading remote write', run: () => HW.get('api/v1/remote-write').then(HW.panels.showReceivers) },
    alerts: { every: 15e3, label: 'Reading alerts', run: () => Promise.all([
      HW.get('api/v1/alerts?state=firing&limit=100'), // every firing one, however old
      HW.get('api/v1/alerts?limit=20'),
    ]).then(([firing, recent]) => HW.panels.showAlerts(firing, recent)) },
    audit: { every: 15e3, label: 'Reading the audit', run: () => {
      if (!HW.token.has()) return Promise.resolve();
      // It also tells whether the token may act (control scope).
      return HW.get('api/v1/audit?limit=20').then((list) => {
        if (!HW.token.has()) return; // forgotten meanwhile
        HW.token.setControl(true);
        HW.panels.showAudit(list);
      }, (e) => {
        if (e.status !== 403) throw e;
        HW.token.setControl(false);
        HW.panels.auditNote('The audit needs a token with the control scope; this one may only read.');
      });
    } },
  };
  for (const p of Object.values(pollers)) Object.assign(p, { last: 0, busy: null, again: false, said: null });

  // Runs a poller now; called while under way, it runs once more after (the
  // filter changed: the answer on its way is old).
  function poll(name) {
    const p = pollers[name];
    if (p.busy) { p.again = true; return p.busy; }
    p.last = Date.now();
    const m = HW.$('#message');
    p.busy = p.run().then(() => {
      // Recovered: its outage, if still shown, is over.
      if (p.said && m.textContent === p.said) HW.say('');
      p.said = null;
    }, (e) => {
      failed(p.label, e);
      // Only an outage (no answer, 5xx) clears itself; a 4xx (a token
      // refused) stays until something else is said.
      p.said = e.status >= 400 && e.status < 500 ? null : m.textContent;
    }).finally(() => {
      p.busy = null;
      if (p.again) { p.again = false; poll(name); }
    });
    return p.busy;
  }

  function refreshAll() {
    Object.keys(pollers).forEach(poll);
    loadSeries();
  }

  let timer = 0;
  function tick() {
    clearTimeout(timer);
    if (document.hidden) return; // nothing is fetched while nobody looks
    const now = Date.now();
    for (const [name, p] of Object.entries(pollers)) if (now - p.last >= p.every) poll(name);
    // A relative range ("the last hour") moves on; a custom one stays.
    if (view.range && now - lastSeriesAt >= Math.max(60e3, (lastStep || 60) * 1000)) loadSeries();
    timer = setTimeout(tick, 1000);
  }

  // ---- wiring and the first load ---------------------------------------------

  function wire() {
    for (const b of document.querySelectorAll('button[data-range]')) {
      b.addEventListener('click', () => setView({ range: b.dataset.range }, true));
    }
    HW.$('#custom-apply').addEventListener('click', () => {
      const since = HW.fromLocalInput(HW.$('#custom-since').value);
      const until = HW.fromLocalInput(HW.$('#custom-until').value);
      if (!(since < until)) {
        HW.say('A custom range needs a start before its end.', 'error');
        return;
      }
      setView({ since, until }, true);
    });
    // A link pasted into this tab, or the hash edited by hand.
    window.addEventListener('hashchange', () => {
      const h = HW.readHash();
      if (h) setView(h, true);
    });
    HW.$('#token-give').addEventListener('click', () => {
      HW.askToken('A control token lets this page act on the host and read the audit. It is kept in this tab\'s memory only.')
        .then((given) => { if (given) HW.say('The token is kept in memory for this tab.', 'ok'); });
    });
    HW.token.onChange((held) => { if (held) poll('audit'); });
    // Hidden: no polling. Shown again: all that is overdue runs at once.
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) clearTimeout(timer);
      else tick();
    });
  }

  async function boot() {
    HW.api.wireDialog();
    HW.panels.wire();
    wire();
    HW.charts.init();
    const h = HW.readHash();
    if (h) view = base = h;
    showView();
    // The charts first and alone: a year takes the agent longest, and on a
    // small host reading /proc and probing services would slow it. The
    // step assumes a 60 s interval until the sampler tells.
    await loadSeries();
    const first = ['sampler', 'system', 'services', 'processes', 'alerts'].map(poll);
    await Promise.allSettled(first);
    await refitStep();
    // uPlot draws in a microtask queued by setData: done by now.
    document.documentElement.dataset.ready = '1';
    tick();
  }

  HW.app = { zoom, resetZoom, onChartResize: refitStep, refresh: poll };
  boot();
})();
