#!/usr/bin/env bash
# Builds and runs every test project, then prints one closing line that CI reads: `N passed, N failed`
# (`, N skipped` when any). Exit code 0 only when the build succeeded and no test failed.
set -uo pipefail
cd "$(dirname "$0")/.."

config="${CONFIG:-Release}"
results="$PWD/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

if ! dotnet build Engine.sln -c "$config" --nologo -v quiet; then
    echo "build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

dotnet test --solution Engine.sln -c "$config" --no-build --results-directory "$results" --report-xunit-xml
status=$?

# The benchmarks' check mode: every benchmark case once on a small input, its answer verified against DuckDB,
# so a benchmark that stops measuring correct work fails here. Counted as one test.
echo "benchmark check:"
if dotnet run -c "$config" --no-build --project benchmarks/Engine.Benchmarks -- --check; then
    bench_passed=1; bench_failed=0
else
    bench_passed=0; bench_failed=1
fi

# Sum the xunit XML reports (one per test assembly). Tests not run (explicit ones) count as skipped; assembly-level
# errors (a fixture that could not start) count as failures, never as silence.
passed=0; failed=0; skipped=0; reports=0
attribute() { local value; value=$(sed -nE "s/.* $1=\"([0-9]+)\".*/\1/p" <<<"$2"); echo "${value:-0}"; }
for report in "$results"/*.xml; do
    [ -e "$report" ] || continue
    reports=$((reports + 1))
    while read -r assembly; do
        passed=$((passed + $(attribute passed "$assembly")))
        failed=$((failed + $(attribute failed "$assembly") + $(attribute errors "$assembly")))
        skipped=$((skipped + $(attribute skipped "$assembly") + $(attribute not-run "$assembly")))
    done < <(grep -o '<assembly [^>]*>' "$report")
done

passed=$((passed + bench_passed)); failed=$((failed + bench_failed))

# The failed tests' names, last before the closing line: CI keeps only the end of the output.
for report in "$results"/*.xml; do
    [ -e "$report" ] || continue
    grep -o '<test [^>]*result="Fail"' "$report" | sed -E 's/.* name="([^"]*)".*/failed: \1/'
done
[ "$bench_failed" -eq 1 ] && echo "failed: the benchmark check (its output is above)"

if [ "$reports" -eq 0 ]; then
    echo "no test reports were written"
    failed=$((failed + 1))
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    # The runner failed without a failed test (a crash, a test host that died): count it, never hide it.
    echo "the test runner exited with code $status"
    failed=1
fi

line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
