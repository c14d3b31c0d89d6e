#!/usr/bin/env bash
# make bench: synthetic models of real shapes (made once, kept out of git in
# bench/models/), then one table per question the issues ask:
#   speed side by side with llama.cpp and ik_llama.cpp on the same files
#   (when $fx/peers is there), then pp64/tg32 against the llama.cpp figures
#   recorded on this machine kind for issue 3,
#   time to first token over a 20-turn chat, resume with a KV snapshot,
#   stop latency, and the conversation store at 10,000 chats / 1M messages.
# BENCH_QUICK=1 keeps to the 1.1B shape; BENCH_THREADS sets -t (default 2).
# Side by side with the peers in $fx/peers (bench/side.py): BENCH_REPS
# (default 2) runs per figure, BENCH_ROUNDS (default 2) alternating rounds,
# BENCH_TG_ROUNDS (default 4) rounds for tg128 on files under 2 GB,
# BENCH_RT=1 every figure at real-time priority (root; see side.py),
# BENCH_TESTS a subset such as pp512,tg128.  bench/ttft.py: time to the
# first token of a pasted 3,000-token document against the peers.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/release}
T=${BENCH_THREADS:-2}
fx=${LLAMA2_CHAT_FIXTURES:-../shared}
tok=$fx/models/tokenizer.bin
[ -f "$tok" ] || tok=
mkdir -p bench/models
shapes="1b 7b"
[ "${BENCH_QUICK:-0}" = 1 ] && shapes="1b"
for s in $shapes; do
  for q in q4_0 q8_0 q4_k_m; do
    f=bench/models/$s-$q.gguf
    if [ ! -f "$f" ]; then
      echo "making $f (once)..." >&2
      "$B/mkmodel" "$f" "$s" "$q" $tok
    fi
  done
done

# Side by side with the peer engines on the same files, one table per shape
# (issue 16), then ours forced to AVX2 against llama.cpp's AVX2 build.
if [ -d "$fx/peers" ]; then
  for s in $shapes; do
    files=$(for q in q4_0 q4_k_m q8_0; do echo bench/models/$s-$q.gguf; done)
    python3 bench/side.py --threads "$T" "$s" $files
    python3 bench/side.py --threads "$T" --isa avx2 "$s" $files
  done
  # The first reply to a pasted 3,000-token document against the peers'
  # pp3000 (the 1.1B files: a 7B prompt of that length takes minutes).
  python3 bench/ttft.py --threads "$T" $(for q in q4_0 q4_k_m q8_0; do echo bench/models/1b-$q.gguf; done)
else
  echo "(no $fx/peers: side-by-side tables skipped)"
fi

# llama.cpp, llama-bench -t 2 -p 64 -n 32 -r 2, same shapes (issue 3).
declare -A ref_pp=( [7b-q4_0]=43.3 [7b-q8_0]=20.7 [7b-q4_k_m]=28.5 [1b-q4_0]=263.6 [1b-q8_0]=139.9 [1b-q4_k_m]=193.2 )
declare -A ref_tg=( [7b-q4_0]=11.21 [7b-q8_0]=5.36 [7b-q4_k_m]=9.96 [1b-q4_0]=58.6 [1b-q8_0]=37.7 [1b-q4_k_m]=64.7 )

echo
echo "## Speed: llama2-chat bench -t $T -p 64 -n 32 -r 2 (llama.cpp: llama-bench, same files' shapes)"
echo
echo "| model | size | pp64 t/s | llama.cpp | ratio | tg32 t/s | llama.cpp | ratio | GB/s | peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for s in $shapes; do
  for q in q4_0 q8_0 q4_k_m; do
    f=bench/models/$s-$q.gguf
    j=$(./llama2-chat bench -m "$f" -t "$T" -p 64 -n 32 -r 2 --json)
    python3 - "$s-$q" "${ref_pp[$s-$q]}" "${ref_tg[$s-$q]}" "$j" <<'PY'
import json, sys
name, rpp, rtg, j = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
print(f"| {name} | {j['size_bytes']/1e9:.2f} GB | {j['pp_tps']:.1f} ± {j['pp_tps_sd']:.1f} | {rpp} | {j['pp_tps']/rpp:.2f} "
      f"| {j['tg_tps']:.2f} ± {j['tg_tps_sd']:.2f} | {rtg} | {j['tg_tps']/rtg:.2f} | {j['tg_gbps']:.1f} | {j['max_rss_kb']/1024:.0f} MiB |")
PY
  done
done

# Model families (issue 11): the small reference fixtures side by side, so the
# Llama 3 files (128,256-token vocabulary, tied output) show next to LLaMA-2's.
echo
echo "## Model families: llama2-chat bench -t $T -p 64 -n 32 -r 2 on the fixtures"
echo
echo "| fixture | family | pp64 t/s | tg32 t/s |"
echo "|---|---|---|---|"
for f in fixture-q8_0 fixture-llama3-f16 fixture-llama31-q4_k_m; do
  [ -f "$fx/models/$f.gguf" ] || continue
  fam=$(./llama2-chat info -m "$fx/models/$f.gguf" | sed -n 's/^chat format: *//p')
  j=$(./llama2-chat bench -m "$fx/models/$f.gguf" -t "$T" -p 64 -n 32 -r 2 --json)
  python3 -c 'import json,sys; j=json.loads(sys.argv[3]); print("| %s | %s | %.1f | %.1f |" % (sys.argv[1], sys.argv[2], j["pp_tps"], j["tg_tps"]))' "$f" "$fam" "$j"
done

echo
echo "## Time to first token, 20-turn chat on the 1.1B shape (Q4_0), 16-token replies"
echo
"$B/bench_chat" ttft bench/models/1b-q4_0.gguf

echo
echo "## Resume a 3,000-token conversation (1.1B shape, Q4_0)"
echo
tmp=$(mktemp -d)
"$B/bench_chat" resume bench/models/1b-q4_0.gguf "$tmp"
rm -rf "$tmp"

echo
echo "## Stop latency (7B shape if made, else 1.1B; Q4_0)"
echo
m=bench/models/7b-q4_0.gguf
[ -f "$m" ] || m=bench/models/1b-q4_0.gguf
"$B/bench_chat" stop "$m"

B="$B" BENCH_THREADS="$T" LLAMA2_CHAT_FIXTURES="$fx" bench/tools.sh   # quantize and perplexity beside llama.cpp
echo
echo "## Conversation store: 10,000 conversations, 1,000,000 messages"
echo
"$B/bench_db"
