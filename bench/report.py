"""report.py OUT: the benchmark's report from OUT/raw.csv and OUT/meta.json
(bench.py writes both): OUT/results.csv (one row per measurement, with rates,
GFLOP/s, GB/s, the share of the measured peak and the machine), OUT/summary.md
(the targets and tables that README embeds), OUT/roofline.png and
OUT/scaling.png. Runs again on its own to redo the report without measuring.

Rates and throughputs come from the median time, except the peaks', which
come from the best run (as STREAM reports). A kernel's share is of its
roofline: min(FMA peak, intensity x stream bandwidth) at its thread count.
"""
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULT_FIELDS = ("section,name,impl,threads,batch,size,median,min,unit,rate,rate_unit,gflops,gbs,share,note,"
                 "machine").split(",")
MODELS = ["shallow_res_original", "shallow_res_full_pre", "skip_cae", "myronenko", "res_unet"]
PASSES = ["fwd", "bwd_data", "bwd_weights"]
# The optimised libraries our kernels are held against (the targets: oneDNN), with their names as shown.
REFERENCES = [("onednn", "oneDNN"), ("libxsmm", "LIBXSMM")]
TARGET_RATIO, GOAL_RATIO = 3.0, 15.0


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


def fmt(x, digits=1):
    return "-" if x is None or x == 0 else "%.*f" % (digits, x)


def ms(row):
    """A row's median time, or '-' when it has none."""
    return row["median"] if row and num(row["median"]) else "-"


def field(row, name, digits=1, scale=1.0, suffix=""):
    """A row's numeric field formatted, or '-' when there is no row or no value."""
    x = num(row[name]) * scale if row else 0
    return fmt(x, digits) + suffix if x else "-"


def ratio(a, b, digits=1):
    return fmt(a / b, digits) + "x" if a and b else "-"


def times(x):
    """A speedup as '0.52x', or '-' when there is none."""
    return fmt(x, 2) + "x" if x else "-"


def arenas(mem):
    """'MAX_RSS (ARENAS)' from a memory row, whose note ends in 'arenas X MiB'."""
    return "%s (%s)" % (field(mem, "median", 0), mem["note"].split("arenas ")[1]) if mem else "-"


def table(header, rows):
    """A Markdown table; header: column titles, numeric (right-aligned) ones ending in '>'."""
    titles = [h.rstrip(">") for h in header]
    rule = ["---:" if h.endswith(">") else "---" for h in header]
    lines = ["| " + " | ".join(titles) + " |", "|" + "|".join(rule) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows] + [""]


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else 0.0


