#!/bin/sh
# Runs the libFuzzer targets built by `make fuzz-build` for a set time each,
# from a scratch copy of the committed seed corpus (so a run never writes
# into the repository), and prints executions per target. Called by
# `make fuzz` and `make fuzz-short`; exits non-zero if any target found a
# crash, a sanitizer report, a leak or a timeout, naming the input to rerun.
#
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS TARGET:MAX_LEN...
set -eu

dir=$1
secs=$2
shift 2

work="$dir/work"
rm -rf "$work"
mkdir -p "$work" "$dir/artifacts"
failed=0
summary=""

for spec in "$@"; do
	target=${spec%%:*}
	max_len=${spec#*:}
	corpus="$work/$target"
	log="$work/$target.log"
	mkdir -p "$corpus"
	cp fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
	echo "fuzz: $target for ${secs}s (max_len $max_len)"
	# -timeout: an input that runs 5 s is a hang (generous for a loaded
	# CI machine); every call under test uses timeouts of 0.
	if UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ASAN_OPTIONS=detect_leaks=1 \
		"$dir/$target" -max_total_time="$secs" -max_len="$max_len" \
		-timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/$target-" \
		"$corpus" >"$log" 2>&1; then
		status=ok
	else
		status=FAILED
		failed=1
		tail -n 60 "$log" >&2
		artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		echo "fuzz: $target FAILED; reproduce with: $dir/$target ${artifact:-<input>}" >&2
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	units=$(ls "$corpus" | wc -l)
	line=$(printf '%-14s %-6s %10s execs in %ss  %7s exec/s  cov %s  corpus %s' \
		"$target" "$status" "${execs:-?}" "$secs" "${rate:-?}" \
		"${cov:-?}" "$units")
	summary="$summary$line
"
done

printf '\nfuzz summary:\n%s' "$summary"
exit $failed
