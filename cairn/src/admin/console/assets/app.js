// Cairn console: a small single-page app over the admin port's /console/api. No build step,
// no external assets. Routes: #/buckets, #/b/<bucket>/<prefix>, #/perm/<bucket> (permissions.js),
// #/dashboard and #/keys (keys.js), the last two for the root key only.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const PART_SIZE = 8 * 1024 * 1024;
const PARALLEL_PARTS = 3;
let me = null;
let refreshTimer = null;
let lastRequests = null;

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = Number(n);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${u[i]}`;
}
function when(ms) {
  if (!ms) return "–";
  return new Date(ms).toLocaleString();
}
function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body, opts = {}) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof ArrayBuffer) init.body = body;
    else { init.body = JSON.stringify(body); init.headers["content-type"] = "application/json"; }
  }
  Object.assign(init.headers, opts.headers || {});
  let resp;
  try { resp = await fetch(path, init); }
  catch (e) { throw new ApiError(0, "Network", "The server cannot be reached. Check that cairn is running, then retry."); }
  let data = null;
  try { data = await resp.json(); } catch (_) { /* not JSON */ }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data && data.error || "Error",
      data && data.message || `The server answered ${resp.status}.`);
    if (resp.status === 401 && !opts.noRedirect) showLogin(err.message);
    throw err;
  }
  return data;
}

function banner(msg, kind = "error") {
  const b = $("#banner");
  if (!msg) { b.classList.add("hidden"); return; }
  b.className = `banner ${kind === "info" ? "info" : ""}`;
  b.textContent = msg;
  b.setAttribute("data-kind", kind);
}

function showLogin(message) {
  stopRefresh();
  me = null;
  $("#app").classList.add("hidden");
  $("#login").classList.remove("hidden");
  const err = $("#login-error");
  if (message) { err.textContent = message; err.classList.remove("hidden"); }
  else err.classList.add("hidden");
  $("#login-ak").focus();
}

function showApp() {
  $("#login").classList.add("hidden");
  $("#app").classList.remove("hidden");
  $("#who").textContent = me.access_key + (me.root ? " (root)" : "");
  // The cluster view is the root key's only (the API answers 403 to other keys).
  $("#nav-dashboard").classList.toggle("hidden", !me.root);
  $("#nav-keys").classList.toggle("hidden", !me.root);
  route();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const btn = $("#login-submit");
  btn.disabled = true; btn.textContent = "Signing in…";
  try {
    me = await api("POST", "/console/api/login",
      { access_key: $("#login-ak").value.trim(), secret_key: $("#login-sk").value }, { noRedirect: true });
    $("#login-sk").value = "";
    if (!location.hash || location.hash === "#/") location.hash = "#/buckets";
    showApp();
  } catch (e) {
    const err = $("#login-error");
    err.textContent = e.message; err.classList.remove("hidden");
  } finally { btn.disabled = false; btn.textContent = "Sign in"; }
});

$("#logout").addEventListener("click", async () => {
  try { await api("POST", "/console/api/logout"); } catch (_) { /* ignore */ }
  location.hash = "#/buckets";
  showLogin("You have signed out.");
});

function openModal(title, body) {
  $("#modal-title").textContent = title;
  const b = $("#modal-body"); b.replaceChildren(body);
  $("#modal").classList.remove("hidden");
}
function closeModal() { $("#modal").classList.add("hidden"); }
$("#modal-close").addEventListener("click", closeModal);
$("#modal").addEventListener("click", (e) => { if (e.target.id === "modal") closeModal(); });

function stopRefresh() { if (refreshTimer) { clearInterval(refreshTimer); refreshTimer = null; } }

function setView(...kids) { $("#view").replaceChildren(...kids); }

function route() {
  if (!me) return;
  stopRefresh();
  banner(null);
  const hash = location.hash || "#/buckets";
  for (const a of document.querySelectorAll(".topbar nav a")) a.classList.remove("active");
  if (hash.startsWith("#/dashboard")) {
    if (me.root) { $("#nav-dashboard").classList.add("active"); return dashboard(); }
    history.replaceState(null, "", "#/buckets");
    banner("The cluster view is only for the root key.", "info");
  }
  if (hash.startsWith("#/keys")) {
    if (me.root) { $("#nav-keys").classList.add("active"); return keysPage(); }
    history.replaceState(null, "", "#/buckets");
    banner("The keys page is only for the root key.", "info");
  }
  $("#nav-buckets").classList.add("active");
  const perm = hash.match(/^#\/perm\/([^/]+)$/);
  if (perm) return permissions(decodeURIComponent(perm[1]));
  const m = hash.match(/^#\/b\/([^/]+)\/?(.*)$/);
  if (m) return browse(decodeURIComponent(m[1]), decodeURIComponent(m[2] || ""));
  return buckets();
}
window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- buckets

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
function bucketNameProblem(name) {
  if (name.length < 3 || name.length > 63) return "Use 3 to 63 characters.";
  if (!/^[a-z0-9.-]+$/.test(name)) return "Use only lowercase letters, digits, dots and hyphens.";
  if (!BUCKET_RE.test(name)) return "Start and end with a letter or a digit.";
  if (/\.\./.test(name) || /^\d+\.\d+\.\d+\.\d+$/.test(name)) return "No two dots in a row, and not an IP address.";
  return null;
}

async function buckets() {
  const nameInput = h("input", { id: "new-bucket", placeholder: "new-bucket-name", "aria-label": "New bucket name" });
  const hint = h("span", { class: "small muted", id: "bucket-hint" });
  nameInput.addEventListener("input", () => {
    const p = nameInput.value ? bucketNameProblem(nameInput.value) : null;
    hint.textContent = p || "";
    hint.style.color = p ? "var(--bad)" : "";
  });
  const create = h("button", { class: "primary", id: "create-bucket", onclick: async () => {
    const name = nameInput.value.trim();
    const p = bucketNameProblem(name);
    if (p) { hint.textContent = p; hint.style.color = "var(--bad)"; return; }
    create.disabled = true;
    try { await api("POST", "/console/api/buckets", { name }); nameInput.value = ""; hint.textContent = ""; await load(); banner(`Bucket ${name} created.`, "info"); }
    catch (e) { banner(e.message); }
    finally { create.disabled = false; }
  } }, "Create bucket");
  const body = h("div", { class: "card table-card", id: "bucket-list" }, h("div", { class: "loading" }, "Loading buckets…"));
  setView(
    h("div", { class: "toolbar" }, h("h1", { class: "grow" }, "Buckets"), nameInput, create),
    hint, body);
  async function load() {
    let list;
    try { list = await api("GET", "/console/api/buckets"); }
    catch (e) { body.replaceChildren(h("div", { class: "empty" }, h("strong", {}, "Could not load buckets"), e.message)); return; }
    if (!list.length) {
      body.replaceChildren(h("div", { class: "empty" }, h("strong", {}, "No buckets yet"), "Create one above to start storing objects."));
      return;
    }
    const rows = list.map((b) => h("tr", { "data-bucket": b.name },
      h("td", {}, h("a", { href: `#/b/${encodeURIComponent(b.name)}/` }, b.name)),
      h("td", { class: "num" }, b.objects + (b.objects_more ? "+" : "")),
      h("td", { class: "num" }, bytes(b.bytes)),
      h("td", { class: "hide-narrow" }, h("label", { class: "small", style: "display:flex;gap:.4rem;align-items:center" },
        h("input", { type: "checkbox", class: "versioning", checked: b.versioning === "Enabled", onchange: async (ev) => {
          try { await api("PUT", `/console/api/buckets/${encodeURIComponent(b.name)}/versioning`, { enabled: ev.target.checked });
            banner(`Versioning ${ev.target.checked ? "enabled" : "suspended"} on ${b.name}.`, "info"); }
          catch (e) { ev.target.checked = !ev.target.checked; banner(e.message); }
        } }), b.versioning || "Off")),
      h("td", { class: "hide-narrow" }, h("label", { class: "small", style: "display:flex;gap:.4rem;align-items:center", title: "Default encryption of new objects that ask for none" },
        h("input", { type: "checkbox", class: "encryption", checked: !!b.encryption, onchange: async (ev) => {
          try { await api("PUT", `/console/api/buckets/${encodeURIComponent(b.name)}/encryption`, { enabled: ev.target.checked });
            banner(`Default encryption ${ev.target.checked ? "set to SSE-S3" : "removed (the server's default applies)"} on ${b.name}.`, "info"); }
          catch (e) { ev.target.checked = !ev.target.checked; banner(e.message); }
        } }), b.encryption ? "SSE-S3" : "Server default")),
      h("td", { class: "hide-narrow small quota" }, quotaCell(b, load)),
      h("td", { class: "hide-narrow muted small" }, when(b.created_ms)),
      h("td", { class: "num" }, h("button", { class: "danger delete-bucket", onclick: async () => {
        if (!confirm(`Delete bucket ${b.name}?`)) return;
        try { await api("DELETE", `/console/api/buckets/${encodeURIComponent(b.name)}`); banner(`Bucket ${b.name} deleted.`, "info"); await load(); }
        catch (e) { banner(e.message); }
      } }, "Delete"))));
    body.replaceChildren(h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", { class: "num" }, "Objects"), h("th", { class: "num" }, "Size"),
        h("th", { class: "hide-narrow" }, "Versioning"), h("th", { class: "hide-narrow" }, "Encryption"), h("th", { class: "hide-narrow" }, "Quota"), h("th", { class: "hide-narrow" }, "Created"), h("th", {}))),
      h("tbody", {}, rows)));
  }
  await load();
}

