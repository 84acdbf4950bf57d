"""The statistics of `caec compare` and `caec experiment` against SciPy.

usage: stats_oracle.py compare CAEC
       stats_oracle.py experiment CAEC OUT

compare: writes pairs of per_image.csv files whose three metric columns hold
different values, with differences of both signs, and checks every mean, t, df
and p that `caec compare` prints against scipy.stats.ttest_rel.
experiment: checks an experiment's folder OUT (what `caec experiment --out OUT`
wrote): every row of pvalues.csv against SciPy on the runs' per-image rows and
against `caec compare` on the same pair; every mean and sd of results.csv and
results.md against the per-image rows.
Prints one line per check group and 'N passed, M failed'; exits 1 on a failure,
77 without SciPy.
"""
import csv
import math
import os
import re
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from scipy import stats
except ImportError:  # ctest reports the test as skipped (SKIP_RETURN_CODE 77)
    print("skipped: /usr/bin/python3 cannot import numpy and scipy (Debian's python3-scipy)")
    sys.exit(77)

METRICS = ["mse", "dssim", "psnr"]
HEADER = "index,volume,slice,mse,dssim,psnr"
passed, failed = 0, 0


def check(cond, msg):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + msg, file=sys.stderr)


def close(got, want, rel, what):
    """got equal to want, or within rel of it (relative to at least 1e-12, for values near 0)."""
    ok = got == want or abs(got - want) <= rel * max(abs(want), 1e-12)
    check(ok, "%s: got %.10g, want %.10g" % (what, got, want))


def write_per_image(folder, rows):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "per_image.csv"), "w") as f:
        f.write(HEADER + "\n")
        for i, (mse, dssim, psnr) in enumerate(rows):
            f.write("%d,0,%d,%.17g,%.17g,%.17g\n" % (i, i, mse, dssim, psnr))


