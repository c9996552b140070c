#!/usr/bin/env bash
# The install steps of the pushpool GitHub Action (action.yml), on Linux, macOS and Windows runners.
#
#   install.sh resolve   which release and archive this runner needs: writes repository=, version=,
#                        target=, archive= and dir= to GITHUB_OUTPUT (dir: where the binary is cached)
#   install.sh download  fetches that archive and its .sha256 from the GitHub release, refuses it
#                        unless the checksum matches, and unpacks the binary into dir
#
# Environment (mapped by action.yml with `env:`): PUSHPOOL_VERSION (the `version` input: "0.2.0",
# "v0.2.0", or empty for the action's own tag, else the latest release), PUSHPOOL_REPOSITORY (the
# repository whose releases hold the archives; else read from GITHUB_ACTION_PATH), RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, GH_TOKEN
# (only to look up the latest release); for download also VERSION, TARGET, ARCHIVE and DIR.
# The archives are those the release workflow's `dist` jobs publish: pushpool-TARGET.tar.gz (.zip
# on Windows), each with pushpool-TARGET.tar.gz.sha256 beside it.
set -euo pipefail

die() { echo "::error title=pushpool install::$*" >&2; exit 1; }

resolve() {
  local repo=${PUSHPOOL_REPOSITORY:-} version=${PUSHPOOL_VERSION:-} target archive path owner name ref
  # github.action_repository and github.action_ref are empty inside composite actions (actions/runner
  # issue 2525); the runner checks the action out at .../_actions/OWNER/REPO/REF, so read them there.
  path=${GITHUB_ACTION_PATH:-}
  path=${path//\\//}
  if [[ -z $repo && $path == */_actions/*/*/* ]]; then
    IFS=/ read -r owner name ref _ <<<"${path#*/_actions/}"
    repo="$owner/$name"
    PUSHPOOL_ACTION_REF=${PUSHPOOL_ACTION_REF:-$ref}
  fi
  [[ -n $repo ]] || die "the repository of the pushpool action is unknown (neither github.action_repository nor GITHUB_ACTION_PATH names it); set PUSHPOOL_REPOSITORY"
  if [[ -z $version && ${PUSHPOOL_ACTION_REF:-} =~ ^v?[0-9]+\.[0-9]+\.[0-9]+ ]]; then
    version=$PUSHPOOL_ACTION_REF # uses: owner/pushpool@v0.2.0 installs pushpool 0.2.0
  fi
  if [[ -z $version ]]; then
    version=$(gh api "repos/$repo/releases/latest" --jq .tag_name) ||
      die "cannot find the latest release of $repo; set the action's 'version' input (e.g. version: 0.2.0)"
  fi
  version=${version#v}
  [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || die "version '$version' is not a release version like 0.2.0"
  case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) target=x86_64-unknown-linux-gnu ;;
    Linux/ARM64) target=aarch64-unknown-linux-gnu ;;
    macOS/X64) target=x86_64-apple-darwin ;;
    macOS/ARM64) target=aarch64-apple-darwin ;;
    Windows/X64) target=x86_64-pc-windows-msvc ;;
    *) die "no pushpool release for a ${RUNNER_OS:-unknown} ${RUNNER_ARCH:-unknown} runner; use one of Linux X64/ARM64, macOS X64/ARM64, Windows X64, or 'pip install pushpool'" ;;
  esac
  archive="pushpool-$target.tar.gz"
  [[ $target == *windows* ]] && archive="pushpool-$target.zip"
  {
    echo "repository=$repo"
    echo "version=$version"
    echo "target=$target"
    echo "archive=$archive"
    echo "dir=${RUNNER_TOOL_CACHE:?RUNNER_TOOL_CACHE is not set}/pushpool/$version/$target"
  } >>"$GITHUB_OUTPUT"
}

sha256() { # the SHA-256 of a file, with whichever tool this runner has
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# shellcheck disable=SC2153 # VERSION, TARGET, ARCHIVE and DIR are set by action.yml, from resolve's outputs
download() {
  : "${PUSHPOOL_REPOSITORY:?}" "${VERSION:?}" "${TARGET:?}" "${ARCHIVE:?}" "${DIR:?}"
  local url="https://github.com/${PUSHPOOL_REPOSITORY}/releases/download/v${VERSION}/${ARCHIVE}"
  local work expected actual binary
  work=$(mktemp -d)
  curl --proto '=https' --tlsv1.2 -fsSL --retry 3 -o "$work/$ARCHIVE" "$url" || die "cannot download $url: is there a release v$VERSION with an archive for $TARGET?"
  curl --proto '=https' --tlsv1.2 -fsSL --retry 3 -o "$work/$ARCHIVE.sha256" "$url.sha256" || die "cannot download $url.sha256, so the archive cannot be verified"
  expected=$(cut -d' ' -f1 <"$work/$ARCHIVE.sha256" | tr -d '\r\n' | tr 'A-F' 'a-f')
  actual=$(sha256 "$work/$ARCHIVE")
  [[ ${#expected} == 64 && $expected == "$actual" ]] || die "checksum mismatch for $ARCHIVE: the release says '$expected', the download is $actual; not installing it"
  mkdir -p "$work/unpacked" "$DIR"
  case $ARCHIVE in
    *.zip) unzip -q "$work/$ARCHIVE" -d "$work/unpacked" ;;
    *) tar -xzf "$work/$ARCHIVE" -C "$work/unpacked" ;;
  esac
  binary=$(find "$work/unpacked" -type f \( -name pushpool -o -name pushpool.exe \) | head -n 1)
  [[ -n $binary ]] || die "$ARCHIVE has no pushpool binary in it"
  cp "$binary" "$DIR/"
  chmod +x "$DIR/$(basename "$binary")"
  rm -rf "$work"
  echo "pushpool $VERSION ($TARGET) installed in $DIR, checksum verified"
}

case ${1:-} in
  resolve) resolve ;;
  download) download ;;
  *) die "usage: install.sh resolve|download" ;;
esac
