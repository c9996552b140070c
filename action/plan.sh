#!/usr/bin/env bash
# The plan step of the pushpool GitHub Action (action.yml): plan a pools file, write the plan to the
# job summary, keep ONE comment on the pull request up to date, and set the step's outputs.
#
# Inputs come only from the environment (action.yml maps them with `env:`, never `${{ }}` inside a
# script, so no pull-request text can become shell code):
#   PUSHPOOL_FILE               the pools file (required)
#   PUSHPOOL_COMMENT            "true" to comment on the pull request
#   PUSHPOOL_WORKING_DIRECTORY  where to run (default: .)
#   PUSHPOOL_ARGS               extra arguments for `pushpool plan`, split on whitespace
#   PUSHPOOL_BIN                the binary the install step unpacked (default: pushpool on PATH)
#   GH_TOKEN                    for `gh` (comments only)
# and GitHub's own: GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_EVENT_PATH, GITHUB_REPOSITORY, RUNNER_TEMP.
#
# Outputs: changes=true|false, plan=<path of the JSON plan>, exit-code=<pushpool's exit code>.
# Exit status: 0 when the plan ran (with or without changes), 1 when it failed or the comment could
# not be written; the comment and the summary say why.
set -uo pipefail

die() { echo "::error title=pushpool plan::$*" >&2; exit 1; }

file=${PUSHPOOL_FILE:-}
[[ -n $file ]] || die "the 'file' input is empty: name the pools file to plan, e.g. 'file: pools.toml'"
for var in GITHUB_OUTPUT GITHUB_STEP_SUMMARY; do
  [[ -n ${!var:-} ]] || die "$var is not set: this script runs as a step of the pushpool action on GitHub Actions"
done
pushpool=${PUSHPOOL_BIN:-pushpool}
command -v "$pushpool" >/dev/null || die "$pushpool was not found: the action's install step did not run or failed"
cd "${PUSHPOOL_WORKING_DIRECTORY:-.}" || die "working-directory '${PUSHPOOL_WORKING_DIRECTORY:-}' does not exist in the checkout"

# The marker names the file, so one pull request can carry one comment per pools file.
marker="<!-- pushpool-plan: $file -->"
out=${RUNNER_TEMP:-$(mktemp -d)}/pushpool-plan
mkdir -p "$out" || die "cannot create $out for the plan files"
json="$out/plan.json" markdown="$out/plan.md" errors="$out/stderr.txt" body="$out/comment.md"
rm -f "$json"

read -r -a extra <<<"${PUSHPOOL_ARGS:-}"
"$pushpool" plan --file "$file" --output markdown --out "$json" --detailed-exitcode ${extra[@]+"${extra[@]}"} >"$markdown" 2>"$errors"
code=$?
cat "$errors" >&2 # the run's log keeps what pushpool said

case $code in
  0) changes=false ;;
  2) changes=true ;;
  *) changes=false ;;
esac
{
  echo "changes=$changes"
  echo "exit-code=$code"
  if [[ -s $json ]]; then echo "plan=$json"; else echo "plan="; fi
} >>"$GITHUB_OUTPUT"

# The comment (and the job summary): the plan, or why there is none.
{
  echo "$marker"
  if [[ $code == 0 || $code == 2 ]]; then
    cat "$markdown"
  else
    echo "### pushpool plan failed for \`$file\`"
    echo
    echo "\`pushpool plan\` exited with status $code, so no plan was made. What it said:"
    echo
    echo '```'
    tail -n 40 "$errors"
    echo '```'
  fi
} >"$body"
# GitHub refuses comments over 65,536 characters; the job summary keeps the whole plan.
if (($(wc -c <"$body") > 60000)); then
  head -c 60000 "$body" >"$body.cut"
  printf '\n\n…the plan is too long for a comment: the whole of it is in the job summary of this run.\n' >>"$body.cut"
  mv "$body.cut" "$body"
fi
if [[ $code == 0 || $code == 2 ]]; then cat "$markdown"; else tail -n +2 "$body"; fi >>"$GITHUB_STEP_SUMMARY"

status=0
[[ $code == 0 || $code == 2 ]] || status=1

if [[ ${PUSHPOOL_COMMENT:-false} == true ]]; then
  pr=""
  if [[ -n ${GITHUB_EVENT_PATH:-} && -f $GITHUB_EVENT_PATH ]]; then
    command -v jq >/dev/null || die "jq is not on PATH; it reads the pull request's number from the event"
    pr=$(jq -r '.pull_request.number // empty' "$GITHUB_EVENT_PATH")
  fi
  if [[ -z $pr ]]; then
    echo "pushpool: not a pull request event, so no comment (the plan is in the job summary)"
  else
    [[ -n ${GITHUB_REPOSITORY:-} ]] || die "GITHUB_REPOSITORY is not set, so the pull request's comments cannot be found"
    command -v gh >/dev/null || die "gh (the GitHub CLI) is not on PATH; it writes the pull request comment"
    comments="repos/$GITHUB_REPOSITORY/issues/$pr/comments"
    # --paginate prints one JSON array per page; jq reads them one after another.
    listed=$(gh api --paginate "$comments") || die "cannot list the comments of pull request #$pr: does the job have 'pull-requests: write' and GH_TOKEN set?"
    existing=$(jq -r --arg marker "$marker" '.[] | select(.body | startswith($marker)) | .id' <<<"$listed" | head -n 1)
    if [[ -n $existing ]]; then
      gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$existing" -F "body=@$body" >/dev/null ||
        die "cannot edit comment $existing on pull request #$pr (permission 'pull-requests: write' missing?)"
      echo "pushpool: updated the plan comment on pull request #$pr"
    else
      gh api --method POST "$comments" -F "body=@$body" >/dev/null ||
        die "cannot comment on pull request #$pr (permission 'pull-requests: write' missing?)"
      echo "pushpool: commented the plan on pull request #$pr"
    fi
  fi
fi

((status == 0)) || echo "::error title=pushpool plan::pushpool plan exited with status $code for $file (see the log above and the job summary)" >&2
exit "$status"
