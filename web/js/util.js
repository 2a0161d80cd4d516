// hostwatch dashboard: shared helpers. The scripts are classic scripts
// concatenated into one file (no build step, one request): each is an IIFE,
// and they share the namespace window.HW.
(function () {
  'use strict';
  const HW = (window.HW = window.HW || {});

  HW.$ = (sel, root) => (root || document).querySelector(sel);

  // Text goes in through textContent and attributes through setAttribute:
  // nothing the agent answers (a process name) can become markup.
  HW.el = function (tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    e.append(...kids.filter((k) => k != null));
    return e;
  };

  // Makes `kids` the children of `node` in order, moving only nodes out of
  // place: rows kept across refreshes keep their focus and state (a kill
  // button waiting to be confirmed).
  HW.fill = function (node, kids) {
    kids.forEach((k, i) => {
      if (node.children[i] !== k) node.insertBefore(k, node.children[i] || null);
    });
    while (node.children.length > kids.length) node.lastElementChild.remove();
  };

  HW.debounce = function (fn, ms) {
    let t = 0;
    return (...args) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...args), ms);
    };
  };

  // ---- numbers and times (times in the browser's local time) ---------------

  const bad = (v) => v == null || !isFinite(v);
  // One decimal below 10 %, where it still says something.
  HW.pct = (v) => (bad(v) ? '–' : v.toFixed(v < 10 ? 1 : 0) + ' %');
  HW.num = (v, digits) => (bad(v) ? '–' : v.toFixed(digits));

  HW.bytes = function (n) {
    if (bad(n)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
    return (i === 0 || n >= 100 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
  };

  HW.duration = function (s) {
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return d > 0 ? d + ' d ' + h + ' h' : h > 0 ? h + ' h ' + m + ' min' : m + ' min';
  };

  const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const dated = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

  // Today's times show only the clock; older ones the date too.
  HW.when = function (t) {
    const d = new Date(t);
    if (t == null || isNaN(d)) return '–';
    return d.toDateString() === new Date().toDateString() ? clock.format(d) : dated.format(d);
  };
  HW.dateTime = (t) => dated.format(new Date(t));

  // `datetime-local` inputs hold local wall-clock time with no zone, and a
  // date-time without an offset parses as local time.
  HW.toLocalInput = function (ms) {
    const d = new Date(ms), p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
  };
  HW.fromLocalInput = (s) => (s ? new Date(s).getTime() : NaN);

  // ---- ranges and bucket steps -----------------------------------------------

  const H = 3600e3, D = 24 * H;
  HW.RANGES = { '1h': H, '6h': 6 * H, '24h': D, '7d': 7 * D, '30d': 30 * D, '1y': 365 * D };

  const STEPS = [
    [10, '10s'], [15, '15s'], [30, '30s'], [60, '1m'], [120, '2m'], [300, '5m'], [600, '10m'],
    [900, '15m'], [1800, '30m'], [3600, '1h'], [7200, '2h'], [10800, '3h'], [21600, '6h'],
    [43200, '12h'], [86400, '1d'], [172800, '2d'], [604800, '7d'],
  ];

  // The smallest nice step giving at most one bucket per 2 CSS px of chart
  // (finer could not be seen, and costs the agent work), never finer than
  // the sampler's interval (such buckets would be mostly empty: gaps).
  HW.pickStep = function (spanMs, widthPx, intervalS) {
    // One bucket per 2 px, 10 to 1000 of them (the agent answers at most 2000).
    const want = Math.max(spanMs / 1000 / Math.min(1000, Math.max(10, Math.floor(widthPx / 2))), intervalS || 0);
    const [s, name] = STEPS.find(([x]) => x >= want) || STEPS[STEPS.length - 1];
    return { s, name };
  };

  // ---- the view in the URL hash: the range only, never the token ------------

  HW.readHash = function () {
    const p = new URLSearchParams(location.hash.slice(1));
    const r = p.get('range');
    if (r && Object.hasOwn(HW.RANGES, r)) return { range: r };
    const since = Number(p.get('since')), until = Number(p.get('until'));
    // Within what a Date can hold (±8.64e15 ms).
    return since > 0 && until > since && until <= 8.64e15 ? { since, until } : null;
  };

  HW.writeHash = function (view) {
    const h = view.range ? '#range=' + view.range : '#since=' + Math.round(view.since) + '&until=' + Math.round(view.until);
    // replaceState: a zoom is not worth a history entry, and it fires no
    // hashchange back at us.
    if (location.hash !== h) history.replaceState(null, '', h);
  };
})();
