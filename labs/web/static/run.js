// obslab console: the lab run page (state, countdown, hints, answer, debrief, alerts, live charts).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const { api, el, toMillis } = obslab;
  let catalog = null;
  let current = null;
  let shownHints = 0;
  const plots = new Map(); // panel id -> {plot, box}
  let chartTimer = null;

  const ACTIVE = new Set(["starting", "running", "stopping"]);

  function fmtValue(v, unit) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (v === 0) return "0";
    const abs = Math.abs(v);
    const si = (x, base, units) => {
      let i = 0;
      while (Math.abs(x) >= base && i < units.length - 1) { x /= base; i++; }
      return `${x.toFixed(Math.abs(x) < 10 && i > 0 ? 1 : 0)}${units[i]}`;
    };
    switch (unit) {
      case "percentunit": return `${(v * 100).toFixed(abs < 0.1 ? 1 : 0)}%`;
      case "percent": return `${v.toFixed(abs < 10 ? 1 : 0)}%`;
      case "s": return abs >= 1 ? `${v.toFixed(2)}s` : abs >= 1e-3 ? `${(v * 1e3).toFixed(1)}ms` : `${(v * 1e6).toFixed(0)}µs`;
      case "ms": return `${v.toFixed(1)}ms`;
      case "bytes": case "decbytes": return si(v, 1024, ["B", "KiB", "MiB", "GiB", "TiB"]);
      case "Bps": case "binBps": return `${si(v, 1024, ["B", "KiB", "MiB", "GiB"])}/s`;
      case "reqps": return `${v.toFixed(abs < 10 ? 2 : 0)} req/s`;
      default: return abs >= 1000 ? si(v, 1000, ["", "k", "M", "G", "T"]) : `${+v.toFixed(abs < 10 ? 3 : 1)}`;
    }
  }

  const PALETTE = ["#2f6fde", "#e0662d", "#2e9d5b", "#b93fb8", "#c9a10b", "#0aa3b5", "#d13a4b", "#6b6b6b"];

  // ---- state ----------------------------------------------------------------------------------------
  function labInfo(id) {
    return (catalog || []).find((l) => l.id === id) || null;
  }

  function fillSelect(select, options) {
    select.replaceChildren(el("option", { value: "" }, "— choose —"));
    for (const o of options) {
      const value = typeof o === "object" ? o.id : o;
      const label = typeof o === "object" ? (o.label || o.id) : o;
      select.append(el("option", { value }, label));
    }
  }

  function render(state) {
    const prevLab = current && current.lab;
    current = state;
    const active = ACTIVE.has(state.state) || (state.lab && state.state === "finished");
    $("idle").hidden = !!active;
    $("run").hidden = !active;
    if (!active) return;
    const info = labInfo(state.lab);
    $("lab-title").textContent = info ? info.title : state.lab;
    $("state").textContent = state.state;
    $("state").dataset.state = state.state;
    if (state.lab !== prevLab) {
      $("briefing").textContent = (info && info.briefing) || "";
      const opts = (info && info.answer_options) || { resource: [], signal: [], cause: [] };
      fillSelect($("answer-resource"), opts.resource || []);
      fillSelect($("answer-signal"), opts.signal || []);
      fillSelect($("answer-cause"), opts.cause || []);
    }
    if (Array.isArray(state.hints)) {
      for (let i = shownHints; i < state.hints.length; i++) {
        const h = state.hints[i];
        addHint(typeof h === "object" ? h.text : h);
      }
    }
    $("hint-count").textContent = state.hints_used !== undefined ? `${state.hints_used} used` : "";
    if (state.debrief) showDebrief(state.debrief, state.score);
    const finished = !ACTIVE.has(state.state);
    $("hint").disabled = finished;
    $("stop").hidden = finished;
    tick();
  }

  function tick() {
    if (!current) return;
    const deadline = toMillis(current.deadline);
    const box = $("countdown");
    if (!deadline || !ACTIVE.has(current.state)) { box.textContent = ""; return; }
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    box.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
    box.classList.toggle("late", left < 60);
  }

  function addHint(text) {
    shownHints += 1;
    $("hints").append(el("li", { class: "hint" }, text));
  }

  function showDebrief(text, score) {
    $("debrief-box").hidden = false;
    $("score").textContent = score !== null && score !== undefined ? `Score: ${score}` : "";
    const body = $("debrief");
    body.replaceChildren(...String(text).split(/\n{2,}/).map((p) => el("p", {}, p)));
  }

  async function poll() {
    try {
      render(await api("/api/lab"));
    } catch (e) {
      $("state").textContent = `error: ${e.message}`;
    }
  }

  // ---- actions --------------------------------------------------------------------------------------
  $("hint").addEventListener("click", async () => {
    try {
      const h = await api("/api/lab/hint", "POST");
      if (h.level > shownHints) addHint(h.text);
      $("hint-count").textContent = `${h.level} of ${h.of}`;
      if (h.level >= h.of) $("hint").disabled = true;
    } catch (e) {
      $("hint-count").textContent = e.message;
    }
  });

  $("answer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const body = { resource: form.resource.value, signal: form.signal.value, cause: form.cause.value };
    const fb = $("feedback");
    fb.hidden = false;
    try {
      const r = await api("/api/lab/answer", "POST", body);
      fb.textContent = r.feedback || (r.correct ? "Correct." : "Not quite.");
      fb.className = `feedback ${r.correct ? "right" : "wrong"}`;
      if (r.debrief) showDebrief(r.debrief, r.score);
      poll();
    } catch (e) {
      fb.textContent = e.message;
      fb.className = "feedback wrong";
    }
  });

  $("stop").addEventListener("click", async () => {
    $("stop").disabled = true;
    try {
      const r = await api("/api/lab/stop", "POST");
      if (r && r.debrief) showDebrief(r.debrief, r.score);
    } catch (e) {
      $("state").textContent = e.message;
    }
    $("stop").disabled = false;
    poll();
  });

  // ---- alerts ---------------------------------------------------------------------------------------
  async function pollAlerts() {
    const list = $("alerts");
    try {
      const alerts = await api("/api/alerts");
      if (!alerts.length) { list.replaceChildren(el("li", { class: "muted" }, "none")); return; }
      list.replaceChildren(...alerts.map((a) =>
        el("li", { class: `alert ${a.state}` },
          el("span", { class: "badge" }, a.state), " ",
          el("strong", {}, a.name), a.severity ? ` (${a.severity})` : "", a.summary ? ` — ${a.summary}` : "")));
    } catch (e) {
      list.replaceChildren(el("li", { class: "error" }, e.message));
    }
  }

  // ---- charts ---------------------------------------------------------------------------------------
  async function loadPanels() {
    const uid = $("dash").value;
    const box = $("charts");
    const errBox = $("chart-error");
    if (typeof uPlot === "undefined") {
      errBox.textContent = "The charting library (uPlot) is not installed: run `make setup` (scripts/web-assets.sh).";
      errBox.hidden = false;
      return;
    }
    for (const { plot } of plots.values()) plot.destroy();
    plots.clear();
    box.replaceChildren();
    $("stats").replaceChildren();
    try {
      const dash = await api(`/api/dashboards/${encodeURIComponent(uid)}/panels`);
      errBox.hidden = true;
      for (const p of dash.panels) {
        const card = el("div", { class: `chart ${p.kind}`, "data-panel": p.id },
          el("h3", { title: p.description }, p.title), el("div", { class: "plot" }));
        (p.kind === "stat" ? $("stats") : box).append(card);
        plots.set(p.id, { panel: p, card, plot: null });
      }
      refreshCharts();
    } catch (e) {
      errBox.textContent = `Charts unavailable: ${e.message}`;
      errBox.hidden = false;
    }
  }

  async function refreshPanel(uid, entry) {
    const minutes = $("minutes").value;
    const { panel, card } = entry;
    const target = card.querySelector(".plot");
    let data;
    try {
      data = await api(`/api/dashboards/${encodeURIComponent(uid)}/panels/${panel.id}/data?minutes=${minutes}`);
    } catch (e) {
      target.replaceChildren(el("p", { class: "error" }, e.message));
      entry.plot = null;
      return;
    }
    if (panel.kind === "stat") {
      const last = data.series.map((s) => {
        const vals = s.values.filter((v) => v !== null);
        return el("div", { class: "stat" }, el("span", { class: "num" }, fmtValue(vals[vals.length - 1], panel.unit)),
          data.series.length > 1 ? el("span", { class: "muted" }, ` ${s.label}`) : "");
      });
      target.replaceChildren(...(last.length ? last : [el("span", { class: "muted" }, "no data")]));
      card.dataset.drawn = last.length ? "1" : "0";
      return;
    }
    const cols = [data.timestamps, ...data.series.map((s) => s.values)];
    const series = [{}, ...data.series.map((s, i) => ({
      label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
      value: (u, v) => fmtValue(v, panel.unit),
    }))];
    const width = Math.max(260, target.clientWidth || 400);
    if (entry.plot && entry.plot.series.length === series.length) {
      entry.plot.setData(cols);
    } else {
      if (entry.plot) entry.plot.destroy();
      target.replaceChildren();
      entry.plot = new uPlot({
        width, height: 180, series, legend: { show: true, live: false },
        scales: { x: { time: true } },
        axes: [{}, { size: 84, values: (u, vals) => vals.map((v) => fmtValue(v, panel.unit)) }],
      }, cols, target);
    }
    card.dataset.drawn = data.series.some((s) => s.values.some((v) => v !== null)) ? "1" : "0";
  }

  function refreshCharts() {
    const uid = $("dash").value;
    for (const entry of plots.values()) refreshPanel(uid, entry);
  }

  // ---- start ----------------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", async () => {
    try { catalog = await api("/api/labs"); } catch (e) { catalog = []; }
    await poll();
    setInterval(poll, 2000);
    setInterval(tick, 1000);
    pollAlerts();
    setInterval(pollAlerts, 5000);
    $("dash").addEventListener("change", loadPanels);
    $("minutes").addEventListener("change", refreshCharts);
    await loadPanels();
    chartTimer = setInterval(refreshCharts, 5000);
  });
})();