// ---------------------------------------------------------------- object browser

async function browse(bucket, prefix) {
  const enc = encodeURIComponent(bucket);
  const state = { items: [], folders: [], next: null, sort: "name", dir: 1, filter: "" };
  const crumbs = h("div", { class: "crumbs grow", id: "crumbs" },
    h("a", { href: "#/buckets" }, "Buckets"), h("span", { class: "sep" }, "/"),
    h("a", { href: `#/b/${enc}/` }, bucket));
  let acc = "";
  for (const part of prefix.split("/").filter(Boolean)) {
    acc += part + "/";
    crumbs.append(h("span", { class: "sep" }, "/"), h("a", { href: `#/b/${enc}/${encodeURIComponent(acc).replace(/%2F/g, "/")}` }, part));
  }
  const filter = h("input", { id: "filter", placeholder: "Filter by prefix", "aria-label": "Filter by prefix" });
  let filterTimer = null;
  filter.addEventListener("input", () => { clearTimeout(filterTimer); filterTimer = setTimeout(() => { state.filter = filter.value; load(false); }, 250); });
  const fileInput = h("input", { type: "file", multiple: true, id: "file-input", class: "hidden", onchange: () => { upload([...fileInput.files]); fileInput.value = ""; } });
  const delSel = h("button", { class: "danger", id: "delete-selected", disabled: true, onclick: deleteSelected }, "Delete selected");
  const toolbar = h("div", { class: "toolbar" }, crumbs);
  const actions = h("div", { class: "toolbar" }, filter,
    h("button", { id: "new-folder", onclick: newFolder }, "New folder"),
    h("button", { class: "primary", id: "upload-button", onclick: () => fileInput.click() }, "Upload files"),
    delSel, h("button", { onclick: () => load(false), title: "Refresh" }, "Refresh"), fileInput);
  const drop = h("div", { class: "dropzone", id: "dropzone" }, "Drop files here to upload them to ", h("b", {}, bucket + "/" + prefix));
  const uploads = h("div", { class: "uploads", id: "uploads" });
  const list = h("div", { class: "card table-card", id: "object-list" }, h("div", { class: "loading" }, "Loading…"));
  const more = h("button", { id: "load-more", class: "hidden", onclick: () => load(true) }, "Load more");
  setView(toolbar, bucketTabs(bucket, "objects"), actions, drop, uploads, list, more);

  for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  drop.addEventListener("drop", (e) => upload([...e.dataTransfer.files]));

  async function load(append) {
    const q = new URLSearchParams({ prefix, filter: state.filter });
    if (append && state.next) q.set("token", state.next);
    if (!append) { state.items = []; state.folders = []; }
    let page;
    try { page = await api("GET", `/console/api/buckets/${enc}/objects?${q}`); }
    catch (e) {
      list.replaceChildren(h("div", { class: "empty" }, h("strong", {}, e.code === "NoSuchBucket" ? "This bucket is gone" : "Could not list objects"), e.message, " ",
        h("a", { href: "#/buckets" }, "Back to buckets")));
      banner(e.message);
      return;
    }
    state.items.push(...page.objects);
    state.folders.push(...page.folders);
    state.next = page.next;
    more.classList.toggle("hidden", !page.next);
    render();
  }

  function sorted() {
    const k = state.sort, d = state.dir;
    return [...state.items].sort((a, b) => {
      const va = k === "size" ? a.size : k === "modified" ? a.modified_ms : a.key;
      const vb = k === "size" ? b.size : k === "modified" ? b.modified_ms : b.key;
      return (va < vb ? -1 : va > vb ? 1 : 0) * d;
    });
  }

  function render() {
    if (!state.items.length && !state.folders.length) {
      list.replaceChildren(h("div", { class: "empty", id: "empty-folder" }, h("strong", {}, state.filter ? "Nothing matches this filter" : "This folder is empty"),
        state.filter ? "Try a shorter prefix." : "Upload files with the button above or drop them here."));
      updateSel();
      return;
    }
    const th = (label, key, cls = "") => h("th", { class: `sortable ${cls}`, onclick: () => {
      state.dir = state.sort === key ? -state.dir : 1; state.sort = key; render();
    } }, label + (state.sort === key ? (state.dir > 0 ? " ▲" : " ▼") : ""));
    const rows = [];
    for (const f of state.folders) {
      const name = f.slice(prefix.length);
      rows.push(h("tr", { class: "folder", "data-folder": name },
        h("td", {}), h("td", {}, h("a", { href: `#/b/${enc}/${encodeURIComponent(f).replace(/%2F/g, "/")}` }, "📁 " + name)),
        h("td", { class: "num" }, "–"), h("td", { class: "hide-narrow" }, "")));
    }
    for (const o of sorted()) {
      const name = o.key.slice(prefix.length);
      rows.push(h("tr", { "data-key": o.key },
        h("td", {}, h("input", { type: "checkbox", class: "select", "aria-label": `Select ${name}`, "data-key": o.key, onchange: updateSel })),
        h("td", {}, h("a", { href: "javascript:void 0", class: "object-link", onclick: () => details(bucket, o.key) }, name)),
        h("td", { class: "num" }, bytes(o.size)),
        h("td", { class: "hide-narrow muted small" }, when(o.modified_ms))));
    }
    list.replaceChildren(h("table", {},
      h("thead", {}, h("tr", {}, h("th", { style: "width:2rem" }), th("Name", "name"), th("Size", "size", "num"), th("Modified", "modified", "hide-narrow"))),
      h("tbody", {}, rows)));
    updateSel();
  }

  function selectedKeys() { return [...list.querySelectorAll("input.select:checked")].map((c) => c.dataset.key); }
  function updateSel() { const n = selectedKeys().length; delSel.disabled = n === 0; delSel.textContent = n ? `Delete ${n} selected` : "Delete selected"; }

  async function deleteSelected() {
    const keys = selectedKeys();
    if (!keys.length || !confirm(`Delete ${keys.length} object(s)?`)) return;
    try {
      const r = await api("POST", `/console/api/buckets/${enc}/delete`, { keys });
      if (r.errors.length) banner(`${r.errors.length} object(s) could not be deleted: ${r.errors[0].message}`);
      else banner(`Deleted ${r.deleted} object(s).`, "info");
    } catch (e) { banner(e.message); }
    await load(false);
  }

  async function newFolder() {
    const name = prompt("Folder name");
    if (!name) return;
    const clean = name.replace(/^\/+|\/+$/g, "");
    if (!clean) return;
    try {
      await api("PUT", `/console/api/buckets/${enc}/upload?${new URLSearchParams({ key: prefix + clean + "/" })}`, new Blob([]));
      location.hash = `#/b/${enc}/${encodeURIComponent(prefix + clean + "/").replace(/%2F/g, "/")}`;
    } catch (e) { banner(e.message); }
  }

  function upload(files) {
    for (const f of files) uploadOne(f);
  }

  function uploadOne(file) {
    const key = prefix + file.name;
    const bar = h("div", { class: "bar" }, h("span", {}));
    const status = h("span", { class: "small muted status" }, "Starting…");
    const xhrs = new Set();
    let cancelled = false, uploadId = null;
    const cancel = h("button", { class: "ghost cancel", onclick: async () => {
      cancelled = true;
      for (const x of xhrs) x.abort();
      if (uploadId) { try { await api("DELETE", `/console/api/buckets/${enc}/multipart/${encodeURIComponent(uploadId)}?${new URLSearchParams({ key })}`); } catch (_) { /* gone */ } }
      status.textContent = "Cancelled"; bar.classList.add("failed"); cancel.disabled = true;
    } }, "Cancel");
    const row = h("div", { class: "card upload-row", "data-upload": file.name }, h("span", {}, file.name, " ", h("span", { class: "muted small" }, bytes(file.size))), status, cancel, bar);
    uploads.prepend(row);
    const sent = new Map();
    const progress = () => {
      let n = 0; for (const v of sent.values()) n += v;
      const pct = file.size ? Math.min(100, (100 * n) / file.size) : 100;
      bar.firstChild.style.width = pct.toFixed(1) + "%";
      status.textContent = `${pct.toFixed(0)}% of ${bytes(file.size)}`;
    };
    const send = (method, url, blob, partKey) => new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      xhrs.add(x);
      x.open(method, url);
      x.withCredentials = true;
      x.upload.onprogress = (e) => { sent.set(partKey, e.loaded); progress(); };
      x.onload = () => {
        xhrs.delete(x);
        let data = null; try { data = JSON.parse(x.responseText); } catch (_) { /* not JSON */ }
        if (x.status >= 200 && x.status < 300) { sent.set(partKey, blob.size); progress(); resolve(data); }
        else reject(new ApiError(x.status, data && data.error, data && data.message || `The server answered ${x.status}.`));
      };
      x.onerror = () => { xhrs.delete(x); reject(new ApiError(0, "Network", "The upload was interrupted.")); };
      x.onabort = () => { xhrs.delete(x); reject(new ApiError(0, "Cancelled", "Cancelled")); };
      x.send(blob);
    });
    (async () => {
      try {
        if (file.size <= PART_SIZE) {
          await send("PUT", `/console/api/buckets/${enc}/upload?${new URLSearchParams({ key })}`, file, 0);
        } else {
          const r = await api("POST", `/console/api/buckets/${enc}/multipart?${new URLSearchParams({ key })}`, undefined,
            { headers: { "x-content-type": file.type || "application/octet-stream" } });
          uploadId = r.upload_id;
          const count = Math.ceil(file.size / PART_SIZE);
          const etags = new Array(count);
          let next = 0;
          const worker = async () => {
            while (next < count && !cancelled) {
              const i = next++;
              const blob = file.slice(i * PART_SIZE, Math.min(file.size, (i + 1) * PART_SIZE));
              const q = new URLSearchParams({ key, part: String(i + 1) });
              const out = await send("PUT", `/console/api/buckets/${enc}/multipart/${encodeURIComponent(uploadId)}?${q}`, blob, i);
              etags[i] = out.etag;
            }
          };
          await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, count) }, worker));
          if (cancelled) return;
          status.textContent = "Finishing…";
          await api("POST", `/console/api/buckets/${enc}/multipart/${encodeURIComponent(uploadId)}/complete?${new URLSearchParams({ key })}`,
            { parts: etags.map((etag, i) => ({ part: i + 1, etag })) });
        }
        bar.classList.add("done"); bar.firstChild.style.width = "100%";
        status.textContent = `Uploaded ${bytes(file.size)}`; row.dataset.done = "1"; cancel.disabled = true;
        load(false);
      } catch (e) {
        if (cancelled) return;
        bar.classList.add("failed"); status.textContent = "Failed: " + e.message; cancel.disabled = true;
        if (e.status !== 401) banner(`Upload of ${file.name} failed: ${e.message}`);
      }
    })();
  }

  await load(false);
}

