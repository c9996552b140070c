#!/usr/bin/env bash
# The checks scripts/test.sh runs: fmt and the release checks before the sandbox and the tests, so
# a mistake fails in seconds, not after the 20-minute suite; clippy beside the tests (its check of
# the dependencies is a compile of its own):
#
#   scripts/checks.sh fmt       cargo fmt --check (rustfmt.toml is the style)
#   scripts/checks.sh clippy    cargo clippy --all-targets --locked -- -D warnings
#   scripts/checks.sh release   what ships, after a debug build (`cargo build --locked`):
#       - the wheel: `maturin build --profile dev` from that build (no second compile of the
#         dependencies: refused if cargo compiles anything but pushpool), installed into a fresh
#         virtualenv, `pushpool --version` and `--help` run from its bin/, and its contents
#         inspected (binary, metadata, licence, platform tag)
#       - .github/workflows/*.yml and action.yml against GitHub's schemas (check-jsonschema's
#         vendored ones) and audited by `zizmor --offline` (no finding of medium severity or worse);
#         the action's scripts (and their fakes, and this one) through shellcheck
#       - `cargo package --list` against scripts/package.allow, and maturin's sdist holding those
#         files (less cargo's own) plus pyproject.toml and PKG-INFO, nothing else
#
# The Python tools come from scripts/checks-tools.lock into a cached virtualenv keyed by its hash
# (PUSHPOOL_SANDBOX_CACHE, as scripts/sandbox.sh keeps its own).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "checks: $*" >&2; exit 1; }

LOCK="$ROOT/scripts/checks-tools.lock"
CACHE="${PUSHPOOL_SANDBOX_CACHE:-$HOME/.cache/pushpool}"
VENV="$CACHE/tools-$(sha256sum "$LOCK" | cut -c1-12)"

tools() { # the cached virtualenv of the lock file's tools; an interrupted install is redone
  mkdir -p "$CACHE"
  exec 9>"$CACHE/tools-install.lock" && flock 9
  if [[ ! -f $VENV/.installed ]]; then
    echo "checks: installing maturin, check-jsonschema, zizmor and shellcheck into $VENV..."
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed: install Python 3.10 or newer with venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$LOCK"
    touch "$VENV/.installed"
  fi
  exec 9>&-
}

fmt() {
  cargo fmt --check || die "the code is not formatted as rustfmt.toml says: run 'cargo fmt' and commit"
}

clippy() {
  cargo clippy --all-targets --locked -- -D warnings || die "clippy found the warnings above: fix them (or allow one with a reason)"
}

# The version Cargo.toml gives the package (the first `version =` line, the [package] one).
version() { sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1; }

