#!/usr/bin/env bash
# Installs every build and test dependency of pglease from Debian 12 packages.
# Idempotent: when everything is present it only checks, and finishes in well under a second.
set -euo pipefail

packages=(
  # toolchain
  cmake ninja-build g++ ccache pkg-config git ca-certificates clang-format clang-tidy
  # libraries
  libboost1.81-dev libpq-dev nlohmann-json3-dev libspdlog-dev prometheus-cpp-dev libcli11-dev
  libgtest-dev libgmock-dev libssl-dev
  # the PostgreSQL server the embedded cluster and the tests run (also creates the postgres user)
  postgresql-15
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  sudo=(sudo)
fi

# pglease runs its own clusters; Debian's default "main" cluster on port 5432 is not needed.
if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
  "${sudo[@]}" mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
fi

echo "install-deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confold "${missing[@]}"