async function details(bucket, key) {
  const enc = encodeURIComponent(bucket);
  const box = h("div", { id: "details" }, h("div", { class: "loading" }, "Loading…"));
  openModal(key.split("/").filter(Boolean).pop() || key, box);
  let d;
  try { d = await api("GET", `/console/api/buckets/${enc}/object?${new URLSearchParams({ key })}`); }
  catch (e) { box.replaceChildren(h("div", { class: "error" }, e.message)); return; }
  const kv = h("dl", { class: "kv" });
  const add = (k, v) => kv.append(h("dt", {}, k), h("dd", {}, v));
  add("Key", h("span", { class: "mono" }, d.key));
  add("Size", `${bytes(d.size)} (${d.size} bytes)`);
  add("ETag", h("span", { class: "mono", id: "detail-etag" }, d.etag || "–"));
  add("Content type", d.content_type || "–");
  add("Modified", when(d.modified_ms));
  if (d.version_id) add("Version", h("span", { class: "mono" }, d.version_id));
  for (const [k, v] of Object.entries(d.metadata || {})) add(`x-amz-meta-${k}`, v);
  for (const [k, v] of Object.entries(d.checksums || {})) add(`Checksum ${k}`, h("span", { class: "mono" }, v));
  add("Storage class", h("span", { id: "detail-class" }, d.storage_class || "STANDARD"));
  add("Stored as", h("span", { id: "detail-scheme" }, d.erasure_coding));
  add("Encryption at rest", h("span", { id: "detail-encryption" }, d.encryption));
  if (d.shards.length) add("Shards", h("span", { id: "detail-shards" }, d.shards.map((s) => `dn${s.node}: ${s.shards}`).join(", ")));
  if (d.versions.length > 1) add("Versions", h("div", {}, d.versions.map((v) => h("div", { class: "small mono" }, `${v.version_id || "null"} · ${bytes(v.size)} · ${when(v.modified_ms)}${v.latest ? " · latest" : ""}`))));
  const download = h("a", { class: "button primary", id: "download", href: `/console/api/buckets/${enc}/download?${new URLSearchParams({ key })}` }, "Download");
  const expiry = h("select", { id: "share-expiry", "aria-label": "Link expiry" },
    h("option", { value: "3600" }, "1 hour"), h("option", { value: "86400" }, "1 day"), h("option", { value: "604800" }, "7 days"), h("option", { value: "300" }, "5 minutes"));
  const out = h("div", { class: "share-out hidden" });
  const shareBtn = h("button", { id: "share", onclick: async () => {
    try {
      const r = await api("POST", `/console/api/buckets/${enc}/share`, { key, expires_secs: Number(expiry.value) });
      const input = h("input", { id: "share-url", readonly: true, value: r.url });
      const copy = h("button", { id: "copy-share", onclick: async () => {
        try { await navigator.clipboard.writeText(r.url); copy.textContent = "Copied"; }
        catch (_) { input.select(); document.execCommand("copy"); copy.textContent = "Copied"; }
      } }, "Copy");
      out.replaceChildren(input, copy); out.classList.remove("hidden");
      out.after(h("div", { class: "small muted" }, `Anyone with this link can download the object until ${when(r.expires_ms)}.`));
    } catch (e) { out.replaceChildren(h("div", { class: "error" }, e.message)); out.classList.remove("hidden"); }
  } }, "Create share link");
  box.replaceChildren(kv, h("div", { class: "toolbar" }, download, h("span", { class: "grow" }), "Share for", expiry, shareBtn), out);
}

