// The face-size explorer of facelib (facelib/explorer.py builds `data`; this draws it with
// plotly.js). Everything is computed here from per-bin counts, so it works in a static page.
// root.facelib exposes the state and the shown histogram (used by the browser test).
function facelibExplorer(root, data, height) {
  "use strict";
  var G = data.groups.length, L = data.licences.length, F = data.fpp.length;
  var measures = Object.keys(data.measures);
  var cache = {};
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22"];

  function decode(rle, n) {
    var out = new Float64Array(n), i = 0;
    for (var k = 0; k < rle.length; k++) {
      var v = rle[k];
      if (v < 0) { i -= v; } else { out[i++] = v; }
    }
    return out;
  }
  function cube(m, kind) {
    var key = m + "/" + kind;
    if (!cache[key]) {
      var e = data.measures[m][kind], nb = e.edges.length - 1;
      cache[key] = {edges: e.edges, nb: nb, counts: decode(e.counts, G * L * F * nb)};
    }
    return cache[key];
  }
  function fmt(n) { return Math.round(n).toLocaleString("en-US"); }
  function pct(x) { return (100 * x).toFixed(1) + " %"; }
  function num(x) { return x >= 1000 ? x.toFixed(0) : String(Number(x.toPrecision(3))); }
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; }); }

  var state = {measure: measures[0], view: "linear", groups: [0], density: false,
               lic: data.licences.map(function () { return true; }),
               fpp: data.fpp.map(function () { return true; }), lo: null, hi: null};

  // ---- controls ------------------------------------------------------------------------
  var id = root.id;
  function checks(name, labels, extra) {
    return labels.map(function (lab, i) {
      return '<label style="white-space:nowrap;margin-right:.8em"><input type="checkbox" name="' + name +
        '" value="' + i + '"' + (extra(i) ? " checked" : "") + "> " + esc(lab) + "</label>";
    }).join(" ");
  }
  var allCounts = cube(measures[0], "lin");
  var groupTotals = data.groups.map(function (_, g) {
    var s = 0, size = L * F * allCounts.nb;
    for (var i = g * size; i < (g + 1) * size; i++) s += allCounts.counts[i];
    return s;
  });
  var radio = function (name, options, current) {
    return Object.keys(options).map(function (k) {
      return '<label style="margin-right:.6em;white-space:nowrap"><input type="radio" name="' + id + "-" + name +
        '" value="' + k + '"' + (k === current ? " checked" : "") + "> " + esc(options[k]) + "</label>";
    }).join("");
  };
  var box = "border:1px solid #ccc;border-radius:4px;padding:.3em .5em;margin:.2em .4em .2em 0;";
  root.innerHTML =
    (data.title ? '<div style="font-weight:bold;margin-bottom:.3em">' + data.title + "</div>" : "") +
    '<div style="display:flex;flex-wrap:wrap;align-items:center">' +
    '<span style="' + box + '">size <select class="fx-measure">' + measures.map(function (m) {
      return '<option value="' + m + '">' + esc(data.measures[m].label) + "</option>";
    }).join("") + "</select></span>" +
    '<span style="' + box + '" class="fx-view">' + radio("view", data.views, state.view) + "</span>" +
    '<span style="' + box + '" class="fx-norm">' + radio("norm", {counts: "counts", density: "density"}, "counts") + "</span>" +
    '<button type="button" class="fx-csv" style="margin:.2em 0">CSV of this histogram</button></div>' +
    '<div style="display:flex;flex-wrap:wrap;align-items:flex-start">' +
    '<div style="' + box + 'max-height:7.5em;overflow-y:auto;max-width:32em" class="fx-tags"><b>tags</b> (overlaid) ' +
    checks("tag", data.groups.map(function (g, i) { return g + " (" + fmt(groupTotals[i]) + ")"; }),
           function (i) { return i === 0; }) + "</div>" +
    '<div style="' + box + 'max-width:24em" class="fx-lic"><b>licence</b> ' + checks("lic", data.licences, function () { return true; }) + "</div>" +
    '<div style="' + box + '" class="fx-fpp"><b>faces per photo</b> ' + checks("fpp", data.fpp, function () { return true; }) + "</div>" +
    "</div>" +
    '<div style="display:flex;flex-wrap:wrap;align-items:center;' + box + '">' +
    '<b style="margin-right:.5em">size range</b> from <input type="range" class="fx-lo" style="width:12em;margin:0 .4em">' +
    ' to <input type="range" class="fx-hi" style="width:12em;margin:0 .4em"><span class="fx-range"></span></div>' +
    '<div class="fx-readout" style="margin:.2em 0 .4em 0;font-size:13px"></div>' +
    '<div class="fx-plot" style="width:100%;height:' + height + 'px"></div>';
  var q = function (sel) { return root.querySelector(sel); };
  var plot = q(".fx-plot"), loIn = q(".fx-lo"), hiIn = q(".fx-hi");

  // ---- computation ---------------------------------------------------------------------
  function kind() { return state.view === "logsize" || state.view === "loglog" ? "log" : "lin"; }
  function current() { return cube(state.measure, kind()); }
  function histogram(g) {
    var c = current(), nb = c.nb, out = new Float64Array(nb);
    for (var l = 0; l < L; l++) {
      if (!state.lic[l]) continue;
      for (var f = 0; f < F; f++) {
        if (!state.fpp[f]) continue;
        var base = ((g * L + l) * F + f) * nb;
        for (var b = 0; b < nb; b++) out[b] += c.counts[base + b];
      }
    }
    return out;
  }
  function rangeIdx() {
    var e = current().edges, nb = e.length - 1;
    function nearest(v, dflt) {
      if (v === null) return dflt;
      var best = 0;
      for (var i = 0; i <= nb; i++) if (Math.abs(e[i] - v) < Math.abs(e[best] - v)) best = i;
      return best;
    }
    var lo = nearest(state.lo, 0), hi = nearest(state.hi, nb);
    if (hi <= lo) hi = Math.min(nb, lo + 1);
    return [lo, hi];
  }
  function unit() { var u = data.measures[state.measure].unit; return u ? " " + u : ""; }
  function shown() {
    var c = current(), e = c.edges, r = rangeIdx(), out = [];
    state.groups.forEach(function (g) {
      var h = histogram(g), total = 0, kept = 0, surv = new Float64Array(c.nb);
      for (var b = 0; b < c.nb; b++) { total += h[b]; if (b >= r[0] && b < r[1]) kept += h[b]; }
      var acc = 0;
      for (b = c.nb - 1; b >= 0; b--) { acc += h[b]; surv[b] = total ? acc / total : 0; }
      var y = new Float64Array(c.nb);
      for (b = 0; b < c.nb; b++) {
        var w = kind() === "log" ? Math.log10(e[b + 1] / e[b]) : e[b + 1] - e[b];
        y[b] = state.density ? (total ? h[b] / (total * w) : 0) : h[b];
      }
      out.push({group: g, name: data.groups[g], counts: h, y: y, share: surv, total: total, kept: kept});
    });
    return {edges: e, range: r, series: out};
  }

  // ---- drawing -------------------------------------------------------------------------
  function draw() {
    var s = shown(), e = s.edges, nb = e.length - 1, logx = kind() === "log";
    var logy = state.view === "logcount" || state.view === "loglog";
    var traces = [];
    s.series.forEach(function (t, i) {
      var color = COLORS[i % COLORS.length], x = [], y = [], text = [];
      for (var b = 0; b < nb; b++) {
        x.push(e[b]); y.push(logy && t.y[b] <= 0 ? null : t.y[b]);
        text.push(esc(t.name) + "<br>" + num(e[b]) + "-" + num(e[b + 1]) + unit() + ": " + fmt(t.counts[b]) +
                  " faces" + (t.total ? " (" + pct(t.counts[b] / t.total) + ")" : ""));
      }
      x.push(e[nb]); y.push(y[nb - 1]); text.push(text[nb - 1]);
      traces.push({type: "scatter", mode: "lines", x: x, y: y, text: text, hoverinfo: "text", name: t.name,
                   line: {shape: "hv", width: 1.8, color: color}, legendgroup: t.name,
                   fill: s.series.length === 1 ? "tozeroy" : "none"});
      var sx = [], sy = [], st = [];
      for (b = 0; b < nb; b++) {
        sx.push(e[b]); sy.push(t.share[b]);
        st.push(esc(t.name) + "<br>&ge; " + num(e[b]) + unit() + ": " + pct(t.share[b]) + " of " + fmt(t.total) + " faces");
      }
      traces.push({type: "scatter", mode: "lines", x: sx, y: sy, text: st, hoverinfo: "text", yaxis: "y2",
                   name: t.name + ": share &ge; size", legendgroup: t.name, showlegend: false,
                   line: {dash: "dot", width: 1.5, color: color}});
    });
    var shapes = [], lo = e[s.range[0]], hi = e[s.range[1]];
    var grey = {type: "rect", xref: "x", yref: "paper", y0: 0, y1: 1, fillcolor: "#888", opacity: 0.22, line: {width: 0}};
    if (s.range[0] > 0) shapes.push(Object.assign({}, grey, {x0: e[0], x1: lo}));
    if (s.range[1] < nb) shapes.push(Object.assign({}, grey, {x0: hi, x1: e[nb]}));
    var m = data.measures[state.measure], xmax = e[nb];
    if (!logx) {  // a linear axis ends where 99.95 % of the faces are, or at the range's end
      var last = 0;
      s.series.forEach(function (t) { for (var b = 0; b < nb; b++) if (t.share[b] >= 0.0005) last = Math.max(last, b); });
      xmax = e[Math.min(nb, Math.max(last + 2, s.range[1] < nb ? s.range[1] + 1 : 0))];
    }
    var ytitle = state.density ? (logx ? "density (per decade of size)" : "density (per" + (m.unit ? " " + m.unit : " unit") + ")")
      : "faces per bin" + (logx ? " (" + data.bins_per_octave + " bins per octave)" : "");
    var layout = {
      height: height, margin: {t: 40, r: 70, b: 55, l: 70}, template: "plotly_white",
      font: {size: 13}, showlegend: s.series.length > 1, legend: {orientation: "h", y: 1.08, x: 0},
      hovermode: "closest", shapes: shapes,
      xaxis: {title: {text: "face size: " + m.label + (m.unit ? " (" + m.unit + ")" : "")},
              type: logx ? "log" : "linear", dtick: logx ? "D2" : undefined,
              range: logx ? [Math.log10(e[0]), Math.log10(e[nb])] : [e[0], xmax]},
      yaxis: logy ? {title: {text: ytitle}, type: "log", dtick: 1, exponentformat: "power"}
        : {title: {text: ytitle}, type: "linear", rangemode: "tozero"},
      yaxis2: {title: {text: "share of faces \u2265 size (dotted)"}, overlaying: "y", side: "right",
               range: [0, 1.0001], tickvals: [0, 0.2, 0.4, 0.6, 0.8, 1], tickformat: ".0%", showgrid: false,
               zeroline: false}
    };
    window.Plotly.react(plot, traces, layout, {displaylogo: false, responsive: true});
    readout(s);
  }
  function readout(s) {
    var e = s.edges;
    q(".fx-range").textContent = "[" + num(e[s.range[0]]) + ", " + num(e[s.range[1]]) + ")" + unit();
    q(".fx-readout").innerHTML = s.series.map(function (t) {
      var dropped = t.total - t.kept;
      return "<b>" + esc(t.name) + "</b>: " + fmt(t.total) + " faces after the filters; <b>kept " + fmt(t.kept) + "</b>" +
        (t.total ? " (" + pct(t.kept / t.total) + ")" : "") + ", dropped " + fmt(dropped);
    }).join("<br>") || "no tag selected";
  }
  function syncSliders() {
    var nb = current().nb, r = rangeIdx();
    [loIn, hiIn].forEach(function (el) { el.min = 0; el.max = nb; el.step = 1; });
    loIn.value = r[0]; hiIn.value = r[1];
  }
  function csv() {
    var s = shown(), e = s.edges, head = ["from", "to", "kept"];
    var what = state.density ? "density" : "faces";
    s.series.forEach(function (t) { head.push(t.name + " " + what, t.name + " share >= from"); });
    var rows = [head.map(function (h) { return '"' + h.replace(/"/g, '""') + '"'; }).join(",")];
    for (var b = 0; b < e.length - 1; b++) {
      var row = [e[b], e[b + 1], b >= s.range[0] && b < s.range[1] ? 1 : 0];
      s.series.forEach(function (t) { row.push(t.y[b], t.share[b]); });
      rows.push(row.join(","));
    }
    return "# facelib face-size histogram: size " + data.measures[state.measure].label + ", view " + state.view +
      ", licences " + data.licences.filter(function (_, i) { return state.lic[i]; }).join("|") +
      ", faces per photo " + data.fpp.filter(function (_, i) { return state.fpp[i]; }).join("|") + "\n" +
      rows.join("\n") + "\n";
  }

  // ---- events --------------------------------------------------------------------------
  function values(name) {
    return Array.prototype.map.call(root.querySelectorAll('input[name="' + name + '"]'), function (el) { return el.checked; });
  }
  q(".fx-measure").addEventListener("change", function (ev) { state.measure = ev.target.value; state.lo = state.hi = null; syncSliders(); draw(); });
  Array.prototype.forEach.call(root.querySelectorAll('input[name="' + id + '-view"]'), function (el) {
    el.addEventListener("change", function () { state.view = el.value; syncSliders(); draw(); });
  });
  Array.prototype.forEach.call(root.querySelectorAll('input[name="' + id + '-norm"]'), function (el) {
    el.addEventListener("change", function () { state.density = el.value === "density"; draw(); });
  });
  root.querySelectorAll('input[name="tag"]').forEach(function (el) {
    el.addEventListener("change", function () {
      state.groups = values("tag").map(function (v, i) { return v ? i : -1; }).filter(function (i) { return i >= 0; });
      draw();
    });
  });
  root.querySelectorAll('input[name="lic"]').forEach(function (el) { el.addEventListener("change", function () { state.lic = values("lic"); draw(); }); });
  root.querySelectorAll('input[name="fpp"]').forEach(function (el) { el.addEventListener("change", function () { state.fpp = values("fpp"); draw(); }); });
  function onRange(which) {
    return function () {
      var e = current().edges, lo = +loIn.value, hi = +hiIn.value;
      if (which === "lo" && lo >= hi) { lo = Math.max(0, hi - 1); loIn.value = lo; }
      if (which === "hi" && hi <= lo) { hi = Math.min(e.length - 1, lo + 1); hiIn.value = hi; }
      state.lo = e[lo]; state.hi = e[hi];
      draw();
    };
  }
  loIn.addEventListener("input", onRange("lo"));
  hiIn.addEventListener("input", onRange("hi"));
  q(".fx-csv").addEventListener("click", function () {
    var blob = new Blob([csv()], {type: "text/csv"}), a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "face-sizes-" + state.measure + "-" + state.view + ".csv";
    document.body.appendChild(a); a.click(); document.body.removeChild(a);
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
  });

  root.facelib = {state: state, shown: shown, csv: csv, draw: draw};
  (function start(tries) {
    if (window.Plotly) { syncSliders(); draw(); }
    else if (tries > 0) { setTimeout(function () { start(tries - 1); }, 100); }
    else { root.insertAdjacentHTML("beforeend", "<p>plotly.js did not load: the figure cannot be drawn.</p>"); }
  })(100);
}
