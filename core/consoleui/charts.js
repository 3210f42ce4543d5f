// Small SVG charts for the console: a time chart with axes and a
// sparkline. No library: the console must work offline, from the binary.
'use strict';
const Charts = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  const palette = ['#2b6cb0', '#c05621', '#2f855a', '#6b46c1', '#b83280', '#2c7a7b', '#975a16', '#4a5568'];

  function node(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // niceMax rounds a maximum up to 1, 2 or 5 times a power of ten, so the
  // axis labels are readable.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // fmt shows two or three significant digits, without trailing zeros
  // after the point.
  function fmt(v) {
    const s = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toPrecision(2);
    return s.includes('.') && !s.includes('e') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
  }

  // line draws series ({name, values: [[timeMs, value], ...]}) over the
  // last spanMs into box, replacing what was there.
  function line(box, series, spanMs, now) {
    const W = Math.max(box.clientWidth, 300), H = 140, L = 44, R = 8, T = 8, B = 18;
    const svg = node('svg', {width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img'});
    let max = 0;
    for (const s of series) for (const [t, v] of s.values) if (t >= now - spanMs) max = Math.max(max, v);
    max = niceMax(max);
    const x = t => L + (W - L - R) * (1 - (now - t) / spanMs);
    const y = v => T + (H - T - B) * (1 - v / max);
    for (const f of [0, 0.5, 1]) {
      svg.appendChild(node('line', {x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), stroke: '#dfe3ea'}));
      svg.appendChild(node('text', {x: L - 4, y: y(max * f) + 3, 'text-anchor': 'end'}, fmt(max * f)));
    }
    svg.appendChild(node('text', {x: L, y: H - 4}, `-${Math.round(spanMs / 1000)}s`));
    svg.appendChild(node('text', {x: W - R, y: H - 4, 'text-anchor': 'end'}, 'now'));
    series.forEach((s, i) => {
      const pts = s.values.filter(([t]) => t >= now - spanMs).map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      const color = palette[i % palette.length];
      if (pts.length > 1) svg.appendChild(node('polyline', {points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 1.5}));
      svg.appendChild(node('text', {x: L + 6 + 110 * i, y: T + 10, fill: color}, s.name));
    });
    box.replaceChildren(svg);
  }

  // spark returns a small sparkline of values (oldest first).
  function spark(values, color) {
    const W = 64, H = 18;
    const svg = node('svg', {width: W, height: H, class: 'spark'});
    const max = Math.max(...values, 0) || 1;
    const pts = values.map((v, i) => `${(W * i / Math.max(values.length - 1, 1)).toFixed(1)},${(H - 1 - (H - 2) * v / max).toFixed(1)}`);
    if (pts.length > 1) svg.appendChild(node('polyline', {points: pts.join(' '), stroke: color}));
    return svg;
  }

  return {line, spark, fmt};
})();