// ---------------------------------------------------------------- dashboard

async function dashboard() {
  const root = h("div", { id: "dashboard", style: "display:grid;gap:1rem" }, h("div", { class: "loading" }, "Loading cluster…"));
  setView(h("div", { class: "toolbar" }, h("h1", { class: "grow" }, "Cluster")), root);
  lastRequests = null;
  // Whether to keep polling: not once logged out, nor when the key may not see the cluster.
  const draw = async () => {
    let c;
    try { c = await api("GET", "/console/api/cluster"); }
    catch (e) {
      if (e.status === 401) return false;
      if (e.status === 403) {
        stopRefresh();
        if (me) { me.root = false; $("#nav-dashboard").classList.add("hidden"); }
        root.replaceChildren(h("div", { class: "error", id: "cluster-forbidden" }, e.message));
        return false;
      }
      root.replaceChildren(h("div", { class: "error" }, e.message));
      return true;
    }
    root.replaceChildren(...renderCluster(c));
    return true;
  };
  if (await draw() && location.hash.startsWith("#/dashboard")) refreshTimer = setInterval(draw, 3000);
}

function renderCluster(c) {
  const nodes = c.datanodes;
  const up = nodes.filter((n) => n.reachable).length;
  const ec = c.erasure_coding;
  const r = c.requests;
  let rate = "–", errRate = "–", tput = "–";
  if (lastRequests) {
    const dt = Math.max(0.001, (r.at_ms - lastRequests.at_ms) / 1000);
    const dreq = r.requests - lastRequests.requests;
    rate = `${(dreq / dt).toFixed(1)}/s`;
    errRate = dreq > 0 ? `${((100 * (r.client_errors + r.server_errors - lastRequests.client_errors - lastRequests.server_errors)) / dreq).toFixed(1)}%` : "0%";
    tput = `${bytes((r.received_bytes + r.sent_bytes - lastRequests.received_bytes - lastRequests.sent_bytes) / dt)}/s`;
  }
  lastRequests = r;
  const stat = (label, value, id) => h("div", { class: "card stat" }, h("span", { class: "value", id }, value), h("span", { class: "label" }, label));
  const stats = h("div", { class: "grid" },
    stat("datanodes up", `${up} / ${nodes.length}`, "stat-up"),
    stat(`erasure coding · ${ec.overhead.toFixed(2)}× storage`, `${ec.data}+${ec.parity}`, "stat-ec"),
    stat("S3 requests", rate, "stat-rate"),
    stat("error rate", errRate, "stat-errors"),
    stat("throughput", tput, "stat-throughput"));
  const maxDisk = Math.max(1, ...nodes.map((n) => n.disk_bytes || 0));
  const history = c.scrub_history || [];
  const lastFor = (id) => { for (const s of history) { const n = (s.nodes || []).find((x) => x.node === id && x.reachable); if (n) return n; } return null; };
  const nodeRows = nodes.map((n) => {
    const state = n.reachable ? (n.draining ? "draining" : "up") : (n.serving ? "down" : "stopped");
    const last = lastFor(n.id);
    return h("tr", { "data-node": n.id },
      h("td", {}, `dn${n.id}`),
      h("td", {}, h("span", { class: `pill ${state}`, "data-state": state }, state)),
      h("td", { class: "hide-narrow mono" }, n.addr),
      h("td", { class: "num" }, n.shards ?? "–"),
      h("td", {}, h("div", { style: "display:flex;gap:.6rem;align-items:center" },
        h("div", { class: "usage", title: `${bytes(n.disk_bytes)} on disk` }, h("span", { style: `width:${(100 * (n.disk_bytes || 0)) / maxDisk}%` })),
        h("span", { class: "small muted" }, `${bytes(n.live_bytes)} live · ${bytes(n.disk_bytes)} on disk`),
        h("span", { class: "small muted amp", title: "space amplification: bytes on disk over live bytes" }, n.space_amplification == null ? "" : `· ${n.space_amplification.toFixed(2)}×`))),
      h("td", { class: "small hide-narrow" }, last ? `${ago(last.finished_ms)} · ${Object.values(last.found).reduce((a, b) => a + b, 0)} found` : "never"));
  });
  const nodesCard = h("div", { class: "card section" },
    h("div", { class: "section-head" }, h("h2", {}, "Datanodes"),
      h("span", { class: "small muted", id: "meta-info" }, `this node's roles: ${(c.metadata.roles || []).join(", ")} · metadata: ${c.metadata.engine}, ${c.metadata.replication}; leader ${c.metadata.leader}, voters ${c.metadata.voters.join(", ")}`)),
    h("div", { class: "table-card" }, h("table", { id: "nodes" },
      h("thead", {}, h("tr", {}, h("th", {}, "Node"), h("th", {}, "State"), h("th", { class: "hide-narrow" }, "Address"), h("th", { class: "num" }, "Shards"), h("th", {}, "Usage"), h("th", { class: "hide-narrow" }, "Last scrub"))),
      h("tbody", {}, nodeRows))));
  const maxShare = Math.max(0.0001, ...c.ring.map((x) => x.share));
  const ring = h("div", { class: "card section" }, h("h2", {}, "Ring distribution"),
    h("div", { class: "small muted" }, "Share of placements each datanode receives (the ideal is an even split among undrained nodes)."),
    h("div", { class: "chart", id: "ring-chart" }, c.ring.map((x) => h("div", { class: "chart-row" },
      h("span", {}, `dn${x.node}`), h("div", {}, h("div", { class: "barv", style: `width:${(100 * x.share) / maxShare}%` })),
      h("span", { class: "num small" }, `${(100 * x.share).toFixed(1)}%`)))));
  const heal = c.heal;
  const last = heal.last || history[0] || null;
  const sum = (o) => o ? Object.values(o).reduce((a, b) => a + b, 0) : 0;
  const scrubInfo = h("dl", { class: "kv", id: "scrub-info" });
  const add = (k, v) => scrubInfo.append(h("dt", {}, k), h("dd", {}, v));
  if (heal.running) add("Running", h("span", { id: "scrub-running" }, `scrub ${heal.running.id}: ${heal.running.phase} ${heal.running.done}/${heal.running.total}`));
  if (last) {
    add("Last scrub", h("span", { id: "scrub-last" }, `#${last.id} ${last.deep ? "deep" : "light"}, ${ago(last.started_ms)}, ${last.shards_checked} shards checked in ${(last.duration_ms / 1000).toFixed(1)} s`));
    add("Damage found", h("span", { id: "scrub-found" }, `${sum(last.found)} (missing ${last.found.missing}, corrupt ${last.found.corrupt}, misplaced ${last.found.misplaced}, orphaned ${last.found.orphaned})`));
    add("Repaired", h("span", { id: "scrub-repaired" }, last.repair ? String(sum(last.repaired)) : "not asked"));
    if (last.unrecoverable && last.unrecoverable.length) add("Unrecoverable", h("span", { style: "color:var(--bad)" }, last.unrecoverable.map((u) => u.objects.join(", ")).join("; ")));
  } else add("Last scrub", h("span", { id: "scrub-last" }, "none yet"));
  add("Repair backlog", h("span", { id: "scrub-backlog" }, `${heal.repair_backlog} problem(s), ${heal.repair_queue} stripe(s) queued by reads`));
  const every = (s, unit, div) => s ? `every ${Math.max(1, Math.round(s / div))} ${unit}` : "off";
  add("Schedule", `light ${every(heal.scrub_interval_secs, "min", 60)}, deep ${every(heal.deep_interval_secs, "d", 86400)}; repair ${heal.repair_rate ? bytes(heal.repair_rate) + "/s" : "unlimited"}`);
  const start = (deep) => async () => {
    try { await api("POST", "/console/api/scrub", { deep, repair: true }); banner(`${deep ? "Deep" : "Light"} scrub started.`, "info"); }
    catch (e) { banner(e.message); }
  };
  const scrub = h("div", { class: "card section" },
    h("div", { class: "section-head" }, h("h2", {}, "Scrub and repair"),
      h("div", { class: "toolbar" },
        h("button", { class: "primary", id: "start-scrub", disabled: !me.root || !!heal.running, title: me.root ? "" : "Only the root key can start a scrub", onclick: start(false) }, "Start scrub"),
        h("button", { id: "start-deep-scrub", disabled: !me.root || !!heal.running, onclick: start(true) }, "Deep scrub"))),
    scrubInfo);
  return [stats, nodesCard, h("div", { class: "grid", style: "grid-template-columns:repeat(auto-fit,minmax(320px,1fr))" }, ring, scrub, lifecycleCard(c.lifecycle)), workersCard(c.workers || [])];
}

