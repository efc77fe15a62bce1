#!/usr/bin/env bash
# Everything a fresh machine needs: ffmpeg (from the system's packages), then the npm
# dependencies, which build the native addon (cmake, a C++17 compiler and git must be there).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null 2>&1 && [ -z "${FFMPEG_PATH:-}" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq ffmpeg >/dev/null
  elif command -v brew >/dev/null 2>&1; then
    brew install ffmpeg
  else
    echo "setup: ffmpeg not found; install it, set FFMPEG_PATH or npm install ffmpeg-static" >&2
  fi
fi

# Not `npm ci`: registries that serve only this platform's optional packages (node-llama-cpp's
# and rollup's prebuilt binaries for other systems) leave those out of the lock file, which
# `npm ci` then rejects as out of sync. `npm install` follows the lock file just the same, and
# --no-save keeps it from rewriting package-lock.json (a clean checkout stays clean).
npm install --no-save --no-fund --no-audit
