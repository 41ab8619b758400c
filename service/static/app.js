// CiteQA chat page: asks POST /api/ask/stream, reads the server-sent events with
// fetch + ReadableStream (EventSource cannot POST), renders cited answers, and keeps
// the conversation in localStorage so a reload restores it. No build step, no dependencies
// (an ES module: strict, deferred). The Documents panel is documents.js.
import { errorBody, h, langOf, placeParts } from "./dom.js";

(() => {
  const ASK_URL = "/api/ask/stream";
  const EXAMPLES_URL = "/api/examples";
  const HEALTH_URL = "/healthz"; // its answer_modes say whether the server has an LLM
  const MODE_KEY = "citeqa.answerMode";
  const TOP_K = 5;
  const STORAGE_KEY = "citeqa.conversation.v1";
  const MAX_TURNS = 50; // oldest turns are dropped beyond this, to stay well inside the storage quota
  const TIMEOUT_MS = 120000;

  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const input = $("question");
  const send = $("send");
  const progress = $("progress");
  const progressText = $("progress-text");
  const conversation = $("conversation");
  const emptyState = $("empty-state");
  const examples = $("examples");
  const clearButton = $("clear");
  const dialog = $("passage-dialog");
  const modeRow = $("mode-row");
  const modeSelect = $("answer-mode");

  /** @type {Array<{id: string, question: string, state: string, response?: object, error?: object,
   *  passages?: Array<object>, streamText?: string}>} */
  let turns = loadTurns();
  let busy = false;

  // ---- small helpers ---------------------------------------------------------------------

  function formatScore(score) {
    return typeof score === "number" && Number.isFinite(score) ? score.toFixed(3) : "n/a";
  }

  /** "similarity 0.871": the question-passage cosine, on one scale for every question. The ranking
   * score's scale depends on the search mode, so it is shown only for a passage without a similarity
   * (a conversation saved before the API had the field). */
  function scoreLabel(passage) {
    const similarity = passage.similarity;
    return typeof similarity === "number" && Number.isFinite(similarity)
      ? `similarity ${formatScore(similarity)}`
      : `score ${formatScore(passage.score)}`;
  }

  function newId() {
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  }

  // ---- storage -------------------------------------------------------------------------

  function loadTurns() {
    let saved;
    try {
      saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "[]");
    } catch {
      return [];
    }
    if (!Array.isArray(saved)) return [];
    return saved
      .filter((t) => t && typeof t.id === "string" && typeof t.question === "string")
      .map((t) => {
        if (t.state === "answered" && t.response && t.response.answer) return t;
        if (t.state === "error" && t.error) return t;
        // A turn still waiting when the page went away never got its answer.
        return {
          id: t.id,
          question: t.question,
          state: "error",
          error: {
            kind: "interrupted",
            title: "This answer was interrupted",
            detail: "The page was closed or reloaded before the answer arrived.",
          },
        };
      });
  }

  function saveTurns() {
    const keep = turns.slice(-MAX_TURNS).map(({ id, question, state, response, error }) => ({
      id, question, state, response, error,
    }));
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        localStorage.setItem(STORAGE_KEY, JSON.stringify(keep));
        return;
      } catch {
        // Quota exceeded (or storage disabled): drop the older half and try again.
        keep.splice(0, Math.max(1, Math.floor(keep.length / 2)));
      }
    }
  }

  // ---- rendering -------------------------------------------------------------------------

  /** Passage text with the `highlight` spans wrapped in <mark>.
   *  The server's offsets count Unicode code points (Python str indices); JS strings count
   *  UTF-16 units, so slice an array of code points to stay right past the BMP. */
  function highlightedText(text, spans) {
    const chars = Array.from(text);
    const ranges = (spans || [])
      .map((s) => [Math.max(0, s.start | 0), Math.min(chars.length, s.end | 0)])
      .filter(([start, end]) => end > start)
      .sort((a, b) => a[0] - b[0]);
    const nodes = [];
    let at = 0;
    for (const [start, end] of ranges) {
      if (end <= at) continue; // fully inside a span already marked
      const from = Math.max(start, at);
      if (from > at) nodes.push(chars.slice(at, from).join(""));
      nodes.push(h("mark", {}, chars.slice(from, end).join("")));
      at = end;
    }
    if (at < chars.length) nodes.push(chars.slice(at).join(""));
    return nodes;
  }

  function citationButton(turn, passage) {
    return h(
      "button",
      {
        type: "button",
        class: "cite",
        "aria-haspopup": "dialog",
        "aria-label": `Source ${passage.rank}: ${[passage.title, ...placeParts(passage)].join(", ")}`,
        dataset: { turn: turn.id, rank: String(passage.rank) },
      },
      `[${passage.rank}]`,
    );
  }

  /** A sentence with its citation markers as buttons. Markers already written into the text
   *  ("…日用品[1]。") become buttons where they stand; cited ranks not written are appended. */
  function sentenceNodes(turn, text, citations, byRank) {
    const nodes = [];
    const shown = new Set();
    let at = 0;
    for (const match of text.matchAll(/\[(\d+)\]/g)) {
      const passage = byRank.get(Number(match[1]));
      if (!passage) continue;
      if (match.index > at) nodes.push(text.slice(at, match.index));
      nodes.push(citationButton(turn, passage));
      shown.add(passage.rank);
      at = match.index + match[0].length;
    }
    if (at < text.length) nodes.push(text.slice(at));
    for (const rank of citations || []) {
      const passage = byRank.get(rank);
      if (passage && !shown.has(rank)) {
        nodes.push(citationButton(turn, passage));
        shown.add(rank);
      }
    }
    return nodes;
  }

  function sourceCard(turn, passage, cited) {
    const first = (passage.highlight || [])[0];
    const chars = Array.from(passage.text || "");
    const snippet = first ? chars.slice(first.start, first.end).join("") : chars.slice(0, 140).join("");
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: cited ? "source-card cited" : "source-card",
          "aria-haspopup": "dialog",
          dataset: { turn: turn.id, rank: String(passage.rank) },
        },
        h("span", { class: "source-head" },
          h("span", { class: "badge" }, `[${passage.rank}]`),
          h("span", { class: "source-title", lang: langOf(passage.title) }, passage.title)),
        h("span", { class: "source-meta" }, [...placeParts(passage), scoreLabel(passage)].join(" · ")),
        h("span", { class: "source-snippet", lang: langOf(snippet) }, snippet),
      ),
    );
  }

  // Why an answer was withheld (the API's abstained_reason), in the question's language.
  const REASONS = {
    no_evidence: {
      en: "Nothing in the documents was found for this question.",
      zh: "文档中没有检索到与这个问题相关的内容。",
    },
    type_mismatch: {
      en: "The closest passages do not state the kind of answer asked for (such as a number, an amount or a date).",
      zh: "最接近的段落没有给出问题所要的那类答案（例如数字、金额或日期）。",
    },
    off_topic: {
      en: "The documents do not seem to be about this question.",
      zh: "文档的内容似乎与这个问题无关。",
    },
    focus_missing: {
      en: "The closest passages do not mention what the question asks about.",
      zh: "最接近的段落没有提到问题所问的对象。",
    },
    low_confidence: {
      en: "The closest passages are related, but too unlikely to hold the answer.",
      zh: "最接近的段落虽然相关，但不太可能包含答案。",
    },
  };

  // Why the guard removed a generated sentence (the API's dropped[].reason).
  const DROP_REASONS = {
    uncited: "cites no passage of this answer",
    unsupported_number: "states a number or date that no passage it cites states",
    unsupported_name: "names someone or something that no passage it cites names",
    not_similar: "says nothing close to what the passages it cites say",
  };

  /** The generated sentences the guard removed, collapsed, each with its reason. */
  function droppedList(dropped) {
    const count = dropped.length;
    return h("details", { class: "dropped" },
      h("summary", {}, `${count} generated sentence${count === 1 ? "" : "s"} removed: not supported by the passages`),
      h("ul", {}, dropped.map((d) => {
        const cites = (d.citations || []).map((n) => `[${n}]`).join("");
        const why = DROP_REASONS[d.reason] || d.reason;
        return h("li", { dataset: { reason: d.reason } },
          h("span", { class: "dropped-text", lang: langOf(d.text) }, d.text),
          cites ? ` ${cites}` : null,
          h("span", { class: "dropped-reason" }, `Removed: ${why}.`));
      })));
  }

  function reasonText(reason, question) {
    const words = REASONS[reason];
    if (!words) return null;
    return langOf(question || "") === "zh-CN" ? words.zh : words.en;
  }

  function renderAnswer(turn) {
    const response = turn.response;
    const passages = Array.isArray(response.passages) ? response.passages : [];
    const byRank = new Map(passages.map((p) => [p.rank, p]));
    const answer = response.answer || { text: "", sentences: [] };
    const sentences = Array.isArray(answer.sentences) ? answer.sentences : [];
    const abstained = Boolean(response.abstained);

    const body = h("p", { class: "answer-text", lang: langOf(answer.text || "") });
    if (sentences.length) {
      sentences.forEach((sentence, i) => {
        // A quoted code block (a sentence of several lines) starts on a line of its own.
        if (i > 0 && sentence.text.includes("\n")) body.append(h("br", {}));
        else if (i > 0 && langOf(sentence.text) === "en") body.append(" ");
        body.append(h("span", { class: "sentence" },
          sentenceNodes(turn, sentence.text, sentence.citations, byRank)));
      });
    } else {
      body.append(...sentenceNodes(turn, answer.text || "", [], byRank));
    }

    const cited = new Set(sentences.flatMap((s) => s.citations || []));
    const article = h("article", {
      class: abstained ? "answer abstained" : "answer",
      "aria-label": abstained ? "No answer found" : "Answer",
    });
    const generated = response.answer_mode === "generated";
    article.append(h("p", { class: "answer-label", dataset: { mode: response.answer_mode || "extractive" } },
      abstained ? "No answer found in the documents"
        : generated ? "Answer · generated, every sentence checked against the passage it cites" : "Answer"));
    article.append(body);
    if (response.generation_error) {
      article.append(h("p", { class: "note warn generation-error" },
        `The LLM gave no usable answer (${response.generation_error}); this answer is quoted from the passages.`));
    }
    const dropped = Array.isArray(response.dropped) ? response.dropped : [];
    if (dropped.length) article.append(droppedList(dropped));
    const why = abstained ? reasonText(response.abstained_reason, turn.question) : null;
    if (why) {
      article.append(h("p", { class: "note abstain-reason", lang: langOf(why), dataset: { reason: response.abstained_reason } }, why));
    }

    // An abstention's text already says so in the question's language; the label and the
    // "Closest passages" heading make it plain in the layout too.
    if (!abstained && response.grounded === false) {
      article.append(h("p", { class: "note warn" },
        "Caution: not every sentence could be verified against the passage it cites."));
    }

    if (passages.length) {
      const primary = abstained || cited.size === 0 ? passages : passages.filter((p) => cited.has(p.rank));
      const rest = abstained || cited.size === 0 ? [] : passages.filter((p) => !cited.has(p.rank));
      const heading = abstained ? "Closest passages" : cited.size ? "Sources" : "Retrieved passages";
      const section = h("section", { class: "sources", "aria-label": heading },
        h("h3", {}, heading),
        h("ol", { class: "source-list" }, primary.map((p) => sourceCard(turn, p, cited.has(p.rank)))));
      if (rest.length) {
        section.append(h("details", { class: "more-sources" },
          h("summary", {}, `Other retrieved passages (${rest.length})`),
          h("ol", { class: "source-list" }, rest.map((p) => sourceCard(turn, p, false)))));
      }
      article.append(section);
    } else if (abstained) {
      article.append(h("p", { class: "note" }, "No passages were retrieved."));
    }
    return article;
  }

  function renderPending(turn) {
    const found = turn.passages
      ? `Found ${turn.passages.length} passage${turn.passages.length === 1 ? "" : "s"}; writing the answer…`
      : "Searching the documents…";
    return h("article", { class: "answer pending", "aria-busy": "true", "aria-label": "Answer in progress" },
      h("p", { class: "answer-label" }, h("span", { class: "spinner", "aria-hidden": "true" }), found),
      turn.streamText
        ? h("p", { class: "answer-text streaming", lang: langOf(turn.streamText) }, turn.streamText)
        : null);
  }

  function renderError(turn) {
    const err = turn.error;
    const code = [err.code, err.status ? `HTTP ${err.status}` : null].filter(Boolean).join(" · ");
    const action = err.kind === "rejected"
      ? h("button", { type: "button", class: "quiet", dataset: { action: "edit", turn: turn.id } }, "Edit question")
      : h("button", { type: "button", class: "quiet", dataset: { action: "retry", turn: turn.id } }, "Try again");
    return h("article", { class: "answer error", role: "alert" },
      h("p", { class: "answer-label" }, err.title),
      h("p", { class: "error-detail", lang: langOf(err.detail || "") }, err.detail),
      code ? h("p", { class: "error-code" }, code) : null,
      action);
  }

  function renderTurn(turn) {
    const question = turn.question.trim()
      ? h("p", { class: "question-text", lang: langOf(turn.question) }, turn.question)
      : h("p", { class: "question-text blank" }, "(empty question)");
    const answer = turn.state === "answered" ? renderAnswer(turn)
      : turn.state === "error" ? renderError(turn)
        : renderPending(turn);
    return h("li", { class: "turn", id: `turn-${turn.id}`, dataset: { state: turn.state } },
      h("div", { class: "question" }, h("span", { class: "visually-hidden" }, "You asked: "), question),
      answer);
  }

  function update(turn, { scroll = true } = {}) {
    const fresh = renderTurn(turn);
    const old = document.getElementById(`turn-${turn.id}`);
    if (old) old.replaceWith(fresh);
    else conversation.append(fresh);
    emptyState.hidden = turns.length > 0;
    clearButton.hidden = turns.length === 0;
    if (scroll) reveal(fresh);
  }

  /** Scroll so a turn is visible above the sticky composer: its end, or its start if it is taller
   *  than the room there (so a long answer is read from the top). */
  function reveal(node) {
    const room = window.innerHeight - form.offsetHeight;
    node.scrollIntoView({ block: node.offsetHeight > room ? "start" : "end" });
  }

  // The composer is sticky at the bottom: keep scrolled-to content out from under it.
  new ResizeObserver(() => {
    document.documentElement.style.scrollPaddingBottom = `${form.offsetHeight + 8}px`;
  }).observe(form);

  function renderAll() {
    conversation.replaceChildren(...turns.map(renderTurn));
    emptyState.hidden = turns.length > 0;
    clearButton.hidden = turns.length === 0;
  }

  // ---- the passage dialog ------------------------------------------------------------------

  let opener = null;

  function openPassage(turnId, rank, trigger) {
    const turn = turns.find((t) => t.id === turnId);
    const passages = (turn && (turn.response ? turn.response.passages : turn.passages)) || [];
    const passage = passages.find((p) => p.rank === rank);
    if (!passage) return;
    $("passage-title").textContent = passage.title;
    $("passage-title").lang = langOf(passage.title);
    $("passage-rank").textContent = `[${passage.rank}]`;
    const section = Array.isArray(passage.section) ? passage.section.filter(Boolean) : [];
    $("passage-section").hidden = section.length === 0;
    $("passage-section").textContent = section.join(" › ");
    $("passage-section").lang = langOf(section.join(" "));
    $("passage-page").hidden = !Number.isInteger(passage.page);
    $("passage-page").textContent = Number.isInteger(passage.page) ? `Page ${passage.page}` : "";
    $("passage-paragraph").textContent = `Paragraph ${passage.paragraph}`;
    const label = scoreLabel(passage);
    $("passage-score").textContent = label[0].toUpperCase() + label.slice(1);
    const text = $("passage-text");
    text.lang = langOf(passage.text);
    text.replaceChildren(...highlightedText(passage.text, passage.highlight));
    $("passage-note").textContent = turn.response && turn.response.abstained
      ? "The highlighted sentence is the passage's closest match to the question."
      : "The highlighted sentence is the one that best supports the answer.";
    const same = Array.isArray(passage.same_text) ? passage.same_text : [];
    $("passage-same").hidden = same.length === 0;
    $("passage-same").textContent = same.length
      ? `The same text also stands at ${same.join(", ")} (one rank for all).`
      : "";
    opener = trigger;
    dialog.showModal();
    const mark = text.querySelector("mark");
    if (mark) mark.scrollIntoView({ block: "nearest" });
  }

  dialog.addEventListener("close", () => {
    if (opener && opener.isConnected) opener.focus();
    opener = null;
  });
  $("passage-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });

  // ---- talking to the server -----------------------------------------------------------------

  /** Yield {event, data} for each server-sent event in the response body. */
  async function* readEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const parse = (block) => {
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      return data.length ? { event, data: data.join("\n") } : null;
    };
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      // Normalise line ends, but keep a trailing "\r" until we know whether "\n" follows.
      const tail = buffer.endsWith("\r") && !done ? "\r" : "";
      buffer = (tail ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const message = parse(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (message) yield message;
      }
      buffer += tail;
      if (done) break;
    }
    const last = parse(buffer);
    if (last) yield last;
  }

  function titleForStatus(status) {
    if (status === 400 || status === 422) return "The question was not accepted";
    if (status === 413) return "The question is too long";
    if (status === 502 || status === 503 || status === 504) return "The server is unavailable right now";
    if (status >= 500) return "The server failed to answer";
    return `The request failed (HTTP ${status})`;
  }

  async function httpError(response) {
    const status = response.status;
    const { code, detail } = errorBody(await response.text().catch(() => ""));
    return {
      kind: status >= 400 && status < 500 ? "rejected" : "server",
      title: titleForStatus(status),
      detail: detail || response.statusText || "No details were given.",
      code,
      status,
    };
  }

  function networkError(detail) {
    return {
      kind: "network",
      title: "Could not reach the CiteQA server",
      detail: `${detail} Check that the server is running and try again.`,
    };
  }

  async function ask(turn) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let finished = false;
    setBusy(true);
    try {
      let response;
      try {
        response = await fetch(ASK_URL, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
          body: JSON.stringify({ question: turn.question, top_k: TOP_K, ...answerMode() }),
          signal: controller.signal,
        });
      } catch (err) {
        return fail(turn, controller.signal.aborted
          ? networkError("The server took too long to answer.")
          : networkError("The request could not be sent (the network or the server is down)."));
      }
      if (!response.ok) return fail(turn, await httpError(response));
      if (!(response.headers.get("content-type") || "").startsWith("text/event-stream") || !response.body) {
        return fail(turn, { kind: "server", title: "Unexpected reply from the server",
          detail: "The server did not send an answer stream.", status: response.status });
      }
      try {
        for await (const message of readEvents(response)) {
          let data;
          try {
            data = JSON.parse(message.data);
          } catch {
            return fail(turn, { kind: "server", title: "Unexpected reply from the server",
              detail: "Part of the answer stream could not be read." });
          }
          if (message.event === "passages") {
            turn.passages = Array.isArray(data.passages) ? data.passages : [];
            update(turn);
          } else if (message.event === "delta") {
            turn.streamText = (turn.streamText || "") + (data.text || "");
            update(turn);
          } else if (message.event === "reset") {
            // The generated sentences shown so far do not stand (the LLM failed or said the documents do
            // not answer after them): the answer that replaces them follows in deltas.
            delete turn.streamText;
            update(turn);
          } else if (message.event === "done") {
            turn.state = "answered";
            turn.response = data;
            delete turn.passages;
            delete turn.streamText;
            finished = true;
            saveTurns();
            update(turn);
            progressText.textContent = "Answer ready.";
          } else if (message.event === "error") {
            return fail(turn, { kind: "server", title: "The answer failed part-way",
              detail: data.detail || "The server reported an error.", code: data.error || "" });
          }
        }
      } catch (err) {
        return fail(turn, controller.signal.aborted
          ? networkError("The server took too long to answer.")
          : networkError("The connection was lost while the answer was arriving."));
      }
      if (!finished) {
        return fail(turn, networkError("The connection closed before the answer was complete."));
      }
      return undefined;
    } finally {
      clearTimeout(timer);
      setBusy(false);
    }
  }

  function fail(turn, error) {
    turn.state = "error";
    turn.error = error;
    delete turn.passages;
    delete turn.streamText;
    saveTurns();
    update(turn);
  }

  function setBusy(value) {
    busy = value;
    input.disabled = value;
    send.disabled = value;
    modeSelect.disabled = value;
    form.setAttribute("aria-busy", String(value));
    progress.hidden = !value;
    if (value) progressText.textContent = "Searching the documents…";
    else input.focus();
  }

  function submit() {
    if (busy) return;
    // Whitespace-only questions are sent on purpose: the server owns validation and its
    // message ("empty_question") is what the user sees.
    const turn = { id: newId(), question: input.value, state: "pending" };
    turns.push(turn);
    if (turns.length > MAX_TURNS) {
      const dropped = turns.splice(0, turns.length - MAX_TURNS);
      for (const t of dropped) document.getElementById(`turn-${t.id}`)?.remove();
    }
    input.value = "";
    saveTurns();
    update(turn);
    ask(turn);
  }

  // ---- events --------------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });

  input.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter is a new line; Enter that confirms an IME composition
    // (pinyin input) must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submit();
    }
  });

  conversation.addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.dataset.rank) {
      openPassage(target.dataset.turn, Number(target.dataset.rank), target);
      return;
    }
    const turn = turns.find((t) => t.id === target.dataset.turn);
    if (!turn || busy) return;
    if (target.dataset.action === "retry") {
      turn.state = "pending";
      delete turn.error;
      update(turn);
      ask(turn);
    } else if (target.dataset.action === "edit") {
      input.value = turn.question;
      input.focus();
    }
  });

  // ---- answer mode: offered only when the server has an LLM (GET /healthz answer_modes) -----------

  /** The answer_mode to send: the chosen one when the control is offered; else none (the server's default). */
  function answerMode() {
    return modeRow.hidden ? {} : { answer_mode: modeSelect.value };
  }

  async function loadAnswerModes() {
    let modes = [];
    try {
      const response = await fetch(HEALTH_URL, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const body = await response.json();
        modes = Array.isArray(body.answer_modes) ? body.answer_modes : [];
      }
    } catch {
      modes = []; // the question box works without the control: the server picks its default
    }
    const offered = modes.includes("generated") && modes.includes("extractive");
    if (offered) {
      let saved = null;
      try {
        saved = localStorage.getItem(MODE_KEY);
      } catch {
        saved = null;
      }
      modeSelect.value = modes.includes(saved) ? saved : modes[0];
    }
    modeRow.hidden = !offered;
    form.dataset.answerModes = modes.join(" "); // the page has asked (the browser tests wait for it)
  }

  modeSelect.addEventListener("change", () => {
    try {
      localStorage.setItem(MODE_KEY, modeSelect.value);
    } catch {
      // storage disabled: the choice lasts until the page is reloaded
    }
  });

  // ---- example questions: made by the server from the documents it serves, or none -------------

  async function loadExamples() {
    let found = [];
    try {
      const response = await fetch(EXAMPLES_URL, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const body = await response.json();
        found = Array.isArray(body.examples) ? body.examples : [];
      }
    } catch {
      found = []; // no examples is a fine page; the question box works without them
    }
    examples.replaceChildren(...found.map((example) => h("li", {},
      h("button", { type: "button", class: "suggestion", lang: langOf(example.question) }, example.question))));
    $("examples-lead").hidden = found.length === 0;
    $("examples-none").hidden = found.length > 0;
  }

  examples.addEventListener("click", (event) => {
    const button = event.target.closest("button.suggestion");
    if (!button || busy) return;
    input.value = button.textContent;
    submit();
  });

  // documents.js tells when an upload or a removal has changed the served collection.
  document.addEventListener("citeqa:collection-changed", () => loadExamples());

  clearButton.addEventListener("click", () => {
    if (busy) return;
    turns = [];
    saveTurns();
    renderAll();
    input.focus();
  });

  window.addEventListener("storage", (event) => {
    // Another tab changed the conversation: show its version unless we are mid-answer.
    if (event.key === STORAGE_KEY && !busy) {
      turns = loadTurns();
      renderAll();
    }
  });

  renderAll();
  loadAnswerModes();
  loadExamples();
  if (conversation.lastElementChild) window.scrollTo(0, document.documentElement.scrollHeight);
})();
