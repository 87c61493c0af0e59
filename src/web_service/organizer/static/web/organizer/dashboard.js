/* The sales chart: sold, held and available over the sale, drawn by uPlot (vendored) from
   the series the dashboard carries; every htmx refresh of the numbers redraws it. */
(function () {
  "use strict";

  const box = document.getElementById("sales-chart");
  if (!box || !window.uPlot) { return; }
  const COLOURS = { sold: "#1d6b34", held: "#b35c00", available: "#0b5cad" };
  let plot = null;

  function series() {
    const element = document.getElementById("sales-series");
    return element ? JSON.parse(element.textContent) : null;
  }

  function columns(data) {
    return [
      data.at.map(function (at) { return Date.parse(at) / 1000; }),
      data.sold, data.held, data.available
    ];
  }

  function size() {
    return { width: Math.max(260, box.clientWidth), height: 260 };
  }

  function line(label, key) {
    return { label: label, stroke: COLOURS[key], width: 2, points: { show: true, size: 5 } };
  }

  function draw() {
    const data = series();
    if (!data || !data.at.length) { return; }
    if (plot) {
      plot.setData(columns(data));
    } else {
      const axis = { stroke: "#1b1f24", grid: { stroke: "#e3e7eb" }, ticks: { stroke: "#c9d0d8" } };
      plot = new window.uPlot(Object.assign(size(), {
        legend: { show: false },
        scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
        axes: [axis, Object.assign({}, axis, { size: 50 })],
        series: [{}, line("Sold", "sold"), line("Held", "held"), line("Available", "available")]
      }), columns(data), box);
    }
    box.dataset.points = String(data.at.length);
  }

  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id === "sales") { draw(); }
  });
  window.addEventListener("resize", function () {
    if (plot) { plot.setSize(size()); }
  });
  draw();
})();
