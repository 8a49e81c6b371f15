// Gleitzeit dashboard: live updates of a run page from its server-sent events,
// the task panel, graph zoom and the two actions. No build step; htmx does the
// fragment requests.
"use strict";

(function () {
  const token = () => document.querySelector('meta[name="gleitzeit-token"]').content;
  const byKey = (sel, key) => document.querySelector(`${sel}[data-key="${CSS.escape(key)}"]`);
  const setStatus = (el, status) => {
    if (el) el.setAttribute("class", el.getAttribute("class").replace(/\bst-[a-z]+/, "st-" + status));
  };
  const took = (s) => (s == null ? "" : s < 60 ? s.toFixed(2) + "s" : Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s");

  function openPanel(key) {
    const run = document.getElementById("run");
    const panel = document.getElementById("panel");
    panel.hidden = false;
    panel.dataset.key = key;
    htmx.ajax("GET", `/runs/${encodeURIComponent(run.dataset.run)}/tasks/${encodeURIComponent(key)}`, { target: "#panel", swap: "innerHTML" });
  }

  function refreshCounts() {
    const counts = {};
    document.querySelectorAll("#task-table > tbody > tr > .status .badge").forEach((b) => {
      counts[b.textContent] = (counts[b.textContent] || 0) + 1;
    });
    document.getElementById("counts").innerHTML = "";
    for (const [status, n] of Object.entries(counts)) {
      const span = document.createElement("span");
      span.className = "count st-" + status;
      span.dataset.status = status;
      span.textContent = `${n} ${status}`;
      document.getElementById("counts").append(span, " ");
    }
  }

  function applyTask(t) {
    const node = byKey(".node", t.key);
    setStatus(node, t.status);
    if (node) node.querySelector("title").textContent = `${t.name} · ${t.status}` + (t.items_text ? ` · ${t.items_text}` : "");
    const counts = node && node.querySelector(".counts");
    if (counts && t.items) counts.textContent = `${t.items.completed}/${t.items.total}`;
    const row = document.querySelector(`#task-table tr[data-task="${CSS.escape(t.key)}"]`);
    if (row) {
      const badge = row.querySelector(":scope > .status .badge");
      badge.textContent = t.status;
      setStatus(badge, t.status);
      if (t.cached && !row.querySelector(".status .cached")) {
        const mark = document.createElement("span");
        mark.className = "cached";
        mark.textContent = " cached";
        badge.after(mark);
      }
      row.querySelector(":scope > .attempts").textContent = t.attempts || "";
      row.querySelector(":scope > .duration").textContent = took(t.duration_s);
      const detail = row.querySelector(":scope > .detail");
      const summary = detail.querySelector(":scope > details > summary");
      if (summary) {  // a for_each task: its items' counts, its item rows stay
        if (t.items_text) summary.textContent = t.items_text;
      } else detail.textContent = t.result_preview ?? t.error ?? "";
    }
  }

  // The open task panel's log: its lines from the store's server-sent events, appended as
  // they come; the stream survives the panel being re-rendered for the same task.
  let logEvents = null;
  function streamLogs(box) {
    if (logEvents) logEvents.close();
    const after = box.dataset.after;
    logEvents = new EventSource(box.dataset.logs + (after ? `&after=${encodeURIComponent(after)}` : ""));
    let pre = [...box.querySelectorAll("pre.logs")].pop() || null;
    let attempt = pre ? Number(pre.dataset.attempt) : null;
    logEvents.addEventListener("lines", (e) => {
      box.querySelector(".empty")?.remove();
      for (const l of JSON.parse(e.data)) {
        if (l.attempt !== attempt) {
          attempt = l.attempt;
          const head = document.createElement("p");
          head.className = "log-attempt";
          head.textContent = `attempt ${l.attempt}`;
          pre = document.createElement("pre");
          pre.className = "logs";
          pre.dataset.attempt = l.attempt;
          box.append(head, pre);
        }
        const line = document.createElement("div");
        line.className = `log-line log-${l.stream}`;
        const at = document.createElement("span");
        at.className = "at";
        at.textContent = new Date(l.at * 1000).toLocaleTimeString() + (l.level ? ` ${l.level}` : "");
        line.append(at, document.createTextNode(l.text));
        pre.append(line);
      }
    });
    logEvents.addEventListener("end", () => {
      logEvents.close();
      box.dataset.ended = "true";
      const empty = box.querySelector(".empty");
      if (empty) empty.textContent = "printed nothing.";
    });
  }

  function live(run) {
    const panel = document.getElementById("panel");
    let timelineDue = null;
    const refreshTimeline = () => {
      if (timelineDue) return;
      timelineDue = setTimeout(() => {
        timelineDue = null;
        htmx.ajax("GET", run.dataset.timeline, { target: "#timeline", swap: "innerHTML" });
      }, 1000);
    };
    const events = new EventSource(run.dataset.events);
    events.addEventListener("tasks", (e) => {
      const tasks = JSON.parse(e.data);
      tasks.forEach(applyTask);
      refreshCounts();
      refreshTimeline();
      if (!panel.hidden && tasks.some((t) => t.key === panel.dataset.key)) openPanel(panel.dataset.key);
    });
    events.addEventListener("run", (e) => {
      const r = JSON.parse(e.data);
      const badge = document.getElementById("run-status");
      badge.textContent = r.status;
      setStatus(badge, r.status);
      run.dataset.status = r.status;
      document.getElementById("run-duration").textContent = took(r.duration_s);
      const err = document.getElementById("run-error");
      err.hidden = !r.error;
      err.textContent = r.error || "";
      const finished = ["completed", "failed", "cancelled"].includes(r.status);
      const cancel = document.getElementById("cancel");
      const resume = document.getElementById("resume");
      if (cancel) cancel.hidden = finished;
      if (resume) resume.hidden = !finished || r.status === "completed";
    });
    events.addEventListener("end", () => {
      events.close(); // a finished run sends nothing more; do not reconnect
      refreshTimeline();
    });
    return events;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const run = document.getElementById("run");
    if (!run) return;
    let events = live(run);
    document.getElementById("graph").addEventListener("click", (e) => {
      const node = e.target.closest(".node");
      if (node) openPanel(node.dataset.key);
    });
    document.getElementById("graph").addEventListener("keydown", (e) => {
      const node = e.target.closest(".node");
      if (node && e.key === "Enter") openPanel(node.dataset.key);
    });
    document.getElementById("task-table").addEventListener("click", (e) => {
      const link = e.target.closest(".task-link");
      if (!link) return;
      e.preventDefault();
      openPanel(link.dataset.key);
    });
    let keptLog = null;
    document.body.addEventListener("htmx:beforeSwap", (e) => {
      if (e.detail.target.id !== "panel") return;
      const old = document.getElementById("task-panel");
      keptLog = old && old.dataset.key === e.detail.target.dataset.key ? document.getElementById("task-logs") : null;
    });
    document.body.addEventListener("htmx:afterSwap", (e) => {
      if (e.detail.target.id !== "panel") return;
      const box = document.getElementById("task-logs");
      if (!box) return;
      if (keptLog) box.replaceWith(keptLog);
      else streamLogs(box);
      keptLog = null;
    });
    document.getElementById("panel").addEventListener("click", (e) => {
      if (!e.target.closest("[data-close-panel]")) return;
      document.getElementById("panel").hidden = true;
      if (logEvents) logEvents.close();
    });
    document.querySelectorAll("[data-zoom]").forEach((b) =>
      b.addEventListener("click", () => {
        const svg = document.getElementById("graph-svg");
        svg.style.width = b.dataset.zoom === "fit" ? "100%" : "";
        svg.style.height = b.dataset.zoom === "fit" ? "auto" : "";
      }));
    document.querySelectorAll("[data-action]").forEach((b) =>
      b.addEventListener("click", async () => {
        const r = await fetch(b.dataset.action, { method: "POST", headers: { "X-Gleitzeit-Token": token() } });
        if (!r.ok) { alert((await r.json()).error); return; }
        if (b.id === "resume") { events.close(); events = live(run); b.hidden = true; }
      }));
  });
})();