def read_per_image(folder):
    """The metric columns of folder/per_image.csv (or folder/eval/per_image.csv) as arrays."""
    path = os.path.join(folder, "per_image.csv")
    if not os.path.exists(path):
        path = os.path.join(folder, "eval", "per_image.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {m: np.array([float(r[m]) for r in rows]) for m in METRICS}


def run_compare(caec, a, b):
    """caec compare's table: {metric: (mean A, mean B, mean d, t, df, p)}."""
    out = subprocess.run([caec, "compare", a, b], capture_output=True, text=True)
    check(out.returncode == 0, "caec compare %s %s: exit %d: %s" % (a, b, out.returncode, out.stderr))
    table = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 7 and parts[0] in METRICS:
            table[parts[0]] = tuple(float(v) for v in parts[1:])
    check(sorted(table) == sorted(METRICS), "caec compare printed no row for some metric:\n" + out.stdout)
    return table


def want_ttest(a, b):
    """mean(a - b), t, df and p of the paired two-sided t-test, from SciPy."""
    r = stats.ttest_rel(a, b)
    return float(np.mean(a - b)), float(r.statistic), len(a) - 1, float(r.pvalue)


def check_compare_row(row, a, b, what, digits):
    """One printed row (mean A, mean B, mean d, t, df, p) against SciPy, to its printed precision."""
    rel = 0.6 * 10 ** (1 - digits)
    mean_d, t, df, p = want_ttest(a, b)
    close(row[0], float(np.mean(a)), rel, what + " mean A")
    close(row[1], float(np.mean(b)), rel, what + " mean B")
    close(row[2], mean_d, rel, what + " mean d")
    close(row[3], t, rel, what + " t")
    check(row[4] == df, "%s df: got %g, want %d" % (what, row[4], df))
    close(row[5], p, rel, what + " p")


def cmd_compare(caec):
    rng = np.random.default_rng(20261207)
    with tempfile.TemporaryDirectory() as tmp:
        for n in (2, 3, 7, 40):
            # Each metric its own scale and its own sign of A - B; psnr mixed in sign per image.
            b = np.column_stack([rng.uniform(1e-3, 2e-3, n), rng.uniform(0.05, 0.1, n), rng.uniform(30, 35, n)])
            shift = np.column_stack([rng.uniform(1e-4, 3e-4, n), -rng.uniform(0.01, 0.02, n), rng.normal(0.2, 1, n)])
            a = b + shift
            write_per_image(os.path.join(tmp, "a%d" % n), a)
            write_per_image(os.path.join(tmp, "b%d" % n), b)
            for x, y, label in ((a, b, "A-B"), (b, a, "B-A")):
                order = ("a", "b") if label == "A-B" else ("b", "a")
                table = run_compare(caec, *(os.path.join(tmp, "%s%d" % (o, n)) for o in order))
                for k, m in enumerate(METRICS):
                    if m in table:
                        check_compare_row(table[m], x[:, k], y[:, k], "compare n=%d %s %s" % (n, label, m), 6)
        # Every difference the same: no spread, a certain difference (t = +-inf, p = 0) or none (t = 0, p = 1).
        base = np.column_stack([np.linspace(1, 2, 4)] * 3)
        write_per_image(os.path.join(tmp, "flat_b"), base)
        write_per_image(os.path.join(tmp, "flat_a"), base + np.array([0.5, -0.25, 0.0]))
        table = run_compare(caec, os.path.join(tmp, "flat_a"), os.path.join(tmp, "flat_b"))
        want = {"mse": (math.inf, 0.0), "dssim": (-math.inf, 0.0), "psnr": (0.0, 1.0)}
        for m, (t, p) in want.items():
            got = table.get(m, (0,) * 6)
            check(got[3] == t and got[5] == p, "compare, constant difference, %s: t %g p %g, want %g %g" %
                  (m, got[3], got[5], t, p))
    print("compare: %d checks against scipy.stats.ttest_rel" % passed)


def md_numbers(cell):
    return [float(v) for v in re.findall(r"-?[0-9.]+(?:e[-+]?[0-9]+)?", cell)]


def cmd_experiment(caec, out):
    with open(os.path.join(out, "results.csv")) as f:
        results = list(csv.DictReader(f))
    check(len(results) >= 2, "%s/results.csv: %d rows" % (out, len(results)))
    runs = {r["config"]: read_per_image(os.path.join(out, "runs", r["config"])) for r in results}
    start = passed
    # results.csv: means and population sds (eval's summary) of the per-image rows.
    for r in results:
        for m in METRICS:
            v = runs[r["config"]][m]
            close(float(r[m + "_mean"]), float(np.mean(v)), 1e-8, "results.csv %s %s mean" % (r["config"], m))
            close(float(r[m + "_sd"]), float(np.std(v)), 1e-6, "results.csv %s %s sd" % (r["config"], m))
    # results.md: the same numbers as printed, %.3g (MSE, DSSIM) and %.2f (PSNR), in results.csv's order.
    with open(os.path.join(out, "results.md")) as f:
        rows = [line for line in f if re.match(r"\| \d+ \|", line)]
    check(len(rows) == len(results), "results.md: %d rows, results.csv %d" % (len(rows), len(results)))
    for line, r in zip(rows, results):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        check(cells[1] == r["model"], "results.md row %s: model %s, want %s" % (cells[0], cells[1], r["model"]))
        check(int(cells[4]) == int(r["epochs"]), "results.md %s: epochs %s, want %s" % (r["config"], cells[4],
                                                                                       r["epochs"]))
        for k, m in enumerate(METRICS):
            v = runs[r["config"]][m]
            got = md_numbers(cells[6 + k])
            want = (float(np.mean(v)), float(np.std(v)))
            for g, w, what in zip(got, want, ("mean", "sd")):
                tol = 0.0051 if m == "psnr" else 0.0051 * abs(w)
                check(abs(g - w) <= tol, "results.md %s %s %s: %s, want %.6g" % (r["config"], m, what, g, w))
            check(len(got) == 2, "results.md %s %s: '%s' is not 'mean ± sd'" % (r["config"], m, cells[6 + k]))
    # pvalues.csv: every pair once (a before b in the table's order) and metric, against SciPy and caec compare.
    with open(os.path.join(out, "pvalues.csv")) as f:
        pvalues = list(csv.DictReader(f))
    labels = [r["config"] for r in results]
    want_keys = {(labels[i], labels[j], m) for i in range(len(labels)) for j in range(i + 1, len(labels))
                 for m in METRICS}
    got_keys = {(p["a"], p["b"], p["metric"]) for p in pvalues}
    check(got_keys == want_keys and len(pvalues) == len(want_keys),
          "pvalues.csv: pairs %s, want %s" % (sorted(got_keys ^ want_keys)[:4], len(want_keys)))
    compared = {}
    for p in pvalues:
        a, b, m = runs[p["a"]][p["metric"]], runs[p["b"]][p["metric"]], p["metric"]
        what = "pvalues.csv %s vs %s %s" % (p["a"], p["b"], m)
        check(int(p["n"]) == len(a), "%s: n %s, want %d" % (what, p["n"], len(a)))
        mean_d, t, df, pv = want_ttest(a, b)
        close(float(p["mean_diff"]), mean_d, 1e-8, what + " mean_diff")
        close(float(p["t"]), t, 1e-7, what + " t")
        check(float(p["df"]) == df, "%s: df %s, want %d" % (what, p["df"], df))
        close(float(p["p"]), pv, 1e-5, what + " p")
        key = (p["a"], p["b"])
        if key not in compared:
            compared[key] = run_compare(caec, *(os.path.join(out, "runs", label) for label in key))
        row = compared[key].get(m)
        if row:  # the same test as caec compare on that pair, to compare's printed precision
            for got, want, name in ((float(p["mean_diff"]), row[2], "mean d"), (float(p["t"]), row[3], "t"),
                                    (float(p["p"]), row[5], "p")):
                close(want, got, 6e-6, "%s %s: caec compare printed %.6g" % (what, name, want))
    print("experiment %s: %d checks of results.csv, results.md and pvalues.csv" % (out, passed - start))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "compare":
        cmd_compare(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "experiment":
        cmd_experiment(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
