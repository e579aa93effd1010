#!/usr/bin/env python3
"""The tables, verdicts and picture of `make bench`, from the benchmark
programs' output and the list of rows in bench/rows.txt (its header says
how to read it).

    report.py RESULTS ROWS [--gnuplot PATH]

RESULTS holds each program's output, <program>[-<tag>].csv, in the one
format of bench/benchutil.h (scenario,metric,impl,rep,value,unit, and "# "
comment lines), and Go's, go-<rep>.txt.  A tag that is not a number (a
backend: bench_impls-io_uring.csv) is added to the implementations of
that file (libctx@io_uring).

Figures.  An implementation's figure in a row is the median of its reps
(or rep 0, where a program gives one: its samples pooled, as a p99 of all
rounds).
Implementations compared in a row took turns (A B A B ...), rep k of each
in the same stretch of time; the ratio of the pair is A_k / B_k (for
rates, where more is better, B_k / A_k: below 1, A does better), and a
ratio cell shows the median of the pairs' ratios and, in parentheses,
their 25th to 75th percentile (linear interpolation between the sorted
values).  A row is judged from those ratios, or for a bound ("libctx <=
128") from A's figures: met if the 75th percentile meets the target,
MISSED if the 25th misses it, and otherwise "within noise" -- the pairs
disagree, and another run could fall either way.

The exit status is 1 when a row the list expects has no figure.
"""
import csv
import fnmatch
import glob
import os
import re
import shutil
import subprocess
import sys

RATES = ("elem/s", "MB/s")
SCALE = {"us": 1e3, "ms": 1e6}  # from a unit in ns
COLOURS = {"libctx": "#1f77b4", "floor": "#555555", "condvar": "#d62728",
           "condvar-1ms": "#ff9896", "stop_token": "#ff7f0e"}


def quantile(v, q):
    v = sorted(v)
    x = (len(v) - 1) * q
    i = int(x)
    return v[i] if i + 1 >= len(v) else v[i] + (v[i + 1] - v[i]) * (x - i)


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    return "%.0f" % v if a >= 100 else "%.1f" % v if a >= 10 else "%.2f" % v


def figure(f):
    return f[0] if 0 in f else quantile(pairs(f).values(), .5)


def pairs(f):
    return {r: v for r, v in f.items() if r > 0}


def fmt_ratio(q):
    return "%.2g" % q if q < 0.1 else "%.2f" % q


class Data:
    """Every figure: (scenario, metric, impl) -> {rep: value}."""

    def __init__(self, results):
        self.fig, self.unit, self.order = {}, {}, []
        self.comments, self.skipped = {}, []
        for path in sorted(glob.glob(os.path.join(results, "*.csv"))):
            self.load_csv(path)
        for path in sorted(glob.glob(os.path.join(results, "go-*.txt"))):
            self.load_go(path)

    def add(self, scen, metric, impl, rep, value, unit):
        key = (scen, metric, impl)
        if key not in self.fig:
            self.fig[key] = {}
            if (scen, metric) not in self.order:
                self.order.append((scen, metric))
        self.fig[key][rep] = value
        self.unit[key] = unit

    def load_csv(self, path):
        name = os.path.basename(path)[:-4]
        prog, _, tag = name.partition("-")
        tag = "" if tag.isdigit() or not tag else "@" + tag
        lines = self.comments.setdefault(prog + tag, [])
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("#"):
                    if line[2:] not in lines:
                        lines.append(line[2:])
                    if line.startswith("# skipped: "):
                        self.skipped.append(line[11:].split(":")[0])
                    continue
                r = next(csv.reader([line]))
                if len(r) == 6:
                    self.add(r[0], r[1], r[2] + tag, int(r[3]), float(r[4]),
                             r[5])

    def load_go(self, path):
        rep = int(re.sub(r"\D", "", os.path.basename(path)))
        lines = self.comments.setdefault("go", [])
        with open(path) as f:
            for line in f:
                w = line.split()
                if line.startswith("go version") and line.strip() not in lines:
                    lines.append(line.strip())
                elif line.startswith("LIVE ") and len(w) == 4:
                    self.add("go/" + w[1], "op", "go", rep, float(w[2]), w[3])
                elif line.startswith("Benchmark"):
                    name = re.sub(r"-\d+$", "", w[0][len("Benchmark"):])
                    units = dict((w[i + 1], float(w[i]))
                                 for i in range(2, len(w) - 1, 2))
                    u = "ns/pair" if "ns/pair" in units else "ns/op"
                    if u in units:
                        self.add("go/" + name, "op", "go", rep, units[u], u)

    def get(self, scen, metric, impl):
        return self.fig.get((scen, metric, impl))


