/*
 * A small, safe Markdown renderer for model answers.
 *
 * Safety rule: the whole input is HTML-escaped FIRST; every tag in the output is one this file
 * writes itself. Links are kept only for http(s) URLs. Works in the browser (window.Markdown)
 * and in Node (module.exports) so it can be unit-tested without a browser.
 *
 * Supported: ATX headings, paragraphs, unordered/ordered lists, blockquotes, horizontal rules,
 * fenced code blocks (an unclosed fence renders as code, which suits a stream still arriving),
 * inline code, **bold**, *italic* / _italic_, ~~strike~~ and [text](https://url).
 */
(function (root) {
  "use strict";

  var ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (ch) { return ESCAPES[ch]; });
  }

  // Placeholders use U+E000..U+E001 (private use); the input has them stripped first, so a
  // model cannot forge one to smuggle text past the inline rules.
  var PH_OPEN = "\uE000";
  var PH_CLOSE = "\uE001";
  var PH_RE = /\uE000(\d+)\uE001/g;

  // A URL may hold one level of balanced parentheses (Wikipedia-style links).
  var LINK_RE = /\[([^\]\n]+)\]\(\s*((?:[^\s()]|\([^\s()]*\))+)\s*\)/g;
  var SAFE_URL_RE = /^https?:\/\/[^\s]+$/i;

  var BARE_URL_RE = /(^|[\s(]|&quot;|&lt;|&#39;)(https?:\/\/(?:(?!&(?:quot|lt|gt|#39);)[^\s\uE000])*(?:(?!&(?:quot|lt|gt|#39);)[^\s\uE000.,;:!?)]))/gi;

  function anchor(url, labelHtml) {
    // `url` is already escaped text; an escaped URL is also a safe attribute value.
    return '<a href="' + url + '" target="_blank" rel="noopener noreferrer">' + labelHtml + "</a>";
  }

  function renderInline(escaped) {
    var slots = [];
    function keep(html) {
      slots.push(html);
      return PH_OPEN + (slots.length - 1) + PH_CLOSE;
    }
    var out = escaped
      // inline code first: nothing inside it is formatted
      .replace(/(`+)([^`\n]|[^`\n][\s\S]*?[^`\n])\1(?!`)/g, function (_, ticks, code) {
        return keep("<code>" + code.trim() + "</code>");
      })
      .replace(LINK_RE, function (whole, label, url) {
        if (!SAFE_URL_RE.test(url)) return label; // javascript:, data:, relative: keep the words only
        return keep(anchor(url, formatEmphasis(label)));
      })
      // bare URLs; an escaped quote or bracket (an entity) ends one, as does trailing punctuation
      .replace(BARE_URL_RE, function (whole, before, url) {
        return before + keep(anchor(url, url));
      });
    out = formatEmphasis(out);
    // Restore twice: a link label may itself hold a code slot.
    for (var i = 0; i < 2; i++) {
      out = out.replace(PH_RE, function (_, n) { return slots[Number(n)]; });
    }
    return out;
  }

  function formatEmphasis(text) {
    return text
      .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, "<strong>$1</strong>")
      .replace(/__(?=\S)([\s\S]*?\S)__(?![A-Za-z0-9])/g, "<strong>$1</strong>")
      .replace(/~~(?=\S)([\s\S]*?\S)~~/g, "<del>$1</del>")
      .replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)/g, "$1<em>$2</em>")
      // underscores only at word edges, so snake_case_names stay as they are
      .replace(/(^|[^\w])_(?=\S)([^_\n]*?\S)_(?![A-Za-z0-9_])/g, "$1<em>$2</em>");
  }

  var FENCE_RE = /^ {0,3}(`{3,}|~{3,})\s*([\w#+.-]*)/;
  var HEADING_RE = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  var UL_RE = /^(\s*)[-*+]\s+(.*)$/;
  var OL_RE = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;
  var HR_RE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
  var QUOTE_RE = /^ {0,3}&gt;\s?(.*)$/;

  function renderBlocks(lines) {
    var html = [];
    var i = 0;
    var paragraph = [];

    function flushParagraph() {
      if (paragraph.length) {
        html.push("<p>" + renderInline(paragraph.join("\n")).replace(/\n/g, "<br>") + "</p>");
        paragraph = [];
      }
    }

    while (i < lines.length) {
      var line = lines[i];
      var m;

      if ((m = FENCE_RE.exec(line))) {
        flushParagraph();
        var fence = m[1];
        var lang = m[2];
        var body = [];
        i++;
        while (i < lines.length && !(lines[i].trim().indexOf(fence) === 0 && lines[i].trim().replace(/[`~]/g, "") === "")) {
          body.push(lines[i]);
          i++;
        }
        i++; // the closing fence (or past the end when the stream has not closed it yet)
        var cls = lang ? ' class="language-' + lang.toLowerCase().replace(/[^a-z0-9#+-]/g, "") + '"' : "";
        var label = lang ? ' data-lang="' + lang + '"' : "";
        html.push("<pre" + label + "><code" + cls + ">" + body.join("\n") + "</code></pre>");
        continue;
      }
      if (!line.trim()) {
        flushParagraph();
        i++;
        continue;
      }
      if ((m = HEADING_RE.exec(line))) {
        flushParagraph();
        // The answer sits under the page's own h1/h2, so model headings start at h3.
        var level = Math.min(6, m[1].length + 2);
        html.push("<h" + level + ">" + renderInline(m[2]) + "</h" + level + ">");
        i++;
        continue;
      }
      if (HR_RE.test(line)) {
        flushParagraph();
        html.push("<hr>");
        i++;
        continue;
      }
      if (QUOTE_RE.test(line)) {
        flushParagraph();
        var quoted = [];
        while (i < lines.length && (m = QUOTE_RE.exec(lines[i]))) {
          quoted.push(m[1]);
          i++;
        }
        html.push("<blockquote>" + renderBlocks(quoted) + "</blockquote>");
        continue;
      }
      if (UL_RE.test(line) || OL_RE.test(line)) {
        flushParagraph();
        var consumed = renderList(lines, i, html);
        i = consumed;
        continue;
      }
      paragraph.push(line.trim());
      i++;
    }
    flushParagraph();
    return html.join("\n");
  }

  function listMatch(line) {
    var m = UL_RE.exec(line);
    if (m) return { indent: m[1].length, ordered: false, text: m[2] };
    m = OL_RE.exec(line);
    if (m) return { indent: m[1].length, ordered: true, start: Number(m[2]), text: m[3] };
    return null;
  }

  function indentOf(line) {
    return line.length - line.replace(/^\s+/, "").length;
  }

  // One list; an item owns the lines indented under it (nested lists, code fences, more
  // paragraphs), rendered as blocks of their own. Returns the index after the list.
  function renderList(lines, i, html) {
    var first = listMatch(lines[i]);
    var tag = first.ordered ? "ol" : "ul";
    var start = first.ordered && first.start !== 1 ? ' start="' + first.start + '"' : "";
    var items = [];
    while (i < lines.length) {
      var line = lines[i];
      var item = listMatch(line);
      if (item && item.indent <= first.indent) {
        if (item.ordered !== first.ordered || item.indent < first.indent) break;
        items.push({ lines: [item.text], column: line.length - item.text.length });
        i++;
        continue;
      }
      var current = items[items.length - 1];
      if (line.trim() && indentOf(line) > first.indent) {
        current.lines.push(line.slice(Math.min(indentOf(line), current.column)));
        i++;
        continue;
      }
      if (!line.trim()) {
        // A blank line continues the list only if the list (or this item) goes on after it.
        var j = i;
        while (j < lines.length && !lines[j].trim()) j++;
        var next = j < lines.length ? lines[j] : "";
        var nextItem = listMatch(next);
        var continues = next && (indentOf(next) > first.indent ||
          (nextItem && nextItem.indent === first.indent && nextItem.ordered === first.ordered));
        if (!continues) break;
        if (indentOf(next) > first.indent) current.lines.push("");
        i = j;
        continue;
      }
      break;
    }
    html.push("<" + tag + start + ">" + items.map(function (it) {
      var body = it.lines.length === 1 ? renderInline(it.lines[0]) : renderBlocks(it.lines);
      return "<li>" + body + "</li>";
    }).join("") + "</" + tag + ">");
    return i;
  }

  function render(markdown) {
    var text = String(markdown == null ? "" : markdown)
      .replace(/\r\n?/g, "\n")
      .replace(/[\u0000\uE000\uE001]/g, "");
    return renderBlocks(escapeHtml(text).split("\n"));
  }

  var api = { render: render, escapeHtml: escapeHtml };
  if (typeof module !== "undefined" && module.exports) {
    module.exports = api;
  } else {
    root.Markdown = api;
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
