// FoleySeal verification page: upload a file to /v1/verify and render the report.
// Plain DOM code, no build step, no external resources. Every value from the report is
// inserted with textContent (never as HTML), so a hostile file name or manifest cannot inject markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";

  const form = $("verify-form");
  const input = $("file");
  const drop = $("drop");
  const submit = $("submit");
  const statusEl = $("status");
  const errorEl = $("error");
  const result = $("result");

  function setStatus(text) { statusEl.textContent = text; }

  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = false;
  }

  function clearError() {
    errorEl.textContent = "";
    errorEl.hidden = true;
  }

  // The result belongs to one file: hidden from the moment another is sent, and left hidden
  // when that one fails without a report, so that no verdict stands under another file's name.
  function hideResult() {
    result.hidden = true;
  }

  function fmtTime(seconds) {
    const s = Math.max(0, seconds || 0);
    const m = Math.floor(s / 60);
    const rest = (s - m * 60).toFixed(1).padStart(4, "0");
    return m + ":" + rest;
  }

  function fmtBytes(n) {
    if (n == null) return "?";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1024 / 1024).toFixed(1) + " MiB";
  }

  function fillFacts(dl, rows) {
    dl.replaceChildren();
    let any = false;
    for (const [label, value] of rows) {
      if (value === null || value === undefined || value === "") continue;
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      dl.append(dt, dd);
      any = true;
    }
    if (!any) {
      const dt = document.createElement("dt");
      dt.textContent = "—";
      const dd = document.createElement("dd");
      dd.textContent = "nothing found";
      dl.append(dt, dd);
    }
  }

  function sourceTypeName(uri) {
    if (!uri) return null;
    const name = String(uri).split("/").pop();
    const ai = ["trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia"];
    return ai.includes(name) ? name + " (AI-generated)" : name;
  }

  // Draw the marked segments on a bar as wide as the analysed duration.
  function drawTimeline(report) {
    const holder = $("timeline");
    holder.replaceChildren();
    const found = (report.watermark || []).filter((w) => w.found);
    const c = report.container || {};
    let duration = c.duration_s || 0;
    for (const w of report.watermark || []) duration = Math.max(duration, w.analysed_s || 0);
    const segments = found.length ? found[0].segments : [];
    // drawn at the width it is shown at (the result is visible by now): in a fixed 800-unit
    // view box, the tick labels shrank to 6 px on a phone
    const W = Math.max(240, Math.round(holder.getBoundingClientRect().width) || 800), H = 64, barY = 10, barH = 26;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-labelledby", "tl-title tl-desc");
    const title = document.createElementNS(SVG_NS, "title");
    title.id = "tl-title";
    title.textContent = "Watermark timeline";
    const desc = document.createElementNS(SVG_NS, "desc");
    desc.id = "tl-desc";
    let caption;
    if (!(report.watermark || []).length) {
      caption = "The watermark was not checked.";
    } else if (!segments.length) {
      caption = `No watermarked segment in ${fmtTime(duration)} of audio.`;
    } else {
      // a file cut from several outputs: which span carries which payload (and so which record)
      const several = new Set(segments.map((s) => s.payload).filter(Boolean)).size > 1;
      caption = "Watermarked: " + segments.map((s) => `${fmtTime(s.start_s)}–${fmtTime(s.end_s)}` +
        (several ? ` (payload ${s.payload || "unreadable"})` : "")).join(", ") + ` of ${fmtTime(duration)}.`;
    }
    desc.textContent = caption;
    svg.append(title, desc);
    const bg = document.createElementNS(SVG_NS, "rect");
    bg.setAttribute("x", "0"); bg.setAttribute("y", String(barY));
    bg.setAttribute("width", String(W)); bg.setAttribute("height", String(barH));
    bg.setAttribute("fill", "#d9dde3"); bg.setAttribute("rx", "4");
    svg.append(bg);
    if (duration > 0) {
      for (const s of segments) {
        const x = Math.max(0, (s.start_s / duration) * W);
        const w = Math.max(2, ((Math.min(s.end_s, duration) - s.start_s) / duration) * W);
        const r = document.createElementNS(SVG_NS, "rect");
        r.setAttribute("x", x.toFixed(1)); r.setAttribute("y", String(barY));
        r.setAttribute("width", w.toFixed(1)); r.setAttribute("height", String(barH));
        r.setAttribute("fill", "#1f6f43");
        r.setAttribute("class", "segment");
        r.setAttribute("data-start", String(s.start_s));
        r.setAttribute("data-end", String(s.end_s));
        if (s.payload) r.setAttribute("data-payload", s.payload);
        svg.append(r);
      }
      const ticks = Math.max(2, Math.min(5, Math.floor(W / 90)));  // labels about 45 px wide, never touching
      for (let i = 0; i <= ticks; i++) {
        const t = document.createElementNS(SVG_NS, "text");
        const x = (i / ticks) * W;
        t.setAttribute("x", String(Math.min(W - 2, Math.max(2, x))));
        t.setAttribute("y", String(barY + barH + 18));
        t.setAttribute("font-size", "13");
        t.setAttribute("fill", "#4a5360");
        t.setAttribute("text-anchor", i === 0 ? "start" : i === ticks ? "end" : "middle");
        t.textContent = fmtTime((i / ticks) * duration);
        svg.append(t);
      }
    }
    holder.append(svg);
    $("timeline-caption").textContent = caption;
  }

  // sidecarName: the .c2pa sent with the file, if any, named where the credentials came from it.
  function render(report, sidecarName) {
    const verdict = $("verdict");
    verdict.dataset.verdict = report.verdict;
    $("verdict-title").textContent = report.title || report.verdict;
    $("verdict-code").textContent = report.verdict;
    $("explanation").textContent = report.explanation || "";
    $("file-line").textContent = `${report.file} · ${fmtBytes(report.size_bytes)}` +
      (report.sha256 ? ` · SHA-256 ${report.sha256.slice(0, 16)}…` : "");

    let cred = report.credentials && report.credentials.present ? report.credentials : null;
    let credFrom = null;
    if (cred) {
      credFrom = cred.source !== "sidecar" ? "embedded in the file"
        : sidecarName ? `sidecar ${sidecarName} (sent with the file)` : "sidecar .c2pa file";
    }
    // a record that cannot vouch for the file (untrusted, unreadable, another payload) shows no credentials
    const records = (report.store || []).filter((m) => !m.refused);
    const stored = records[0];
    if (!cred && stored && stored.credentials && stored.credentials.present) {
      cred = stored.credentials;
      credFrom = stored.binding === "soft"
        ? "manifest store (found through the watermark; does not validate against this file)"
        : "manifest store (validates against this file)";
      if (records.length > 1) {
        credFrom += `; record ${stored.record_id}, the first of ${records.length} (the explanation names each)`;
      }
    }
    const gen = (cred && cred.generation_record) || {};
    const prompt = gen.prompt || (gen.generation && gen.generation.prompt) || null;
    const codes = (cred && cred.failure_codes) || [];
    // a record the verifier did not refuse has a valid, trusted signature, and may fail only its
    // hard binding: a copy's bytes are not the signed ones, which "Invalid" would misstate
    const trust = cred && stored && cred === stored.credentials && stored.binding === "soft"
      ? "signature valid and trusted, over the original's bytes, not this copy's" + (codes.length ? ` (${codes.join(", ")})` : "")
      : cred && cred.state + (codes.length ? " — " + codes.join(", ") : "");
    fillFacts($("credentials"), cred ? [
      ["Found in", credFrom],
      ["Signer", cred.signer],
      ["Trust", trust],
      ["Source type", cred.digital_source_type ? sourceTypeName(cred.digital_source_type)
        : (cred.parent_source_type ? sourceTypeName(cred.parent_source_type) + ", of the audio this file was edited from" : null)],
      ["Claim generator", cred.claim_generator],
      ["Generated by", gen.generator && typeof gen.generator === "object" ? [gen.generator.name, gen.generator.version].filter(Boolean).join(" ") : gen.generator],
      ["Title", cred.title],
      ["Prompt", prompt],
      ["Actions", (cred.actions || []).map((a) => a.action).filter(Boolean).join(", ")],
    ] : []);

    const wm = (report.watermark || []).find((w) => w.found);
    fillFacts($("store"), [
      ["Watermark", wm ? `found (p ${wm.p_value < 1e-300 ? "< 1e-300" : "= " + Number(wm.p_value).toExponential(1)}${wm.store_confirmed ? ", confirmed by an issued payload" : ""}), payload ${(wm.payloads || []).join(", ") || "unreadable"}`
        : ((report.watermark || []).length ? "not found" : "not checked")],
      ["Record", records.length > 1
        ? records.map((m) => `${m.record_id} (payload ${m.payload}, ${m.binding} binding)`).join("; ")
        : stored ? stored.record_id : null],
      ["Binding", records.length === 1 ? stored.binding : null],
      ["Registered", records.length === 1 && stored.record ? stored.record.created_at : null],
      ["Refused record", (report.store || []).filter((m) => m.refused).map((m) => `${m.record_id}: ${m.refused}`).join("; ") || null],
    ]);

    const c = report.container || {};
    fillFacts($("container"), report.container ? [
      ["Format", `${c.format} (${c.format_long})`],
      ["Audio", c.codec ? `${c.codec}, ${c.sample_rate} Hz, ${c.channels} channel(s)` : "none"],
      ["Duration", c.duration_s != null ? fmtTime(c.duration_s) : null],
      ["Video", c.has_video ? "yes" : "no"],
    ] : [["Error", report.error]]);

    const notes = $("notes");
    notes.replaceChildren();
    for (const n of report.notes || []) {
      const li = document.createElement("li");
      li.textContent = n;
      notes.append(li);
    }
    $("notes-block").hidden = !(report.notes || []).length;
    $("raw").textContent = JSON.stringify(report, null, 2);
    result.hidden = false;
    drawTimeline(report);
  }

  // One verification at a time. A newer choice (file input, drop) aborts the request before it,
  // and only the latest request may touch the page: an answer already on its way when it was
  // superseded is dropped by its token, so the verdict shown is always the chosen file's.
  let latest = 0;            // token of the newest request
  let inFlight = null;       // its AbortController while it runs

  function isLatest(token) { return token === latest; }

  // Cancel the running request, if any; its promise settles quietly (see verify()).
  function abortRunning() {
    if (inFlight) inFlight.abort();
    inFlight = null;
  }

  function setBusy(busy) {
    submit.disabled = busy;
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // Start a new request's turn: the running one is aborted and its answer will be dropped.
  function supersede() {
    abortRunning();
    return ++latest;
  }

  const isSidecar = (f) => /\.c2pa$/i.test(f.name);

  // What a selection (file input or drop) sends: its first audio or video file, and the .c2pa
  // sidecar that goes with it: the one named after it (clip.ogg.c2pa, or clip.c2pa as c2patool
  // names it), else the only one chosen. `others`: files left out (one file at a time).
  function pickFiles(list) {
    const files = Array.from(list || []);
    const media = files.filter((f) => !isSidecar(f));
    const sidecars = files.filter(isSidecar);
    const file = media[0] || null;
    let sidecar = null;
    if (file) {
      const stem = file.name.replace(/\.[^.]*$/, "");
      sidecar = sidecars.find((m) => m.name === file.name + ".c2pa") ||
        sidecars.find((m) => m.name === stem + ".c2pa") ||
        (sidecars.length === 1 ? sidecars[0] : null);
    }
    return { file, sidecar, sidecars, others: Math.max(0, media.length - 1) };
  }

  // A manifest chosen without its file is no media: said here, without an upload.
  function refuseLoneSidecar(sidecar) {
    supersede();
    setBusy(false);
    hideResult();
    setStatus("");
    clearError();
    showError(`${sidecar.name} is a C2PA manifest (a sidecar), not audio or video: ` +
      "choose or drop it together with the file it belongs to.");
  }

  async function verify(list) {
    const { file, sidecar, sidecars, others } = pickFiles(list);
    if (!file) {
      if (sidecars.length) refuseLoneSidecar(sidecars[0]);
      else showError("Choose a file first.");
      return;
    }
    const token = supersede();
    clearError();
    hideResult();
    const controller = new AbortController();
    inFlight = controller;
    setBusy(true);
    const what = sidecar ? `${file.name} with its sidecar ${sidecar.name}` : file.name;
    const skipped = others ? ` (one file at a time: ${others} other file(s) not sent)` : "";
    setStatus(`Uploading and verifying ${what}…${skipped}`);
    const body = new FormData();
    body.append("file", file, file.name);
    if (sidecar) body.append("sidecar", sidecar, sidecar.name);
    const sidecarName = sidecar ? sidecar.name : null;
    try {
      const resp = await fetch("/v1/verify", { method: "POST", body, signal: controller.signal });
      let data = null;
      try { data = await resp.json(); } catch (e) { data = null; }
      if (!isLatest(token)) return;  // superseded while its answer was read
      if (resp.ok && data) {
        render(data, sidecarName);
        setStatus(`Verified ${what}.${skipped}`);
        $("verdict-title").focus({ preventScroll: false });
      } else if (data && data.report) {
        render(data.report, sidecarName);
        setStatus("");
        showError(`${file.name}: ${data.detail || "the file could not be examined"}`);
      } else {
        hideResult();
        setStatus("");
        showError(`${file.name}: ${(data && data.detail) || resp.statusText || "verification failed"} (HTTP ${resp.status})`);
      }
    } catch (err) {
      if (!isLatest(token)) return;  // aborted for a newer choice, which reports for itself
      hideResult();
      setStatus("");
      // fetch() rejects with a TypeError ("Failed to fetch") when no answer came at all
      showError("Could not reach the verification service: check the connection, or try again in a moment.");
    } finally {
      if (isLatest(token)) {
        inFlight = null;
        setBusy(false);
      }
    }
  }

  $("verdict-title").tabIndex = -1;

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    verify(input.files);
  });
  input.addEventListener("change", () => {
    if (input.files && input.files.length) verify(input.files);
  });
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      input.click();
    }
  });
  drop.addEventListener("dragover", () => drop.classList.add("over"));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  // Dragging and dropping is handled for the whole window: the browser's default for a file
  // dropped beside the zone is to open it in place of the page. A drop anywhere counts as a
  // drop on the zone (it bubbles here from the zone too).
  for (const type of ["dragenter", "dragover"]) {
    window.addEventListener(type, (ev) => ev.preventDefault());
  }
  window.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const files = ev.dataTransfer && ev.dataTransfer.files;
    if (files && files.length) verify(files);
  });

  // a 503 (store down) carries the same body: its limit is the server's all the same
  fetch("/v1/health").then((r) => r.json()).then((h) => {
    if (h && h.max_upload_bytes) $("max-size").textContent = fmtBytes(h.max_upload_bytes);
  }).catch(() => {});
})();