// A bucket's usage against its quota (every version and incomplete upload counted, as the
// server enforces it); the root key may set or clear the quota.
function quotaCell(b, reload) {
  const u = b.usage || { bytes: 0, objects: 0 };
  const q = b.quota;
  const text = q
    ? `${q.max_bytes != null ? `${bytes(u.bytes)} of ${bytes(q.max_bytes)}` : bytes(u.bytes)} · ${q.max_objects != null ? `${u.objects} of ${q.max_objects}` : u.objects} objects`
    : "none";
  const full = q && ((q.max_bytes != null && u.bytes >= q.max_bytes) || (q.max_objects != null && u.objects >= q.max_objects));
  const set = h("button", { class: "small set-quota", hidden: !me.root, onclick: async () => {
    const mb = prompt(`Most bytes in ${b.name} (e.g. 10G, 500M; empty: no limit)`, q && q.max_bytes != null ? String(q.max_bytes) : "");
    if (mb === null) return;
    const mo = prompt(`Most objects in ${b.name} (empty: no limit)`, q && q.max_objects != null ? String(q.max_objects) : "");
    if (mo === null) return;
    const size = (s) => { const m = /^\s*(\d+)\s*([KMGT]?)i?B?\s*$/i.exec(s); if (!m) return null; return Number(m[1]) * 1024 ** " KMGT".indexOf((m[2] || " ").toUpperCase()); };
    const body = { max_bytes: mb.trim() ? size(mb) : null, max_objects: mo.trim() ? Number(mo) : null };
    if ((mb.trim() && body.max_bytes == null) || (mo.trim() && !Number.isInteger(body.max_objects))) { banner("A quota is a size (e.g. 10G) and a whole number of objects."); return; }
    try {
      if (body.max_bytes == null && body.max_objects == null) await api("DELETE", `/console/api/buckets/${encodeURIComponent(b.name)}/quota`);
      else await api("PUT", `/console/api/buckets/${encodeURIComponent(b.name)}/quota`, body);
      banner(`Quota of ${b.name} updated.`, "info"); await reload();
    } catch (e) { banner(e.message); }
  } }, "Set");
  return h("span", {}, h("span", { class: full ? "quota-full" : "", style: full ? "color:var(--bad)" : "" }, text), " ", set);
}

