// CiteQA Documents panel: the collection being served (GET /api/documents), uploads by file picker or
// drag-and-drop (POST /api/documents, one request per file so that one bad file does not block the
// others: the bytes' progress from XHR, then the indexing job's from GET /api/jobs/{id}), and removal
// after a confirmation dialog (DELETE /api/documents/{id}). Milestones are announced in a polite live region.
import { errorBody, h, langOf } from "./dom.js";

(() => {
  const DOCUMENTS_URL = "/api/documents";
  const JOBS_URL = "/api/jobs";
  const POLL_MS = 500;
  const LIST_POLL_MS = 2000;
  const UPLOAD_TIMEOUT_MS = 10 * 60 * 1000;

  const $ = (id) => document.getElementById(id);
  const panel = $("documents-panel");
  const toggle = $("documents-toggle");
  const badge = $("documents-badge");
  const list = $("documents-list");
  const summary = $("documents-summary");
  const panelError = $("documents-error");
  const live = $("documents-live");
  const uploadsList = $("uploads");
  const fileInput = $("file-input");
  const dropZone = $("drop-zone");
  const removeDialog = $("remove-dialog");
  const clearUploads = $("uploads-clear");

  /** @type {Array<object>} uploads of this page, oldest first */
  const uploads = [];
  let uploadQueue = Promise.resolve();
  let listTimer = null;
  let lastGeneration = null;
  let removing = null; // {doc, button} while the confirmation is open
  const removals = new Map(); // document id -> job id, while its deletion job runs
  let listed = new Map(); // document id -> the document as last listed

  // ---- formatting ------------------------------------------------------------------------------

  function bytes(n) {
    if (!Number.isFinite(n)) return "";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function duration(seconds) {
    if (!Number.isFinite(seconds)) return "";
    if (seconds < 1) return "less than a second";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    return `${Math.round(seconds / 60)} min`;
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  const STAGES = { scan: "Scanning the folder", read: "Reading", embed: "Embedding", commit: "Saving the index" };

  /** "Embedding: 12 of 40 texts · about 3 s left", from a job's stage, progress and ETA. */
  function jobProgressText(job) {
    if (job.status === "queued") return "Waiting for the indexer…";
    const stage = STAGES[job.stage] || "Indexing";
    const { done = 0, total = 0 } = job.progress || {};
    const units = job.stage === "embed" ? "texts" : job.stage === "read" ? "files" : "steps";
    let text = total > 0 ? `${stage}: ${done} of ${total} ${units}` : `${stage}…`;
    if (typeof job.eta_s === "number" && job.eta_s > 0) text += ` · about ${duration(job.eta_s)} left`;
    return text;
  }

  function announce(text) {
    // Re-setting the same text would not be announced again: clear first.
    live.textContent = "";
    window.setTimeout(() => { live.textContent = text; }, 50);
  }

  function apiPath(id) {
    return id.split("/").map(encodeURIComponent).join("/");
  }

  // ---- the list ------------------------------------------------------------------------------------

  function statusLabel(doc) {
    return { indexed: "Indexed", skipped: "Skipped", pending: "Pending", removing: "Removing" }[doc.status]
      || doc.status;
  }

  function docMeta(doc) {
    const parts = [doc.path];
    if (doc.status === "indexed" || doc.passages) parts.push(plural(doc.passages || 0, "passage"));
    if (Number.isInteger(doc.pages)) parts.push(plural(doc.pages, "page"));
    if (doc.format) parts.push(doc.format);
    if (doc.encoding) parts.push(doc.encoding);
    if (Number.isFinite(doc.size)) parts.push(bytes(doc.size));
    return parts.join(" · ");
  }

  function docItem(doc) {
    const busyRemoving = removals.has(doc.id) || doc.status === "removing";
    const reason = doc.status === "skipped"
      ? h("p", { class: "doc-reason" }, `Skipped: ${doc.reason || "no reason given"}`)
      : doc.status === "pending"
        ? h("p", { class: "doc-reason" }, "Being indexed; it will answer questions when the job commits.")
        : null;
    return h("li", { class: "doc", dataset: { id: doc.id, status: busyRemoving ? "removing" : doc.status } },
      h("div", { class: "doc-head" },
        h("span", { class: "doc-title", lang: langOf(doc.title) }, doc.title),
        h("span", { class: `status status-${busyRemoving ? "removing" : doc.status}` },
          busyRemoving ? "Removing" : statusLabel(doc))),
      h("p", { class: "doc-meta" }, docMeta(doc)),
      reason,
      busyRemoving ? null : h("button", {
        type: "button",
        class: "quiet remove",
        "aria-label": `Remove ${doc.title}`,
        dataset: { id: doc.id },
      }, "Remove"));
  }

  function renderList(body) {
    const docs = Array.isArray(body.documents) ? body.documents : [];
    listed = new Map(docs.map((d) => [d.id, d]));
    const focused = document.activeElement;
    const focusedId = focused && focused.matches("button.remove") ? focused.dataset.id : null;
    list.replaceChildren(...docs.map(docItem));
    if (!docs.length) list.append(h("li", { class: "doc empty" }, "No documents yet: add some above."));
    const counts = body.counts || {};
    const parts = [`${plural(counts.indexed || 0, "document")} indexed`];
    if (counts.skipped) parts.push(`${counts.skipped} skipped`);
    if (counts.pending) parts.push(`${counts.pending} pending`);
    summary.textContent = `${parts.join(" · ")} · ${plural(body.passages || 0, "passage")} served`;
    if (focusedId) {
      const again = list.querySelector(`button.remove[data-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
    // Keep refreshing while the collection is changing and the panel is open.
    const changing = docs.some((d) => d.status === "pending" || d.status === "removing") || removals.size > 0;
    window.clearTimeout(listTimer);
    if (changing && panel.open) listTimer = window.setTimeout(refreshList, LIST_POLL_MS);
    if (lastGeneration !== null && body.generation !== lastGeneration) {
      document.dispatchEvent(new CustomEvent("citeqa:collection-changed", { detail: body }));
    }
    lastGeneration = body.generation;
  }

  function showPanelError(title, error) {
    const code = [error.code, error.status ? `HTTP ${error.status}` : null].filter(Boolean).join(" · ");
    panelError.replaceChildren(
      h("strong", {}, title),
      " ",
      h("span", { lang: langOf(error.detail) }, error.detail || "No details were given."),
      code ? h("span", { class: "error-code" }, ` (${code})`) : null,
    );
    panelError.hidden = false;
  }

  async function refreshList() {
    try {
      const response = await fetch(DOCUMENTS_URL, { headers: { Accept: "application/json" } });
      const text = await response.text();
      if (!response.ok) {
        showPanelError("Could not list the documents:", { ...errorBody(text), status: response.status });
        return;
      }
      panelError.hidden = true;
      renderList(JSON.parse(text));
    } catch {
      showPanelError("Could not list the documents:", {
        detail: "the server could not be reached. Check that it is running and try again.",
      });
    }
  }

  // ---- jobs ------------------------------------------------------------------------------------------

  /** Poll a job until it is done or failed; ``onUpdate(job)`` on every reply. Resolves with the last job. */
  async function followJob(jobId, onUpdate) {
    let failures = 0;
    for (;;) {
      await new Promise((resolve) => { window.setTimeout(resolve, POLL_MS); });
      let job;
      try {
        const response = await fetch(`${JOBS_URL}/${encodeURIComponent(jobId)}`,
          { headers: { Accept: "application/json" } });
        const text = await response.text();
        if (!response.ok) {
          return { id: jobId, status: "failed", error: errorBody(text).detail || `HTTP ${response.status}` };
        }
        job = JSON.parse(text);
      } catch {
        failures += 1;
        if (failures >= 20) {
          return { id: jobId, status: "failed", error: "the server stopped answering while the job ran" };
        }
        continue;
      }
      failures = 0;
      onUpdate(job);
      if (job.status === "done" || job.status === "failed") return job;
    }
  }

  // ---- uploads ---------------------------------------------------------------------------------------

  function uploadState(item) {
    switch (item.phase) {
      case "waiting": return "Waiting to upload…";
      case "uploading": {
        const total = item.total || item.size;
        const pct = total ? Math.floor((100 * item.loaded) / total) : 0;
        return `Uploading: ${pct}% (${bytes(item.loaded)} of ${bytes(total)})`;
      }
      case "indexing": return item.job ? jobProgressText(item.job) : "Uploaded; indexing…";
      case "indexed": return `Indexed: ${plural(item.result.passages || 0, "passage")}`;
      case "skipped": return `Skipped: ${item.result.reason || "no reason given"}`;
      case "failed": return `Failed: ${item.error.detail}`;
      case "rejected": return `Not accepted: ${item.error.detail}`;
      default: return "";
    }
  }

  function progressBar(item) {
    const label = `${item.name}: progress`;
    if (item.phase === "uploading") {
      return h("progress", { max: item.total || item.size || 1, value: item.loaded, "aria-label": label });
    }
    if (item.phase === "indexing") {
      const { done = 0, total = 0 } = (item.job && item.job.progress) || {};
      // Without a total yet the bar is indeterminate (no value attribute).
      return total > 0 && item.job.status === "running"
        ? h("progress", { max: total, value: done, "aria-label": label })
        : h("progress", { "aria-label": label });
    }
    return null;
  }

  const FINISHED = new Set(["indexed", "skipped", "failed", "rejected"]);

  function renderUpload(item) {
    const code = item.error
      ? [item.error.code, item.error.status ? `HTTP ${item.error.status}` : null].filter(Boolean).join(" · ")
      : "";
    const node = h("li", { class: "upload-item", id: `upload-${item.key}`, dataset: { phase: item.phase } },
      h("div", { class: "upload-head" },
        h("span", { class: "upload-name", lang: langOf(item.name) }, item.name),
        h("span", { class: "upload-size" }, bytes(item.size))),
      progressBar(item),
      h("p", { class: "upload-state", lang: item.error ? langOf(item.error.detail) : null }, uploadState(item)),
      code ? h("p", { class: "error-code" }, code) : null);
    const old = document.getElementById(`upload-${item.key}`);
    if (old) old.replaceWith(node);
    else uploadsList.append(node);
    const active = uploads.filter((u) => !FINISHED.has(u.phase)).length;
    clearUploads.hidden = !uploads.some((u) => FINISHED.has(u.phase));
    badge.hidden = active === 0;
    badge.textContent = active ? ` (${active} indexing)` : "";
  }

  function finish(item, phase, message) {
    item.phase = phase;
    renderUpload(item);
    announce(message);
  }

  /** Send one file; resolves when its bytes are sent and answered (its job is followed afterwards). */
  function sendFile(item) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", DOCUMENTS_URL);
      xhr.timeout = UPLOAD_TIMEOUT_MS;
      xhr.setRequestHeader("Accept", "application/json");
      item.phase = "uploading";
      item.loaded = 0;
      renderUpload(item);
      xhr.upload.addEventListener("progress", (event) => {
        item.loaded = event.loaded;
        if (event.lengthComputable) item.total = event.total;
        renderUpload(item);
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = null;
        }
        if (xhr.status === 202 && body && body.job) {
          item.loaded = item.total || item.size;
          item.phase = "indexing";
          item.job = body.job;
          renderUpload(item);
          announce(`${item.name} uploaded; indexing it.`);
          watchUpload(item);
        } else {
          item.error = { ...errorBody(xhr.responseText), status: xhr.status };
          if (!item.error.detail) item.error.detail = xhr.statusText || "No details were given.";
          finish(item, "rejected", `${item.name} was not accepted: ${item.error.detail}`);
        }
        resolve();
      });
      const lost = (detail) => () => {
        item.error = { detail };
        finish(item, "failed", `${item.name} failed: ${detail}`);
        resolve();
      };
      xhr.addEventListener("error", lost("the upload could not be sent (the network or the server is down)."));
      xhr.addEventListener("timeout", lost("the upload took too long."));
      xhr.addEventListener("abort", lost("the upload was cancelled."));
      const form = new FormData();
      form.append("files", item.file, item.name);
      xhr.send(form);
    });
  }

  async function watchUpload(item) {
    const job = await followJob(item.job.id, (update) => {
      item.job = update;
      renderUpload(item);
    });
    item.job = job;
    const mine = (job.files || []).find((f) => f.path === item.path) || (job.files || [])[0];
    if (job.status === "failed" || !mine) {
      item.error = { detail: job.error || "the indexing job failed; see the server log" };
      finish(item, "failed", `${item.name} failed: ${item.error.detail}`);
    } else if (mine.status === "indexed") {
      item.result = mine;
      finish(item, "indexed", `${item.name} indexed: ${plural(mine.passages || 0, "passage")}.`);
    } else if (mine.status === "skipped") {
      item.result = mine;
      finish(item, "skipped", `${item.name} skipped: ${mine.reason || "no reason given"}.`);
    } else {
      item.error = { detail: mine.reason || `the file ended ${mine.status}` };
      finish(item, "failed", `${item.name} failed: ${item.error.detail}`);
    }
    await refreshList();
  }

  let uploadCount = 0;

  function addFiles(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length) return;
    const items = files.map((file) => {
      uploadCount += 1;
      return { key: String(uploadCount), file, name: file.name, path: file.name, size: file.size,
        loaded: 0, total: file.size, phase: "waiting" };
    });
    for (const item of items) {
      uploads.push(item);
      renderUpload(item);
    }
    announce(`Uploading ${plural(items.length, "file")}.`);
    // One file at a time: the bytes of one upload do not compete with another's.
    for (const item of items) uploadQueue = uploadQueue.then(() => sendFile(item));
  }

  clearUploads.addEventListener("click", () => {
    for (let i = uploads.length - 1; i >= 0; i -= 1) {
      if (FINISHED.has(uploads[i].phase)) {
        document.getElementById(`upload-${uploads[i].key}`)?.remove();
        uploads.splice(i, 1);
      }
    }
    clearUploads.hidden = true;
    fileInput.focus();
  });

  fileInput.addEventListener("change", () => {
    addFiles(fileInput.files);
    fileInput.value = ""; // choosing the same file again fires change again
  });

  // ---- drag and drop: onto the drop zone, anywhere in the panel, or anywhere on the page -------------

  const hasFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");

  for (const target of [window, panel]) {
    target.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault(); // allow the drop (and keep the browser from opening the file)
      event.dataTransfer.dropEffect = "copy";
      dropZone.classList.add("dragging");
    });
  }
  window.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) dropZone.classList.remove("dragging");
  });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dropZone.classList.remove("dragging");
    if (!panel.open) openPanel();
    addFiles(event.dataTransfer.files);
  });

  // ---- removal, after a confirmation ------------------------------------------------------------------

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button.remove");
    if (!button) return;
    const doc = listed.get(button.dataset.id);
    if (!doc) return;
    removing = { doc, button };
    const passages = doc.passages
      ? `its ${plural(doc.passages, "passage")} will no longer answer questions.`
      : "it leaves the list.";
    $("remove-text").replaceChildren(
      h("span", { lang: langOf(doc.title) }, `“${doc.title}”`),
      ` (${doc.path}) will be deleted from the documents folder, and ${passages}`,
    );
    removeDialog.returnValue = "";
    removeDialog.showModal();
    $("remove-cancel").focus();
  });

  removeDialog.addEventListener("close", () => {
    const pending = removing;
    removing = null;
    if (!pending) return;
    if (removeDialog.returnValue === "remove") {
      remove(pending.doc);
    } else if (pending.button.isConnected) {
      pending.button.focus();
    }
  });

  async function remove(doc) {
    let response;
    let text = "";
    try {
      response = await fetch(`${DOCUMENTS_URL}/${apiPath(doc.id)}`,
        { method: "DELETE", headers: { Accept: "application/json" } });
      text = await response.text();
    } catch {
      showPanelError(`Could not remove “${doc.title}”:`, {
        detail: "the server could not be reached. Check that it is running and try again.",
      });
      return;
    }
    if (response.status !== 202) {
      showPanelError(`Could not remove “${doc.title}”:`, { ...errorBody(text), status: response.status });
      return;
    }
    panelError.hidden = true;
    const job = JSON.parse(text).job;
    removals.set(doc.id, job.id);
    announce(`Removing ${doc.title}.`);
    $("collection-title").focus(); // its Remove button is going away
    await refreshList();
    const final = await followJob(job.id, () => {});
    removals.delete(doc.id);
    if (final.status === "done") announce(`${doc.title} removed.`);
    else showPanelError(`Removing “${doc.title}” failed:`, { detail: final.error || "see the server log" });
    await refreshList();
  }

  // ---- the panel -------------------------------------------------------------------------------------

  function openPanel() {
    refreshList();
    panel.showModal();
    toggle.setAttribute("aria-expanded", "true");
  }

  toggle.addEventListener("click", openPanel);
  $("documents-close").addEventListener("click", () => panel.close());
  $("documents-refresh").addEventListener("click", refreshList);
  panel.addEventListener("close", () => {
    toggle.setAttribute("aria-expanded", "false");
    window.clearTimeout(listTimer);
    toggle.focus();
  });
  panel.addEventListener("click", (event) => {
    if (event.target !== panel) return; // a click inside the drawer
    const box = panel.getBoundingClientRect();
    const inside = event.clientX >= box.left && event.clientX <= box.right
      && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) panel.close(); // a click on the backdrop
  });
})();
