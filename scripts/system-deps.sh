#!/usr/bin/env bash
# System packages the tests use: gcc for the generated C, for the MCU export's Cortex-M4 tests the Arm
# cross-compiler, newlib and QEMU (about 113 MB download), and PostgreSQL for the registry's shared-index tests
# (they start a throwaway server of their own from /usr/lib/postgresql/*/bin). Installs them as root on
# Debian/Ubuntu when missing; elsewhere it says so and those tests skip with the reason.
set -euo pipefail
packages=(gcc libc6-dev gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm postgresql)
if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null && command -v gcc >/dev/null \
  && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
else
  echo "not root with apt-get: install ${packages[*]} for the Cortex-M4/QEMU and PostgreSQL tests (they skip without them)" >&2
fi
