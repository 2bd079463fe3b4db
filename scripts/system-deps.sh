#!/usr/bin/env bash
# System packages the tests use: gcc for the generated C, and for the MCU export's Cortex-M4 tests the Arm
# cross-compiler, newlib and QEMU (about 113 MB download). Installs them as root on Debian/Ubuntu when
# missing; elsewhere it says so and those tests skip with the reason.
set -euo pipefail
packages=(gcc libc6-dev gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)
if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null && command -v gcc >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
else
  echo "not root with apt-get: install ${packages[*]} for the Cortex-M4/QEMU tests (they skip without them)" >&2
fi