class Report:
    def __init__(self, out):
        self.out = out
        with open(os.path.join(out, "raw.csv")) as f:
            self.raw = list(csv.DictReader(f))
        with open(os.path.join(out, "meta.json")) as f:
            self.meta = json.load(f)
        self.threads = int(self.meta["threads"])
        self.peaks = self.measure_peaks()
        self.flops = {r["name"]: num(r["flops"]) for r in self.raw if r["section"] == "model_flops"}
        self.rows = [self.derive(r) for r in self.raw]

    # ---- derived numbers -------------------------------------------------------------------------

    def measure_peaks(self):
        """threads -> {'fma': GFLOP/s, 'bw': GB/s (the better of copy and triad), 'copy', 'triad'}."""
        peaks = {}
        for r in self.raw:
            if r["section"] != "peak":
                continue
            p = peaks.setdefault(int(r["threads"]), {})
            secs = num(r["min"]) / 1e3
            if r["name"] == "fma":
                p["fma"] = num(r["flops"]) / secs / 1e9
            else:
                p[r["name"].replace("stream_", "")] = num(r["bytes"]) / secs / 1e9
                p["bw"] = max(p.get("copy", 0), p.get("triad", 0))
        return peaks

    def roof(self, threads, intensity):
        p = self.peaks.get(threads)
        if not p or "fma" not in p or "bw" not in p:
            return 0.0
        return min(p["fma"], intensity * p["bw"]) if intensity else p["fma"]

    def derive(self, r):
        d = {f: r.get(f, "") for f in RESULT_FIELDS}
        d["machine"] = self.meta["machine"]
        for f in ("batch", "size"):
            d[f] = "" if d[f] == "0" else d[f]
        threads, items = int(num(r["threads"])), num(r["items"])
        secs = num(r["min"] if r["section"] == "peak" else r["median"]) / 1e3 if r["unit"] == "ms" else 0
        flops, nbytes = num(r["flops"]), num(r["bytes"])
        if r["section"] == "trainer" and r["impl"] == "caec":
            flops = self.flops.get(r["name"], 0)  # the convolutions of its generated step
        if secs > 0 and items:
            d["rate"] = "%.4g" % (items / secs)
            d["rate_unit"] = "slices/s" if r["section"] == "pipeline" else "images/s"
        if secs > 0 and flops:
            d["gflops"] = "%.4g" % (flops / secs / 1e9)
        if secs > 0 and nbytes:
            d["gbs"] = "%.4g" % (nbytes / secs / 1e9)
        if d["gflops"] and r["section"] in ("kernel", "trainer"):
            roof = self.roof(threads, flops / nbytes if nbytes else 0)
            d["share"] = "%.3f" % (float(d["gflops"]) / roof) if roof else ""
        return d

    def select(self, section, **match):
        return [r for r in self.rows
                if r["section"] == section and all(str(r[k]) == str(v) for k, v in match.items())]

    def one(self, section, **match):
        rows = self.select(section, **match)
        return rows[0] if rows else None

    # ---- kernels -----------------------------------------------------------------------------------

    def kernel_table(self):
        """name -> {'caec': row, 'onednn', 'libxsmm', 'caec_cold', ...: rows at self.threads, 'caec1', 'onednn1',
        'libxsmm1': at 1 thread, 'naive': its one run}."""
        table = {}
        for r in self.select("kernel"):
            t = int(r["threads"])
            key = r["impl"] + ("" if t == self.threads or r["impl"] == "naive" else str(t))
            table.setdefault(r["name"], {})[key] = r
        return table

    @staticmethod
    def pass_of(name):
        return next(p for p in reversed(PASSES) if "_%s_" % p in name)

    @staticmethod
    def speedup(k, ref="onednn"):
        """A reference's time (oneDNN's unless ref says) over ours: above 1, ours is faster."""
        ours, theirs = k.get("caec"), k.get(ref)
        if not ours or not theirs or not num(ours["median"]) or not num(theirs["median"]):
            return 0.0
        return num(theirs["median"]) / num(ours["median"])

    @staticmethod
    def where(k, full=False):
        """Where the kernel occurs: 'N calls: model:layer (file:line); ...', or its first place and the count."""
        note = k["caec"]["note"] if "caec" in k else ""
        if " call" not in note:
            return ""
        calls = note.split("; ", 1)[1]
        places = calls.split(": ", 1)[1].split("; ")
        return calls if full or len(places) == 1 else "%s and %d more" % (places[0], len(places) - 1)

    # ---- summary -----------------------------------------------------------------------------------

    def summary(self):
        m = self.meta
        took = ", ".join("%s %.0f s" % kv for kv in m["seconds"].items())
        lines = ["# Benchmark results", "",
                 "`%s` on %s; %s, commit %s. %d threads unless stated. The run took %.1f minutes (%s)." % (
                     m["command"], m["machine"], m["date"], m["commit"], self.threads,
                     sum(m["seconds"].values()) / 60, took),
                 "Times are the median (and min) of repeated runs after a warm-up; the rows are in results.csv, "
                 "how to re-run one is in bench/README.md.", ""]
        for part in (self.peak_table, self.targets, self.trainer_table, self.scaling_table, self.pipeline_table,
                     self.compile_table, self.kernel_summary, self.kernel_rows):
            lines += part()
        return "\n".join(lines) + "\n"

    def peak_table(self):
        if not self.peaks:
            return []
        rows = [(t, fmt(p.get("fma")), fmt(p.get("copy")), fmt(p.get("triad"))) for t, p in sorted(self.peaks.items())]
        return (["## Peaks", "", "Measured by `build/bench/peak` (bench/peak.c), the best of its runs.", ""] +
                table(["threads>", "FMA GFLOP/s>", "copy GB/s>", "triad GB/s>"], rows))

    def targets(self):
        rows = []
        ours, peer = (self.one("trainer", name="res_unet", impl=i, threads=self.threads) for i in ("caec", "pytorch"))
        if ours and peer and num(ours["rate"]) and num(peer["rate"]):
            x = num(ours["rate"]) / num(peer["rate"])
            now = ("met, %.1fx above it" % (x / TARGET_RATIO) if x >= TARGET_RATIO
                   else "missed by %.1fx" % (TARGET_RATIO / x))
            goal = "goal met" if x >= GOAL_RATIO else "the %.0fx goal is %.1fx away" % (GOAL_RATIO, GOAL_RATIO / x)
            target = "Residual U-Net train step >= %.0fx the PyTorch peer (goal %.0fx)" % (TARGET_RATIO, GOAL_RATIO)
            rows.append((target, "%.1fx (%s vs %s images/s)" % (x, ours["rate"], peer["rate"]), "%s; %s" % (now, goal)))
        kernels = self.kernel_table()
        threes = {n: k for n, k in kernels.items() if "_k3s" in n and self.speedup(k)}
        behind = sorted((self.speedup(k), n) for n, k in threes.items() if self.speedup(k) < 1)
        target = "every 3x3 convolution kernel, forward and both backward passes, at least as fast as oneDNN"
        if threes:
            status = "missed: %d slower, the worst at %.2fx (below)" % (len(behind), behind[0][0]) if behind else "met"
            rows.append((target, "%d of %d" % (len(threes) - len(behind), len(threes)), status))
        else:
            built = "oneDNN not built" not in self.meta["machine"]
            rows.append((target, "not measured" + ("" if built else " (oneDNN not built)"), "-"))
        return (["## Targets", ""] + table(["target", "measured", "status"], rows) + self.holding_back(kernels) +
                self.behind_onednn(threes))

    def holding_back(self, kernels):
        """res_unet's kernels by their share of the step's convolution time."""
        ours = self.one("trainer", name="res_unet", impl="caec", threads=self.threads)
        parts = []
        for name, k in kernels.items():
            if num(ms(k.get("caec"))) and "res_unet:" in k["caec"]["note"]:
                calls = k["caec"]["note"].count("res_unet:")
                parts.append((calls * num(k["caec"]["median"]), calls, name, k))
        if not parts or not ours:
            return []
        conv, step = sum(p[0] for p in parts), num(ours["median"])
        rows = [(name, calls, "%.1f" % spent, "%.0f%%" % (100 * spent / conv), field(k["caec"], "gflops"),
                 field(k["caec"], "share", 0, 100)) + tuple(times(self.speedup(k, ref)) for ref, _ in REFERENCES)
                for spent, calls, name, k in sorted(parts, reverse=True)[:8]]
        return (["What holds the Residual U-Net back: its convolution kernels, each timed alone, add up to %.0f ms "
                 "against its whole %.0f ms step (%.0f%%). %s The kernels that take most of it:" % (
                     conv, step, 100 * conv / step, self.inside_text(conv, ours)), ""] +
                table(["kernel", "calls>", "ms per step>", "share of conv time>", "GFLOP/s>", "% of roofline>"] +
                      ["vs %s>" % shown for _, shown in REFERENCES], rows))

    def inside_text(self, alone, ours):
        """What the kernels take inside the step itself (the 'inside' rows), against the sum of their times alone
        when the two are of the same batch and size (smoke runs time the kernels at the test trainers' shapes)."""
        step, kernels = (self.one("inside", name="res_unet", impl=i) for i in ("step", "kernels"))
        if not step or not kernels or not num(step["median"]) or not num(kernels["median"]):
            return "The sum only estimates their share: they were not timed inside the step in this run."
        inside = num(kernels["median"])
        text = ("Timed inside the step (build/bench/res_unet_inside: each kernel call of the training step timed in "
                "place, in one run, batch %s of %sx%s), they take %.0f ms of its %.0f ms (%.0f%%)" % (
                    step["batch"], step["size"], step["size"], inside, num(step["median"]),
                    100 * inside / num(step["median"])))
        if (step["batch"], step["size"]) != (ours["batch"], ours["size"]):
            return text + "."
        return text + (", and alone they add up to %.2f times that: the sum alone comes from the kernels section, "
                       "minutes away from the step's, and carries that section's share of a shared machine's load "
                       "(bench/README.md, \"res_unet's kernels inside its step\")." % (alone / inside))

    def behind_onednn(self, threes):
        behind = sorted((self.speedup(k), n, k) for n, k in threes.items() if self.speedup(k) < 1)
        if not behind:
            return []
        rows = []
        for speed, name, k in behind:
            note = k["onednn"]["note"]
            untimed = note.split("untimed: ")[1].split(";")[0] if "untimed: " in note else ""
            rows.append((name, "%.2fx" % speed, ms(k["caec"]), ms(k["onednn"]), untimed,
                         times(self.speedup(k, "libxsmm")), ms(k.get("libxsmm")), self.where(k)))
        return (["3x3 kernels slower than oneDNN (its time over ours; oneDNN is timed without the work it cannot "
                 "fuse), with LIBXSMM beside it (timed without bias and epilogue too):", ""] +
                table(["kernel", "vs oneDNN>", "caec ms>", "oneDNN ms>", "oneDNN leaves untimed", "vs LIBXSMM>",
                       "LIBXSMM ms>", "where"], rows))

    def trainer_table(self):
        t, rows = self.threads, []
        for m in MODELS:
            ours = self.one("trainer", name=m, impl="caec", threads=t)
            if not ours:
                continue
            peer = self.one("trainer", name=m, impl="pytorch", threads=t)
            one = self.one("trainer", name=m, impl="caec", threads=1) if t > 1 else None
            rows.append((m, "%s, %s" % (ours["batch"], ours["size"]), field(ours, "rate"), field(peer, "rate"),
                         ratio(num(ours["rate"]), num(peer["rate"]) if peer else 0), field(ours, "gflops"),
                         field(ours, "share", 0, 100), arenas(self.one("memory", name=m, impl="caec", threads=t)),
                         field(self.one("memory", name=m, impl="pytorch", threads=t), "median", 0), field(one, "rate"),
                         ratio(num(ours["rate"]), num(one["rate"]) if one else 0, 2)))
        return (["## Trainers", "", "Training steps (forward, loss, backward, RMSprop update) on one random batch: the "
                 "trainer's `bench` and bench/torch_peer.py (the identical model in PyTorch); memory is the process's "
                 "peak RSS, with the arenas caec planned.", ""] +
                table(["model", "batch, size", "caec images/s>", "PyTorch images/s>", "ratio>", "caec conv GFLOP/s>",
                       "% of FMA peak>", "caec MiB (arenas)>", "PyTorch MiB>", "caec 1 thread images/s>",
                       "%d/1 thread speedup>" % t], rows))

    def scaling_table(self):
        if not self.select("scaling"):
            return []
        t = self.threads
        series = self.select("scaling") + self.select("trainer", name="res_unet", impl="caec", threads=t)
        rows = []
        for r in sorted(series, key=lambda r: (int(r["size"]), int(r["batch"]))):
            mem = (self.one("scaling_memory", batch=r["batch"], size=r["size"]) or
                   self.one("memory", name="res_unet", impl="caec", threads=t, batch=r["batch"], size=r["size"]))
            rows.append((r["batch"], r["size"], field(r, "rate"), r["median"], arenas(mem)))
        return (["## Scaling (res_unet, %d threads)" % t, ""] +
                table(["batch>", "size>", "images/s>", "ms per step>", "peak MiB (arenas)>"], rows))

    def pipeline_table(self):
        runs = self.select("pipeline")
        if not runs:
            return []
        ours = self.one("trainer", name="res_unet", impl="caec", threads=self.threads)
        rows = [(t, field(self.one("pipeline", name="loader_augment", threads=t), "rate", 0),
                 field(self.one("pipeline", name="loader_clean", threads=t), "rate", 0))
                for t in sorted({int(r["threads"]) for r in runs})]
        return (["## Data pipeline", "", "The loader (runtime/data/loader.h) producing batches of %s slices of %sx%s from "
                 "a slice cache, with nothing consuming them; res_unet's trainer consumes %s images/s." % (
                     runs[0]["batch"], runs[0]["size"], runs[0]["size"], field(ours, "rate")), ""] +
                table(["loader threads>", "augmented slices/s>", "clean slices/s>"], rows))

    def compile_table(self):
        rows = [(r["name"], field(r, "median"), field(self.one("compile", name=r["name"], impl="caec build"),
                                                      "median", 0), r["note"])
                for r in self.select("compile", impl="caec compile")]
        if not rows:
            return []
        return ["## Compile cost", ""] + table(["model", "caec compile ms>", "caec build ms (with the C compiler "
                                                "and link)>", "generated C>"], rows)

    def kernel_summary(self):
        kernels = self.kernel_table()
        if not kernels:
            return []
        rows, threes = [], []
        for p in PASSES:
            ks = [k for n, k in kernels.items() if self.pass_of(n) == p and "caec" in k]
            scale = [num(k["caec1"]["median"]) / num(k["caec"]["median"]) for k in ks
                     if num(ms(k.get("caec1"))) and num(k["caec"]["median"])]
            rows.append((p, len(ks), fmt(geomean([num(k["caec"]["gflops"]) for k in ks])),
                         fmt(100 * geomean([num(k["caec"]["share"]) for k in ks]), 0)) +
                        self.against(ks) + (fmt(geomean(scale), 2) if scale else "-",))
            k3 = [k for n, k in kernels.items() if self.pass_of(n) == p and "caec" in k and "_k3s" in n]
            threes.append((p, len(k3)) + self.against(k3, worst=True))
        refs = [shown for _, shown in REFERENCES]
        return (["## Kernels", "",
                 "Every convolution kernel of the five trainers' training steps (repeats merged), checked against the "
                 "naive reference at a small batch, then timed at the trainers' batch (build/bench/kernels). "
                 "oneDNN: its convolution and deconvolution primitives with blocked layouts (format_tag any), the "
                 "epilogue as post-ops in forward passes; it is timed without the work it cannot fuse (prologues, "
                 "batch-norm sums, split outputs, backward accumulation). LIBXSMM: its direct convolution "
                 "layers (libxsmm_dnn, JIT-generated for this CPU) on its blocked layouts, conv's image-to-grid "
                 "convolution run forward, backward or for the weights (convT is the same convolution the other "
                 "way); it fuses nothing, so it is timed without bias and epilogue as well. 'vs oneDNN', "
                 "'vs LIBXSMM': its time over ours.", ""] +
                table(["pass", "kernels>", "caec GFLOP/s (geomean)>", "% of roofline>"] +
                      sum((["vs %s (geomean)>" % r, "faster than %s>" % r] for r in refs), []) +
                      ["%d/1 thread speedup>" % self.threads], rows) +
                ["The 3x3 kernels alone (the targets count these):", ""] +
                table(["pass", "3x3 kernels>"] +
                      sum((["vs %s (geomean)>" % r, "faster than %s>" % r, "worst vs %s>" % r] for r in refs), []),
                      threes))

    def against(self, ks, worst=False):
        """For each reference: the geomean of its time over ours, how many of ks are at least as fast (and the
        worst ratio)."""
        cells = []
        for ref, _ in REFERENCES:
            speed = [self.speedup(k, ref) for k in ks if self.speedup(k, ref)]
            cells += [times(geomean(speed)), "%d of %d" % (sum(s >= 1 for s in speed), len(speed)) if speed else "-"]
            cells += [times(min(speed) if speed else 0)] if worst else []
        return tuple(cells)

    def kernel_rows(self):
        kernels = self.kernel_table()
        if not kernels:
            return []
        rows = []
        for n in sorted(kernels, key=lambda n: (PASSES.index(self.pass_of(n)), n)):
            k = kernels[n]
            c = k.get("caec")
            rows.append((n, ms(c), ms(k.get("caec_cold")), field(c, "gflops"), field(c, "share", 0, 100),
                         ms(k.get("onednn")), times(self.speedup(k)), ms(k.get("libxsmm")),
                         times(self.speedup(k, "libxsmm")), field(k.get("naive"), "gflops", 2), ms(k.get("caec1")),
                         self.where(k)))
        return (["All kernels, %d threads (names: bench/README.md; cold: caches flushed before each run, for the "
                 "kernels the caches could otherwise hold):" % self.threads, ""] +
                table(["kernel", "caec ms>", "cold ms>", "GFLOP/s>", "% of roofline>", "oneDNN ms>", "vs oneDNN>",
                       "LIBXSMM ms>", "vs LIBXSMM>", "naive GFLOP/s>", "caec 1 thread ms>", "where"], rows))

    # ---- plots -------------------------------------------------------------------------------------

    def roofline(self):
        t = self.threads
        fig, ax = plt.subplots(figsize=(8, 5.5))
        kernels = [r for r in self.select("kernel", threads=t)
                   if r["impl"] in ("caec", "onednn", "libxsmm") and num(r["gflops"])]
        xs = [num(r["gflops"]) / num(r["gbs"]) for r in kernels if num(r["gbs"])] or [1, 100]
        lo, hi = min(xs) / 2, max(xs) * 2
        p = self.peaks.get(t, {})
        if "fma" in p and "bw" in p:
            grid = [lo * (hi / lo) ** (i / 100) for i in range(101)]
            ax.plot(grid, [self.roof(t, x) for x in grid], "k-", lw=1.5,
                    label="roofline: %.0f GFLOP/s FMA, %.1f GB/s stream" % (p["fma"], p["bw"]))
        markers = {"fwd": "o", "bwd_data": "s", "bwd_weights": "^"}
        for impl, color in (("caec", "tab:blue"), ("onednn", "tab:orange"), ("libxsmm", "tab:green")):
            for ps in PASSES:
                pts = [(num(r["gflops"]) / num(r["gbs"]), num(r["gflops"])) for r in kernels
                       if r["impl"] == impl and self.pass_of(r["name"]) == ps and num(r["gbs"])]
                if pts:
                    ax.scatter(*zip(*pts), marker=markers[ps], s=22, alpha=0.75, label="%s %s" % (impl, ps),
                               facecolors=color if impl == "caec" else "none", edgecolors=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP per compulsory byte)")
        ax.set_ylabel("GFLOP/s")
        ax.set_title("Convolution kernels of the five trainers, %d threads" % t)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        fig.savefig(os.path.join(self.out, "roofline.png"), dpi=110)
        plt.close(fig)

    def scaling_plot(self):
        t = self.threads
        base = self.one("trainer", name="res_unet", impl="caec", threads=t)  # the series cross at its batch and size
        series = self.select("scaling") + ([base] if base else [])
        mems = self.select("scaling_memory") + self.select("memory", name="res_unet", impl="caec", threads=t)
        fixed = {"batch": base["batch"], "size": base["size"]} if base else {"batch": "32", "size": "128"}
        fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
        (a_size, a_batch), (a_mem, a_thr) = axes
        for ax, key, other in ((a_size, "size", "batch"), (a_batch, "batch", "size")):
            pts = sorted((int(r[key]), num(r["rate"])) for r in series if r[other] == fixed[other] and num(r["rate"]))
            if pts:
                ax.plot(*zip(*pts), "o-")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("input size" if key == "size" else "batch")
            ax.set_ylabel("images/s")
            ax.set_title("res_unet, %s %s" % (other, fixed[other]))
            ax.grid(True, alpha=0.3)
            pts = sorted((int(r[key]), num(r["median"])) for r in mems if r[other] == fixed[other])
            if pts:
                a_mem.plot(*zip(*pts), "o-", label="by %s (%s %s)" % (key, other, fixed[other]))
        a_mem.set_xscale("log", base=2)
        a_mem.set_yscale("log")
        a_mem.set_xlabel("size or batch")
        a_mem.set_ylabel("peak RSS, MiB")
        a_mem.set_title("res_unet, memory")
        a_mem.grid(True, alpha=0.3)
        if a_mem.lines:
            a_mem.legend(fontsize=8)
        names, one, many = [], [], []
        for m in MODELS:
            r1, rt = (self.one("trainer", name=m, impl="caec", threads=x) for x in (1, t))
            if r1 and rt and num(r1["rate"]):
                names.append(m.replace("_", "\n", 1)), one.append(num(r1["rate"])), many.append(num(rt["rate"]))
        xs = range(len(names))
        a_thr.bar([x - 0.2 for x in xs], one, 0.4, label="1 thread")
        a_thr.bar([x + 0.2 for x in xs], many, 0.4, label="%d threads" % t)
        a_thr.set_xticks(list(xs))
        a_thr.set_xticklabels(names, fontsize=7)
        a_thr.set_ylabel("images/s")
        a_thr.set_title("trainers, thread scaling")
        a_thr.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(self.out, "scaling.png"), dpi=110)
        plt.close(fig)

    def write(self):
        with open(os.path.join(self.out, "results.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, RESULT_FIELDS)
            w.writeheader()
            w.writerows(self.rows)
        with open(os.path.join(self.out, "summary.md"), "w") as f:
            f.write(self.summary())
        self.roofline()
        self.scaling_plot()


def main(argv):
    if len(argv) != 1:
        sys.exit("usage: report.py OUT")
    Report(argv[0]).write()
    print("bench: wrote %s/{results.csv,summary.md,roofline.png,scaling.png}" % argv[0], file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