class Rows:
    """bench/rows.txt, parsed into tables of items."""

    def __init__(self, path):
        self.tables = []
        for raw in open(path):
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            f = [x.strip() for x in rest.split(" | ")]
            items = self.tables[-1]["items"] if self.tables else None
            if word == "table":
                self.tables.append({"key": f[0], "title": f[1],
                                    "cols": f[2].split(),
                                    "ratios": f[3].split() if f[3] != "-"
                                    else [],
                                    "first": f[4] if len(f) > 4
                                    else "scenario", "items": []})
            elif word in ("text", "comments"):
                items.append((word, rest))
            elif word in ("section", "tally", "versus"):
                items.append((word,) + tuple(f))
            else:
                f = [x.strip() for x in line.split(" | ")]
                row = {"label": f[0], "scen": f[1].rsplit(":", 1)[0],
                       "metric": f[1].rsplit(":", 1)[1], "unit": f[2],
                       "target": f[3], "set": dict(x.split("=", 1)
                                                    for x in f[4:])}
                if "*" in f[1] or f[0] == "*":
                    if not (items and items[-1][0] == "group"):
                        items.append(("group", []))
                    items[-1][1].append(row)
                else:
                    items.append(("row", row))


class Table:
    def __init__(self, spec, data):
        self.spec, self.data = spec, data
        self.cols = []
        for c in spec["cols"]:
            name, _, src = c.partition("=")
            self.cols.append((name, src or name))
        self.rows, self.missing, self.misses = [], [], []
        self.section, self.judged = "", 0

    def source(self, row, col):
        """The figures of a column in a row: {rep: value} or None."""
        src = row["set"].get(col, dict(self.cols).get(col, col))
        if src == "-" or src.startswith("text") or src.startswith("range:"):
            return None
        impl, _, scen = src.partition(":")
        return self.data.get(scen or row["scen"], row["metric"], impl)

    def scale(self, row, col):
        fig = self.source(row, col)
        if not fig:
            return None, None
        src = row["set"].get(col, dict(self.cols).get(col, col))
        impl, _, scen = src.partition(":")
        unit = self.data.unit[(scen or row["scen"], row["metric"], impl)]
        shown = unit if row["unit"] == "-" else row["unit"]
        k = SCALE.get(shown, 1.0) if unit.startswith("ns") else 1.0
        return {r: v / k for r, v in fig.items()}, shown

    def ratios(self, row, a, b, rate):
        fa, fb = self.scale(row, a)[0], self.scale(row, b)[0]
        if not fa or not fb:
            return None
        reps = sorted(set(pairs(fa)) & set(pairs(fb))) or [None]
        q = []
        for r in reps:
            x = fa[r] if r else figure(fa)
            y = fb[r] if r else figure(fb)
            if x > 0 and y > 0:
                q.append(y / x if rate else x / y)
        return q or None

    def judge(self, row, unit):
        t = row["target"]
        info = t.startswith("info ")
        t = t[5:] if info else t
        m = re.match(r"(\w+)(<=|>=)(?:([\d.]+)\*)?([\w.-]+)$", t)
        if not m:
            return "-", "-"
        a, op, k, b = m.groups()
        if re.match(r"[\d.]+$", b):
            fig = self.scale(row, a)[0]
            q, bound, shown = (list(pairs(fig).values()) if fig else None,
                               float(b), "%s %s" % (op, b))
        else:
            k = float(k or 1)
            q = self.ratios(row, a, b, unit in RATES)
            bound = k if op == "<=" else 1 / k
            shown = "%s %s%s" % (op, "%gx " % k if k != 1 else "", b)
        if not q:
            return shown, "-"
        self.judged += 1
        lo, hi = quantile(q, .25), quantile(q, .75)
        verdict = ("met" if hi <= bound else "MISSED" if lo > bound
                   else "within noise")
        if info:
            return "info", verdict + " (info)"
        if verdict != "met":
            self.misses.append("%s%s: %s" % (self.section and self.section +
                                             " / ", row["label"], verdict))
        return shown, verdict

    def ratio_cell(self, row, spec, unit):
        a, b = spec.partition("=")[2].split("/") if "=" in spec \
            else spec.split("/")
        q = self.ratios(row, a, b, unit in RATES)
        if not q:
            return "-", q
        med = quantile(q, .5)
        if len(q) == 1:
            return fmt_ratio(med), q
        return "%s (%s-%s)" % (fmt_ratio(med), fmt_ratio(quantile(q, .25)),
                                 fmt_ratio(quantile(q, .75))), q

    def add_row(self, row):
        first = self.cols[0][0]
        fig, unit = self.scale(row, first)
        if not fig:
            if not any(row["scen"].startswith(s) for s in self.data.skipped):
                self.missing.append("%s (%s:%s)" % (row["label"], row["scen"],
                                                    row["metric"]))
            return
        unit = unit or row["unit"]
        cells, meds = [row["label"], unit], {}
        for name, src in self.cols:
            if src == "text":
                cells.append(row["set"].get(name, "-"))
                continue
            if src.startswith("range:"):
                f = pairs(self.scale(row, src[6:])[0] or {})
                cells.append("%s..%s" % (fmt(min(f.values())),
                                         fmt(max(f.values())))
                             if len(f) > 1 else "-")
                continue
            f = self.scale(row, name)[0]
            meds[name] = figure(f) if f else None
            cells.append(fmt(meds[name]))
        rq = []
        for spec in self.spec["ratios"]:
            cell, q = self.ratio_cell(row, spec, unit)
            cells.append(cell)
            rq.append(q)
        cells += self.judge(row, unit)
        self.rows.append((self.section, cells, meds, rq, row))

    def expand(self, group):
        for scen, metric in self.data.order:
            for row in group:
                if row["metric"] != metric or not fnmatch.fnmatchcase(
                        scen, row["scen"]):
                    continue
                if row["target"] != "skip":
                    star = row["scen"].replace("*", "(.*)")
                    label = scen.split("/", 1)[1]
                    if row["label"] != "*":
                        label = row["label"].replace(
                            "*", re.match(star + "$", scen).group(1))
                    self.add_row(dict(row, scen=scen, label=label))
                break


