// tributary's console: a page served by the binary that reads the admin API with the
// operator's token. The token stays in this tab (sessionStorage); a link may carry it in
// the URL fragment (#token=…), which browsers never send to the server, and the page
// drops it from the address bar at once.
"use strict";

const POLL_MS = 2000;
let token = sessionStorage.getItem("tributary-token") || "";
let view = "streams";
let timer = null;
let player = null;

const $ = (id) => document.getElementById(id);

function takeFragmentToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem("tributary-token", token);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

class Refused extends Error {}

async function api(path, asText) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  if (r.status === 401) throw new Refused();
  if (!r.ok) throw new Error(path + ": " + r.status);
  return asText ? r.text() : r.json();
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function row(cells, onClick) {
  const tr = el("tr");
  for (const c of cells) {
    const td = el("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c;
    tr.appendChild(td);
  }
  if (onClick) { tr.className = "click"; tr.onclick = onClick; }
  return tr;
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  return s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
}

async function showStreams() {
  const keys = await api("/api/streams");
  const stats = await Promise.all(keys.map((k) => {
    const [app, ...rest] = k.split("/");
    return api(`/api/streams/${app}/${rest.join("/")}`).then((s) => [app, rest.join("/"), s]).catch(() => null);
  }));
  const body = $("stream-rows");
  body.replaceChildren();
  for (const x of stats.filter(Boolean).sort((a, b) => (a[0] + a[1]).localeCompare(b[0] + b[1]))) {
    const [app, stream, s] = x;
    const video = s.video_codec ? `${s.video_codec} ${s.width || "?"}×${s.height || "?"}` : "—";
    const players = Object.entries(s.players || {}).filter(([, n]) => n > 0).map(([p, n]) => `${p} ${n}`).join(", ") || "0";
    body.appendChild(row([app, stream, video, (s.measured_fps || 0).toFixed(1), Math.round(s.bitrate_kbps || 0),
      s.audio_codec || "—", players, duration(s.uptime_ms)], () => preview(app, stream)));
  }
  $("stream-count").textContent = `(${keys.length})`;
}

async function showMixes() {
  const tasks = await api("/api/mix");
  const body = $("mix-rows");
  body.replaceChildren();
  for (const t of tasks.sort((a, b) => a.task_id.localeCompare(b.task_id))) {
    const inputs = el("div");
    for (const i of t.inputs) {
      inputs.appendChild(el("div", `${i.source} ${i.status}`, i.status === "live" ? "live" : "lost"));
    }
    // A published output's target is its stream id; a pushed one's is a (redacted) URL.
    const outputs = t.outputs.map((o) => o.target).join(", ");
    const first = t.outputs.find((o) => !o.target.includes("://"));
    body.appendChild(row([String(t.app_id), t.task_id, `${t.fps_achieved.toFixed(1)} / ${t.fps_target}`,
      `${t.late_ticks} / ${t.skipped_ticks}`, inputs, outputs, duration(t.running_s * 1000)],
      first ? () => preview(String(t.app_id), first.target) : null));
  }
  $("mix-count").textContent = `(${tasks.length})`;
}

async function showMetrics() {
  const text = await api("/metrics", true);
  const filter = $("metric-filter").value.trim();
  const body = $("metric-rows");
  body.replaceChildren();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#") || (filter && !line.includes(filter))) continue;
    const at = line.lastIndexOf(" ");
    body.appendChild(row([line.slice(0, at), line.slice(at + 1)]));
  }
}

function preview(app, stream) {
  closePreview();
  $("preview").hidden = false;
  $("preview-name").textContent = `${app}/${stream}`;
  $("preview-error").hidden = true;
  if (!window.mpegts) {
    $("preview-error").textContent = "The preview player was not built into this binary (scripts/setup.sh installs it).";
    $("preview-error").hidden = false;
    return;
  }
  if (!mpegts.getFeatureList().mseLivePlayback) {
    $("preview-error").textContent = "This browser cannot play HTTP-FLV (no MediaSource).";
    $("preview-error").hidden = false;
    return;
  }
  player = mpegts.createPlayer({ type: "flv", isLive: true, url: `/${app}/${encodeURIComponent(stream)}.flv` });
  player.on(mpegts.Events.ERROR, (type, detail) => {
    $("preview-error").textContent = `Preview failed: ${type} ${detail} (with play tokens required, previews need a token).`;
    $("preview-error").hidden = false;
  });
  player.attachMediaElement($("preview-video"));
  player.load();
  player.play();
}

function closePreview() {
  if (player) { player.destroy(); player = null; }
  $("preview").hidden = true;
}

async function refresh() {
  try {
    if (view === "streams") await showStreams();
    else if (view === "mixes") await showMixes();
    else await showMetrics();
  } catch (e) {
    if (e instanceof Refused) { logout(true); return; }
    console.warn(e);
  }
}

function select(v) {
  view = v;
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("on", b.dataset.view === v);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== v;
  refresh();
}

function start() {
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("logout").hidden = false;
  select(view);
  clearInterval(timer);
  timer = setInterval(refresh, POLL_MS);
}

function logout(refused) {
  clearInterval(timer);
  closePreview();
  token = "";
  sessionStorage.removeItem("tributary-token");
  for (const id of ["stream-rows", "mix-rows", "metric-rows"]) $(id).replaceChildren();
  for (const s of document.querySelectorAll(".view")) s.hidden = true;
  $("tabs").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("refused").hidden = !refused;
}

$("login").onsubmit = (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("tributary-token", token);
  $("token").value = "";
  start();
};
$("logout").onclick = () => logout(false);
$("preview-close").onclick = closePreview;
$("metric-filter").oninput = () => view === "metrics" && refresh();
for (const b of document.querySelectorAll("nav button")) b.onclick = () => select(b.dataset.view);

takeFragmentToken();
if (token) start(); else logout(false);
