// obslab console: shared helpers and the catalog / history pages. No inline scripts (CSP: script-src 'self').
"use strict";

const obslab = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  // fetch() with the session cookie; POSTs carry the CSRF token. Resolves to parsed JSON, rejects with
  // an Error whose message is the server's "error" field.
  async function api(path, method = "GET", body = undefined) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = csrf();
      if (body !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(body);
      }
    }
    const resp = await fetch(path, opts);
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      const err = new Error((data && data.error) || `HTTP ${resp.status}`);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  // Epoch seconds, epoch milliseconds or an ISO string -> milliseconds.
  function toMillis(t) {
    if (t === null || t === undefined || t === "") return null;
    if (typeof t === "number") return t > 1e12 ? t : t * 1000;
    const n = Number(t);
    if (!Number.isNaN(n)) return toMillis(n);
    const p = Date.parse(t);
    return Number.isNaN(p) ? null : p;
  }

  return { api, el, toMillis };
})();

document.addEventListener("DOMContentLoaded", () => {
  // Catalog: Start buttons and auto-submitting filters.
  for (const button of document.querySelectorAll("button.start")) {
    button.addEventListener("click", async () => {
      const box = document.getElementById("start-error");
      button.disabled = true;
      button.textContent = "Starting…";
      try {
        await obslab.api(`/api/labs/${encodeURIComponent(button.dataset.lab)}/start`, "POST", {});
        window.location.assign("/run");
      } catch (e) {
        box.textContent = `Could not start: ${e.message}`;
        box.hidden = false;
        button.disabled = false;
        button.textContent = "Start";
      }
    });
  }
  for (const sel of document.querySelectorAll(".filters select")) {
    sel.addEventListener("change", () => sel.form.submit());
  }
  // History: local times.
  for (const td of document.querySelectorAll("td.ts")) {
    const ms = obslab.toMillis(td.dataset.ts);
    if (ms) td.textContent = new Date(ms).toLocaleString();
  }
});
