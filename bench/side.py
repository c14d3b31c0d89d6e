#!/usr/bin/env python3
"""side.py: llama2-chat side by side with the peer engines, one table per shape.

    bench/side.py [--isa avx2] [--reps R] [--rounds K] [--threads T] SHAPE FILE...

For each GGUF file: the file is read once (cat > /dev/null) so that every
engine starts from the page cache, then K rounds, each running ours and then
every peer on that file (ours, peers, ours, peers, ...), so that a busy
machine slows every engine alike; each figure is the best round's mean.
Peers (from $LLAMA2_CHAT_FIXTURES/peers, default ../shared):
  llama.cpp b4748 `llama-bench`, best of -fa 0 and -fa 1;
  ik_llama.cpp `llama-bench -fa 1 -rtr 1`.
With --isa avx2: ours under LLAMA2_CHAT_ISA=avx2 against llama.cpp's
`llama-bench-avx2` alone.  The ratio is ours over the fastest peer.
Decode bound: bytes one token reads (our bench's bytes_per_token) over the
read bandwidth that bwprobe measures in the same round, just after our
run, with a buffer of that size and the same thread count, the way our
tg figure is measured: R runs of N passes (tgN, -r R), the mean of the
runs.  The best single pass (about 10 ms, the machine at its fastest
instant) is printed beside it as "peak GB/s"; % of bound is against the
sustained figure, which is measured as the token speed is.

Generation figures swing most with the machine's phase (its memory
bandwidth can change by half from one minute to the next), and a round of
a small file is short, so tg128 on a file under 2 GB takes --tg-rounds
rounds (BENCH_TG_ROUNDS, default 4): after the --rounds rounds of every
test, more rounds of tg128 alone, for every engine alike.  On a 1.1B file
that is about three minutes more, and it gave the calmest tables; a 7B
round takes four to five minutes and keeps --rounds for the ratios.  Its
bound, which needs no peer, gets --bound-rounds rounds (BENCH_BOUND_ROUNDS,
default 4): after the --rounds rounds, more of ours and bwprobe alone
(about a minute each).  "% of bound" is then ours' best tg over every round
against bwprobe's best over the same rounds; the ratio columns keep to the
rounds the peers ran in.

Every round's figures (ours, the probe just after, each peer) go to
stderr as they are taken, one line a round.

BENCH_RT=1 (or --rt) runs every measured command under `chrt -f 10`
(SCHED_FIFO, root only): on a machine shared with builds and tests, two
threads that are preempted at each of a token's two hundred barriers lose
half their speed or more, and the figures then say more about the
neighbours than about the engines.  Real-time priority keeps other work
off both cores while a figure is taken (the kernel still leaves them 5%),
for every engine alike.  BENCH_TESTS (or --tests) picks the figures, e.g.
"pp512,tg128".
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


RT = []   # the chrt prefix when --rt is on and allowed


def run(cmd, env=None):
    cmd = RT + cmd
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(f"side.py: {' '.join(cmd)}: exit {p.returncode}\n{p.stderr[-2000:]}\n")
        return None
    return p.stdout


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def ours(binary, path, tests, reps, threads, isa):
    """{test: t/s} and bytes per token, from `llama2-chat bench --json`."""
    env = dict(os.environ)
    if isa:
        env["LLAMA2_CHAT_ISA"] = isa
    res, bpt, used = {}, 0, None
    pps = [t for t in tests if t.startswith("pp")]
    tg = [t for t in tests if t.startswith("tg")]
    # pp512 together with tg128, the longer prompts on their own (-n 0).
    jobs = []
    for i, pp in enumerate(pps):
        jobs.append((int(pp[2:]), int(tg[0][2:]) if (i == 0 and tg) else 0))
    if not pps and tg:
        jobs.append((0, int(tg[0][2:])))
    for p, n in jobs:
        cmd = [binary, "bench", "-m", path, "-t", str(threads), "-r", str(reps), "--json"]
        cmd += ["-p", str(p), "-n", str(n)]
        out = run(cmd, env)
        if out is None:
            continue
        j = json.loads(out)
        used = j.get("isa", used)
        bpt = j.get("bytes_per_token", bpt)
        if p > 0:
            res[f"pp{p}"] = j["pp_tps"]
        if n > 0:
            res[f"tg{n}"] = j["tg_tps"]
    return res, bpt, used


def probe(binary, nbytes, args, env):
    """bwprobe's GB/s over nbytes (0.0 if it failed): args [5] is the best
    of 5 single passes, [R, N] the mean of R runs of N passes."""
    out = subprocess.run(RT + [binary, str(nbytes)] + [str(x) for x in args], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=env).stdout.strip()
    return float(out or 0)


def peer(binary, path, tests, reps, threads, extra):
    """{test: t/s}, best over the flag sets in `extra` (a list of lists)."""
    pps = sorted({int(t[2:]) for t in tests if t.startswith("pp")})
    tgs = sorted({int(t[2:]) for t in tests if t.startswith("tg")})
    res = {}
    for flags in extra:
        cmd = [binary, "-m", path, "-t", str(threads), "-r", str(reps), "-o", "json"]
        cmd += ["-p", ",".join(map(str, pps)) if pps else "0", "-n", ",".join(map(str, tgs)) if tgs else "0"]
        cmd += flags
        out = run(cmd)
        if out is None:
            continue
        try:
            rows = json.loads(out[out.index("["):])
        except ValueError:
            sys.stderr.write(f"side.py: {' '.join(cmd)}: no JSON in its output\n")
            continue
        for r in rows:
            key = f"pp{r['n_prompt']}" if r["n_gen"] == 0 else f"tg{r['n_gen']}"
            res[key] = max(res.get(key, 0.0), r["avg_ts"])
    return res


def peer_list(isa=""):
    """The peers found in $LLAMA2_CHAT_FIXTURES/peers: (name, binary, flag
    sets), llama.cpp's AVX2 build alone for isa "avx2"."""
    fx = os.environ.get("LLAMA2_CHAT_FIXTURES", os.path.join(ROOT, "..", "shared"))
    pd = os.path.join(fx, "peers")
    if isa == "avx2":
        peers = [("llama.cpp b4748 AVX2", os.path.join(pd, "llama.cpp-b4748", "llama-bench-avx2"),
                  [["-fa", "0"], ["-fa", "1"]])]
    else:
        peers = [("llama.cpp b4748", os.path.join(pd, "llama.cpp-b4748", "llama-bench"), [["-fa", "0"], ["-fa", "1"]]),
                 ("ik_llama.cpp", os.path.join(pd, "ik_llama.cpp", "llama-bench"), [["-fa", "1", "-rtr", "1"]])]
    return [p for p in peers if os.access(p[1], os.X_OK)]


