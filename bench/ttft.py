#!/usr/bin/env python3
"""ttft.py: time to the first token of a pasted document, against the peers.

    bench/ttft.py [--tokens 3000] [--rounds K] [--threads T] [--rt] [--bin B] FILE...

Issue 16 asks that the first reply to a pasted 3,000-token document come
at most 0.8 times as late as the fastest peer processes a 3,000-token
prompt.  This measures exactly that, on each GGUF file given:

  the document   "Summarize this document." and the text of README.md, then
                 of the man page (its macros dropped), cut at a word so that
                 the whole prompt, the file's chat template included, is
                 --tokens tokens or just under (the tokenizer is the file's;
                 `llama2-chat tokenize` counts);
  ours           `llama2-chat -m FILE -t T --no-save -n 1 --temp 0 --json
                 -f DOC` in an empty HOME (nothing cached, no KV snapshot),
                 its stats.ttft_ms: from the message sent to the first token,
                 template, tokenizing and the whole prompt included;
  the peers      `llama-bench -p P -n 0`, P the prompt tokens ours reported,
                 llama.cpp b4748 with -fa 0 and -fa 1, ik_llama.cpp with
                 -fa 1 -rtr 1 (as bench/side.py), their time P / t/s.

K alternating rounds (ours, then each peer, on the warmed file); each figure
is its best round.  --rt (or BENCH_RT=1) runs everything under chrt -f 10,
as side.py does.  The ratio is ours over the fastest peer's time.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import side  # noqa: E402  (run, warm, peer, peer_list, use_rt, check_args)


def source_text():
    """The document before it is cut: README.md, then the man page's text."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    man = []
    with open(os.path.join(ROOT, "llama2-chat.1"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(".") or line.startswith("'"):
                # a macro line: keep its words (.SH NAME, .B text), drop the macro
                parts = line.split(None, 1)
                line = parts[1].strip('"') if len(parts) > 1 else ""
            line = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\e", "", line).replace("\\-", "-")
            if line:
                man.append(line)
    return "Summarize this document.\n\n" + readme + "\n" + "\n".join(man) + "\n"


def count(binary, model, text):
    """Tokens of text with the file's tokenizer, BOS included."""
    p = subprocess.run([binary, "tokenize", "-m", model, "-"], input=text, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"ttft.py: {binary} tokenize -m {model}: {p.stderr.strip()}")
    return len(p.stdout.split())


def ours(binary, model, doc_path, threads, env):
    """(ttft in ms, prompt tokens) of one fresh first message, or None."""
    home = tempfile.mkdtemp(prefix="ttft-home-")
    try:
        e = dict(env, HOME=home, XDG_DATA_HOME=os.path.join(home, "data"),
                 XDG_CONFIG_HOME=os.path.join(home, "config"), XDG_CACHE_HOME=os.path.join(home, "cache"),
                 XDG_STATE_HOME=os.path.join(home, "state"))
        out = side.run([binary, "-m", model, "-t", str(threads), "--no-save", "-n", "1", "--temp", "0", "--json",
                        "-f", doc_path], e)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if out is None:
        return None
    s = json.loads(out)["stats"]
    return s["ttft_ms"], s["prompt_tokens"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--tokens", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "2")))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "2")))
    ap.add_argument("--rt", action="store_true", default=os.environ.get("BENCH_RT") == "1")
    ap.add_argument("--bin", default=os.path.join(ROOT, "llama2-chat"))
    a = ap.parse_args()
    side.check_args(ap, a, ["rounds", "threads"], [])
    if a.tokens < 64:
        ap.error(f"--tokens must be at least 64, room for the template and some text (got {a.tokens})")
    peers = side.peer_list()
    side.use_rt(a.rt, "ttft.py")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    words = source_text().split(" ")
    rows = []
    tmp = tempfile.mkdtemp(prefix="ttft-doc-")
    try:
        for model in a.files:
            # The template's tokens: a one-word message's prompt less its text's.
            probe_path = os.path.join(tmp, "probe.txt")
            with open(probe_path, "w", encoding="utf-8") as f:
                f.write("Summarize")
            r = ours(a.bin, model, probe_path, a.threads, env)
            if r is None:
                sys.exit(f"ttft.py: {model}: {a.bin} could not answer a one-word message (above)")
            extra = r[1] - count(a.bin, model, "Summarize")
            # The most words whose text, with the template, fits in --tokens.
            lo, hi = 1, len(words)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if count(a.bin, model, " ".join(words[:mid])) + extra <= a.tokens:
                    lo = mid
                else:
                    hi = mid - 1
            doc_path = os.path.join(tmp, "doc.txt")
            with open(doc_path, "w", encoding="utf-8") as f:
                f.write(" ".join(words[:lo]))
            best, n_prompt, best_p = 0.0, 0, [0.0 for _ in peers]
            for _ in range(a.rounds):
                side.warm(model)
                r = ours(a.bin, model, doc_path, a.threads, env)
                if r is not None:
                    best = r[0] if best == 0 else min(best, r[0])
                    n_prompt = r[1]
                if not n_prompt:
                    break
                for i, (_, binary, flags) in enumerate(peers):
                    side.warm(model)
                    t = side.peer(binary, model, [f"pp{n_prompt}"], 1, a.threads, flags).get(f"pp{n_prompt}", 0.0)
                    best_p[i] = max(best_p[i], t)
            rows.append((model, n_prompt, best, best_p))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    title = "SCHED_FIFO, " if side.RT else ""
    print(f"\n## Time to the first token of a pasted document ({title}-t {a.threads}, best of {a.rounds} "
          f"alternating rounds)\n")
    head = ["file", "prompt tokens", "ours ttft s"] + [f"{p[0]} pp s" for p in peers] + ["ratio"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for model, n, ms, tps in rows:
        secs = [n / t if t else 0 for t in tps]
        fast = min([s for s in secs if s] or [0])
        cells = [os.path.basename(model), str(n), f"{ms / 1000:.2f}" if ms else "-"]
        cells += [f"{s:.2f} ({t:.1f} t/s)" if s else "-" for s, t in zip(secs, tps)]
        cells.append(f"{ms / 1000 / fast:.2f}" if ms and fast else "-")
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