def md_table(head, rows, right):
    """A Markdown table; rows whose second cell is empty (section titles)
    do not widen the columns."""
    w = [max([len(head[j])] + [len(r[j]) for r in rows if r[1]])
         for j in range(len(head))]
    out = []
    for i, r in enumerate([head] + rows):
        out.append("| " + " | ".join(
            (c.rjust(w[j]) if j in right else c.ljust(w[j]))
            for j, c in enumerate(r)) + " |")
        if i == 0:
            out.append("|" + "|".join(
                ("-" * (w[j] + 1) + ":" if j in right else
                 " " + "-" * w[j] + " ") for j in range(len(r))) + "|")
    return "\n".join(out)


def substitute(title, data):
    def fig(m):
        f = data.get(*m.group(1).split(":"))
        return "%g" % figure(f) if f else "?"
    return re.sub(r"\{([^}]+)\}", fig, title)


def render(spec, data, results):
    t = Table(spec, data)
    print("## " + spec["title"] + "\n")
    body = []
    for item in spec["items"]:
        kind = item[0]
        if kind == "text":
            print(substitute(item[1], data))
        elif kind == "comments":
            for line in data.comments.get(item[1], []):
                print("    " + line)
        elif kind == "section":
            t.section = item[1]
            body.append(("section", substitute(item[2], data)))
        elif kind == "row":
            n = len(t.rows)
            t.add_row(item[1])
            body += [("row", i) for i in range(n, len(t.rows))]
        elif kind == "group":
            n = len(t.rows)
            t.expand(item[1])
            body += [("row", i) for i in range(n, len(t.rows))]
    head = [spec["first"], "unit"]
    for name, src in t.cols:
        have = src in ("text",) or src.startswith("range:") or any(
            r[2].get(name) is not None for r in t.rows)
        head.append(name if have else name + " (not run)")
    head += [r.partition("=")[0] for r in spec["ratios"]] + ["target",
                                                           "verdict"]
    cells = [["**%s**" % x] + [""] * (len(head) - 1) if kind == "section"
             else t.rows[x][1] for kind, x in body]
    right = set(j for j in range(2, 2 + len(t.cols) + len(spec["ratios"]))
                if j - 2 >= len(t.cols) or t.cols[j - 2][1] != "text")
    print("\n" + md_table(head, cells, right) + "\n")
    if t.misses:
        print("Rows that do not meet their target:\n  " +
              "\n  ".join(t.misses))
    elif t.judged:
        print("Every judged row meets its target.")
    write_csv(os.path.join(results, spec["key"] + ".csv"), head, t.rows)
    for item in spec["items"]:
        if item[0] == "tally":
            tally(t, *item[1:])
        elif item[0] == "versus":
            versus(t, *item[1:])
    print("\nCSV: " + os.path.join(results, spec["key"] + ".csv"))
    return t.missing


