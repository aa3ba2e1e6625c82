#!/usr/bin/env bash
# Every check a change must pass, in the order CI runs them:
#   ruff lint + format check; unit/engine/API/packaging tests; browser tests (own pytest call).
# Uses the active virtualenv, else ./.venv. Runs every step even after a failure (so one run
# shows everything that is red) and exits non-zero if any step failed or if no test ran.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -n "${VIRTUAL_ENV:-}" ]]; then
    py="$VIRTUAL_ENV/bin/python"
elif [[ -x .venv/bin/python ]]; then
    py=.venv/bin/python
else
    py=python3
fi

reports=${TEST_RESULTS_DIR:-test-results}  # JUnit XML of both pytest runs
mkdir -p "$reports"
rm -f "$reports"/unit.xml "$reports"/browser.xml
failed=()

run() {  # run NAME CMD...: run a step, remember its name if it fails (pytest's 5 included)
    local name=$1
    shift
    printf '\n==> %s\n' "$name"
    if ! "$@"; then
        failed+=("$name")
    fi
}

run "ruff check" "$py" -m ruff check .
run "ruff format --check" "$py" -m ruff format --check .
run "pytest (unit, engine, API, packaging)" \
    "$py" -m pytest tests --ignore=tests/browser --durations=10 --junitxml="$reports/unit.xml"
run "pytest (browser)" \
    "$py" -m pytest tests/browser --durations=5 --junitxml="$reports/browser.xml"

# In CI a skipped test is a failure: a browser test that skips has proved nothing.
skip_flag=()
if [[ "${CI:-}" == "true" ]]; then
    skip_flag=(--no-skips)
fi
printf '\n'
run "test count" "$py" scripts/junit_summary.py "${skip_flag[@]}" \
    "$reports/unit.xml" "$reports/browser.xml"

if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "scripts/test.sh: all checks passed"
