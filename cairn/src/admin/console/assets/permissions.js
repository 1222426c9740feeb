// Cairn console: a bucket's Permissions tab (#/perm/<bucket>): its policy, whether it is
// public, its Block Public Access and its Object Ownership, each read and changed with the
// logged-in key's own S3 calls, so S3 decides what the key may see and change and its
// refusals are shown as S3 words them. The policy editor and the four Block Public Access
// checkboxes serve the keys page (keys.js) too. Uses app.js's helpers (h, api, banner,
// setView).
"use strict";

const PAB_FIELDS = [
  ["block_public_acls", "Block public ACLs", "Refuse requests that would set a public ACL on the bucket or its objects."],
  ["ignore_public_acls", "Ignore public ACLs", "Grants to everyone or to every signed request give nothing."],
  ["block_public_policy", "Block public bucket policies", "Refuse a bucket policy that would make the bucket public."],
  ["restrict_public_buckets", "Restrict public buckets", "A public bucket policy gives nothing to anyone but the bucket's owner."],
];
const OWNERSHIP = [
  ["BucketOwnerEnforced", "Bucket owner enforced: ACLs are off, the bucket owner owns every object"],
  ["BucketOwnerPreferred", "Bucket owner preferred: objects written with bucket-owner-full-control go to the owner"],
  ["ObjectWriter", "Object writer: the key that writes an object owns it"],
];

// The Objects | Permissions tabs of a bucket's pages; `active` is "objects" or "permissions".
function bucketTabs(bucket, active) {
  const enc = encodeURIComponent(bucket);
  const tab = (name, label, href) =>
    h("a", { id: `tab-${name}`, href, class: name === active ? "tab active" : "tab" }, label);
  return h("nav", { class: "tabs" }, tab("objects", "Objects", `#/b/${enc}/`), tab("permissions", "Permissions", `#/perm/${enc}`));
}

// A refusal next to the control it is about: the S3 (or console) code and the message.
function showError(el, e) {
  if (!e) { el.classList.add("hidden"); el.replaceChildren(); return; }
  el.replaceChildren(h("strong", {}, e.code || "Error"), " ", e.message);
  el.classList.remove("hidden");
}

// A JSON policy editor: the textarea, a Format button and the box for the server's refusal.
function policyEditor(id) {
  const area = h("textarea", { id, class: "policy-editor", spellcheck: "false", rows: "14", "aria-label": "Policy document (JSON)" });
  const err = h("div", { id: `${id}-error`, class: "error hidden", role: "alert" });
  const format = h("button", { class: "ghost", onclick: () => {
    try { area.value = JSON.stringify(JSON.parse(area.value), null, 2); showError(err, null); }
    catch (e) { showError(err, { code: "NotJSON", message: e.message }); }
  } }, "Format");
  return { area, err, format };
}

// The four Block Public Access checkboxes, their ids `${prefix}-<setting>`.
function pabBoxes(prefix) {
  const boxes = {};
  const el = h("div", { class: "checks" }, PAB_FIELDS.map(([k, label, about]) => {
    boxes[k] = h("input", { type: "checkbox", id: `${prefix}-${k}` });
    return h("label", { class: "check", for: `${prefix}-${k}` }, boxes[k],
      h("span", {}, h("span", { class: "check-label" }, label), h("span", { class: "small muted" }, about)));
  }));
  return {
    el,
    get: () => Object.fromEntries(PAB_FIELDS.map(([k]) => [k, boxes[k].checked])),
    set: (p) => { for (const [k] of PAB_FIELDS) boxes[k].checked = !!(p && p[k]); },
  };
}

