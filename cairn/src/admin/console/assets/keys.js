// Cairn console: the keys page (#/keys, root key only; the API answers 403 to other keys):
// every access key and whether it has an identity policy, which root can read, edit and
// remove in a dialog; and the cluster-wide Block Public Access. Uses app.js's helpers and
// permissions.js's policy editor and checkboxes.
"use strict";

async function keysPage() {
  const list = h("div", { class: "card table-card", id: "key-list" }, h("div", { class: "loading" }, "Loading keys…"));
  const boxes = pabBoxes("cpab");
  const pabErr = h("div", { id: "cluster-pab-error", class: "error hidden", role: "alert" });
  const pabCall = (method, done) => async () => {
    try { boxes.set(await api(method, "/console/api/public-access-block", method === "PUT" ? boxes.get() : undefined)); showError(pabErr, null); banner(done, "info"); }
    catch (e) { showError(pabErr, e); }
  };
  const pabCard = h("div", { class: "card section", id: "cluster-pab" },
    h("div", { class: "section-head" }, h("h2", {}, "Block Public Access, cluster-wide"),
      h("div", { class: "toolbar" },
        h("button", { class: "primary", id: "save-cluster-pab", onclick: pabCall("PUT", "Cluster-wide Block Public Access saved.") }, "Save"),
        h("button", { id: "remove-cluster-pab", onclick: pabCall("DELETE", "Cluster-wide Block Public Access removed.") }, "Remove"))),
    h("div", { class: "small muted" }, "These apply to every bucket, on top of each bucket's own settings."),
    boxes.el, pabErr);
  setView(h("div", { class: "toolbar" }, h("h1", { class: "grow" }, "Access keys")), list, pabCard);

  async function load() {
    let keys;
    try { keys = await api("GET", "/console/api/keys"); }
    catch (e) {
      if (e.status === 403 && me) { me.root = false; $("#nav-keys").classList.add("hidden"); $("#nav-dashboard").classList.add("hidden"); }
      list.replaceChildren(h("div", { class: "error", id: "keys-forbidden" }, e.message));
      return false;
    }
    const rows = keys.map((k) => h("tr", { "data-ak": k.access_key },
      h("td", { class: "mono" }, k.access_key),
      h("td", {}, k.name || h("span", { class: "muted" }, "–")),
      h("td", {}, h("span", { class: `pill ${k.root ? "neutral" : k.enabled ? "up" : "down"}` }, k.root ? "root" : k.enabled ? "enabled" : "disabled")),
      h("td", {}, h("span", { class: `policy-state ${k.has_policy ? "pill draining" : "muted small"}`, "data-policy": k.has_policy ? "yes" : "no" },
        k.has_policy ? "has a policy" : "none")),
      h("td", { class: "num" }, h("button", { class: "edit-policy", disabled: k.root,
        title: k.root ? "The root key takes no policy: it would lock the operator out" : "",
        onclick: () => editPolicy(k.access_key, load) }, k.has_policy ? "Edit policy" : "Add policy"))));
    list.replaceChildren(h("table", { id: "keys" },
      h("thead", {}, h("tr", {}, h("th", {}, "Access key"), h("th", {}, "Name"), h("th", {}, "State"), h("th", {}, "Policy"), h("th", {}))),
      h("tbody", {}, rows)));
    return true;
  }

  if (!(await load())) return;
  try { boxes.set(await api("GET", "/console/api/public-access-block")); }
  catch (e) { showError(pabErr, e); }
}

// The dialog for one key's identity policy; `reload` redraws the key list after a change.
async function editPolicy(ak, reload) {
  const path = `/console/api/keys/${encodeURIComponent(ak)}/policy`;
  const ed = policyEditor("key-policy-editor");
  const box = h("div", { id: "key-policy", style: "display:grid;gap:.8rem" }, h("div", { class: "loading" }, "Loading…"));
  openModal(`Policy of ${ak}`, box);
  let current;
  try { current = (await api("GET", path)).policy; }
  catch (e) { box.replaceChildren(h("div", { class: "error" }, e.message)); return; }
  ed.area.value = current || "";
  ed.area.placeholder = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"],
    Resource: "arn:aws:s3:::some-bucket/some-prefix/*" }] }, null, 2);
  const done = async (msg) => { closeModal(); banner(msg, "info"); await reload(); };
  const save = h("button", { class: "primary", id: "save-key-policy", onclick: async () => {
    save.disabled = true;
    try { await api("PUT", path, { policy: ed.area.value }); await done(`Policy of ${ak} saved.`); }
    catch (e) { showError(ed.err, e); }
    finally { save.disabled = false; }
  } }, "Save policy");
  const remove = h("button", { class: "danger", id: "remove-key-policy", disabled: !current, onclick: async () => {
    if (!confirm(`Remove the policy of ${ak}?`)) return;
    try { await api("DELETE", path); await done(`Policy of ${ak} removed.`); }
    catch (e) { showError(ed.err, e); }
  } }, "Remove policy");
  box.replaceChildren(
    h("div", { class: "small muted" }, "A key with a policy may do exactly what its policy and bucket policies allow, even in its own buckets; without one it has what it owns and what ACLs grant it. An identity policy names no Principal."),
    ed.area, ed.err, h("div", { class: "toolbar" }, save, ed.format, h("span", { class: "grow" }), remove));
}
