"""The benchmark's driver (bench/run is its entry point): runs each section's
programs at fixed thread counts, collects their raw CSV rows (harness.h) in
OUT/raw.csv with OUT/meta.json (machine, date, commit, section times), then
bench/report.py turns them into OUT/results.csv, OUT/summary.md and the plots.

Sections, in order (--only picks some):
  peak      FMA FLOP/s and stream bandwidth (build/bench/peak), 1 to T threads
  kernels   every convolution kernel of the five trainers' training steps
            (build/bench/kernels on their generated sources): ours, oneDNN,
            LIBXSMM and the naive reference (one run at batch 2), each checked,
            then timed at T threads and at 1, and cold (caches flushed) where
            they fit in the caches
  trainers  images/s and peak memory of each trainer (NAME bench) and of its
            PyTorch peer (bench/torch_peer.py), batch 32 of 128x128, at T
            threads; the trainers alone at 1 thread; res_unet's convolution
            kernels timed inside its step (build/bench/res_unet_inside)
  scaling   res_unet at sizes 64 and 256 (batch 32) and batches 8 and 128
            (128x128), each built by caec build
  pipeline  the loader's slices/s (build/bench/pipeline), 1 and 2 loader threads
  compile   caec compile per model, and caec build (the C compiler and link)
--smoke runs every section on the test trainers' small shapes (batch 2,
32x32), once, on one thread: it checks that the benchmark works, in < 1 minute.
A kernel that fails its correctness check makes the run exit 1, naming it and
its error, after the whole report is written (--wrong IMPL, for the test of
that: IMPL's kernels are spoilt before their checks).

Environment: CAEC_BUILD (build), CAEC_BENCH_THREADS (2), CAEC_BENCH_STEPS
(timed steps of our trainers, 5), CAEC_BENCH_PEER_STEPS (of PyTorch's, 3).
"""
import argparse
import csv
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["shallow_res_original", "shallow_res_full_pre", "skip_cae", "myronenko", "res_unet"]
FIELDS = "section,name,impl,threads,batch,size,median,min,unit,flops,bytes,items,note".split(",")
SECTIONS = ["peak", "kernels", "trainers", "scaling", "pipeline", "compile"]
# res_unet's scaling series: (batch, size) besides the trainers' (32, 128).
SCALING = [(32, 64), (32, 256), (8, 128), (128, 128)]
STEP_LINE = re.compile(r"batch (\d+) of (\d+)x\d+.*median ([0-9.]+) ms .*best ([0-9.]+) ms")
INSIDE_LINE = re.compile(r"inside: (\d+) kernel calls, ([0-9.]+) ms")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, a):
        self.a = a
        self.build = os.path.abspath(os.environ.get("CAEC_BUILD", "build"))
        self.caec = os.path.join(self.build, "caec")
        # The smoke run checks that everything works, on one thread: spare cores are not what it is about.
        self.threads = 1 if a.smoke else int(os.environ.get("CAEC_BENCH_THREADS", "2"))
        self.thread_list = sorted({1, self.threads})
        self.steps = 1 if a.smoke else int(os.environ.get("CAEC_BENCH_STEPS", "5"))
        self.peer_steps = 1 if a.smoke else int(os.environ.get("CAEC_BENCH_PEER_STEPS", "3"))
        self.rows = []
        self.wrong = []  # the failed correctness checks: "impl problem: error"
        self.versions = {}
        self.work = tempfile.mkdtemp(prefix="caec_bench_")

    # ---- running programs ----------------------------------------------------------------------

    def run(self, cmd, threads, checks=False):
        """Runs cmd with OMP_NUM_THREADS=threads; returns its stdout and its peak RSS in MiB. With checks, its
        exit status 1 means failed correctness checks (its rows say which), not a failed run."""
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        p = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        out = p.stdout.read()
        _, status, usage = os.wait4(p.pid, 0)  # this child's own rusage: its max RSS
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode and not (checks and p.returncode == 1):
            sys.exit("bench: failed (exit %d): %s" % (p.returncode, " ".join(map(str, cmd))))
        return out, usage.ru_maxrss / 1024.0

    def add(self, **row):
        self.rows.append({f: row.get(f, "") for f in FIELDS})

    def add_csv(self, text):
        for r in csv.DictReader(io.StringIO(text)):
            self.rows.append(r)

    def exe(self, model):
        """The trainer to time: the test trainers in smoke mode, else build/models/NAME."""
        if self.a.smoke:
            return os.path.join(self.build, "tests", "codegen", model + "_test")
        return os.path.join(self.build, "models", model)

    def smoke_size(self, model):
        return 16 if model == "myronenko" else 32

    # ---- sections --------------------------------------------------------------------------------

    def peak(self):
        for t in self.thread_list:
            self.add_csv(self.run([self.build + "/bench/peak"] + (["--smoke"] if self.a.smoke else []), t)[0])

    def sources(self):
        if self.a.smoke:
            return [os.path.join(self.build, "tests/codegen/%s_test.src/%s.c" % (m, m)) for m in MODELS]
        return [os.path.join(self.build, "models/%s.src/%s.c" % (m, m)) for m in MODELS]

    def kernels(self):
        if self.a.smoke:
            options = ["--reps", "1", "--min-seconds", "0"]
        else:  # problems of up to 16 MiB, which the caches can hold between runs, are timed cold too
            options = ["--threads", ",".join(map(str, sorted(self.thread_list, reverse=True))), "--cold-mib", "16"]
        if self.a.wrong:
            options += ["--wrong", self.a.wrong]
        first = len(self.rows)
        self.add_csv(self.run([self.build + "/bench/kernels"] + options + self.sources(), self.threads, True)[0])
        self.wrong += ["%s %s: %s" % (r["impl"], r["name"], r["note"].split(";")[0][len("WRONG: "):])
                       for r in self.rows[first:] if r["note"].startswith("WRONG: ")]
        for impl, name in (("onednn", "oneDNN"), ("libxsmm", "LIBXSMM")):
            found = (re.search(name + r" [0-9.]+", r["note"]) for r in self.rows if r["impl"] == impl)
            self.versions[impl] = next((m.group(0) for m in found if m), name + " not built")

    def trainer(self, section, memory, model, exe, threads):
        """One trainer's step time (row in section) and peak memory (in memory), with the arenas its info plans."""
        out, rss = self.run([exe, "bench", "--steps", self.steps], threads)
        m = STEP_LINE.search(out)
        batch, size = int(m.group(1)), int(m.group(2))
        self.add(section=section, name=model, impl="caec", threads=threads, batch=batch, size=size,
                 median=m.group(3), min=m.group(4), unit="ms", items=batch)
        info, _ = self.run([exe, "info"], 1)
        arenas = sum(int(x) for x in re.findall(r"\d+", re.search(r"arenas:(.*)", info).group(1)))
        self.add(section=memory, name=model, impl="caec", threads=threads, batch=batch, size=size, median=rss,
                 min=rss, unit="MiB", note="max RSS; arenas %.1f MiB" % (arenas / 2**20))

    def peer(self, model, threads):
        extra = ["--batch", "2", "--size", self.smoke_size(model)] if self.a.smoke else []
        out, rss = self.run(["/usr/bin/python3", "bench/torch_peer.py", self.caec, "models/%s.cae" % model,
                             "--steps", self.peer_steps, "--threads", threads] + extra, threads)
        m = STEP_LINE.search(out)
        self.versions["torch"] = out.split()[1]
        batch, size = int(m.group(1)), int(m.group(2))
        self.add(section="trainer", name=model, impl="pytorch", threads=threads, batch=batch, size=size,
                 median=m.group(3), min=m.group(4), unit="ms", items=batch,
                 note="torch %s, RMSprop, MSE" % self.versions["torch"])
        self.add(section="memory", name=model, impl="pytorch", threads=threads, batch=batch, size=size,
                 median=rss, min=rss, unit="MiB", note="max RSS of the Python process")

    def trainers(self):
        for model in MODELS:
            log("trainer %s" % model)
            for t in self.thread_list:
                self.trainer("trainer", "memory", model, self.exe(model), t)
            self.peer(model, self.threads)
        self.inside()

    def inside(self):
        """res_unet's step (at the trainers' batch and size, also in smoke runs) with its convolution kernels timed
        inside it: rows 'step' (the step's median) and 'kernels' (their mean time per step), from one run."""
        log("res_unet's kernels inside its step")
        out, _ = self.run([self.build + "/bench/res_unet_inside", "bench", "--steps", self.steps], self.threads)
        m, k = STEP_LINE.search(out), INSIDE_LINE.search(out)
        batch, size = int(m.group(1)), int(m.group(2))
        calls = int(k.group(1)) / self.steps
        self.add(section="inside", name="res_unet", impl="step", threads=self.threads, batch=batch, size=size,
                 median=m.group(3), min=m.group(4), unit="ms", items=batch, note="the step, in the same run")
        kernels = float(k.group(2)) / self.steps
        self.add(section="inside", name="res_unet", impl="kernels", threads=self.threads, batch=batch, size=size,
                 median=kernels, min=kernels, unit="ms",
                 note="its %g convolution kernel calls per step, timed inside the step (mean per step)" % calls)

    def caec_build(self, model, batch, size):
        """Builds a trainer with caec build; returns its path and the build's seconds."""
        exe = os.path.join(self.work, "%s_b%d_s%d" % (model, batch, size))
        t0 = time.perf_counter()
        self.run([self.caec, "build", "models/%s.cae" % model, "--batch", batch, "--size", size, "-o", exe], 1)
        return exe, time.perf_counter() - t0

    def scaling(self):
        configs = [(2, 16), (4, 32)] if self.a.smoke else SCALING
        for batch, size in configs:
            log("scaling res_unet batch %d size %d" % (batch, size))
            exe, _ = self.caec_build("res_unet", batch, size)
            self.trainer("scaling", "scaling_memory", "res_unet", exe, self.threads)

    def pipeline(self):
        small = ["--size", "32", "--batch", "2", "--batches", "4", "--reps", "1"] if self.a.smoke else []
        self.add_csv(self.run([self.build + "/bench/pipeline", "--threads", "1,2"] + small, 1)[0])

    def compile(self):
        for model in (["res_unet"] if self.a.smoke else MODELS):
            secs = []
            for _ in range(1 if self.a.smoke else 5):
                t0 = time.perf_counter()
                self.run([self.caec, "compile", "models/%s.cae" % model, "-o", os.path.join(self.work, model)], 1)
                secs.append(time.perf_counter() - t0)
            secs.sort()
            with open(os.path.join(self.work, model, model + ".c")) as f:
                lines = sum(1 for _ in f)
            self.add(section="compile", name=model, impl="caec compile", threads=1, batch=32, size=128,
                     median=1e3 * secs[len(secs) // 2], min=1e3 * secs[0], unit="ms",
                     note="%d lines of C" % lines)
            _, build = self.caec_build(model, 32, 128)
            self.add(section="compile", name=model, impl="caec build", threads=1, batch=32, size=128,
                     median=1e3 * build, min=1e3 * build, unit="ms",
                     note="caec compile + the C compiler + link, one run")

    # ---- output ------------------------------------------------------------------------------------

    def machine(self):
        cpu = "unknown CPU"
        flags = set()
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "unknown CPU":
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
        isa = " ".join(f for f in ["avx512f", "avx2", "fma"] if f in flags) or "no AVX"
        with open("/proc/meminfo") as f:
            mem = next((int(line.split()[1]) for line in f if line.startswith("MemTotal")), 0)
        cc = "cc"
        cache = os.path.join(self.build, "CMakeCache.txt")
        if os.path.exists(cache):
            with open(cache) as f:
                cc = next((line.split("=", 1)[1].strip() for line in f if line.startswith("CMAKE_C_COMPILER:")), cc)
        ccv = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
        gpu = "no GPU"  # cuDNN rows will come with the CUDA back end
        parts = ["%s, %d cores (%s), %.0f GiB" % (cpu, os.cpu_count(), isa, mem / 2**20), gpu,
                 "Linux " + platform.release(), ccv[0] if ccv else cc, self.versions.get("onednn", ""),
                 self.versions.get("libxsmm", ""),
                 "torch " + self.versions["torch"] if "torch" in self.versions else ""]
        return ", ".join(p for p in parts if p)

    def write(self, seconds):
        os.makedirs(self.a.out, exist_ok=True)
        with open(os.path.join(self.a.out, "raw.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            w.writerows(self.rows)
        git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
        meta = {"machine": self.machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "commit": git or "unknown", "threads": self.threads, "smoke": self.a.smoke,
                "command": "bench/run" + (" --smoke" if self.a.smoke else ""), "seconds": seconds}
        with open(os.path.join(self.a.out, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=None, help="results folder (default bench/results; smoke: BUILD/bench/smoke)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="sections to run, comma-separated")
    ap.add_argument("--wrong", choices=["caec", "onednn", "libxsmm"],
                    help="for tests: spoil IMPL's kernels before the checks")
    a = ap.parse_args()
    only = a.only.split(",")
    for s in only:
        if s not in SECTIONS:
            sys.exit("bench: unknown section '%s' (%s)" % (s, ", ".join(SECTIONS)))
    b = Bench(a)
    if a.out is None:
        a.out = os.path.join(b.build, "bench", "smoke") if a.smoke else os.path.join(ROOT, "bench", "results")
    seconds = {}
    try:
        for s in SECTIONS:
            if s in only:
                log(s)
                t0 = time.perf_counter()
                getattr(b, s)()
                seconds[s] = round(time.perf_counter() - t0, 1)
    finally:
        shutil.rmtree(b.work)
    b.write(seconds)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import report
    report.main([a.out])
    for w in b.wrong:
        log("WRONG: " + w)
    if b.wrong:
        sys.exit("bench: %d kernel%s failed the correctness check (above); the report in %s lists them" %
                 (len(b.wrong), "" if len(b.wrong) == 1 else "s", a.out))


if __name__ == "__main__":
    main()
