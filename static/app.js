/*
 * The chat page: streams /api/chat (NDJSON) into Markdown-rendered answers and sends 👍/👎 to
 * /api/feedback. No framework, no build step. Text from the server only reaches the DOM through
 * textContent or through Markdown.render, which escapes everything before adding its own tags.
 */
(function () {
  "use strict";

  var FILTERS = {
    dotnetVersion: [".NET 8", ".NET 9", ".NET 10"],
    aiLibrary: ["Microsoft.Extensions.AI", "Semantic Kernel", "Microsoft Agent Framework", "ML.NET", "OpenAI .NET SDK",
      "Azure OpenAI SDK", "ONNX Runtime", "Microsoft.Extensions.VectorData", "Microsoft.Extensions.AI.Evaluation",
      "Microsoft.ML.Tokenizers", "Model Context Protocol SDK"],
    aiProvider: ["OpenAI", "Azure OpenAI", "Ollama", "GitHub Models", "Azure AI Foundry", "Local", "Hugging Face"],
  };
  var KEY_STORAGE = "csharpAiBuddy.magicKey";
  var FILTER_STORAGE = "csharpAiBuddy.filters";
  var MAX_HISTORY = 20; // the API accepts 50; recent turns are what matter for a follow-up
  var GENERIC_ERROR = "Sorry, something went wrong. Please try again in a moment.";

  var state = { config: { requires_key: false }, conversationId: null, history: [], busy: false, controller: null, turnCount: 0 };
  var $ = function (id) { return document.getElementById(id); };
  var dom = {};

  // --- small DOM and storage helpers -------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs.text;
      else if (name === "hidden") node.hidden = Boolean(attrs.hidden);
      else if (attrs[name] === null || attrs[name] === undefined) return;
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function store(name, value) {
    try {
      if (value === null) localStorage.removeItem(name);
      else localStorage.setItem(name, value);
    } catch (e) { /* private mode: the page still works, it just forgets */ }
  }

  function load(name) {
    try { return localStorage.getItem(name); } catch (e) { return null; }
  }

  function announce(text) {
    dom.announcer.textContent = "";
    window.setTimeout(function () { dom.announcer.textContent = text; }, 30);
  }

  function isHttpUrl(value) {
    try {
      var url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:";
    } catch (e) { return false; }
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 160;
  }

  function scrollToEnd() {
    window.scrollTo({ top: document.documentElement.scrollHeight });
  }

  // A person-readable message from an HTTP error response (FastAPI's {detail} shapes).
  async function errorMessage(response) {
    var detail = null;
    try { detail = (await response.json()).detail; } catch (e) { /* not JSON */ }
    if (typeof detail === "string" && detail) return detail;
    if (Array.isArray(detail) && detail.length) {
      return "Please check your input: " + detail.map(function (d) { return d && d.msg ? d.msg : ""; }).filter(Boolean).join("; ");
    }
    if (response.status === 429) {
      var wait = response.headers.get("Retry-After");
      return "Too many requests. Please wait" + (wait ? " " + wait + " seconds" : " a moment") + " and try again.";
    }
    return GENERIC_ERROR;
  }

  // --- filters -----------------------------------------------------------------------------

  function setupFilters() {
    var saved = {};
    try { saved = JSON.parse(load(FILTER_STORAGE) || "{}") || {}; } catch (e) { saved = {}; }
    dom.filterSelects.forEach(function (select) {
      var key = select.dataset.filter;
      select.appendChild(el("option", { value: "", text: "Any" }));
      FILTERS[key].forEach(function (value) { select.appendChild(el("option", { value: value, text: value })); });
      if (FILTERS[key].indexOf(saved[key]) >= 0) select.value = saved[key];
      select.addEventListener("change", function () {
        store(FILTER_STORAGE, JSON.stringify(currentFilters()));
        updateFilterSummary();
      });
    });
    updateFilterSummary();
  }

  function currentFilters() {
    var filters = {};
    dom.filterSelects.forEach(function (select) { if (select.value) filters[select.dataset.filter] = select.value; });
    return filters;
  }

  function updateFilterSummary() {
    var values = Object.values(currentFilters());
    dom.filterSummary.textContent = values.length ? values.join(" · ") : "none";
    dom.filters.classList.toggle("active", values.length > 0);
  }

  // --- the magic key -----------------------------------------------------------------------

  // Opens the key dialog; resolves with the saved key, or null when the person cancels.
  function askForKey(reason) {
    return new Promise(function (resolve) {
      var dialog = dom.keyDialog;
      dom.keyReason.textContent = reason || "This site needs a magic key to answer questions. You only need to enter it once on this device.";
      dom.keyError.hidden = true;
      dom.keyInput.value = "";
      function finish(value) {
        dom.keyForm.removeEventListener("submit", onSubmit);
        dom.keyCancel.removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        dom.question.focus();
        resolve(value);
      }
      function onSubmit(event) {
        event.preventDefault();
        var key = dom.keyInput.value.trim();
        if (!key) {
          dom.keyError.textContent = "Please enter your magic key.";
          dom.keyError.hidden = false;
          dom.keyInput.focus();
          return;
        }
        store(KEY_STORAGE, key);
        finish(key);
      }
      function onCancel(event) { event.preventDefault(); finish(null); }
      dom.keyForm.addEventListener("submit", onSubmit);
      dom.keyCancel.addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      dom.keyInput.focus();
    });
  }

  // --- conversation turns --------------------------------------------------------------------

  function addUserTurn(text) {
    var article = el("article", { class: "turn user", "aria-label": "You asked" }, [
      el("div", { class: "bubble" }, [el("p", { text: text })]),
    ]);
    dom.conversation.appendChild(article);
    return article;
  }

  function AssistantTurn(question) {
    state.turnCount += 1;
    this.question = question || "";
    this.id = state.turnCount;
    this.text = "";
    this.spanId = null;
    this.finished = false;
    this.sources = [];
    this.pendingRender = false;
    this.noteText = el("span", { class: "note-text", text: "Thinking…" });
    this.note = el("p", { class: "status-note working" }, [el("span", { class: "spinner", "aria-hidden": "true" }), this.noteText]);
    this.answer = el("div", { class: "answer markdown" });
    this.sourceList = el("ol", { class: "source-list" });
    this.sourceSummary = el("summary", { text: "Sources" });
    this.sourceBox = el("details", { class: "sources", hidden: true }, [this.sourceSummary, this.sourceList]);
    this.footer = el("div", { class: "turn-footer" });
    this.root = el("article", { class: "turn assistant streaming", "aria-label": "C# AI Buddy answered", "aria-busy": "true" }, [
      el("span", { class: "avatar", "aria-hidden": "true", text: "C#" }),
      el("div", { class: "bubble" }, [this.note, this.answer, this.sourceBox, this.footer]),
    ]);
    dom.conversation.appendChild(this.root);
  }

  AssistantTurn.prototype.setNote = function (text, working) {
    this.noteText.textContent = text;
    this.noteText.title = text;
    this.note.hidden = false;
    this.note.classList.toggle("working", Boolean(working));
  };

  AssistantTurn.prototype.append = function (delta) {
    this.text += delta;
    this.note.hidden = true; // the answer itself now shows progress
    if (this.pendingRender) return;
    this.pendingRender = true;
    var self = this;
    window.requestAnimationFrame(function () { self.pendingRender = false; self.render(); });
  };

  AssistantTurn.prototype.render = function () {
    var follow = nearBottom();
    this.answer.innerHTML = window.Markdown.render(this.text); // escaped-first renderer, see markdown.js
    if (follow) scrollToEnd();
  };

  AssistantTurn.prototype.addSources = function (sources) {
    var self = this;
    (sources || []).forEach(function (source) {
      if (!source || !isHttpUrl(source.url) || self.sources.some(function (s) { return s.url === source.url; })) return;
      self.sources.push(source);
      var link = el("a", { href: source.url, target: "_blank", rel: "noopener noreferrer", text: source.title || source.url });
      var host = el("span", { class: "source-host", text: new URL(source.url).hostname.replace(/^www\./, "") });
      self.sourceList.appendChild(el("li", {}, [link, host]));
    });
    if (this.sources.length) {
      this.sourceSummary.textContent = "Sources consulted (" + this.sources.length + ")";
      this.sourceBox.hidden = false;
    }
  };

  AssistantTurn.prototype.settle = function () {
    this.finished = true;
    this.pendingRender = false;
    this.render();
    this.root.classList.remove("streaming");
    this.root.setAttribute("aria-busy", "false");
    this.note.classList.remove("working");
  };

  AssistantTurn.prototype.complete = function (spanId) {
    if (spanId) this.spanId = spanId;
    if (this.spanId) this.root.dataset.spanId = this.spanId; // lets support (and tests) match feedback to a trace
    this.settle();
    if (/^\s*I don(['\u2019])?t know\b/i.test(this.text)) this.sourceBox.hidden = true; // nothing was used: no "Sources"
    if (this.sources.length || this.text) this.note.hidden = true;
    addCopyButtons(this.answer);
    if (this.text && this.question) { // only whole exchanges: they seed the conversation if the server lost it
      state.history.push({ role: "user", content: this.question.slice(0, 20000) },
                         { role: "assistant", content: this.text.slice(0, 20000) });
    }
    if (this.spanId) this.footer.appendChild(feedbackWidget(this));
  };

  AssistantTurn.prototype.fail = function (message, kind) {
    this.settle();
    this.note.hidden = true;
    this.root.classList.add(kind === "stopped" ? "stopped" : "failed");
    this.footer.appendChild(el("p", { class: kind === "stopped" ? "turn-info" : "turn-error", role: kind === "stopped" ? null : "alert", text: message }));
  };

  AssistantTurn.prototype.remove = function () { this.root.remove(); };

  function addCopyButtons(container) {
    container.querySelectorAll("pre").forEach(function (pre) {
      if (!navigator.clipboard) return;
      var button = el("button", { type: "button", class: "copy", text: "Copy" });
      button.setAttribute("aria-label", "Copy code");
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(pre.querySelector("code").textContent).then(function () {
          button.textContent = "Copied";
          announce("Code copied");
          window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
        }, function () { button.textContent = "Copy failed"; });
      });
      pre.appendChild(button);
    });
  }

  // --- streaming -----------------------------------------------------------------------------

  function handleLine(raw, turn) {
    if (!raw.trim()) return;
    var line;
    try { line = JSON.parse(raw); } catch (e) { console.warn("skipped a malformed stream line"); return; }
    switch (line.type) {
      case "metadata":
        turn.spanId = line.span_id || turn.spanId;
        if (line.conversation_id) state.conversationId = line.conversation_id;
        break;
      case "content":
        if (typeof line.content === "string") turn.append(line.content);
        break;
      case "tool_call":
        turn.setNote(line.content || "Searching the knowledge base…", true);
        break;
      case "tool output":
        turn.setNote(line.content || "Search finished", true);
        turn.addSources(line.sources);
        break;
      case "complete":
        turn.complete(line.span_id);
        break;
      case "error":
        turn.fail(line.content || GENERIC_ERROR);
        break;
      default:
        break; // newer line types are ignored, not fatal
    }
  }

  async function readStream(response, turn) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      var newline;
      // A chunk may end mid-line (or mid-character): only whole lines are handled.
      while ((newline = buffer.indexOf("\n")) >= 0) {
        handleLine(buffer.slice(0, newline), turn);
        buffer = buffer.slice(newline + 1);
        if (turn.finished) break;
      }
      if (turn.finished) { reader.cancel().catch(function () {}); return; }
    }
    buffer += decoder.decode();
    handleLine(buffer, turn);
    if (!turn.finished) turn.fail("The answer stopped before it was finished. Please try again.");
  }

  function requestBody(message) {
    var body = { message: message, filters: currentFilters(), history: state.history.slice(-MAX_HISTORY) };
    if (state.conversationId) body.conversation_id = state.conversationId;
    var key = load(KEY_STORAGE);
    if (key) body.magic_key = key;
    return body;
  }

  async function ask(message) {
    message = message.trim();
    if (!message || state.busy) return;
    dom.welcome.hidden = true;
    addUserTurn(message);
    var body = requestBody(message);
    setBusy(true);
    scrollToEnd();
    try {
      for (var attempt = 0; attempt < 3; attempt++) {
        var turn = new AssistantTurn(message);
        var controller = new AbortController();
        state.controller = controller;
        var response;
        try {
          response = await fetch("/api/chat", {
            method: "POST",
            headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
            body: JSON.stringify(body),
            signal: controller.signal,
          });
        } catch (err) {
          turn.fail(controller.signal.aborted ? "You stopped this answer." : "Could not reach the server. Check your connection and try again.",
            controller.signal.aborted ? "stopped" : null);
          return;
        }
        if (response.status === 401 || response.status === 403) {
          var reason = await errorMessage(response);
          turn.remove();
          var key = await askForKey(reason);
          if (!key) {
            new AssistantTurn().fail(reason + " The question was not sent.");
            return;
          }
          body.magic_key = key;
          continue;
        }
        if (!response.ok) {
          turn.fail(await errorMessage(response));
          return;
        }
        try {
          await readStream(response, turn);
        } catch (err) {
          if (!turn.finished) {
            turn.fail(controller.signal.aborted ? "You stopped this answer." : "The connection was interrupted. Please try again.",
              controller.signal.aborted ? "stopped" : null);
          }
        }
        return;
      }
      new AssistantTurn().fail("The magic key was not accepted. Use the “Magic key” button to enter it again.");
    } finally {
      state.controller = null;
      setBusy(false);
    }
  }

  function setBusy(busy) {
    state.busy = busy;
    dom.send.textContent = busy ? "Stop" : "Send";
    dom.send.classList.toggle("stop", busy);
    dom.send.setAttribute("aria-label", busy ? "Stop the answer" : "Send");
  }

  // --- feedback ------------------------------------------------------------------------------

  function feedbackWidget(turn) {
    var commentId = "feedback-comment-" + turn.id;
    var up = el("button", { type: "button", class: "vote", "data-feedback": "thumbs_up", "aria-label": "Helpful", title: "Helpful", "aria-pressed": "false", "aria-expanded": "false", text: "👍" });
    var down = el("button", { type: "button", class: "vote", "data-feedback": "thumbs_down", "aria-label": "Not helpful", title: "Not helpful", "aria-pressed": "false", "aria-expanded": "false", text: "👎" });
    var label = el("label", { for: commentId });
    var comment = el("textarea", { id: commentId, rows: "3", maxlength: "2000", placeholder: "Optional" });
    var submit = el("button", { type: "submit", class: "primary", text: "Submit feedback" });
    var cancel = el("button", { type: "button", class: "ghost", text: "Cancel" });
    var form = el("form", { class: "feedback-form", hidden: true, novalidate: "" }, [
      label, comment, el("div", { class: "form-actions" }, [cancel, submit]),
    ]);
    var result = el("p", { class: "feedback-result", role: "status" });
    var bar = el("div", { class: "feedback-bar", role: "group", "aria-label": "Rate this answer" }, [
      el("span", { class: "feedback-label", text: "Was this helpful?" }), up, down,
    ]);
    var chosen = null;

    function open(button) {
      chosen = button;
      [up, down].forEach(function (b) {
        b.setAttribute("aria-pressed", String(b === button));
        b.setAttribute("aria-expanded", String(b === button));
      });
      label.textContent = button === up ? "What was useful? (optional)" : "What was wrong or missing? (optional)";
      result.textContent = "";
      result.className = "feedback-result";
      form.hidden = false;
      comment.focus();
      form.scrollIntoView({ block: "nearest" }); // the whole form, buttons included, not just the box
    }
    function close() {
      form.hidden = true;
      [up, down].forEach(function (b) { b.setAttribute("aria-pressed", "false"); b.setAttribute("aria-expanded", "false"); });
      if (chosen) chosen.focus();
      chosen = null;
    }
    up.addEventListener("click", function () { open(up); });
    down.addEventListener("click", function () { open(down); });
    cancel.addEventListener("click", close);
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); close(); }
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      if (!chosen) return;
      submit.disabled = true;
      var payload = { span_id: turn.spanId, feedback_type: chosen.dataset.feedback };
      if (comment.value.trim()) payload.comment = comment.value.trim();
      try {
        var headers = { "Content-Type": "application/json", Accept: "application/json" };
        var key = load(KEY_STORAGE);
        if (key) headers["X-Magic-Key"] = key; // production: feedback is accepted from the key the answer went to
        var response = await fetch("/api/feedback", {
          method: "POST",
          headers: headers,
          body: JSON.stringify(payload),
        });
        var data = response.ok ? await response.json().catch(function () { return {}; }) : null;
        if (response.ok && data.success !== false) {
          form.hidden = true;
          [up, down].forEach(function (b) { b.disabled = true; b.setAttribute("aria-expanded", "false"); });
          bar.classList.add("sent");
          result.className = "feedback-result ok";
          result.textContent = "Thanks for your feedback!";
          dom.question.focus();
        } else {
          result.className = "feedback-result error";
          result.textContent = data && data.message ? data.message : await errorMessage(response);
        }
      } catch (err) {
        result.className = "feedback-result error";
        result.textContent = "Could not send your feedback. Check your connection and try again.";
      } finally {
        submit.disabled = false;
      }
    });
    return el("div", { class: "feedback" }, [bar, form, result]);
  }

  // --- page wiring ---------------------------------------------------------------------------

  function newConversation() {
    if (state.controller) state.controller.abort();
    state.conversationId = null;
    state.history = [];
    dom.conversation.textContent = "";
    dom.welcome.hidden = false;
    dom.question.value = "";
    autosize();
    dom.question.focus();
    announce("Started a new conversation");
  }

  function autosize() {
    dom.question.style.height = "auto";
    dom.question.style.height = Math.min(dom.question.scrollHeight, 200) + "px";
  }

  function submitQuestion() {
    if (state.busy) return;
    var text = dom.question.value;
    if (!text.trim()) { dom.question.focus(); return; }
    dom.question.value = "";
    autosize();
    dom.question.focus(); // focus stays in the box for the follow-up
    ask(text);
  }

  async function loadConfig() {
    try {
      var response = await fetch("/api/config", { headers: { Accept: "application/json" } });
      if (response.ok) state.config = await response.json();
    } catch (e) { /* fall back to asking for a key only when the API says 401 */ }
    var production = state.config.environment === "production";
    dom.modeBadge.hidden = production || !state.config.environment;
    dom.modeBadge.textContent = "Development";
    dom.keyButton.hidden = !state.config.requires_key;
    if (state.config.requires_key && !load(KEY_STORAGE)) await askForKey();
  }

  function init() {
    ["conversation", "welcome", "question", "send", "filters", "announcer"].forEach(function (id) { dom[id] = $(id); });
    dom.composer = $("composer");
    dom.filterSummary = $("filter-summary");
    dom.filterSelects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
    dom.keyDialog = $("key-dialog");
    dom.keyForm = $("key-form");
    dom.keyInput = $("key-input");
    dom.keyReason = $("key-reason");
    dom.keyError = $("key-error");
    dom.keyCancel = $("key-cancel");
    dom.keyButton = $("key-button");
    dom.modeBadge = $("mode-badge");

    setupFilters();
    dom.composer.addEventListener("submit", function (event) {
      event.preventDefault();
      if (state.busy && state.controller) { state.controller.abort(); return; }
      submitQuestion();
    });
    dom.question.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submitQuestion();
      }
    });
    dom.question.addEventListener("input", autosize);
    $("new-conversation").addEventListener("click", newConversation);
    dom.keyButton.addEventListener("click", function () { askForKey("Enter a new magic key; it replaces the one saved on this device."); });
    document.querySelectorAll(".suggestion").forEach(function (button) {
      button.addEventListener("click", function () { dom.question.value = button.textContent; submitQuestion(); });
    });
    document.querySelector(".skip-link").addEventListener("click", function (event) {
      event.preventDefault();
      dom.question.focus();
    });
    loadConfig();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
