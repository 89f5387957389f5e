#!/usr/bin/env bash
# Installs what the browser tests (e2eTests/test_browser.py) need: Debian's chromium, an emoji font
# (so screenshots show 👍/👎 instead of empty boxes) and Playwright for Python, which drives the
# system chromium through `executable_path`. Never runs `playwright install` (it downloads browsers).
set -euo pipefail

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need_apt+=(fonts-noto-color-emoji)
if [ "${#need_apt[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}"
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import playwright" 2>/dev/null; then
  "$PYTHON" -m pip install "$(grep -E '^playwright==' "$(dirname "$0")/../requirements-dev.txt")"
fi

/usr/bin/chromium --version
command -v node >/dev/null && node --version || echo "node is missing: the Markdown unit test (node --test e2eTests/markdown.test.mjs) needs it" >&2
