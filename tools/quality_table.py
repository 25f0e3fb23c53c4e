#!/usr/bin/env python3
"""Collates tools/quality_table.sh's rows (one `razor eval --json` each) into docs/quality.md's
markdown table. Groups with several rows (seeds) print mean +- std over the rows; single rows
print each accuracy with its 95% confidence interval. "kept" is the lowest ratio, over the
tasks the teacher is significantly above chance on (its accuracy minus the 95% interval above
0 for exact match, above 1/4 for 4-way multiple choice), of the row's accuracy to the teacher's
(the paper's shape: QAD 1.88 >= 0.90, 1.58 >= 0.80)."""
import json, os, statistics, sys

TASKS = ["arith", "word", "knowledge", "knowledge_mc", "knowledge_facts", "nextsent_mc"]
ORDER = ["teacher", "control", "ptq-rtn", "ptq-rtn-gamma", "ptq-ptqtp", "ptq-gptq", "ptq-awq", "qad",
         "qad-1.88-sched", "qad-1.88-init", "qad-1.88-seeds", "qad-1.58-seeds", "abl-A+C", "abl-F+E", "abl-F+F"]


def nominal(r):
    """The layout's nominal bits from the row name (ptq-rtn-1.88, qad-1.88-s1, abl-F+E-s2: 1.88)."""
    if r["group"] in ("teacher", "control"):
        return "fp32"
    if r["name"].startswith("abl-"):
        return "1.88"
    for part in r["name"].split("-"):
        try:
            float(part)
            return part
        except ValueError:
            pass
    return "?"


def score(r, task):
    """(accuracy, ci95) of one task: exact match, or acc_norm for multiple choice."""
    t = r.get("tasks", {}).get(task)
    if not t:
        return None
    if "acc_norm" in t:
        return t["acc_norm"], t["acc_norm_ci95"]
    return t["exact_match"], t["exact_match_ci95"]


def main(rows_dir):
    rows = [json.load(open(os.path.join(rows_dir, f))) for f in sorted(os.listdir(rows_dir)) if f.endswith(".json")]
    teacher = next((r for r in rows if r["name"] == "teacher"), None)
    n = teacher["tasks"][TASKS[0]]["n"] if teacher and teacher.get("tasks") else 0
    print("| row | layout | bits (measured) | valid ppl | " + " | ".join(TASKS) + " | kept |")
    print("|---|---|---|---|" + "---|" * len(TASKS) + "---|")

    def informative(t):
        """The teacher is significantly above chance on task t."""
        s = score(teacher, t)
        chance = 0.25 if t.endswith("_mc") else 0.0
        return s is not None and s[0] - s[1] > chance

    def kept(accs):
        if not teacher:
            return "-"
        ratios = [a / score(teacher, t)[0] for t, a in zip(TASKS, accs) if a is not None and informative(t)]
        return "%.2f" % min(ratios) if ratios else "-"

    groups = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    # Seed 1 of a width's A+E seed group is the "qad" group's row (the seeds block does not redo it).
    for g in list(groups):
        if g.startswith("qad-") and g.endswith("-seeds"):
            b = g[len("qad-"):-len("-seeds")]
            groups[g] += [r for r in groups.get("qad", []) if r["name"] == "qad-%s-s1" % b]
    for g in sorted(groups, key=lambda g: (ORDER.index(g) if g in ORDER else 99, g)):
        rs = groups[g]
        if (g.endswith("-seeds") or g == "qad-1.88-init" or g.startswith("abl-")) and len(rs) > 1:
            ppl = [r["val_ppl"] for r in rs]
            cells, means = [], []
            for t in TASKS:
                v = [score(r, t)[0] for r in rs if score(r, t)]
                m = statistics.mean(v) if v else None
                means.append(m)
                sd = statistics.stdev(v) if len(v) > 1 else 0.0
                cells.append("%.1f ± %.1f" % (100 * m, 100 * sd) if v else "-")
            sd_ppl = statistics.stdev(ppl) if len(ppl) > 1 else 0.0
            print("| %s, %d seeds (mean ± std) | %s | %.3f | %.2f ± %.2f | %s | %s |" % (
                rs[0]["label"], len(rs), nominal(rs[0]), rs[0]["bits"], statistics.mean(ppl), sd_ppl, " | ".join(cells), kept(means)))
            continue
        for r in sorted(rs, key=lambda r: -r["bits"]):
            cells, accs = [], []
            for t in TASKS:
                s = score(r, t)
                accs.append(s[0] if s else None)
                cells.append("%.1f ± %.1f" % (100 * s[0], 100 * s[1]) if s else "-")
            bits = "32 (fp32)" if r["bits"] >= 32 else "%.3f" % r["bits"]
            print("| %s | %s | %s | %.2f | %s | %s |" % (r["label"], nominal(r), bits, r["val_ppl"], " | ".join(cells),
                                                     kept(accs)))
    print()
    print("layout: the nominal bits of the W-A8-KV8 G 64 layout; bits (measured): each path's own count over all "
          "weights with scales (a .razor file, the QAD rows, also counts its packing).")
    if teacher:
        print("kept: over %s (the tasks the teacher is significantly above chance on)." %
              ", ".join(t for t in TASKS if informative(t)))
    print("Accuracies in %%, %d held-out items per task (exact match; multiple choice: acc_norm), +- the 95%% "
          "confidence interval (binomial standard error) or, for seed groups, +- the std over seeds." % n)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/quality/rows")
