// Draws a vitcnn site page from the JSON embedded in it (script#vitcnn-data): no network, works from file://.
// The figures are built by vitcnn/site/data.py; this file only picks the ones the reader asked for.
"use strict";

(function () {
  const CONFIG = { responsive: true, displaylogo: false };

  function pageData() {
    return JSON.parse(document.getElementById("vitcnn-data").textContent);
  }

  function unique(values) {
    return values.filter((value, i) => values.indexOf(value) === i);
  }

  // A setting page: every figure is complete, draw it as it is.
  function drawHistory(data) {
    for (const figure of data.figures) {
      Plotly.react(document.getElementById(figure.div), figure.data, figure.layout, CONFIG);
    }
  }

  // The essay view: the selects narrow one another in data.axes order (machine, task, batch, ...); the first
  // group matching all of them is drawn, without the model families whose toggle is off.
  function drawEssay(data) {
    const form = document.getElementById("choices");
    const selects = Object.fromEntries(data.axes.map((axis) => [axis, form.elements[axis]]));
    const toggles = Array.from(form.querySelectorAll("input[data-prefix]"));
    const plots = document.getElementById("plots");

    function matching(count) {
      const chosen = data.axes.slice(0, count);
      return data.groups.filter((group) => chosen.every((axis) => String(group[axis]) === selects[axis].value));
    }

    function refreshOptions() {
      data.axes.forEach((axis, i) => {
        const values = unique(matching(i).map((group) => String(group[axis])));
        const select = selects[axis];
        const keep = values.includes(select.value) ? select.value : values[0];
        select.replaceChildren(...values.map((value) =>
          new Option(axis === "machine" ? data.machines[value].label + " (" + value + ")" : value, value)));
        select.value = keep;
      });
    }

    function plotDiv(key) {
      let div = document.getElementById("plot-" + key);
      if (!div) {
        div = document.createElement("div");
        div.id = "plot-" + key;
        div.className = "plot";
        plots.appendChild(div);
      }
      return div;
    }

    function redraw() {
      refreshOptions();
      const group = matching(data.axes.length)[0];
      const hidden = toggles.filter((t) => !t.checked).map((t) => t.dataset.prefix);
      const shown = (trace) => !hidden.some((prefix) => trace.legendgroup.startsWith(prefix));
      const keys = data.task_metrics[group.task];
      for (const div of Array.from(plots.children)) {
        if (!keys.includes(div.id.slice("plot-".length))) {
          Plotly.purge(div);
          div.remove();
        }
      }
      const divs = keys.map(plotDiv); // all placed before any is drawn, so each is drawn at its final width
      keys.forEach((key, i) => {
        const metric = data.metrics[key];
        const traces = group.traces[key].filter(shown);
        const layout = JSON.parse(JSON.stringify(metric.layout));
        layout.xaxis.tickvals = group.resolutions;
        layout.xaxis.ticktext = group.resolutions.map(String);
        if (!traces.length) {
          layout.annotations = [{ text: metric.empty, xref: "paper", yref: "paper", x: 0.5, y: 0.5,
                                  showarrow: false }];
        }
        Plotly.react(divs[i], traces, layout, CONFIG);
      });
      document.getElementById("machine-note").textContent = data.machines[group.machine].note;
      const failures = document.getElementById("failures");
      failures.replaceChildren(...(group.failures.length ? group.failures : ["nothing: every point was timed"])
        .map((text) => Object.assign(document.createElement("li"), { textContent: text })));
    }

    form.addEventListener("change", redraw);
    redraw();
  }

  const kind = document.body.dataset.page;
  if (kind === "essay") {
    drawEssay(pageData());
  } else if (kind === "history") {
    drawHistory(pageData());
  }
})();