def use_rt(on, prog):
    """Every measured command under chrt -f 10 from now on, if on and allowed."""
    if not on:
        return
    if subprocess.run(["chrt", "-f", "10", "true"], stderr=subprocess.DEVNULL).returncode == 0:
        RT[:] = ["chrt", "-f", "10"]
    else:
        sys.stderr.write(f"{prog}: chrt -f is not allowed here (not root?): measuring at normal priority\n")


def check_args(ap, a, positive, nonneg):
    """Refuse counts that cannot be (ap.error: usage, one line, exit 2) and
    model files that are not there, before anything is measured."""
    for k in positive:
        if getattr(a, k) < 1:
            ap.error(f"--{k.replace('_', '-')} must be at least 1 (got {getattr(a, k)})")
    for k in nonneg:
        if getattr(a, k) < 0:
            ap.error(f"--{k.replace('_', '-')} must be 0 or more (got {getattr(a, k)})")
    for f in a.files:
        if not os.path.isfile(f):
            ap.error(f"{f}: no such model file")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--isa", default="")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "2")))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "2")))
    ap.add_argument("--tg-rounds", type=int, default=int(os.environ.get("BENCH_TG_ROUNDS", "4")))
    ap.add_argument("--bound-rounds", type=int, default=int(os.environ.get("BENCH_BOUND_ROUNDS", "4")))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "2")))
    ap.add_argument("--rt", action="store_true", default=os.environ.get("BENCH_RT") == "1")
    ap.add_argument("--tests", default=os.environ.get("BENCH_TESTS", ""))
    ap.add_argument("--bin", default=os.path.join(ROOT, "llama2-chat"))
    ap.add_argument("--probe", default=os.path.join(ROOT, os.environ.get("B", "build/release"), "bwprobe"))
    a = ap.parse_args()
    check_args(ap, a, ["reps", "rounds", "threads"], ["tg_rounds", "bound_rounds"])
    tests = ["pp512", "tg128"] if a.isa == "avx2" else ["pp512", "pp2048", "tg128"]
    if a.tests:
        tests = [t for t in tests if t in a.tests.split(",")]
    peers = peer_list(a.isa)
    use_rt(a.rt, "side.py")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))

    n_tg = next((int(t[2:]) for t in tests if t.startswith("tg")), 128)   # tokens per run the probe mirrors
    rows = []
    for path in a.files:
        best_o, best_p, bpt, bw, peak, isa = {}, [{} for _ in peers], 0, 0.0, 0.0, a.isa or "best"
        tg_only = [t for t in tests if t.startswith("tg")]
        small = os.path.getsize(path) < 2e9
        extra = max(0, a.tg_rounds - a.rounds) if tg_only and small else 0
        solo = max(0, a.bound_rounds - a.rounds) if tg_only and not small else 0
        tg_all = 0.0   # ours tg over every round, the bound's own included
        for r in range(a.rounds + extra + solo):
            now = tests if r < a.rounds else tg_only
            warm(path)
            o, b, used = ours(a.bin, path, now, a.reps, a.threads, a.isa)
            bpt, isa = b or bpt, used or isa
            with_peers = r < a.rounds + extra   # else a round of ours and the probe alone
            if with_peers:
                for k, v in o.items():
                    best_o[k] = max(best_o.get(k, 0.0), v)
            tg_all = max([tg_all] + [v for k, v in o.items() if k.startswith("tg")])
            line = [f"ours {k} {v:.2f}" for k, v in o.items()]
            if bpt:
                got = probe(a.probe, bpt, [a.reps, n_tg], env)
                bw = max(bw, got)
                peak = max(peak, probe(a.probe, bpt, [5], env))
                line.append(f"probe {got:.1f} GB/s")
            for i, (name, binary, flags) in enumerate(peers if with_peers else []):
                warm(path)
                for k, v in peer(binary, path, now, a.reps, a.threads, flags).items():
                    best_p[i][k] = max(best_p[i].get(k, 0.0), v)
                    line.append(f"{name} {k} {v:.2f}")
            # Each round on stderr, so that a table's best-of figures can
            # be traced to the minute they were taken in (a miss in one
            # cell is then seen to be the machine's phase or ours).
            sys.stderr.write(f"side.py: {os.path.basename(path)} round {r + 1}: {', '.join(line)}\n")
        rows.append((path, isa, best_o, best_p, bpt, bw, peak, a.rounds + extra, solo, tg_all))

    title = "AVX2 only (LLAMA2_CHAT_ISA=avx2)" if a.isa == "avx2" else "side by side"
    if RT:
        title += ", SCHED_FIFO"
    print(f"\n## {a.shape} shape, {title}: -t {a.threads}, best of {a.rounds} alternating rounds of -r {a.reps}, t/s\n")
    head = ["file", "isa"]
    for t in tests:
        head += [f"ours {t}"] + [f"{p[0]}" for p in peers] + ["ratio"]
    head += ["read/token", "read GB/s (as tg)", "peak GB/s", "tg bound t/s", "ours % of bound"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for path, isa, o, p, bpt, bw, peak, nr, solo, tg_all in rows:
        note = f" (tg: {nr} rounds)" if nr > a.rounds else f" (bound: {nr + solo} rounds)" if solo else ""
        cells = [os.path.basename(path) + note, isa]
        for t in tests:
            cells.append(f"{o[t]:.2f}" if t in o else "-")
            vals = [pp.get(t) for pp in p]
            cells += [f"{v:.2f}" if v else "-" for v in vals]
            fast = max([v for v in vals if v] or [0])
            cells.append(f"{o[t] / fast:.2f}" if fast and t in o else "-")
        tg = next((t for t in tests if t.startswith("tg")), None)
        bound = bw * 1e9 / bpt if bpt and bw else 0
        cells += [f"{bpt / 1e9:.3f} GB" if bpt else "-", f"{bw:.1f}" if bw else "-",
                  f"{peak:.1f}" if peak else "-",
                  f"{bound:.1f}" if bound else "-",
                  (f"{100 * tg_all / bound:.1f}%" + (f" ({tg_all:.2f} t/s)" if solo else ""))
                  if bound and tg_all else "-"]
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
