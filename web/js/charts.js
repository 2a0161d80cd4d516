// hostwatch dashboard: the charts, one uPlot per metric and per disk: the
// average a line, min–max a band, cursors synced, a drag zooms. They never
// fetch: app.js gets one /checks/series per view and calls render().
(function () {
  'use strict';
  const HW = window.HW;

  const charts = new Map(); // 'cpu', 'memory', 'swap', 'load1', 'disk:/mount' → chart
  let firstMarked = false;

  const keyOf = (metric, mount) => (metric === 'disk' ? 'disk:' + mount : metric);

  // A canvas is out of CSS's reach: its colours come from the page's custom
  // properties, so dark and light are defined in one place.
  function colors() {
    const cs = getComputedStyle(document.documentElement);
    const v = (n) => cs.getPropertyValue(n).trim();
    return { line: v('--chart-line'), band: v('--chart-band'), grid: v('--chart-grid'), axis: v('--chart-axis') };
  }

  const narrow = window.matchMedia('(max-width: 700px)');
  const height = () => (narrow.matches ? 160 : 200);

  // The four fixed charts are in the page (their width is known before any
  // data); a disk's section is made when its mount first shows up.
  function ensure(metric, mount) {
    const key = keyOf(metric, mount);
    let c = charts.get(key);
    if (c) return c;
    let section = Array.from(document.querySelectorAll('#charts .chart')).find(
      (s) => s.dataset.metric === metric && (metric !== 'disk' || s.dataset.mount === mount));
    if (!section) {
      section = HW.el('section', { class: 'chart', 'data-metric': metric, 'data-mount': mount },
        HW.el('h3', { text: 'Disk ' + mount }),
        HW.el('div', { class: 'plot' }),
        HW.el('p', { class: 'empty', text: 'No checks in this window', hidden: true }));
      HW.$('#charts').append(section);
    }
    c = {
      key, section,
      plot: section.querySelector('.plot'),
      empty: section.querySelector('.empty'),
      pct: metric !== 'load1', // cpu, memory, swap and disks are 0–100 %
      data: [[], [], [], []],
      win: null, u: null, points: 0, draws: 0,
    };
    charts.set(key, c);
    make(c); // now, while the data is on its way: less left to do when it comes
    resizer.observe(c.plot);
    return c;
  }

  function make(c) {
    const k = colors();
    const val = (u, v) => (v == null ? '–' : c.pct ? HW.pct(v) : HW.num(v, 2));
    const grid = { stroke: k.grid, width: 1 };
    // min and max only edge the band (width 0: no line of their own).
    const edge = (label) => ({ label, stroke: k.band, width: 0, points: { show: false }, value: val });
    const opts = {
      width: Math.max(200, c.plot.clientWidth),
      height: height(),
      cursor: {
        sync: { key: 'hw' },
        // A drag does not rescale this chart: app.js fetches buckets that
        // fit the window, for all of them.
        drag: { x: true, y: false, setScale: false, dist: 5 },
        // A double-click: back to the range before zooming, on every chart
        // (not uPlot's "fit this one chart to its data").
        bind: { dblclick: () => () => HW.app.resetZoom() },
      },
      scales: {
        x: { time: true },
        y: c.pct ? { range: [0, 100] } : { range: (u, min, max) => [0, Math.max(1, Math.ceil((max || 0) * 1.1))] },
      },
      axes: [
        { stroke: k.axis, grid, ticks: grid },
        c.pct
          ? { stroke: k.axis, grid, ticks: grid, size: 52, values: (u, ticks) => ticks.map((v) => v + ' %') }
          : { stroke: k.axis, grid, ticks: grid, size: 52 },
      ],
      series: [
        { value: (u, ts) => (ts == null ? '–' : HW.dateTime(ts * 1000)) },
        edge('min'),
        { label: 'avg', stroke: k.line, width: 1.5, value: val },
        edge('max'),
      ],
      bands: [{ series: [3, 1], fill: k.band }],
      legend: { markers: { show: false } },
      hooks: { setSelect: [onSelect], draw: [() => onDraw(c)] },
    };
    c.u = new uPlot(opts, c.data, c.plot);
    touchZoom(c.u);
    if (c.win) c.u.setScale('x', { min: c.win.since / 1000, max: c.win.until / 1000 });
  }

  function onDraw(c) {
    if (!firstMarked && c.points > 0) {
      firstMarked = true;
      performance.mark('hw:first-chart');
    }
  }

  // uPlot's drag is mouse-only: on a phone a one-finger sideways swipe
  // across the plot zooms the same way (CSS leaves it vertical scrolling
  // only, touch-action: pan-y, so the page does not take the swipe).
  function touchZoom(u) {
    let x0 = null;
    const xOf = (t) => t.clientX - u.over.getBoundingClientRect().left;
    u.over.addEventListener('touchstart', (e) => {
      x0 = e.touches.length === 1 ? xOf(e.touches[0]) : null;
    }, { passive: true });
    u.over.addEventListener('touchend', (e) => {
      const t = e.changedTouches[0];
      if (x0 === null || !t) return;
      const [a, b] = [x0, xOf(t)].sort((p, q) => p - q);
      x0 = null;
      if (b - a >= 30) HW.app.zoom(u.posToVal(Math.max(0, a), 'x') * 1000, u.posToVal(b, 'x') * 1000);
    }, { passive: true });
  }

  function onSelect(u) {
    const s = u.select;
    if (s.width < 5) return;
    const a = u.posToVal(s.left, 'x'), b = u.posToVal(s.left + s.width, 'x');
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    // Synced charts may report the same drag: app.zoom makes one fetch.
    HW.app.zoom(a * 1000, b * 1000);
  }

  // Buckets without checks are left out of the answer: where the next one
  // starts further on than expected, a null makes uPlot draw a gap. Data
  // comes every interval, or every hour where old checks are rolled up
  // (resolution 1h), so buckets finer than that are apart by design. And
  // when a bucket holds about one value, one missing bucket is timer
  // jitter (checks at :59.9 and :01.1), not a gap: only two or more count.
  function toData(buckets, stepS, intervalS) {
    const x = [], lo = [], avg = [], hi = [];
    let prev = null, prevEvery = intervalS;
    for (const b of buckets) {
      const t = Date.parse(b.start) / 1000;
      const every = Math.max(prevEvery, b.resolution === '1h' ? 3600 : intervalS);
      const apart = Math.max(stepS, every) * (stepS < 2 * every ? 2 : 1);
      if (prev !== null && t - prev > apart + 0.5) {
        x.push(prev + stepS); lo.push(null); avg.push(null); hi.push(null);
      }
      x.push(t); lo.push(b.min); avg.push(b.avg); hi.push(b.max);
      prev = t;
      prevEvery = b.resolution === '1h' ? 3600 : intervalS;
    }
    return [x, lo, avg, hi];
  }

  function load(c, data, stepS, win) {
    c.data = data;
    c.win = win;
    c.points = data[2].reduce((n, v) => n + (v == null ? 0 : 1), 0);
    c.empty.hidden = c.points > 0;
    const d = c.section.dataset;
    d.points = c.points;
    d.step = stepS;
    d.since = win.since;
    d.until = win.until;
    d.draws = ++c.draws;
    c.u.setData(data);
    // The x axis spans the window asked, so empty stretches show as such.
    c.u.setScale('x', { min: win.since / 1000, max: win.until / 1000 });
  }

  // Draws a /checks/series answer for `win` ({since, until}, epoch ms). A
  // chart missing from it (a mount not seen then) shows it has no checks.
  function render(resp, win, intervalS) {
    const seen = new Set();
    for (const s of resp.series) {
      const c = ensure(s.metric, s.mount);
      seen.add(c.key);
      load(c, toData(s.buckets, resp.step_seconds, intervalS), resp.step_seconds, win);
    }
    for (const c of charts.values()) {
      if (!seen.has(c.key)) load(c, [[], [], [], []], resp.step_seconds, win);
    }
    HW.$('#more-mounts').hidden = !resp.more_mounts;
  }

  // Charts follow their container (a phone turned, a window resized); a
  // new width may want another step: app.js decides.
  const resizer = new ResizeObserver((entries) => {
    for (const e of entries) {
      const c = Array.from(charts.values()).find((x) => x.plot === e.target);
      const w = Math.floor(e.contentRect.width);
      if (c && w > 0 && (w !== c.u.width || height() !== c.u.height)) c.u.setSize({ width: w, height: height() });
    }
    afterResize();
  });
  const afterResize = HW.debounce(() => HW.app.onChartResize(), 400);

  // A new colour scheme: canvases keep old colours, so remake the charts.
  function recolor() {
    for (const c of charts.values()) {
      c.u.destroy();
      make(c);
    }
  }

  function init() {
    ['cpu', 'memory', 'swap', 'load1'].forEach((m) => ensure(m));
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', recolor);
  }

  // The width (CSS px) the buckets should fit: the first chart's.
  const width = () => charts.get('cpu').plot.clientWidth || HW.$('#charts').clientWidth;

  HW.charts = { init, render, width };
})();