// The lifecycle runs of the cluster: the run in progress (where) or the last, and totals.
function lifecycleCard(l) {
  const info = h("dl", { class: "kv", id: "lifecycle-info" });
  const add = (k, v) => info.append(h("dt", {}, k), h("dd", {}, v));
  const t = (l && l.total) || {};
  if (!l || !l.run) add("Runs", "none yet");
  else if (l.bucket) add("Run in progress", `#${l.run} at bucket ${l.bucket}${l.key_marker ? ` after ${l.key_marker}` : ""}`);
  else add("Last run", `#${l.run}, ${ago(l.last_run_finished_ms)}, took ${((l.last_run_ms || 0) / 1000).toFixed(1)} s`);
  add("All runs", `${t.expired || 0} expired · ${t.noncurrent_removed || 0} noncurrent versions and ${t.markers_removed || 0} delete markers removed · ${t.uploads_aborted || 0} uploads aborted · ${t.locked || 0} locked versions kept · ${t.failures || 0} failures`);
  if (l && l.resumed) add("Continued", `${l.resumed} run(s) continued by a new leader`);
  return h("div", { class: "card section" }, h("div", { class: "section-head" }, h("h2", {}, "Lifecycle")), info);
}

// The background workers of the node serving the console: state, progress, pause/resume.
function workersCard(workers) {
  const pill = { running: "up", idle: "neutral", pausing: "draining", paused: "draining", failed: "down", stopped: "stopped" };
  const act = (w, what) => async () => {
    try { await api("POST", `/console/api/workers/${encodeURIComponent(w.name)}/${what}`); banner(`Worker ${w.name}: ${what === "pause" ? "paused at its next safe point" : "resumed"}.`, "info"); }
    catch (e) { banner(e.message); }
  };
  const rows = workers.map((w) => h("tr", { "data-worker": w.name },
    h("td", { class: "mono", title: w.about }, w.name),
    h("td", {}, h("span", { class: `pill ${pill[w.state] || "neutral"}`, "data-state": w.state }, w.state)),
    h("td", { class: "num" }, String(w.rounds)),
    h("td", { class: "small hide-narrow" }, ago(w.round_finished_ms)),
    h("td", { class: "small" }, w.progress || "–",
      w.last_error ? h("div", { class: "small", style: "color:var(--bad)" }, `last error ${ago(w.last_error_ms)}: ${w.last_error}`) : null),
    h("td", {}, w.paused
      ? h("button", { class: "resume-worker", onclick: act(w, "resume") }, "Resume")
      : h("button", { class: "pause-worker", disabled: w.state === "stopped", onclick: act(w, "pause") }, "Pause"))));
  return h("div", { class: "card section" },
    h("div", { class: "section-head" }, h("h2", {}, "Background workers"),
      h("span", { class: "small muted" }, "this node's jobs; a paused worker stops at its next safe point")),
    h("div", { class: "table-card" }, h("table", { id: "workers" },
      h("thead", {}, h("tr", {}, h("th", {}, "Worker"), h("th", {}, "State"), h("th", { class: "num" }, "Rounds"), h("th", { class: "hide-narrow" }, "Last round"), h("th", {}, "Progress"), h("th", {}, ""))),
      h("tbody", {}, rows))));
}

// ---------------------------------------------------------------- start

(async () => {
  try { me = await api("GET", "/console/api/me", undefined, { noRedirect: true }); showApp(); }
  catch (e) { showLogin(e.code === "SessionExpired" ? e.message : null); }
})();