wheel() {
  local out log wheel venv
  out=$(mktemp -d) log=$(mktemp)
  [[ -x target/debug/pushpool ]] || die "no debug build in target/debug: run 'cargo build --locked' first"
  "$VENV/bin/maturin" build --profile dev --locked --out "$out" 2>&1 | tee "$log"
  # maturin runs `cargo rustc --profile dev --bin pushpool`: only this crate may need a compile.
  if grep -E '^ *Compiling ' "$log" | grep -v ' pushpool v' >/dev/null; then
    die "maturin recompiled dependencies (above), so the wheel is not built from the debug build"
  fi
  wheel=$(ls "$out"/*.whl) || die "maturin made no wheel in $out"
  "$VENV/bin/python" - "$wheel" "$(version)" <<'EOF'
import platform, sys, zipfile
path, version = sys.argv[1], sys.argv[2]
names = zipfile.ZipFile(path).namelist()
read = lambda name: zipfile.ZipFile(path).read(name).decode()
info = f"pushpool-{version}.dist-info"
problems = []
def need(ok, what):
    if not ok: problems.append(what)
need(f"pushpool-{version}.data/scripts/pushpool" in names, "the binary in .data/scripts/")
meta = read(f"{info}/METADATA") if f"{info}/METADATA" in names else ""
for line in ["Name: pushpool", f"Version: {version}", "License-Expression: Apache-2.0", "License-File: LICENSE",
             "Requires-Python: >=3.8", "Description-Content-Type: text/markdown; charset=UTF-8; variant=GFM",
             "Project-URL: Repository, https://github.com/pushpool/pushpool"]:
    need(line in meta.splitlines(), f"METADATA line {line!r}")
need("# pushpool" in meta, "the README as the long description")
need(f"{info}/licenses/LICENSE" in names and "Apache License" in read(f"{info}/licenses/LICENSE"), "the licence file")
tags = [l.split(": ", 1)[1] for l in read(f"{info}/WHEEL").splitlines() if l.startswith("Tag: ")]
arch = platform.machine()
need(tags and all(t.startswith("py3-none-manylinux_") and t.endswith(arch) for t in tags), f"a py3-none-manylinux_*_{arch} tag, not {tags}")
extra = [n for n in names if not n.startswith((info + "/", f"pushpool-{version}.data/scripts/"))]
need(not extra, f"nothing else, not {extra}")
if problems:
    sys.exit(f"checks: the wheel {path} lacks: " + "; ".join(problems))
print(f"checks: wheel {path.rsplit('/', 1)[1]}: binary, metadata, licence and tag {tags[0]} as expected")
EOF
  venv="$out/venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-index --no-deps "$wheel"
  [[ $("$venv/bin/pushpool" --version) == "$(target/debug/pushpool --version)" ]] || die "the wheel's pushpool --version differs from the build's"
  "$venv/bin/pushpool" --version
  "$venv/bin/pushpool" --help | grep -q '^Usage: pushpool' || die "the wheel's pushpool --help printed no usage"
  echo "checks: the wheel installs into a fresh virtualenv and its pushpool starts ($(du -h "$wheel" | cut -f1), unstripped debug build)"
  rm -rf "$out" "$log"
}

workflows() {
  local files=(.github/workflows/*.yml)
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${files[@]}"
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.github-actions action.yml
  "$VENV/bin/zizmor" --offline --min-severity medium "${files[@]}" action.yml ||
    die "zizmor found problems of medium severity or worse (above)"
  "$VENV/bin/shellcheck" action/*.sh scripts/checks.sh tests/action/curl tests/action/pushpool ||
    die "shellcheck found the problems above in the action's scripts"
}

package() {
  local list patterns=() required=() file pattern ok bad=0
  list=$(cargo package --list --locked --allow-dirty 2>/dev/null) || die "cargo package --list failed: run it to see why"
  while read -r first second; do
    [[ -z $first || $first == \#* ]] && continue
    if [[ $first == required ]]; then required+=("$second") patterns+=("$second"); else patterns+=("$first"); fi
  done <scripts/package.allow
  while read -r file; do
    ok=0
    for pattern in "${patterns[@]}"; do
      # shellcheck disable=SC2053 # the pattern is a glob on purpose
      [[ $file == $pattern ]] && ok=1 && break
    done
    ((ok)) || { echo "checks: the crate would contain $file, which scripts/package.allow does not allow" >&2; bad=1; }
  done <<<"$list"
  for pattern in "${required[@]}"; do
    ok=0
    while read -r file; do
      # shellcheck disable=SC2053
      [[ $file == $pattern ]] && ok=1 && break
    done <<<"$list"
    ((ok)) || { echo "checks: the crate lacks $pattern, which a build needs" >&2; bad=1; }
  done
  ((bad == 0)) || die "fix Cargo.toml's include (or scripts/package.allow)"
  echo "checks: cargo package --list: $(wc -l <<<"$list") files, all allowed"

  # maturin's sdist is made from the same list: it must hold exactly those files (less cargo's
  # own bookkeeping) and its Python metadata.
  local out expected actual
  out=$(mktemp -d)
  "$VENV/bin/maturin" sdist --out "$out" >/dev/null 2>&1 || die "maturin sdist failed: run '$VENV/bin/maturin sdist' to see why"
  expected=$( (grep -vxE '\.cargo_vcs_info\.json|Cargo\.toml\.orig' <<<"$list"; printf '%s\n' pyproject.toml PKG-INFO) | sort)
  actual=$(tar -tzf "$out"/pushpool-"$(version)".tar.gz | grep -v '/$' | sed 's|^[^/]*/||' | sort)
  [[ $expected == "$actual" ]] || die "the sdist differs from cargo package --list: $(diff <(echo "$expected") <(echo "$actual") | grep '^[<>]' | tr '\n' ' ')"
  echo "checks: sdist: $(wc -l <<<"$actual") files, the crate's and pyproject.toml, PKG-INFO, nothing else"
  rm -rf "$out"
}

case ${1:-} in
  fmt) fmt ;;
  clippy) clippy ;;
  release)
    tools
    package
    workflows
    wheel
    ;;
  *) die "usage: scripts/checks.sh fmt|clippy|release" ;;
esac
