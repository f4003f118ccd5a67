// srzoo serve: the page. Plain JavaScript, no library, nothing from another host.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { token: sessionStorage.getItem("srzoo-token") || "", models: [], items: [], current: null };
  let seq = 0;

  const m = location.hash.match(/token=([^&]+)/);  // a link ending in /#token=... (a fragment: never sent to the server)
  if (m) { state.token = decodeURIComponent(m[1]); sessionStorage.setItem("srzoo-token", state.token);
           history.replaceState(null, "", location.pathname); }

  const headers = () => (state.token ? { Authorization: "Bearer " + state.token } : {});
  async function api(path, opts = {}) {
    const r = await fetch(path, { ...opts, headers: { ...headers(), ...(opts.headers || {}) } });
    if (r.status === 401) { showToken(); }
    return r;
  }
  async function errorText(r) {
    try { const j = await r.json(); return j.error || r.statusText; } catch (e) { return r.status + " " + r.statusText; }
  }
  const fmtSize = (wh) => (wh ? wh[0] + "×" + wh[1] : "?");

  function showToken() { $("token-box").hidden = false; $("token").focus(); }
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("srzoo-token", state.token);
    $("token-box").hidden = true;
    loadModels();
  });

  // ---- models ---------------------------------------------------------------
  async function loadModels() {
    let r;
    try { r = await api("api/models"); } catch (e) { $("server").textContent = "cannot reach the server"; return; }
    if (!r.ok) { $("server").textContent = await errorText(r); return; }
    const d = await r.json();
    state.models = d.models;
    const sel = $("model");
    sel.innerHTML = "";
    for (const mo of d.models) {
      const o = document.createElement("option");
      o.value = mo.name;
      const sc = mo.scales.length ? mo.scales.map((s) => "×" + s).join(" ") : "any scale";
      o.textContent = mo.name + " (" + sc + ")" + (mo.tags.length ? " · " + mo.tags.slice(0, 3).join(", ") : "");
      if (mo.name === d.default) o.selected = true;
      sel.appendChild(o);
    }
    showModel();
    $("server").textContent = "srzoo " + d.version + " · " + d.workers + " worker" + (d.workers > 1 ? "s" : "") +
      " · up to " + Math.round(d.limits.max_upload / 1048576) + " MB, " +
      (d.limits.max_input_pixels / 1e6).toFixed(0) + " MP per image · results kept " +
      Math.round(d.limits.keep_seconds / 60) + " min";
    updateButtons();
  }
  function showModel() {
    const mo = state.models.find((x) => x.name === $("model").value);
    if (!mo) { $("model-info").textContent = ""; return; }
    const bits = [];
    if (mo.description) bits.push(mo.description);
    if (mo.tags.length) bits.push("Tags: " + mo.tags.join(", "));
    bits.push("Scales: " + (mo.scales.length ? mo.scales.map((s) => "×" + s).join(", ") : "any"));
    if (mo.license) bits.push("License: " + mo.license);
    $("model-info").textContent = bits.join(" · ");
  }
  $("model").addEventListener("change", showModel);

  // ---- files ------------------------------------------------------------------
  function addFiles(files) {
    for (const f of files) {
      const li = $("job-tpl").content.firstElementChild.cloneNode(true);
      const it = { key: ++seq, file: f, li, job: null, before: URL.createObjectURL(f), after: null, state: "ready" };
      li.querySelector(".name").textContent = f.name;
      li.querySelector(".meta").textContent = (f.size / 1024).toFixed(0) + " KB";
      setState(it, "ready", "Ready: press Upscale", 0);
      li.querySelector(".show").addEventListener("click", () => compare(it));
      li.querySelector(".rm").addEventListener("click", () => remove(it));
      $("jobs").appendChild(li);
      state.items.push(it);
    }
    $("empty").hidden = state.items.length > 0;
    updateButtons();
  }
  function setState(it, st, text, pct) {
    it.state = st;
    it.li.className = "job " + st + (state.current === it ? " current" : "");
    it.li.querySelector(".state").textContent = text;
    if (pct !== undefined) it.li.querySelector("progress").value = pct;
    it.li.dataset.state = st;
  }
  function updateButtons() {
    $("go").disabled = !state.models.length || !state.items.some((i) => i.state === "ready" || i.state === "failed");
    $("zip").disabled = state.items.filter((i) => i.state === "done").length < 1;
    $("clear").disabled = !state.items.length;
  }
  const drop = $("drop");
  drop.addEventListener("click", (e) => { if (e.target !== $("files")) $("files").click(); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("files").click(); } });
  $("files").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
  for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  drop.addEventListener("drop", (e) => addFiles(e.dataTransfer.files));
  for (const id of ["width", "height"]) $(id).addEventListener("input", () => { document.querySelector("input[value=size]").checked = true; });
  $("scale").addEventListener("input", () => { document.querySelector("input[value=scale]").checked = true; });

  // ---- jobs --------------------------------------------------------------------
  function options() {
    const o = { model: $("model").value };
    if (document.querySelector("input[name=mode]:checked").value === "size") {
      if ($("width").value) o.width = $("width").value;
      if ($("height").value) o.height = $("height").value;
      if (!o.width && !o.height) throw new Error("give a width, a height or both, or choose Scale");
    } else {
      o.scale = $("scale").value || "2";
    }
    return o;
  }
  $("options").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("form-msg").textContent = "";
    let o;
    try { o = options(); } catch (err) { $("form-msg").textContent = err.message; return; }
    const todo = state.items.filter((i) => i.state === "ready" || i.state === "failed");
    const lanes = 3;  // uploads at once; the server queues the rest
    let next = 0;
    await Promise.all(Array.from({ length: lanes }, async () => {
      while (next < todo.length) await run(todo[next++], o);
    }));
  });

  function upload(it, o) {  // XHR, for the upload's own progress
    return new Promise((resolve) => {
      const fd = new FormData();
      fd.append("image", it.file, it.file.name);
      for (const [k, v] of Object.entries(o)) fd.append(k, v);
      const x = new XMLHttpRequest();
      x.open("POST", "api/jobs");
      for (const [k, v] of Object.entries(headers())) x.setRequestHeader(k, v);
      x.upload.onprogress = (ev) => { if (ev.lengthComputable) setState(it, "uploading", "Uploading… " + Math.round(100 * ev.loaded / ev.total) + " %", 25 * ev.loaded / ev.total); };
      x.onload = () => { let j = {}; try { j = JSON.parse(x.responseText); } catch (e) { /* not JSON */ }
                         resolve({ status: x.status, body: j, retry: Number(x.getResponseHeader("Retry-After") || 0) }); };
      x.onerror = () => resolve({ status: 0, body: { error: "the connection failed" } });
      x.send(fd);
    });
  }
  async function run(it, o) {
    setState(it, "uploading", "Uploading…", 0);
    updateButtons();
    let r;
    for (let tries = 0; ; tries++) {
      r = await upload(it, o);
      if (r.status !== 503 || tries >= 30) break;
      const wait = Math.max(1, r.retry || 2);
      setState(it, "uploading", "The server is busy; trying again in " + wait + " s", 0);
      await new Promise((ok) => setTimeout(ok, wait * 1000));
    }
    if (r.status === 401) { showToken(); }
    if (r.status !== 202) { setState(it, "failed", r.body.error || "upload failed (" + r.status + ")", 0); updateButtons(); return; }
    it.job = r.body;
    it.li.querySelector(".meta").textContent = fmtSize(it.job.input_size) + " → " + fmtSize(it.job.output_size);
    await follow(it);
  }
  async function follow(it) {  // server-sent events, read with fetch (so the token header goes along)
    setState(it, "queued", "Queued", 25);
    let last = null;
    try {
      const r = await api("api/jobs/" + it.job.id + "/events");
      if (!r.ok) throw new Error(await errorText(r));
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
          if (!data) continue;
          last = JSON.parse(data);
          show(it, last);
        }
      }
    } catch (err) {
      setState(it, "failed", "lost the job's progress: " + err.message);
    }
    if (last && last.state === "done") await fetchResult(it, last);
    updateButtons();
  }
  function show(it, j) {
    it.job = j;
    if (j.state === "queued") setState(it, "queued", "Queued", 25);
    else if (j.state === "running") setState(it, "running", "Upscaling… " + Math.round(j.progress * 100) + " %", 25 + 75 * j.progress);
    else if (j.state === "failed") setState(it, "failed", j.error || "failed", 0);
    else if (j.state === "cancelled") setState(it, "failed", "cancelled", 0);
  }
  async function fetchResult(it, j) {
    setState(it, "running", "Downloading the result…", 99);
    const r = await api("api/jobs/" + j.id + "/result");
    if (!r.ok) { setState(it, "failed", await errorText(r), 0); return; }
    it.after = URL.createObjectURL(await r.blob());
    const a = it.li.querySelector(".dl");
    a.href = it.after; a.download = j.download_name; a.removeAttribute("aria-disabled");
    a.setAttribute("aria-label", "Download " + j.download_name);
    it.li.querySelector(".show").disabled = false;
    it.li.querySelector(".meta").textContent = fmtSize(j.input_size) + " → " + fmtSize(j.output_size) +
      " · " + j.model + " · " + j.backend + " · " + j.seconds.toFixed(2) + " s";
    setState(it, "done", "Done in " + j.seconds.toFixed(2) + " s on " + j.backend, 100);
    if (!state.current) compare(it);
  }
  async function remove(it) {
    if (it.job) { try { await api("api/jobs/" + it.job.id, { method: "DELETE" }); } catch (e) { /* gone already */ } }
    URL.revokeObjectURL(it.before); if (it.after) URL.revokeObjectURL(it.after);
    it.li.remove();
    state.items = state.items.filter((x) => x !== it);
    if (state.current === it) { state.current = null; $("compare").hidden = true; }
    $("empty").hidden = state.items.length > 0;
    updateButtons();
  }
  $("clear").addEventListener("click", async () => { for (const it of [...state.items]) await remove(it); });
  $("zip").addEventListener("click", async () => {
    const ids = state.items.filter((i) => i.state === "done").map((i) => i.job.id);
    const r = await api("api/results.zip?ids=" + ids.join(","));
    if (!r.ok) { $("form-msg").textContent = await errorText(r); return; }
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url; a.download = "srzoo-results.zip"; document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  });

  // ---- before / after --------------------------------------------------------------
  function compare(it) {
    if (state.current) state.current.li.classList.remove("current");
    state.current = it;
    it.li.classList.add("current");
    const after = $("after"), before = $("before");
    after.onload = () => {  // 100 %: the result's pixels at CSS pixel size; the input stretched to match
      const w = after.naturalWidth, h = after.naturalHeight;
      for (const img of [after, before]) { img.style.width = w + "px"; img.style.height = h + "px"; }
      $("stage").style.width = w + "px";
      slide();
    };
    before.src = it.before;
    after.src = it.after;
    $("compare-name").textContent = it.file.name;
    $("compare").hidden = false;
  }
  function slide() {
    const v = Number($("slider").value);
    $("after").style.clipPath = "inset(0 0 0 " + v + "%)";
    $("divider").style.left = v + "%";
    $("slider").setAttribute("aria-valuetext", v + " % before, " + (100 - v) + " % after");
  }
  $("slider").addEventListener("input", slide);

  loadModels();
})();
