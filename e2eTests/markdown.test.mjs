// Unit tests of static/markdown.js: run with `node --test e2eTests/markdown.test.mjs`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { render, escapeHtml } = require("../static/markdown.js");

const ALLOWED_TAGS = new Set(["p", "br", "h3", "h4", "h5", "h6", "ul", "ol", "li", "pre", "code", "blockquote",
  "hr", "strong", "em", "del", "a"]);
const ALLOWED_ATTRS = new Set(["href", "target", "rel", "class", "start", "data-lang"]);

// Every tag in the output must be one the renderer writes, with only its own attributes.
function assertOnlySafeMarkup(html) {
  const tagRe = /<\/?([a-zA-Z][\w-]*)([^>]*)>/g;
  let m;
  while ((m = tagRe.exec(html))) {
    const [, name, rest] = m;
    assert.ok(ALLOWED_TAGS.has(name.toLowerCase()), `unexpected tag <${name}> in ${html}`);
    const attrRe = /\s([\w-]+)="([^"]*)"/g;
    let a;
    let stripped = rest;
    while ((a = attrRe.exec(rest))) {
      assert.ok(ALLOWED_ATTRS.has(a[1]), `unexpected attribute ${a[1]} in ${html}`);
      if (a[1] === "href") assert.match(a[2], /^https?:\/\//i, `unsafe href ${a[2]}`);
      stripped = stripped.replace(a[0], "");
    }
    assert.equal(stripped.trim(), "", `unquoted or stray attribute text "${stripped}" in ${html}`);
  }
}

test("script tags are escaped, not rendered", () => {
  const html = render("Hello <script>alert('x')</script> world");
  assert.ok(!html.includes("<script"), html);
  assert.ok(html.includes("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), html);
  assertOnlySafeMarkup(html);
});

test("img with onerror is escaped", () => {
  const html = render('<img src=x onerror="alert(1)">\n\n**bold <img src=x onerror=alert(1)>**');
  assert.ok(!html.includes("<img"), html);
  assert.ok(html.includes("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"), html);
  assert.ok(html.includes("<strong>bold &lt;img src=x onerror=alert(1)&gt;</strong>"), html);
  assertOnlySafeMarkup(html);
});

test("javascript:, data: and relative links keep their text but lose the link", () => {
  for (const url of ["javascript:alert(1)", "JaVaScRiPt:alert(document.cookie)", "data:text/html,<b>x</b>",
    "/relative/path", "vbscript:msgbox(1)", " javascript:alert(1)"]) {
    const html = render(`[click me](${url})`);
    assert.ok(!html.includes("<a "), `${url} -> ${html}`);
    assert.ok(html.includes("click me"), html);
    assertOnlySafeMarkup(html);
  }
});

test("http(s) links open in a new tab without an opener", () => {
  const html = render("See [the docs](https://learn.microsoft.com/dotnet/ai/?a=1&b=2) and http://example.com/x.");
  assert.ok(html.includes('<a href="https://learn.microsoft.com/dotnet/ai/?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">the docs</a>'), html);
  assert.ok(html.includes('<a href="http://example.com/x" target="_blank" rel="noopener noreferrer">http://example.com/x</a>.'), html);
  assertOnlySafeMarkup(html);
});

test("a quote in a URL cannot break out of the href attribute", () => {
  for (const md of ['[x](https://a.com/"onmouseover="alert(1))', 'https://a.com/"onmouseover="alert(1)',
    "[x](https://a.com/'onmouseover='alert(1))", "[x](https://a.com/<script>)"]) {
    const html = render(md);
    // every anchor has exactly the three attributes we write; the quote stays inside href, encoded
    for (const tag of html.match(/<a [^>]*>/g) || []) {
      assert.match(tag, /^<a href="https:\/\/[^"<>]*" target="_blank" rel="noopener noreferrer">$/, `${md} -> ${html}`);
    }
    assert.ok(!html.includes('"onmouseover') && !html.includes("'onmouseover"), `${md} -> ${html}`);
    assertOnlySafeMarkup(html);
  }
});

test("HTML inside fenced code blocks and inline code is shown as text", () => {
  const html = render("```html\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n```\nand `<b>bold</b>`");
  assert.ok(html.includes('<pre data-lang="html"><code class="language-html">&lt;script&gt;alert(1)&lt;/script&gt;\n&lt;img src=x onerror=alert(1)&gt;</code></pre>'), html);
  assert.ok(html.includes("<code>&lt;b&gt;bold&lt;/b&gt;</code>"), html);
  assertOnlySafeMarkup(html);
});

test("a hostile fence language cannot inject attributes", () => {
  const html = render('```" onmouseover="alert(1)\ncode\n```');
  assertOnlySafeMarkup(html);
  assert.ok(!/<pre[^>]*onmouseover/.test(html), html);
});

test("placeholder characters in the input cannot forge markup", () => {
  const html = render("\uE0000\uE001 `<i>x</i>` \uE000" + "1\uE001 [a](javascript:1)");
  assertOnlySafeMarkup(html);
  assert.ok(!html.includes("\uE000"), html);
});

test("markdown inside code is not formatted, link text in code is not linked", () => {
  const html = render("`**not bold** [x](https://a.com)`");
  assert.equal(html, "<p><code>**not bold** [x](https://a.com)</code></p>");
});

test("headings, lists, emphasis and paragraphs render", () => {
  const html = render("# Title\n\nSome **bold**, *italic*, _em_ and snake_case_name.\n\n- one\n- two\n\n1. first\n2. second\n   ```csharp\n   var x = 1;\n   ```");
  assert.ok(html.includes("<h3>Title</h3>"), html);
  assert.ok(html.includes("<strong>bold</strong>, <em>italic</em>, <em>em</em> and snake_case_name."), html);
  assert.ok(html.includes("<ul><li>one</li><li>two</li></ul>"), html);
  assert.ok(html.includes('<ol><li>first</li><li><p>second</p>\n<pre data-lang="csharp"><code class="language-csharp">var x = 1;</code></pre></li></ol>'), html);
  assertOnlySafeMarkup(html);
});

test("an unclosed fence (stream still arriving) renders as code", () => {
  const html = render("Text\n```csharp\nvar client = new OpenAIClient(<key>);");
  assert.ok(html.endsWith('<pre data-lang="csharp"><code class="language-csharp">var client = new OpenAIClient(&lt;key&gt;);</code></pre>'), html);
});

test("escapeHtml escapes the five special characters", () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
});

test("fuzz: random mixes of markup fragments never produce unsafe tags", () => {
  const parts = ["<script>", "</script>", "<img src=x onerror=alert(1)>", "[a](javascript:alert(1))", "[b](https://x.com)",
    "**", "*", "_", "`", "```", "\n", "# ", "- ", "1. ", "> ", "\"", "'", "&", "https://y.com/\"a", "<a href='javascript:x'>",
    "(", ")", "[", "]", "~~", "   ", "<svg onload=alert(1)>", "&lt;script&gt;"];
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let n = 0; n < 2000; n++) {
    let md = "";
    const len = 1 + Math.floor(rand() * 12);
    for (let k = 0; k < len; k++) md += parts[Math.floor(rand() * parts.length)];
    assertOnlySafeMarkup(render(md));
  }
});
