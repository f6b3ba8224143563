#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30), inputs up to MAX_LEN bytes (default
# 4096). Installs cargo-fuzz if missing; needs the nightly toolchain. Exits non-zero when a
# target finds a crash; the input is left in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh            # CI: 30 s per target
#   fuzz/run.sh 1800       # a longer run (see README)
#   FUZZ_ARGS=-fork=2 fuzz/run.sh 3600   # extra libFuzzer flags
#
# New inputs that reach new code go to a scratch corpus, not the committed seeds in
# fuzz/corpus/<target>/ (copy the interesting ones there by hand).
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-30}"
max_len="${MAX_LEN:-4096}"
read -r -a extra <<<"${FUZZ_ARGS:-}"
# The code is `unsafe_code = "deny"`, so AddressSanitizer buys little and halves the speed:
# off by default (FUZZ_SANITIZER=address turns it on). Overflow checks and debug assertions
# stay on (-a).
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# Build once, outside the timed runs, into the repository's (ignored) target directory.
target_dir="$(cd .. && pwd)/target/fuzz"
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build -a -s "$sanitizer" --target-dir "$target_dir"

# The dispatch target's dictionary: every command and subcommand name in the command table,
# the common options and RESP framing pieces (libFuzzer rarely spells `zrangebyscore` alone).
dict="$target_dir/dispatch.dict"
{
  grep -oE '=> "[a-z]+",|spec!\("[a-z]+\|[a-z-]+"' ../crates/cache-protocol/src/command.rs |
    sed -E 's/=> "([a-z]+)",/\1/; s/spec!\("[a-z]+\|([a-z-]+)"/\1/' | sort -u | sed 's/.*/"&"/'
  for o in EX PX EXAT PXAT NX XX GT LT KEEPTTL GET CH INCR WITHSCORES LIMIT COUNT MATCH TYPE \
    BYSCORE BYLEX REV LEFT RIGHT BEFORE AFTER RANK MAXLEN WEIGHTS AGGREGATE MIN MAX SUM BIT \
    BYTE PERSIST ON OFF BCAST OPTIN OPTOUT NOLOOP PREFIX REDIRECT ASYNC SYNC WITHVALUES \
    IDLETIME FREQ ENCODING DB REPLACE -inf +inf '(1' '[a' - + 0 -1 1 3 100; do
    echo "\"$o\""
  done
  printf '"%s"\n' '\x0d\x0a' '*1\x0d\x0a$' '*2\x0d\x0a$' '*3\x0d\x0a$' '$1\x0d\x0a' '$3\x0d\x0a' \
    '$-1' 'HELLO 3\x0d\x0a'
} >"$dict"

passed=0
for t in $targets; do
  dict_arg=()
  [ "$t" = dispatch ] && dict_arg=(-dict="$dict")
  scratch="$target_dir/corpus/$t"
  mkdir -p "$scratch"
  echo "== fuzz $t for ${seconds}s (max_len $max_len)"
  started=$(date +%s)
  cargo +nightly fuzz run -a -s "$sanitizer" --target-dir "$target_dir" "$t" \
    "$scratch" "corpus/$t" -- \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict_arg[@]}" "${extra[@]}" 2>&1 |
    { grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|# Uses: ' || true; } || {
      echo "fuzz target $t FAILED: the input is in fuzz/artifacts/$t/"
      exit 1
    }
  echo "== $t done in $(($(date +%s) - started))s"
  passed=$((passed + 1))
done
# A crash exits above; reaching here means every target ran its time clean.
echo "fuzz: $passed passed, 0 failed"