def write_csv(path, head, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section"] + head)
        for section, cells, _, _, _ in rows:
            w.writerow([section] + cells)


def count(a, b, qs):
    """How many rows each side did better in, from the rows' ratios."""
    qs = [quantile(q, .5) for q in qs if q]
    better = sum(1 for q in qs if q < .95)
    worse = sum(1 for q in qs if q > 1.05)
    if qs:
        print("\n%s does better (by over 5%%) in %d rows, %s in %d, neither "
              "in %d (medians of the pairs)." % (a, better, b, worse,
                                                 len(qs) - better - worse))


def tally(t, ratio, a, b):
    i = [r.partition("=")[0] for r in t.spec["ratios"]].index(ratio)
    count(a, b, [r[3][i] for r in t.rows])


def versus(t, a, b, title):
    rows = []
    for section, cells, meds, _, row in t.rows:
        q = t.ratios(row, a, b, cells[1] in RATES)
        if meds.get(a) is not None and meds.get(b) is not None:
            rows.append(([section, cells[0], cells[1], fmt(meds[a]),
                          fmt(meds[b]), t.ratio_cell(row, a + "/" + b,
                                                     cells[1])[0]], q))
    if not rows:
        return
    print("\n### %s\n\nThe rows of the table above where both have a "
          "figure; %s/%s below 1: %s does better.\n" % (title, a, b, a))
    print(md_table(["section", "scenario", "unit", a, b, a + "/" + b],
                   [r[0] for r in rows], {3, 4, 5}))
    count(a, b, [q for _, q in rows])


def header(data):
    c = {}
    for prog in ("bench_impls", "cxx", "env", "go"):
        for line in data.comments.get(prog, []):
            k, _, v = line.partition(": ")
            c.setdefault(k, v)
    print("# libctx benchmarks\n")
    print("- machine: %s, %s cores, %s" % (c.get("cpu"), c.get("cores",
          "?").split()[0], c.get("kernel")))
    for k in ("compiler", "libc", "clocksource", "timer slack",
              "libctx backend", "C++", "nsync"):
        if k in c:
            print("- %s: %s" % (k, c[k]))
    if data.comments.get("go"):
        print("- go: " + data.comments["go"][0][len("go version "):])
    busy = ["%s %s" % (p, l.split(": ")[1].split()[0])
            for p, ls in sorted(data.comments.items()) for l in ls
            if l.startswith("cpu busy before start")]
    print("- cpu busy before start (other work on the machine; 10% or "
          "more skews the numbers): " + ", ".join(busy) + "\n")


def plot(results, data, gnuplot):
    """bench.png: CDFs of stopping a read and of waking a join, and the
    CPU that idle readers burn."""
    samples = os.path.join(results, "samples")
    if not gnuplot or not glob.glob(os.path.join(samples, "*.dat")):
        print("(no gnuplot or no samples: no picture)")
        return
    for dat in glob.glob(os.path.join(samples, "*.dat")):
        v = [float(x) for x in open(dat)]
        with open(dat[:-4] + ".cdf", "w") as f:
            for i, x in enumerate(v):
                f.write("%.3f %.5f\n" % (x / 1000, (i + 1) / len(v)))
    gp = ['set terminal pngcairo size 1400,1000 font ",10" noenhanced',
          'set output "%s/bench.png"' % results,
          'set multiplot layout 2,2 title "libctx vs a condvar context, '
          'std::stop_token and the kernel floor"',
          'set logscale x', 'set format x "%g"',
          'set xlabel "latency (us, log scale)"',
          'set ylabel "fraction of rounds at or below"',
          'set yrange [0:1.02]', 'set key bottom right opaque box',
          'set grid']
    for scen, title in (("stopread", "stop a thread blocked 1-21 ms in "
                         "read on a silent TCP socket"),
                        ("wake_samecpu_join", "cancel -> wake of a thread "
                         "blocked in a join, same CPU"),
                        ("wake_crosscpu_join", "cancel -> wake of a thread "
                         "blocked in a join, across CPUs")):
        curves = ['"%s" u 1:2 w steps lc rgb "%s" lw 2 t "%s"' % (f, COLOURS[i], i)
                  for i in COLOURS for f in [os.path.join(
                      samples, "%s__%s.cdf" % (scen, i))] if os.path.exists(f)]
        gp += ['set title "%s"' % title, "plot " + ", ".join(curves)]
    with open(os.path.join(samples, "idle.txt"), "w") as f:
        for i in COLOURS:
            v = data.get("idle", "cpu_ms_per_s", i)
            if v:
                f.write('%s %g %d\n' % (i, figure(v),
                                        int(COLOURS[i][1:], 16)))
    gp += ['unset logscale x', 'set format x "% h"',
           'set title "CPU burned by 1,000 threads idle in read"',
           'set xlabel ""', 'set ylabel "CPU ms per second"',
           'set yrange [0:*]', 'set style fill solid 0.8',
           'set boxwidth 0.6', 'set key off', 'set xrange [-0.6:*]',
           'plot "%s/idle.txt" u 0:2:3:xtic(1) w boxes lc rgb variable'
           % samples, 'unset multiplot']
    with open(os.path.join(results, "bench.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")
    r = subprocess.run([gnuplot, os.path.join(results, "bench.gp")],
                       capture_output=True, text=True)
    print("Picture: %s/bench.png" % results if r.returncode == 0 else
          "(gnuplot failed: %s)" % r.stderr.strip())


def main():
    args = sys.argv[1:]
    gnuplot = shutil.which("gnuplot")
    if "--gnuplot" in args:
        i = args.index("--gnuplot")
        gnuplot = args[i + 1] or gnuplot
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit("usage: report.py RESULTS ROWS [--gnuplot PATH]")
    results, rowfile = args
    data = Data(results)
    header(data)
    missing = []
    for spec in Rows(rowfile).tables:
        missing += render(spec, data, results)
        if spec["key"] == "main":
            plot(results, data, gnuplot)
        print()
    if missing:
        print("bench: FAILED: rows without a figure:\n  " +
              "\n  ".join(missing), file=sys.stderr)
        sys.exit(1)


main()
