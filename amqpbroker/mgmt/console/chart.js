// A line chart of a few series over the last minutes, drawn on a canvas, with a legend of their
// latest values. The samples are taken by the page (History) while it is shown.

import { h } from "./dom.js";

const COLORS = ["#2f6f9f", "#d08a2c", "#2e7d4f", "#8a4fa8"];

// The last `span` milliseconds of samples: {time, values: {series: number}}.
export class History {
  constructor(span = 10 * 60 * 1000) {
    this.span = span;
    this.samples = [];
  }

  add(values, time = Date.now()) {
    this.samples.push({ time, values });
    while (this.samples.length && this.samples[0].time < time - this.span) this.samples.shift();
  }
}

// The chart's element; `draw(history)` redraws it.
export function lineChart(series, unit) {
  const canvas = h("canvas", { class: "chart" });
  const legend = h("div", { class: "legend" });
  const node = h("div", {}, canvas, legend);
  node.draw = (history) => {
    draw(canvas, series, history);
    const last = history.samples.at(-1);
    legend.replaceChildren(...series.map(([key, label], index) => {
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = COLORS[index];
      return h("span", { "data-series": key }, swatch, label,
        h("span", { class: "figure" }, last ? `${format(last.values[key] ?? 0)}${unit}` : "–"));
    }));
  };
  return node;
}

function format(value) {
  return Number.isInteger(value) ? value.toLocaleString("en") : value.toFixed(1);
}

function draw(canvas, series, history) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  const left = 48, right = 24, top = 8, bottom = 20;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const end = Date.now(), start = end - history.span;
  const ceiling = niceCeiling(Math.max(0, ...history.samples.flatMap((s) => series.map(([key]) => s.values[key] ?? 0))));
  const x = (time) => left + ((time - start) / history.span) * plotWidth;
  const y = (value) => top + plotHeight - (value / ceiling) * plotHeight;

  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#66717c";
  g.strokeStyle = "#e6eaee";
  g.lineWidth = 1;
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (let step = 0; step <= 5; step++) {
    const value = (ceiling * step) / 5;
    const at = Math.round(y(value)) + 0.5;
    g.beginPath();
    g.moveTo(left, at);
    g.lineTo(width - right, at);
    g.stroke();
    g.fillText(format(value), left - 6, at);
  }
  g.textAlign = "center";
  g.textBaseline = "top";
  for (let minutes = history.span / 60000; minutes >= 0; minutes -= 2) {
    g.fillText(minutes ? `-${minutes} min` : "now", x(end - minutes * 60000), top + plotHeight + 5);
  }
  g.lineWidth = 2;
  series.forEach(([key], index) => {
    g.strokeStyle = COLORS[index];
    g.beginPath();
    history.samples.forEach((sample, i) => {
      const px = x(sample.time), py = y(sample.values[key] ?? 0);
      if (i === 0) g.moveTo(px, py);
      else g.lineTo(px, py);
    });
    g.stroke();
  });
}

// The axis' top: 1, 2 or 5 times a power of ten, at least 5, so that its five steps are whole.
function niceCeiling(value) {
  value = Math.max(value, 5);
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}
