#!/usr/bin/env bash
# bench/tools.sh (called by bench/run.sh): quantize and perplexity times of
# llama2-chat beside llama.cpp b4748's llama-quantize and llama-perplexity,
# on the 1.1B-shape synthetic model (an F16 file made once by mkmodel) at
# the same thread count.  The peers' rows are left out where they cannot
# run.  BENCH_THREADS sets the threads (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/release}
T=${BENCH_THREADS:-2}
fx=${LLAMA2_CHAT_FIXTURES:-../shared}
peers=$fx/peers/llama.cpp-b4748
tok=$fx/models/tokenizer.bin
[ -f "$tok" ] || tok=
mkdir -p bench/models
src=bench/models/1b-f16.gguf
if [ ! -f "$src" ]; then
  echo "making $src (once)..." >&2
  "$B/mkmodel" "$src" 1b f16 $tok
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
runs() { "$peers/$1" --version >/dev/null 2>&1 || [ $? -lt 126 ]; }

echo
echo "## quantize: 1.1B shape, F16 -> TYPE, -t $T (llama.cpp: llama-quantize, same file and threads)"
echo
echo "| type | llama2-chat s | llama-quantize s | ratio | same bytes |"
echo "|---|---|---|---|---|"
for q in Q4_K_M Q8_0; do
  t0=$(now); ./llama2-chat quantize -t "$T" "$src" "$tmp/ours.gguf" "$q" >/dev/null; t1=$(now)
  ours=$(python3 -c "print(f'{$t1-$t0:.2f}')")
  if [ -x "$peers/llama-quantize" ] && runs llama-quantize; then
    t0=$(now); "$peers/llama-quantize" "$src" "$tmp/theirs.gguf" "$q" "$T" >/dev/null 2>&1; t1=$(now)
    theirs=$(python3 -c "print(f'{$t1-$t0:.2f}')")
    ratio=$(python3 -c "print(f'{$ours/$theirs:.2f}')")
    same=$(cmp -s "$tmp/ours.gguf" "$tmp/theirs.gguf" && echo yes || echo no)
  else
    theirs=-; ratio=-; same=-
  fi
  echo "| $q | $ours | $theirs | $ratio | $same |"
  [ "$q" = Q4_K_M ] && mv "$tmp/ours.gguf" "$tmp/q4km.gguf"
  rm -f "$tmp/ours.gguf" "$tmp/theirs.gguf"
done

# A text long enough for 4 chunks of 512 tokens whatever the vocabulary.
python3 - "$tmp/text.txt" <<'PY'
import random, sys
random.seed(1)
w = "the a little cat dog sat on mat and ran to house tree big small red blue happy day night sun moon".split()
open(sys.argv[1], "w").write(" ".join(random.choice(w) for _ in range(6000)) + "\n")
PY
echo
echo "## perplexity: 1.1B shape Q4_K_M (quantized above), -c 512 --chunks 4, -t $T"
echo
echo "| program | seconds | tokens/s | final estimate |"
echo "|---|---|---|---|"
t0=$(now); out=$(./llama2-chat perplexity -m "$tmp/q4km.gguf" -f "$tmp/text.txt" -c 512 --chunks 4 -t "$T" 2>/dev/null); t1=$(now)
ppl=$(echo "$out" | sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p')
python3 -c "print(f'| llama2-chat | {$t1-$t0:.2f} | {2048/($t1-$t0):.1f} | $ppl |')"
if [ -x "$peers/llama-perplexity" ] && runs llama-perplexity; then
  t0=$(now); out=$("$peers/llama-perplexity" -m "$tmp/q4km.gguf" -f "$tmp/text.txt" -c 512 -b 512 --chunks 4 -t "$T" 2>&1); t1=$(now)
  ppl=$(echo "$out" | sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p')
  python3 -c "print(f'| llama-perplexity | {$t1-$t0:.2f} | {2048/($t1-$t0):.1f} | $ppl |')"
fi
