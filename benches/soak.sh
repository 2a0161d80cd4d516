#!/usr/bin/env bash
# Memory stays flat (issue 20, item 7): a release agent over 30 days of
# generated history takes CHECKS checks at a 10 ms interval while the
# dashboard, /metrics and the charts' series are polled; RSS, open file
# descriptors and threads are read from /proc after the first 1,000 checks
# and at the end. Not part of the test command: it runs for about 20 minutes.
#
#   benches/soak.sh [CHECKS]        (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
checks=${1:-100000}
port=18677
dir=$(mktemp -d)
trap 'kill "$agent" 2>/dev/null || true; rm -rf "$dir"' EXIT

cargo build --release -q
bin=target/release/hostwatch
"$bin" generate --db "$dir/soak.db" --days 30 >/dev/null
HOSTWATCH_SERVER__LISTEN=127.0.0.1:$port HOSTWATCH_STORAGE__PATH="$dir/soak.db" \
  HOSTWATCH_SAMPLER__INTERVAL=10ms RUST_LOG=warn "$bin" serve 2>"$dir/log" &
agent=$!
url=http://127.0.0.1:$port
until curl -sf "$url/healthz" >/dev/null; do sleep 0.1; done

taken() { curl -sf "$url/api/v1/sampler" | sed -n 's/.*"checks_taken":\([0-9]*\).*/\1/p'; }
figures() {
  local n rss anon file threads
  n=$(taken)
  # Quiet for a moment first, so the figures hold no request's connection.
  sleep 1
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$agent/status")
  anon=$(awk '/^RssAnon/ {print $2}' "/proc/$agent/status")
  file=$(awk '/^RssFile/ {print $2}' "/proc/$agent/status")
  # The descriptors held, by what they are, and the threads, by name: at a
  # 10 ms interval the sampler nearly always has a /proc file, a pidfd or a
  # status command's pipe open for a moment (a status run takes tens of ms,
  # once a second), and the runtimes' blocking threads come and go (an idle
  # one leaves after 10 s). So only the descriptors present in all of five
  # listings 0.5 s apart count, and the threads present in all five.
  for i in 1 2 3 4 5; do
    for fd in /proc/$agent/fd/*; do readlink "$fd" || true; done | sed 's/[0-9]\{4,\}/N/g' | sort >"$dir/fds.$i"
    for t in /proc/$agent/task/*; do echo "${t##*/} $(cat "$t/comm" 2>/dev/null)"; done | sort >"$dir/threads.$i"
    sleep 0.5
  done
  held() { comm -12 "$dir/$1.1" "$dir/$1.2" | comm -12 - "$dir/$1.3" | comm -12 - "$dir/$1.4" | comm -12 - "$dir/$1.5"; }
  held fds >"$dir/fds-$1"
  held threads | cut -d' ' -f2- | sort | uniq -c | sed 's/^ *//' >"$dir/threads-$1"
  threads=$(awk '{n += $1} END {print n}' "$dir/threads-$1")
  echo "$1 checks=$n rss_kib=$rss anon_kib=$anon file_kib=$file fds=$(wc -l <"$dir/fds-$1") threads=$threads"
}
# Each poll's status; any but 200 is counted and kept, with its body, and
# printed at the end (with the agent's log), rather than ending the soak.
poll() {
  local path code
  for path in / /metrics /api/v1/checks/series "/api/v1/checks?limit=100"; do
    code=$(curl -s -o "$dir/body" -w '%{http_code}' "$url$path" || true)
    if [ "$code" != 200 ]; then
      echo "$(date +%T) $path $code $(head -c 300 "$dir/body" 2>/dev/null)" >>"$dir/refused"
    fi
  done
}

started=$(date +%s)
while [ "$(taken)" -lt 1000 ]; do poll; sleep 0.5; done
first=$(figures "after-1k")
echo "$first"
mid=$((checks / 2))
while [ "$(taken)" -lt "$mid" ]; do poll; sleep 0.5; done
figures "midway"
while [ "$(taken)" -lt "$checks" ]; do poll; sleep 0.5; done
last=$(figures "after-${checks}")
echo "$last"
echo "seconds=$(( $(date +%s) - started ))"
rss() { sed -n 's/.*rss_kib=\([0-9]*\).*/\1/p' <<<"$1"; }
echo "rss_growth_kib=$(( $(rss "$last") - $(rss "$first") ))"
diff "$dir/fds-after-1k" "$dir/fds-after-${checks}" | sed 's/^/fds_changed: /' || true
diff "$dir/threads-after-1k" "$dir/threads-after-${checks}" | sed 's/^/threads_changed: /' || true
echo "threads held at the end: $(paste -sd, "$dir/threads-after-${checks}")"
echo "warnings_logged=$(grep -c . "$dir/log" || true)"
echo "polls_not_200=$(grep -c . "$dir/refused" 2>/dev/null || true)"
head -20 "$dir/refused" 2>/dev/null || true
head -20 "$dir/log"
