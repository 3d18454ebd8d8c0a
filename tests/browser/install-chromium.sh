#!/usr/bin/env bash
# Debian's chromium and chromedriver for the console's browser test, installed once per machine.
# Safe when two `make test` run at once: one installs under the lock, the other waits and finds them.
# Needs root (apt-get); without it, and without the two programs, it says so in one line and fails.
set -euo pipefail
have() { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }
have && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "the browser test needs /usr/bin/chromium and /usr/bin/chromedriver: run as root, or apt-get install chromium chromium-driver" >&2
    exit 1
fi
exec 9>/tmp/streamkit-apt.lock  # the same lock as the Makefile's other apt-get installs
flock 9
have && exit 0
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
have
