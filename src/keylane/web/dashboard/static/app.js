/* keylane live dashboard.
   Data: GET /v1/overview once (the series), then GET /v1/stream (SSE: stats every second,
   decisions and deliveries as they happen). The search box opens GET /v1/timeline?key=, kept
   live by a second stream filtered to that key. Every value is written with textContent. */
"use strict";

(function () {
  const COLORS = ["#38bdf8", "#a78bfa", "#f472b6", "#fbbf24", "#34d399", "#fb923c",
    "#60a5fa", "#f87171"];
  const SLOTS = 65536;
  const HISTORY = 300;
  const FEED = 16;

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null, stream: null, series: [], last: null, feed: [], dropped: 0,
    timelineKey: null, timelineStream: null, timelineTimer: null,
  };

  /* ---------------------------------------------------------------- helpers */

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "onclick") node.addEventListener("click", v);
      else if (k === "style") node.style.cssText = v;  // CSSOM: allowed by the page's CSP
      else node.setAttribute(k, String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(id, value) { $(id).textContent = value; }

  function fmtInt(n) { return n == null ? "–" : Number(n).toLocaleString("en-US"); }
  function fmtRate(n) { return n == null ? "–" : n >= 100 ? n.toFixed(0) : n.toFixed(1); }
  function fmtMs(seconds) {
    if (seconds == null) return "–";
    const ms = seconds * 1000;
    return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
  }
  function fmtAge(seconds) {
    if (seconds == null) return "–";
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }
  function fmtClock(epoch) {
    return new Date(epoch * 1000).toLocaleTimeString("en-GB", { hour12: false });
  }
  function fmtEngine(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const day = d.toLocaleDateString("en-US", { weekday: "short", timeZone: "UTC" });
    const time = d.toLocaleTimeString("en-GB", { hour12: false, timeZone: "UTC" });
    return `${day} ${time} UTC`;
  }
  function badge(text, kind) { return h("span", { class: `badge ${kind || text}` }, text); }
  function keyLink(key) {
    return h("a", { class: "key", href: "#", title: "open the timeline",
      onclick: (e) => { e.preventDefault(); openTimeline(key); } }, key);
  }
  function sum(obj) { return Object.values(obj || {}).reduce((a, b) => a + b, 0); }

  function fillTable(id, rows, empty) {
    const body = $(id).tBodies[0];
    const cols = $(id).tHead.rows[0] ? $(id).tHead.rows[0].cells.length : 1;
    body.replaceChildren(...(rows.length ? rows
      : [h("tr", { class: "none" }, h("td", { colspan: cols }, empty || "none"))]));
  }

  function authHeaders() { return { Authorization: `Bearer ${state.token}` }; }

  async function api(path) {
    const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) { askToken(body.reason || "the token was refused"); }
    if (!response.ok) {
      const err = new Error(body.reason || `HTTP ${response.status}`);
      err.status = response.status;
      throw err;
    }
    return body;
  }

  function setStatus(kind, text) {
    const node = $("status");
    node.dataset.state = kind;
    node.textContent = text || kind;
  }

  /* ---------------------------------------------------------------- token */

  function readToken() {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
    const fromQuery = new URLSearchParams(location.search).get("token");
    const token = fromHash || fromQuery;
    if (token) {
      sessionStorage.setItem("keylane-token", token);
      history.replaceState(null, "", location.pathname);  // keep it out of the address bar
      return token;
    }
    return sessionStorage.getItem("keylane-token");
  }

  function askToken(reason) {
    setStatus("unauthorized", "no valid token");
    $("token-box").hidden = false;
    if (reason) setText("token-reason", reason);
  }

  /* ---------------------------------------------------------------- the overview */

  function addPoint(point) {
    if (!point) return;
    const last = state.series[state.series.length - 1];
    if (last && point.time <= last.time) return;
    state.series.push(point);
    if (state.series.length > HISTORY) state.series.shift();
  }

  function drawCharts() {
    const s = state.series;
    const times = s.map((p) => p.time);
    KeylaneChart.lineChart($("chart-throughput"), {
      times,
      series: [
        { name: "decisions/s", color: COLORS[0], fill: true,
          values: s.map((p) => p.decided_per_second) },
        { name: "delivered/s", color: "#22c55e", values: s.map((p) => p.delivered_per_second) },
      ],
      format: (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1)),
    });
    KeylaneChart.lineChart($("chart-latency"), {
      times,
      series: [
        { name: "p50", color: COLORS[1], values: s.map((p) => ms(p.decision_p50_seconds)) },
        { name: "p99", color: COLORS[2], values: s.map((p) => ms(p.decision_p99_seconds)) },
      ],
      format: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)),
    });
  }
  function ms(seconds) { return seconds == null ? null : seconds * 1000; }

  function renderKpis(o) {
    const point = state.series[state.series.length - 1] || {};
    const decisions = o.decisions || {};
    const relay = o.relay || {};
    const lanes = o.lanes || {};
    setText("kpi-decided", fmtInt((decisions.ok || 0) + (decisions.dedupe || 0)));
    setText("kpi-decided-rate", fmtRate(point.decided_per_second));
    setText("kpi-delivered", fmtInt(relay.sent || 0));
    setText("kpi-delivered-rate", fmtRate(point.delivered_per_second));
    setText("kpi-p50", fmtMs(point.decision_p50_seconds));
    setText("kpi-p99", fmtMs(point.decision_p99_seconds));
    setText("kpi-inflight", fmtInt(lanes.in_flight));
    setText("kpi-buffered", fmtInt(lanes.buffered));
    const stalled = (lanes.stalled_keys || []).length;
    setText("kpi-stalled", fmtInt(stalled));
    $("kpi-stalled").parentNode.classList.toggle("alert", stalled > 0);
    setText("kpi-stall-threshold", o.stall_threshold_seconds ?? "–");
    setText("kpi-outbox", o.outbox ? fmtInt(o.outbox.pending) : "–");
    setText("kpi-outbox-age", o.outbox ? fmtAge(o.outbox.oldest_pending_age_seconds) : "–");
    const dead = (o.dead_letters || {}).count || 0;
    setText("kpi-dead", fmtInt(dead));
    $("kpi-dead").parentNode.classList.toggle("alert", dead > 0);
    setText("kpi-parked", fmtInt((lanes.parked_keys || []).length));
    setText("kpi-timers", fmtInt(o.timers_armed));
    setText("kpi-timers-fired", fmtInt(o.timers_fired));
    setText("engine-time", fmtEngine(o.engine_time));
    setText("worker", o.worker || "–");
    setText("updated", fmtClock(o.time));
  }

  function renderConsumers(o) {
    const view = o.consumers;
    const lanes = (o.lanes || {}).by_consumer || {};
    if (!view) {
      fillTable("consumers", [], (o.sample_errors || []).join("; ") || "no broker view yet");
      return;
    }
    setText("consumers-source", `${view.subscription} · ${view.source} · ${view.slot_function}`);
    KeylaneChart.hashRing($("ring"), view.consumers, COLORS, SLOTS);
    fillTable("consumers", view.consumers.map((c, i) => {
      const own = lanes[c.name];
      const draining = c.draining.length
        ? c.draining.slice(0, 6).map((d) => `${d.slot} (${d.unacked} unacked)`).join(", ")
          + (c.draining.length > 6 ? ` … +${c.draining.length - 6}` : "")
        : "none";
      return h("tr", {},
        h("td", {}, h("span", { class: "swatch", style: `background:${COLORS[i % COLORS.length]}` }),
          c.name),
        h("td", { class: "num" }, fmtInt(c.range_count)),
        h("td", { class: "num" }, fmtInt(c.slots)),
        h("td", { class: "num" }, `${((100 * c.slots) / 65535).toFixed(1)}%`),
        h("td", { class: "num" }, fmtInt(c.unacked)),
        h("td", { class: "num" }, own ? fmtInt(own.in_flight) : "other process"),
        h("td", {}, draining));
    }), "no consumers");
  }

  function renderLanes(o) {
    const lanes = o.lanes || {};
    fillTable("inflight", (lanes.in_flight_keys || []).slice(0, 8).map((k) =>
      h("tr", {}, h("td", {}, keyLink(k.key)), h("td", { class: "num" }, fmtAge(k.seconds)),
        h("td", { class: "num" }, fmtInt(k.queued)))), "no key in flight");
    fillTable("stalled", (lanes.stalled_keys || []).slice(0, 8).map((k) =>
      h("tr", {}, h("td", {}, keyLink(k.key)), h("td", { class: "num" }, fmtAge(k.seconds)))),
    "no stalled key");
    fillTable("queues", (lanes.deepest_queues || []).filter((q) => q.queued > 1).slice(0, 5)
      .map((q) => h("tr", {}, h("td", {}, keyLink(q.key)),
        h("td", { class: "num" }, fmtInt(q.queued)))), "no queue behind a key");
  }

  function stageTable(id, stage, empty) {
    const table = $(id);
    const channels = Object.keys(stage || {}).sort();
    const outcomes = [...new Set(channels.flatMap((c) => Object.keys(stage[c])))].sort();
    table.tHead.replaceChildren(h("tr", {}, h("th", {}, "outcome"),
      channels.map((c) => h("th", { class: "num" }, c))));
    fillTable(id, outcomes.map((name) => h("tr", {}, h("td", {}, badge(name, outcomeKind(name))),
      channels.map((c) => h("td", { class: "num" }, fmtInt(stage[c][name] || 0))))), empty);
  }
  function outcomeKind(name) {
    if (name === "sent" || name === "planned" || name === "ok") return "sent";
    if (name.startsWith("defer") || name === "retry" || name === "dedupe") return "deferred";
    return "skipped";
  }

  function renderOutbox(o) {
    const outbox = o.outbox;
    const chips = [];
    if (outbox) {
      chips.push(h("span", { class: "chip" }, "pending", h("b", {}, fmtInt(outbox.pending))));
      chips.push(h("span", { class: "chip" }, "dispatching",
        h("b", {}, fmtInt(outbox.dispatching))));
      for (const [status, n] of Object.entries(outbox.by_status || {})) {
        if (n && !["pending", "dispatching"].includes(status)) {
          chips.push(h("span", { class: "chip" }, status, h("b", {}, fmtInt(n))));
        }
      }
    }
    $("outbox").replaceChildren(...chips);
    stageTable("sends", (o.sends || {}).dispatch, "nothing dispatched yet");
    stageTable("planned", (o.sends || {}).decision, "no send decided yet");
  }

  function renderDead(o) {
    const dead = o.dead_letters || {};
    fillTable("poison", (dead.poison || []).slice(-6).reverse().map((e) => h("tr", {},
      h("td", {}, keyLink(e.key)), h("td", { class: "mono" }, e.event_id || e.message_id),
      h("td", {}, e.detail))), `${fmtInt(dead.count || 0)} dead-lettered; no poison event`);
    fillTable("parked", ((o.lanes || {}).parked_keys || []).slice(0, 6).map((p) =>
      h("tr", {}, h("td", {}, keyLink(p.key)), h("td", {}, p.error))), "no parked key");
  }

  function renderDeliveries(o) {
    fillTable("deliveries", (o.recent_deliveries || []).slice(0, 10).map((d) => h("tr", {},
      h("td", { class: "mono" }, fmtClock(d.wall_time)), h("td", {}, keyLink(d.key)),
      h("td", {}, d.channel), h("td", {}, badge(d.outcome, outcomeKind(d.outcome))))),
    "no delivery yet");
  }

  function bars(id, entries, warn) {
    const max = Math.max(1, ...entries.map(([, n]) => n));
    $(id).replaceChildren(...(entries.length ? entries.flatMap(([name, n]) => [
      h("span", { class: "name", title: name }, name),
      h("span", {}, h("div", { class: `bar${warn ? " warn" : ""}`,
        style: `width:${Math.max(1, (100 * n) / max).toFixed(1)}%` })),
      h("span", { class: "n" }, fmtInt(n))]) : [h("span", { class: "muted" }, "none yet")]));
  }

  function renderDecisions(o) {
    const chips = Object.entries(o.decisions || {}).sort().map(([name, n]) =>
      h("span", { class: "chip" }, badge(name, name), h("b", {}, fmtInt(n))));
    $("outcomes").replaceChildren(...chips);
    bars("events", Object.entries(o.events || {}).sort((a, b) => b[1] - a[1]));
    bars("reasons", Object.entries(o.reasons || {})
      .filter(([c]) => c.startsWith("skipped_") || c.startsWith("deferred_")
        || c === "template_error")
      .sort((a, b) => b[1] - a[1]).slice(0, 8), true);
  }

  function renderOverview(o) {
    state.last = o;
    renderKpis(o);
    drawCharts();
    renderConsumers(o);
    renderLanes(o);
    renderOutbox(o);
    renderDead(o);
    renderDeliveries(o);
    renderDecisions(o);
  }

  /* ---------------------------------------------------------------- the live feed */

  function pushFeed(entry) {
    state.feed.unshift(entry);
    if (state.feed.length > FEED) state.feed.length = FEED;
  }

  function renderFeed() {
    $("feed").replaceChildren(...state.feed.map((e) => {
      if (e.kind === "delivery") {
        return h("li", {}, badge(e.outcome, outcomeKind(e.outcome)), keyLink(e.key),
          h("span", { class: "why" }, `${e.channel} ${e.idempotency_key}`));
      }
      const why = (e.reasons || []).map((r) => r.code).join(", ");
      return h("li", {}, badge(e.outcome, e.outcome), keyLink(e.key),
        h("span", { class: "mono" }, e.event_type || "?"), h("span", { class: "why" }, why));
    }));
    setText("feed-dropped", state.dropped ? `${fmtInt(state.dropped)} not shown` : "");
  }

  /* ---------------------------------------------------------------- streams */

  function connect() {
    if (state.stream) state.stream.close();
    const source = new EventSource(`/v1/stream?token=${encodeURIComponent(state.token)}`);
    state.stream = source;
    source.addEventListener("hello", () => setStatus("live"));
    source.addEventListener("stats", (m) => {
      const data = JSON.parse(m.data);
      addPoint(data.point);
      renderOverview(data);
      setStatus("live");
    });
    let pending = false;
    const feedEntry = (m) => {
      pushFeed(JSON.parse(m.data));
      if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; renderFeed(); }); }
    };
    source.addEventListener("decision", feedEntry);
    source.addEventListener("delivery", feedEntry);
    source.addEventListener("dropped", (m) => { state.dropped += JSON.parse(m.data).count; });
    source.onerror = () => {
      const when = state.last ? ` · last update ${fmtClock(state.last.time)}` : "";
      setStatus(source.readyState === EventSource.CLOSED ? "ended" : "reconnecting",
        (source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting") + when);
    };
  }

  async function start() {
    $("token-box").hidden = true;
    setStatus("connecting");
    try {
      const o = await api("/v1/overview");
      state.series = (o.series || []).slice(-HISTORY);
      renderOverview(o);
      const recent = await api(`/v1/decisions?limit=${FEED}`);
      for (const entry of recent.decisions) pushFeed(entry);
      renderFeed();
    } catch (err) {
      if (err.status === 401) return;
      setStatus("reconnecting", `overview: ${err.message}`);
    }
    connect();
  }

  /* ---------------------------------------------------------------- the timeline */

  function sendRow(send) {
    const status = send.status || (send.delivered ? "sent" : "unknown");
    const label = send.delivered ? "delivered" : status;
    const trail = (send.deliveries || []).map((d) => `#${d.attempt} ${d.outcome}`).join(" → ");
    const ledger = send.ledger || send;
    return h("div", { class: "send", "data-delivered": send.delivered ? "true" : "false" },
      badge(label, send.delivered ? "delivered" : status),
      h("strong", {}, (send.channel || "").toUpperCase()),
      h("span", {}, `${send.journey || "?"} / ${send.step || "?"}`),
      send.to ? h("span", { class: "mono" }, `to ${send.to}`) : null,
      send.not_before ? h("span", { class: "muted" }, `not before ${fmtEngine(send.not_before)}`) : null,
      ledger.finished_at ? h("span", { class: "muted" }, `finished ${fmtEngine(ledger.finished_at)}`) : null,
      ledger.detail ? h("span", { class: "muted" }, ledger.detail) : null,
      trail ? h("span", { class: "trail" }, trail) : null);
  }

  function eventBlock(ev) {
    const reasons = (ev.reasons || []).map((r) => h("li", {},
      h("span", { class: "code" }, r.code),
      r.journey ? ` · ${r.journey}${r.step ? ` / ${r.step}` : ""}` : "",
      r.detail ? h("span", { class: "muted" }, ` — ${r.detail}`) : ""));
    const retries = ev.attempts.length > 1
      ? h("span", { class: "muted" }, ev.attempts.map((a) => `#${a.attempt} ${a.outcome}`).join(", "))
      : null;
    return h("div", { class: "event", "data-event-id": ev.event_id || "" },
      h("div", { class: "when" }, fmtEngine(ev.decided_at), h("br"), `real ${fmtClock(ev.wall_time)}`),
      h("div", {},
        h("div", { class: "head" }, h("span", { class: "type" }, ev.event_type || "unparsed"),
          badge(ev.outcome, ev.outcome), h("span", { class: "mono muted" }, ev.event_id || ev.message_id),
          h("span", { class: "muted" }, `${ev.consumer} · ${fmtMs(ev.duration_seconds)} ms`
            + (ev.version ? ` · v${ev.version}` : "")), retries),
        reasons.length ? h("ul", { class: "reasons" }, reasons) : null,
        ev.detail ? h("div", { class: "muted" }, ev.detail) : null,
        ev.sends.length ? h("div", { class: "sends" }, ev.sends.map(sendRow)) : null));
  }

  function renderTimeline(t) {
    setText("timeline-key", t.key);
    const p = t.profile || {};
    const yesNo = (v) => (v ? "yes" : "no");
    $("timeline-profile").replaceChildren(...[
      h("span", { class: "chip" }, t.exists ? `state v${t.version}` : "no state stored"),
      t.profile ? h("span", { class: "chip" }, "SMS consent", h("b", {}, yesNo(p.sms_consent))) : null,
      t.profile ? h("span", { class: "chip" }, "email consent", h("b", {}, yesNo(p.email_consent))) : null,
      t.profile ? h("span", { class: "chip" }, "opted out", h("b", {}, yesNo(p.opted_out))) : null,
      p.timezone ? h("span", { class: "chip" }, p.timezone) : null,
      p.phone ? h("span", { class: "chip mono" }, p.phone) : null,
      p.email ? h("span", { class: "chip mono" }, p.email) : null,
      h("span", { class: "chip" }, "delivered", h("b", {}, fmtInt(t.delivered))),
      h("span", { class: "chip" }, "timers armed", h("b", {}, fmtInt(t.timers.length))),
      ...t.timers.slice(0, 4).map((tm) => h("span", { class: "chip mono" },
        `${tm.timer_id.split(":")[0]} @ ${fmtEngine(tm.due_at)}`))].filter(Boolean));
    const events = t.events.slice().reverse().map(eventBlock);
    const earlier = t.earlier_sends.length
      ? [h("h3", {}, "Earlier sends (from the ledger)"), h("div", { class: "sends" },
        t.earlier_sends.map(sendRow))]
      : [];
    $("timeline-body").replaceChildren(...(events.length ? events
      : [h("div", { class: "empty-note" }, "no decision of this subscriber in this process yet")]),
    ...earlier, h("div", { class: "muted", style: "margin-top:8px" }, t.scope));
  }

  async function loadTimeline() {
    const key = state.timelineKey;
    if (!key) return;
    try {
      const t = await api(`/v1/timeline?key=${encodeURIComponent(key)}`);
      if (key === state.timelineKey) renderTimeline(t);
    } catch (err) {
      $("timeline-body").replaceChildren(h("div", { class: "empty-note" }, err.message));
    }
  }

  function openTimeline(key) {
    key = key.trim();
    if (!key) return;
    $("search-input").value = key;
    state.timelineKey = key;
    $("timeline").hidden = false;
    setText("timeline-key", key);
    $("timeline-profile").replaceChildren();
    $("timeline-body").replaceChildren(h("div", { class: "empty-note" }, "loading…"));
    if (state.timelineStream) state.timelineStream.close();
    const url = `/v1/stream?stats=0&key=${encodeURIComponent(key)}&token=${encodeURIComponent(state.token)}`;
    const source = new EventSource(url);
    state.timelineStream = source;
    const refresh = () => {
      clearTimeout(state.timelineTimer);
      state.timelineTimer = setTimeout(loadTimeline, 250);
    };
    source.addEventListener("hello", () => setText("timeline-live", "● live"));
    source.addEventListener("decision", refresh);
    source.addEventListener("delivery", refresh);
    source.onerror = () => setText("timeline-live", "");
    loadTimeline();
    $("timeline").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function closeTimeline() {
    if (state.timelineStream) state.timelineStream.close();
    state.timelineStream = null;
    state.timelineKey = null;
    $("timeline").hidden = true;
  }

  let suggestTimer = null;
  function suggest() {
    clearTimeout(suggestTimer);
    const text = $("search-input").value.trim();
    if (text.length < 2 || !state.token) return;
    suggestTimer = setTimeout(async () => {
      try {
        const found = await api(`/v1/search?limit=12&q=${encodeURIComponent(text)}`);
        $("search-keys").replaceChildren(...found.keys.map((k) => h("option", { value: k })));
      } catch (err) { /* suggestions are optional */ }
    }, 200);
  }

  /* ---------------------------------------------------------------- wiring */

  document.addEventListener("DOMContentLoaded", () => {
    $("search").addEventListener("submit", (e) => {
      e.preventDefault();
      openTimeline($("search-input").value);
    });
    $("search-input").addEventListener("input", suggest);
    $("timeline-close").addEventListener("click", closeTimeline);
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.token = $("token-input").value.trim();
      sessionStorage.setItem("keylane-token", state.token);
      start();
    });
    window.addEventListener("resize", () => { if (state.last) renderOverview(state.last); });
    state.token = readToken();
    if (!state.token) { askToken(); return; }
    start();
  });
})();
