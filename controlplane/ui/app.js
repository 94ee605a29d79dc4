// The lattice dashboard: hosts, applications, links from the API; events live from /v1/events.
// No framework: state comes in as JSON, the page is rebuilt from it with DOM calls (never innerHTML,
// so labels and messages can hold anything).
"use strict";

const PREFIX = "com.wasmcloud.lattice.";
const MAX_EVENTS = 200;
const REFRESHING = ["host_", "actor", "provider_", "linkdef_"];
const state = { token: sessionStorage.getItem("lattice-token") || "", events: [], hosts: [] };

function tokenFromHash() {
  const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (match) {
    state.token = decodeURIComponent(match[1]);
    sessionStorage.setItem("lattice-token", state.token);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function headers() {
  return state.token ? { authorization: `Bearer ${state.token}` } : {};
}

class AuthNeeded extends Error {}

async function api(path) {
  const response = await fetch(path, { headers: headers() });
  if (response.status === 401 || response.status === 403) throw new AuthNeeded(response.status);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// --- small DOM helpers ------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("data-") || key === "title" || key === "style") el.setAttribute(key, value);
    else el[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function replace(id, ...nodes) {
  document.getElementById(id).replaceChildren(...nodes);
}

function short(id) {
  return id && id.length > 14 ? `${id.slice(0, 10)}…${id.slice(-4)}` : id || "";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function bar(value, max) {
  const pct = max > 0 ? Math.min(100, Math.round((100 * value) / max)) : 0;
  return h("span", { class: "bar" }, h("span", { class: "fill", style: `width:${pct}%` }));
}

// --- hosts --------------------------------------------------------------------------------------------

function hostCard(host) {
  const labels = Object.entries(host.labels || {}).map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`));
  const actors = (host.actors || []).map((a) =>
    h("li", { "data-actor-id": a.id, title: a.id }, h("span", {}, a.name || short(a.id)), h("b", {}, `×${a.count}`)),
  );
  const providers = (host.providers || []).map((p) =>
    h("li", { title: p.id }, (p.contract_id || "").replace("wasmcloud:", ""), h("span", { class: "muted" }, ` (${p.link_name})`)),
  );
  const busy = host.in_flight || 0;
  return h(
    "article",
    { class: `card host${host.draining ? " draining" : ""}`, "data-host-id": host.id },
    h("header", {}, h("strong", { title: host.id }, short(host.id)), host.draining ? h("span", { class: "pill warn" }, "draining") : null),
    h("code", { class: "id" }, host.id),
    h("div", { class: "chips" }, labels),
    h(
      "dl",
      { class: "load" },
      h("dt", {}, "instances"), h("dd", {}, host.instances || 0),
      h("dt", {}, "in flight"), h("dd", {}, busy, " ", bar(busy, Math.max(host.instances || 0, 1))),
      h("dt", {}, "uptime"), h("dd", {}, duration(host.uptime_seconds)),
      h("dt", {}, "seen"), h("dd", {}, `${(host.last_seen_seconds_ago ?? 0).toFixed(1)}s ago`),
    ),
    actors.length ? h("div", {}, h("h3", {}, "actors"), h("ul", { class: "plain" }, actors)) : null,
    providers.length ? h("div", {}, h("h3", {}, "providers"), h("ul", { class: "plain" }, providers)) : null,
    host.metrics_url ? h("a", { href: host.metrics_url, class: "muted" }, "metrics") : null,
  );
}

function renderHosts(hosts) {
  state.hosts = hosts;
  replace("hosts-count", String(hosts.length));
  replace("hosts", ...(hosts.length ? hosts.map(hostCard) : [h("p", { class: "muted" }, "no live hosts")]));
}

// --- applications -------------------------------------------------------------------------------------

function componentRow(comp) {
  const done = comp.running >= comp.desired;
  const placements = (comp.placements || []).map((p) => h("span", { class: "chip", title: p.host_id }, `${short(p.host_id)} ×${p.count}`));
  return h(
    "tr",
    { "data-component": comp.name },
    h("td", {}, comp.name),
    h("td", { class: "muted" }, comp.type),
    h("td", { class: done ? "ok" : "warn" }, `${comp.running}/${comp.desired}`, " ", bar(comp.running, comp.desired)),
    h("td", {}, placements),
  );
}

function appBlock(app) {
  const status = app.status || {};
  return h(
    "article",
    { class: "card app", "data-app": app.name },
    h(
      "header",
      {},
      h("span", {}, h("strong", {}, app.name), h("span", { class: "muted" }, ` ${app.version || ""}`)),
      h("span", { class: `pill ${status.type}` }, status.type),
    ),
    status.message ? h("p", { class: status.type === "failed" ? "bad" : "muted" }, status.message) : null,
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, h("th", {}, "component"), h("th", {}, "type"), h("th", {}, "running/desired"), h("th", {}, "placements"))),
      h("tbody", {}, (status.components || []).map(componentRow)),
    ),
  );
}

function renderApps(apps) {
  replace("apps-count", String(apps.length));
  replace("apps", ...(apps.length ? apps.map(appBlock) : [h("p", { class: "muted" }, "no applications")]));
}

// --- links --------------------------------------------------------------------------------------------

function renderLinks(links) {
  replace("links-count", String(links.length));
  if (!links.length) return replace("links", h("p", { class: "muted" }, "no links"));
  const rows = links.map((l) =>
    h(
      "tr",
      {},
      h("td", { title: l.actor_id }, short(l.actor_id)),
      h("td", {}, l.contract_id),
      h("td", {}, l.link_name),
      h("td", { title: l.provider_id }, short(l.provider_id)),
      h("td", { class: "muted" }, Object.entries(l.values || {}).map(([k, v]) => `${k}=${v}`).join(", ")),
    ),
  );
  replace(
    "links",
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["actor", "contract", "link", "provider", "values"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows),
    ),
  );
}

// --- events -------------------------------------------------------------------------------------------

function summary(data) {
  const keys = ["public_key", "actor_id", "contract_id", "link_name", "image_ref", "operation", "error", "message", "trace_id"];
  const shown = (k) => (k === "public_key" || k === "actor_id" ? short(data[k]) : data[k]);
  return keys.filter((k) => data && data[k]).map((k) => `${k}=${shown(k)}`).join("  ");
}

function eventItem(event) {
  const name = (event.type || "").replace(PREFIX, "");
  const time = (event.time || "").slice(11, 19);
  const failed = /failed|stopped/.test(name);
  return h(
    "li",
    { class: failed ? "bad" : "", "data-event": name, "data-source": event.source },
    h("time", {}, time),
    h("span", { class: "type" }, name),
    h("span", { class: "source", title: event.source }, short(event.source)),
    h("span", { class: "muted" }, summary(event.data)),
  );
}

function renderEvents() {
  const showBeats = document.getElementById("show-heartbeats").checked;
  const shown = state.events.filter((e) => showBeats || !e.type.endsWith("host_heartbeat"));
  replace("events", ...shown.map(eventItem));
}

function onEvent(event) {
  state.events.unshift(event);
  state.events.length = Math.min(state.events.length, MAX_EVENTS);
  const name = (event.type || "").replace(PREFIX, "");
  if (name === "host_heartbeat") return; // the periodic refresh shows load; don't redraw the list each beat
  renderEvents();
  if (REFRESHING.some((p) => name.startsWith(p))) scheduleRefresh();
}

function setStream(text, cls) {
  const el = document.getElementById("stream");
  el.textContent = `events: ${text}`;
  el.className = `pill ${cls}`;
}

async function follow() {
  // fetch, not EventSource: it can send the bearer token
  let delay = 500;
  let first = true;
  for (;;) {
    try {
      const response = await fetch(`/v1/events${first ? "?recent=true" : ""}`, { headers: headers() });
      if (response.status === 401 || response.status === 403) throw new AuthNeeded(response.status);
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      first = false;
      setStream("live", "ok");
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch (err) {
      if (err instanceof AuthNeeded) return askToken();
    }
    setStream("reconnecting", "warn");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 5000);
  }
}

// --- refresh loop -------------------------------------------------------------------------------------

let pending = null;
function scheduleRefresh() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    refresh();
  }, 150);
}

async function refresh() {
  try {
    const [health, hosts, apps, links] = await Promise.all([
      api("/healthz"),
      api("/v1/hosts"),
      api("/v1/applications"),
      api("/v1/links"),
    ]);
    renderHosts(hosts);
    renderApps(apps);
    renderLinks(links);
    const actors = hosts.reduce((n, host) => n + (host.instances || 0), 0);
    replace("summary", `${hosts.length} hosts · ${apps.length} apps · ${actors} actor instances`);
    replace("plane", `control plane ${short(health.id)}${health.leader ? " (leader)" : ""}${health.nats ? "" : " · NATS down"}`);
    document.body.dataset.loaded = "true";
  } catch (err) {
    if (err instanceof AuthNeeded) return askToken();
    replace("summary", `cannot reach the control plane: ${err.message}`);
  }
}

function askToken(message) {
  const form = document.getElementById("auth");
  form.hidden = false;
  replace("auth-error", message || (state.token ? "that token was refused" : ""));
}

function start() {
  tokenFromHash();
  document.getElementById("auth").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = document.getElementById("token").value.trim();
    sessionStorage.setItem("lattice-token", state.token);
    document.getElementById("auth").hidden = true;
    refresh();
    follow();
  });
  document.getElementById("show-heartbeats").addEventListener("change", renderEvents);
  refresh();
  follow();
  setInterval(refresh, 2000);
}

start();