async function permissions(bucket) {
  const enc = encodeURIComponent(bucket);
  const base = `/console/api/buckets/${enc}`;
  const crumbs = h("div", { class: "crumbs grow" }, h("a", { href: "#/buckets" }, "Buckets"), h("span", { class: "sep" }, "/"),
    h("a", { href: `#/b/${enc}/` }, bucket), h("span", { class: "sep" }, "/"), "Permissions");

  // Bucket policy and whether the bucket is public.
  const pill = h("span", { id: "perm-public", class: "pill neutral" }, "…");
  const ed = policyEditor("policy-editor");
  const del = h("button", { class: "danger", id: "delete-policy", onclick: async () => {
    if (!confirm(`Delete the policy of ${bucket}?`)) return;
    try { await api("DELETE", `${base}/policy`); banner(`Policy of ${bucket} deleted.`, "info"); showError(ed.err, null); await loadPolicy(); }
    catch (e) { showError(ed.err, e); }
  } }, "Delete policy");
  const save = h("button", { class: "primary", id: "save-policy", onclick: async () => {
    save.disabled = true;
    try { await api("PUT", `${base}/policy`, { policy: ed.area.value }); showError(ed.err, null); banner(`Policy of ${bucket} saved.`, "info"); await loadPolicy(); }
    catch (e) { showError(ed.err, e); }
    finally { save.disabled = false; }
  } }, "Save policy");
  const example = h("button", { class: "ghost", id: "policy-example", onclick: () => {
    ed.area.value = JSON.stringify({ Version: "2012-10-17", Statement: [{ Sid: "PublicRead", Effect: "Allow", Principal: "*",
      Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/*` }] }, null, 2);
  } }, "Public-read example");
  const policyCard = h("div", { class: "card section", id: "policy-card" },
    h("div", { class: "section-head" }, h("h2", {}, "Bucket policy"), pill),
    h("div", { class: "small muted" }, "Who may do what in this bucket, as an S3 bucket policy (JSON). S3 checks it when you save: a malformed or refused policy is not stored."),
    ed.area, ed.err, h("div", { class: "toolbar" }, save, ed.format, example, h("span", { class: "grow" }), del));

  // Block Public Access of this bucket.
  const boxes = pabBoxes("pab");
  const pabState = h("div", { class: "small muted", id: "pab-state" });
  const pabErr = h("div", { id: "pab-error", class: "error hidden", role: "alert" });
  const pabCall = (method, body, done) => async () => {
    try { await api(method, `${base}/public-access-block`, body && body()); showError(pabErr, null); banner(done, "info"); await loadPab(); await loadStatus(); }
    catch (e) { showError(pabErr, e); }
  };
  const pabCard = h("div", { class: "card section", id: "pab-card" },
    h("div", { class: "section-head" }, h("h2", {}, "Block Public Access"),
      h("div", { class: "toolbar" },
        h("button", { class: "primary", id: "save-pab", onclick: pabCall("PUT", boxes.get, "Block Public Access saved.") }, "Save"),
        h("button", { id: "remove-pab", onclick: pabCall("DELETE", null, "Block Public Access of this bucket removed.") }, "Remove"))),
    pabState, boxes.el, pabErr);

  // Object Ownership.
  const own = h("select", { id: "ownership", "aria-label": "Object Ownership" },
    OWNERSHIP.map(([v, label]) => h("option", { value: v }, label)));
  const ownState = h("div", { class: "small muted", id: "ownership-state" });
  const ownErr = h("div", { id: "ownership-error", class: "error hidden", role: "alert" });
  const ownCall = (method, done) => async () => {
    try { await api(method, `${base}/ownership`, method === "PUT" ? { ownership: own.value } : undefined); showError(ownErr, null); banner(done, "info"); await loadOwnership(); }
    catch (e) { showError(ownErr, e); }
  };
  const ownCard = h("div", { class: "card section", id: "ownership-card" },
    h("div", { class: "section-head" }, h("h2", {}, "Object Ownership"),
      h("div", { class: "toolbar" },
        h("button", { class: "primary", id: "save-ownership", onclick: ownCall("PUT", "Object Ownership saved.") }, "Save"),
        h("button", { id: "remove-ownership", onclick: ownCall("DELETE", "Object Ownership removed.") }, "Remove"))),
    ownState, own, ownErr);

  setView(h("div", { class: "toolbar" }, crumbs), bucketTabs(bucket, "permissions"), policyCard, pabCard, ownCard);

  async function loadStatus() {
    try {
      const s = await api("GET", `${base}/policy-status`);
      pill.textContent = s.public ? "Public" : "Not public";
      pill.className = `pill ${s.public ? "draining" : "up"}`;
      pill.dataset.public = String(s.public);
      pill.title = s.public ? "Its policy or its ACL gives access to everyone" : "Only the keys its policy and ACL name have access";
    } catch (e) { pill.textContent = "unknown"; pill.className = "pill neutral"; pill.title = e.message; }
  }
  async function loadPolicy() {
    try {
      const p = await api("GET", `${base}/policy`);
      ed.area.value = p.policy || "";
      ed.area.placeholder = p.policy ? "" : "No policy: ownership and ACLs alone decide. Write one, or start from the public-read example.";
      del.disabled = !p.policy;
    } catch (e) { showError(ed.err, e); }
    await loadStatus();
  }
  async function loadPab() {
    try {
      const p = (await api("GET", `${base}/public-access-block`)).public_access_block;
      boxes.set(p);
      pabState.textContent = p ? "This bucket has its own settings; the cluster-wide ones apply too."
        : "Not set on this bucket: only the cluster-wide settings apply.";
      pabState.dataset.set = String(!!p);
    } catch (e) { showError(pabErr, e); }
  }
  async function loadOwnership() {
    try {
      const o = (await api("GET", `${base}/ownership`)).ownership;
      own.value = o || "ObjectWriter";
      ownState.textContent = o ? `Set to ${o}.` : "Not set: objects belong to the key that writes them (ObjectWriter).";
      ownState.dataset.ownership = o || "";
    } catch (e) { showError(ownErr, e); }
  }
  await Promise.all([loadPolicy(), loadPab(), loadOwnership()]);
}
