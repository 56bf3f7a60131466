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
  # tests/e2e/openapi_conformance.py and the OpenAPI schema validator it drives; psycopg2 for the
  # Python tests that talk to PostgreSQL themselves (tests/e2e, tests/chaos)
  python3 python3-jsonschema python3-yaml python3-psycopg2 nodejs
  # tests/bench/chart.py draws the benchmark's figures
  python3-matplotlib
  # client/python/e2e, deploy/kubernetes/test: tools in fresh virtualenvs; client/rust/e2e downloads
  # the pinned cargo-nextest wheel with pip
  python3-venv python3-pip
  # deploy/container/test: the image built offline (mmdebstrap from Debian's archive), run by root
  # podman; deploy/systemd/test: systemd-analyze
  podman mmdebstrap systemd
  # tests/e2e/observability_e2e.py: a real Prometheus and promtool (the service is not started)
  prometheus
  # tests/fuzz: libFuzzer harnesses, built with clang and its fuzzer runtime
  clang-14 libclang-rt-14-dev
)
# Debian's nodejs ships npm separately; NodeSource's nodejs bundles it and conflicts with that package.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$package")
  fi
done

sudo=()
if ((EUID != 0)); then
  sudo=(sudo)
fi

install_packages() {
  # pglease runs its own clusters; Debian's default "main" cluster on port 5432 is not needed.
  if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
    "${sudo[@]}" mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi

  echo "install-deps: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confold "${missing[@]}"
}

if ((${#missing[@]} > 0)); then
  install_packages
fi

# The npm packages of tests/e2e/openapi, exactly as locked; skipped while node_modules matches the lock.
openapi_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/e2e/openapi"
if ! cmp -s "$openapi_dir/package-lock.json" "$openapi_dir/node_modules/.pglease-installed-lock"; then
  echo "install-deps: installing the npm packages of tests/e2e/openapi" >&2
  npm ci --prefix "$openapi_dir" --no-audit --no-fund --loglevel=error
  cp "$openapi_dir/package-lock.json" "$openapi_dir/node_modules/.pglease-installed-lock"
fi

# The pinned packages of the language clients' e2e tests, into ~/.cache/pglease-e2e
# (PGLEASE_E2E_CACHE); each is skipped while its cache already holds what its lock files name.
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
/usr/bin/python3 "$root_dir/client/python/e2e/run" --fetch-only
node "$root_dir/client/js/e2e/run" --fetch-only
# The Rust and Go clients' CTest runs are offline: cargo-nextest (prebuilt, from PyPI), the crates
# Cargo.lock pins and the modules go.sum pins. Needs the machine's cargo (rustup) and go.
# Without the toolchain its suite reports itself skipped.
for toolchain in rust:cargo go:go; do
  if command -v "${toolchain#*:}" >/dev/null 2>&1; then
    /usr/bin/python3 "$root_dir/client/${toolchain%%:*}/e2e/run" --fetch-only
  else
    echo "install-deps: no ${toolchain#*:} on PATH: client/${toolchain%%:*}/e2e is skipped" >&2
  fi
done
