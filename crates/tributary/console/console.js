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

// Live charts: a few key series, sampled at each refresh of this view (the last 60).
const CHARTS = [
  { title: "live streams", metric: "tributary_live_streams" },
  { title: "players", metric: "tributary_live_players" },
  { title: "mix tasks", metric: "tributary_mix_tasks" },
  { title: "sent Mb/s", metric: "tributary_live_sent_bytes_total", rate: 8e-6 },
];
const HISTORY = 60;

// The sum of every series of `name` in Prometheus text.
function metricSum(text, name) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name + "{") || line.startsWith(name + " ")) {
      const v = parseFloat(line.slice(line.lastIndexOf(" ") + 1));
      if (Number.isFinite(v)) sum += v;
    }
  }
  return sum;
}

function chart(text) {
  const now = Date.now();
  const box = $("charts");
  if (!box.childElementCount) {
    for (const c of CHARTS) {
      c.points = [];
      const div = el("div", undefined, "chart");
      const title = el("div", c.title + " ");
      c.label = el("span", "…", "value");
      title.appendChild(c.label);
      c.canvas = el("canvas");
      c.canvas.width = 220;
      c.canvas.height = 50;
      div.append(title, c.canvas);
      box.appendChild(div);
    }
  }
  for (const c of CHARTS) {
    const raw = metricSum(text, c.metric);
    let v = raw;
    if (c.rate) {
      v = c.last ? ((raw - c.last.raw) / Math.max(0.001, (now - c.last.t) / 1000)) * c.rate : 0;
      c.last = { raw, t: now };
    }
    c.points.push(Math.max(0, v));
    if (c.points.length > HISTORY) c.points.shift();
    c.label.textContent = c.rate ? v.toFixed(2) : String(Math.round(v));
    const g = c.canvas.getContext("2d");
    const [w, h] = [c.canvas.width, c.canvas.height];
    const max = Math.max(1e-9, ...c.points);
    g.clearRect(0, 0, w, h);
    g.strokeStyle = "#4c8dff";
    g.lineWidth = 2;
    g.beginPath();
    c.points.forEach((p, i) => {
      const x = (i / (HISTORY - 1)) * w, y = h - 2 - (p / max) * (h - 4);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
}

async function showMetrics() {
  const text = await api("/metrics", true);
  chart(text);
  const filter = $("metric-filter").value.trim();
  const body = $("metric-rows");
  body.replaceChildren();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#") || (filter && !line.includes(filter))) continue;
    const at = line.lastIndexOf(" ");
    body.appendChild(row([line.slice(0, at), line.slice(at + 1)]));
  }
}

// Plays a stream's HTTP-FLV in the preview. A stream that is not live yet (a task just
// started, a publisher reconnecting) is tried again every second for a while.
const PREVIEW_TRIES = 15;

function preview(app, stream, attempt = 0) {
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
  const p = mpegts.createPlayer({ type: "flv", isLive: true, url: `/${app}/${encodeURIComponent(stream)}.flv` });
  player = p;
  p.on(mpegts.Events.ERROR, (type, detail) => {
    if (player !== p) return;
    if (attempt + 1 < PREVIEW_TRIES) {
      setTimeout(() => {
        if (player === p) preview(app, stream, attempt + 1);
      }, 1000);
      return;
    }
    $("preview-error").textContent = `Preview failed: ${type} ${detail} (with play tokens required, previews need a token).`;
    $("preview-error").hidden = false;
  });
  p.attachMediaElement($("preview-video"));
  p.load();
  p.play().catch(() => {});
}

function closePreview() {
  if (player) { player.destroy(); player = null; }
  $("preview").hidden = true;
}

async function refresh() {
  try {
    if (view === "streams") await showStreams();
    else if (view === "mixes") await showMixes();
    else if (view === "layout") await editor.refresh();
    else if (view === "bans") await showBans();
    else if (view === "rooms") await showRooms();
    else if (view === "callbacks") await showCallbacks();
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
  for (const id of ["stream-rows", "room-rows", "mix-rows", "metric-rows", "ban-rows", "cb-rows"]) $(id).replaceChildren();
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

// ---- Moderation and callbacks -------------------------------------------------------
// Forbid and resume are the ZEGO actions (ForbidRTCStream / ResumeRTCStream), signed as
// the app by /api/console: a forbid cuts the live publisher off and survives restarts.

// Fills an app selector once, starting on the first app that has live streams.
async function appChoices(select) {
  if (select.childElementCount) return;
  const [apps, keys] = await Promise.all([api("/api/console/apps").then((r) => r.apps), api("/api/streams")]);
  select.replaceChildren(...apps.map((a) => el("option", String(a))));
  const live = apps.find((a) => keys.some((k) => k.startsWith(a + "/")));
  if (live !== undefined) select.value = String(live);
}

async function consoleAction(app, action, body) {
  const r = await fetch(`/api/console/zego/${app}/${action}`, {
    method: "POST", headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify(body) });
  if (r.status === 401) throw new Refused();
  return r.json();
}

function say(id, answer, action) {
  $(id).textContent = answer.Code === 0 ? `${action}: done` : `${action} refused: ${answer.Code} ${answer.Message}`;
  $(id).className = answer.Code === 0 ? "live" : "error";
}

async function showBans() {
  await appChoices($("ban-app"));
  const app = $("ban-app").value;
  const list = (await api(`/api/bans/${app}`)).bans;
  const body = $("ban-rows");
  body.replaceChildren();
  for (const b of list) {
    const resume = el("button", "Resume");
    resume.onclick = async () => {
      say("ban-result", await consoleAction(app, "ResumeRTCStream", { StreamId: b.stream_id, Sequence: Date.now() }), "ResumeRTCStream");
      refresh();
    };
    body.appendChild(row([b.stream_id, new Date(b.since_ms).toLocaleString(), resume]));
  }
}

const ROLES = { 1: "host", 2: "audience", 4: "admin" };

async function showRooms() {
  await appChoices($("room-app"));
  const app = $("room-app").value;
  const list = (await api(`/api/rooms/${app}`)).rooms;
  const body = $("room-rows");
  body.replaceChildren();
  for (const r of list) {
    const streams = r.streams.map((s) => `${s.stream_id} (${s.user_id})`).join(", ") || "—";
    const users = r.users.map((u) => `${u.user_id} ${ROLES[u.role] || u.role}`).join(", ") || "—";
    body.appendChild(row([r.room_id, streams, users]));
  }
  $("room-count").textContent = `(${list.length})`;
}

async function showCallbacks() {
  const state = $("cb-state").value;
  const list = (await api(`/api/callbacks?state=${state}&limit=200`)).callbacks;
  const body = $("cb-rows");
  body.replaceChildren();
  for (const c of list) {
    body.appendChild(row([String(c.id), String(c.app_id), c.event, c.url, String(c.attempts),
      state === "pending" ? new Date(c.next_at_ms).toLocaleTimeString() : "—", c.last_error || ""]));
  }
}

$("ban-forbid").onclick = async () => {
  const stream = $("ban-stream").value.trim();
  if (!stream) return;
  try {
    say("ban-result", await consoleAction($("ban-app").value, "ForbidRTCStream", { StreamId: stream, Sequence: Date.now() }), "ForbidRTCStream");
    $("ban-stream").value = "";
    refresh();
  } catch (e) { if (e instanceof Refused) logout(true); else console.warn(e); }
};
$("ban-app").onchange = () => refresh();
$("room-app").onchange = () => refresh();
$("cb-state").onchange = () => refresh();
$("cb-retry").onclick = async () => {
  const r = await fetch("/api/callbacks/retry-failed", { method: "POST", headers: { Authorization: "Bearer " + token } });
  if (r.status === 401) { logout(true); return; }
  const answer = await r.json();
  $("cb-result").textContent = `requeued ${answer.requeued}`;
  refresh();
};

// ---- Layout editor ----------------------------------------------------------------
// Tiles are kept in output pixels; the canvas on screen is the output scaled to fit.
// Apply sends StartMix (a live update when the task runs) through /api/console, which
// signs it as the app; the preview then shows the new layout.
const SNAP = 8;       // output pixels: tiles snap to this grid, the canvas edges and each other's edges
const MIN_TILE = 32;  // output pixels

const editor = {
  tiles: [],          // {stream, left, top, right, bottom, layer, mode, volume, label, image}
  selected: null,
  streams: [],
  templates: {},      // Tencent MixStreamTemplateId → {inputs, canvas_background, boxes}, for the output size
  templatesFor: "",

  // The vendor's templates as presets, computed by the server from the Tencent dialect's
  // own table for this output size (so a preset is exactly what that template gives).
  async loadTemplates() {
    const [W, H] = this.size();
    if (this.templatesFor === `${W}x${H}`) return;
    const answer = await api(`/api/console/templates?width=${W}&height=${H}`);
    this.templates = {};
    const group = $("ed-templates");
    const chosen = $("ed-preset").value;
    group.replaceChildren();
    for (const t of answer.templates) {
      this.templates[t.id] = t;
      const o = el("option", `Tencent ${t.id} (${t.inputs - (t.canvas_background ? 1 : 0)} streams${t.canvas_background ? " on a canvas" : ""})`);
      o.value = "tc:" + t.id;
      group.appendChild(o);
    }
    $("ed-preset").value = chosen;
    this.templatesFor = `${W}x${H}`;
  },

  size() {
    const w = Math.max(64, Math.min(3840, parseInt($("ed-w").value, 10) || 640));
    const h = Math.max(64, Math.min(2160, parseInt($("ed-h").value, 10) || 360));
    return [w - (w % 2), h - (h % 2)];
  },
  scale() { return Math.min(1, 720 / this.size()[0]); },

  async refresh() {
    await appChoices($("ed-app"));
    await this.loadTemplates();
    const keys = await api("/api/streams");
    const app = $("ed-app").value;
    const out = $("ed-out").value.trim();
    const streams = keys.filter((k) => k.startsWith(app + "/")).map((k) => k.slice(app.length + 1))
      .filter((s) => s !== out).sort();
    if (streams.join("\n") !== this.streams.join("\n")) {
      this.streams = streams;
      const box = $("ed-streams");
      box.replaceChildren(el("span", "streams:", "muted"));
      for (const s of streams) {
        const label = el("label");
        const cb = el("input");
        cb.type = "checkbox";
        cb.dataset.stream = s;
        cb.checked = this.tiles.some((t) => t.stream === s);
        cb.onchange = () => this.toggle(s, cb.checked);
        label.append(cb, " " + s);
        box.appendChild(label);
      }
    }
    if (!$("ed-canvas").childElementCount) this.draw();
  },

  toggle(stream, on) {
    if (on) this.tiles.push({ stream, layer: 1, mode: 0, volume: 100, label: "", image: "" });
    else this.tiles = this.tiles.filter((t) => t.stream !== stream);
    this.preset();
  },

  // Places every tile by the chosen preset (the vendors' usual templates).
  preset() {
    const [W, H] = this.size();
    const n = this.tiles.length;
    const kind = $("ed-preset").value;
    const snap = (v) => Math.round(v / 2) * 2;
    const template = kind.startsWith("tc:") ? this.templates[kind.slice(3)] : null;
    if (template) {
      // Streams take the template's boxes in order (after its canvas, when it has one);
      // streams beyond its count keep their places.
      const boxes = template.boxes.slice(template.canvas_background ? 1 : 0);
      this.tiles.forEach((t, i) => {
        const b = boxes[i];
        if (!b) return;
        [t.left, t.top, t.right, t.bottom] = [b.x, b.y, b.x + b.width, b.y + b.height].map(snap);
        t.layer = b.layer;
      });
      this.draw();
      return;
    }
    this.tiles.forEach((t, i) => {
      let r;
      if (kind === "side") r = [i * W / n, 0, (i + 1) * W / n, H];
      else if (kind === "stack") r = [0, i * H / n, W, (i + 1) * H / n];
      else if (kind === "pip") r = i === 0 ? [0, 0, W, H]
        : [W - (W / 4) * (1 + ((i - 1) % 3)) - 16 * (1 + ((i - 1) % 3)), H - H / 4 - 16 - Math.floor((i - 1) / 3) * (H / 4 + 16),
           W - (W / 4) * ((i - 1) % 3) - 16 * (1 + ((i - 1) % 3)), H - 16 - Math.floor((i - 1) / 3) * (H / 4 + 16)];
      else {
        const cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols);
        const c = i % cols, rr = Math.floor(i / cols);
        r = [c * W / cols, rr * H / rows, (c + 1) * W / cols, (rr + 1) * H / rows];
      }
      [t.left, t.top, t.right, t.bottom] = r.map(snap);
      t.layer = kind === "pip" && i > 0 ? 2 : 1;
    });
    this.draw();
  },

  draw() {
    const [W, H] = this.size();
    const k = this.scale();
    const canvas = $("ed-canvas");
    canvas.style.width = W * k + "px";
    canvas.style.height = H * k + "px";
    canvas.replaceChildren();
    for (const t of [...this.tiles].sort((a, b) => a.layer - b.layer)) {
      const d = el("div", t.stream + (t.label ? ` “${t.label}”` : ""), "tile" + (t === this.selected ? " sel" : ""));
      d.dataset.stream = t.stream;
      Object.assign(d.style, { left: t.left * k + "px", top: t.top * k + "px",
        width: (t.right - t.left) * k + "px", height: (t.bottom - t.top) * k + "px" });
      const grip = el("div", undefined, "grip");
      d.appendChild(grip);
      d.onpointerdown = (e) => this.grab(e, t, e.target === grip);
      canvas.appendChild(d);
    }
    this.showSelected();
  },

  // Drag to move, drag the corner grip to resize; snapped to the grid and kept on the canvas.
  grab(e, t, resize) {
    e.preventDefault();
    this.selected = t;
    const [W, H] = this.size();
    const k = this.scale();
    const start = { x: e.clientX, y: e.clientY, l: t.left, tp: t.top, r: t.right, b: t.bottom };
    const snap = (v, max) => Math.max(0, Math.min(max, Math.round(v / SNAP) * SNAP));
    // The other tiles' edges attract an edge within SNAP output pixels (before the grid
    // does), so tiles line up with each other whatever their sizes.
    const others = this.tiles.filter((o) => o !== t);
    const xs = others.flatMap((o) => [o.left, o.right]), ys = others.flatMap((o) => [o.top, o.bottom]);
    const near = (v, edges) => edges.reduce((best, e) =>
      Math.abs(e - v) <= SNAP && (best === null || Math.abs(e - v) < Math.abs(best - v)) ? e : best, null);
    // Position `lo` of a span `size` long: one of its two edges sticks to another tile's, else the grid.
    const place = (lo, size, edges, max) => {
      const a = near(lo, edges), b = near(lo + size, edges);
      const stuck = a !== null && (b === null || Math.abs(a - lo) <= Math.abs(b - lo - size)) ? a
        : b !== null ? b - size : null;
      return stuck !== null ? Math.max(0, Math.min(max, stuck)) : snap(lo, max);
    };
    const move = (m) => {
      const dx = (m.clientX - start.x) / k, dy = (m.clientY - start.y) / k;
      if (resize) {
        const r = start.r + dx, b = start.b + dy;
        const rx = near(r, xs), by = near(b, ys);
        t.right = Math.max(t.left + MIN_TILE, rx !== null ? Math.min(W, rx) : snap(r, W));
        t.bottom = Math.max(t.top + MIN_TILE, by !== null ? Math.min(H, by) : snap(b, H));
      } else {
        const w = start.r - start.l, h = start.b - start.tp;
        t.left = place(start.l + dx, w, xs, W - w);
        t.top = place(start.tp + dy, h, ys, H - h);
        t.right = t.left + w;
        t.bottom = t.top + h;
      }
      this.draw();
    };
    const up = () => { window.removeEventListener("pointermove", move); window.removeEventListener("pointerup", up); };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
    this.draw();
  },

  showSelected() {
    const t = this.selected && this.tiles.includes(this.selected) ? this.selected : null;
    $("ed-tile").hidden = !t;
    if (!t) return;
    $("ed-tile-name").textContent = t.stream;
    $("ed-layer").value = t.layer;
    $("ed-mode").value = String(t.mode);
    $("ed-volume").value = t.volume;
    $("ed-label").value = t.label;
    $("ed-image").value = t.image;
    $("ed-rect").textContent = `${t.left},${t.top} → ${t.right},${t.bottom}`;
  },

  edit() {
    const t = this.selected;
    if (!t) return;
    t.layer = Math.max(0, Math.min(100, parseInt($("ed-layer").value, 10) || 0));
    t.mode = parseInt($("ed-mode").value, 10) || 0;
    t.volume = Math.max(0, Math.min(200, parseInt($("ed-volume").value, 10) || 0));
    t.label = $("ed-label").value;
    t.image = $("ed-image").value.trim();
    this.draw();
  },

  request() {
    const [W, H] = this.size();
    return {
      TaskId: $("ed-task").value.trim(), UserId: "console", Sequence: Date.now(),
      MixInput: this.tiles.map((t) => {
        const i = { StreamId: t.stream, RenderMode: t.mode, Volume: t.volume,
          RectInfo: { Left: t.left, Top: t.top, Right: t.right, Bottom: t.bottom, Layer: t.layer } };
        if (t.label) i.Label = { Text: t.label, Left: 8, Top: 8, Font: { FontType: 0, FontSize: 20 } };
        if (t.image) i.Image = { Url: t.image, DisplayMode: 2 };
        return i;
      }),
      MixOutput: [{ StreamId: $("ed-out").value.trim(), Width: W, Height: H,
        Fps: parseInt($("ed-fps").value, 10), VideoBitrate: (parseInt($("ed-kbps").value, 10) || 1000) * 1000,
        AudioCodec: 1 }],
    };
  },

  async send(action, body) {
    const answer = await consoleAction($("ed-app").value, action, body);
    say("ed-result", answer, action);
    return answer;
  },

  async apply() {
    if (!this.tiles.length) { $("ed-result").textContent = "Pick at least one stream."; return; }
    const answer = await this.send("StartMix", this.request());
    const out = $("ed-out").value.trim();
    if (answer.Code === 0 && $("preview-name").textContent !== `${$("ed-app").value}/${out}`) {
      preview($("ed-app").value, out);
    }
  },

  async stop() {
    const answer = await this.send("StopMix", { TaskId: $("ed-task").value.trim(), UserId: "console", Sequence: Date.now() });
    if (answer.Code === 0) closePreview();
  },
};

for (const id of ["ed-layer", "ed-mode", "ed-volume", "ed-label", "ed-image"]) $(id).oninput = () => editor.edit();
$("ed-preset").onchange = () => editor.preset();
$("ed-w").onchange = $("ed-h").onchange = () =>
  editor.loadTemplates().then(() => editor.preset()).catch((e) => e instanceof Refused ? logout(true) : console.warn(e));
$("ed-app").onchange = () => { editor.tiles = []; editor.streams = []; editor.refresh(); };
$("ed-apply").onclick = () => editor.apply().catch((e) => e instanceof Refused ? logout(true) : console.warn(e));
$("ed-stop").onclick = () => editor.stop().catch((e) => e instanceof Refused ? logout(true) : console.warn(e));

takeFragmentToken();
if (token) start(); else logout(false);
