/* keylane dashboard: small inline-SVG charts (a line chart and the hash-range strip).
   No library: every element is made with createElementNS, text goes through textContent. */
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clear(svg) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const width = Math.max(200, svg.clientWidth || 600);
    const height = Math.max(60, svg.clientHeight || 160);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    return { width, height };
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (value <= step * power) return step * power;
    }
    return 10 * power;
  }

  function ago(seconds) {
    if (seconds < 1) return "now";
    if (seconds < 90) return `-${Math.round(seconds)}s`;
    return `-${Math.round(seconds / 60)}m`;
  }

  /* lineChart(svg, {times: [epoch s], series: [{name, color, values}], format(v)}) */
  function lineChart(svg, spec) {
    const { width, height } = clear(svg);
    const left = 46, right = 10, top = 22, bottom = 18;
    const plotW = width - left - right, plotH = height - top - bottom;
    const times = spec.times;
    const format = spec.format || ((v) => String(v));
    let max = 0;
    for (const s of spec.series) for (const v of s.values) if (v != null && v > max) max = v;
    max = niceMax(max);
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (plotH * i) / 4;
      svg.appendChild(el("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }));
      svg.appendChild(el("text", { x: left - 6, y: y + 3.5, "text-anchor": "end" },
        format((max * i) / 4)));
    }
    const legend = el("g", { class: "legend" });
    let lx = left;
    for (const s of spec.series) {
      legend.appendChild(el("rect", { x: lx, y: 6, width: 10, height: 10, rx: 2, fill: s.color }));
      const label = el("text", { x: lx + 14, y: 15 }, s.name);
      legend.appendChild(label);
      lx += 24 + s.name.length * 6.6;
    }
    svg.appendChild(legend);
    if (times.length < 2) {
      svg.appendChild(el("text", { x: left + plotW / 2, y: top + plotH / 2,
        "text-anchor": "middle", class: "empty" }, "waiting for data…"));
      return;
    }
    const t0 = times[0], t1 = times[times.length - 1];
    const span = Math.max(1, t1 - t0);
    const x = (t) => left + (plotW * (t - t0)) / span;
    const y = (v) => top + plotH - (plotH * v) / max;
    for (const frac of [0, 0.5, 1]) {
      const t = t0 + span * frac;
      svg.appendChild(el("text", { x: x(t), y: height - 4,
        "text-anchor": frac === 0 ? "start" : frac === 1 ? "end" : "middle" }, ago(t1 - t)));
    }
    for (const s of spec.series) {
      let path = "";
      let pen = false;
      s.values.forEach((v, i) => {
        if (v == null) { pen = false; return; }
        path += `${pen ? "L" : "M"}${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      if (s.fill && path) {
        const area = `${path}L${x(t1).toFixed(1)},${y(0)}L${x(t0).toFixed(1)},${y(0)}Z`;
        svg.appendChild(el("path", { d: area, fill: s.color, "fill-opacity": 0.12 }));
      }
      svg.appendChild(el("path", { d: path, fill: "none", stroke: s.color, "stroke-width": 1.8,
        "stroke-linejoin": "round" }));
    }
  }

  /* hashRing(svg, consumers, colors, slots): who owns which slots, draining hashes marked. */
  function hashRing(svg, consumers, colors, slots) {
    const { width, height } = clear(svg);
    const left = 4, right = 4, barTop = 8, barH = 26;
    const plotW = width - left - right;
    const x = (slot) => left + (plotW * slot) / slots;
    svg.appendChild(el("rect", { x: left, y: barTop, width: plotW, height: barH,
      fill: "#16213a", rx: 3 }));
    consumers.forEach((c, i) => {
      const color = colors[i % colors.length];
      for (const [start, end] of c.ranges) {
        svg.appendChild(el("rect", { x: x(start), y: barTop,
          width: Math.max(0.6, x(end + 1) - x(start)), height: barH, fill: color }));
      }
      for (const d of c.draining) {
        svg.appendChild(el("path", { d: `M${x(d.slot)},${barTop + barH + 1}l-4,7h8z`,
          fill: "#ef4444" }));
      }
    });
    for (const frac of [0, 0.25, 0.5, 0.75, 1]) {
      svg.appendChild(el("text", { x: left + plotW * frac, y: height - 4,
        "text-anchor": frac === 0 ? "start" : frac === 1 ? "end" : "middle" },
        String(Math.round(slots * frac))));
    }
  }

  window.KeylaneChart = { lineChart, hashRing };
})();
