"""Mutation testing of genrec's core modules with mutmut: does each module's own test file notice
when the code is changed a little (``<=`` to ``<``, ``and`` to ``or``, a constant off by one,
``break`` to ``return``)?

Each module in CORE_MODULES is mutated in a throwaway copy of the repository and run against its
own tests only (so a score says how well *those* tests pin the module down). Surviving mutants
that cannot change behaviour are listed in EQUIVALENT with a one-line reason and left out of the
score; any other survivor is a gap in the tests. Writes benchmarks/results/mutation.md and .json.

    make mutation                                     # all core modules, 1 worker
    python benchmarks/mutation.py --module merge      # one module
    python benchmarks/mutation.py --extra genrec/training/checkpoint.py=tests/training/test_checkpoint.py

Exit code 1 when a module scores below --target (0.95), so the command can gate a release.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# name -> (module to mutate, its own tests). The evaluation harness rests on these.
CORE_MODULES: dict[str, tuple[str, list[str]]] = {
    "metrics": ("genrec/eval/metrics.py", ["tests/eval/test_metrics.py"]),
    "merge": ("genrec/retrieval/merge.py", ["tests/retrieval/test_merge.py"]),
    "splits": ("genrec/data/splits.py", ["tests/data/test_sequences_splits.py", "tests/data/test_splits_rules.py",
                                          "tests/data/test_leakage.py"]),
    "checkpoint": ("genrec/training/checkpoint.py", ["tests/training/test_checkpoint.py",
                                                     "tests/training/test_trainer.py"]),
}

# HOOK for modules that do not exist yet: the trainer's checkpoint/resume logic (genrec/training/,
# being written). Once it lands, move its entry into CORE_MODULES with its own test file, e.g.
#   "checkpoint": ("genrec/training/checkpoint.py", ["tests/training/test_checkpoint.py"]),
# (or try it first with --extra SRC=TESTS). Entries here are run only if their files exist.
PENDING_CORE_MODULES: dict[str, tuple[str, list[str]]] = {}

# Survivors that are equivalent to the original (no input can tell them apart), matched by the
# function they are in and the changed line before -> after (whitespace-normalised), so they stay
# matched when mutmut renumbers its mutants. Each has a one-line reason, printed on the page.
EQUIVALENT: list[dict[str, str]] = [
    {"module": "checkpoint", "function": "_flat",
     "from": 'x = json.loads(json.dumps(x, sort_keys=True, default=str))',
     "to": 'x = json.loads(json.dumps(x, sort_keys=None, default=str))',
     "reason": "the flattened fingerprints are dicts compared with ==, which ignores key order"},
    {"module": "checkpoint", "function": "_flat",
     "from": 'x = json.loads(json.dumps(x, sort_keys=True, default=str))',
     "to": 'x = json.loads(json.dumps(x, default=str))',
     "reason": "the flattened fingerprints are dicts compared with ==, which ignores key order"},
    {"module": "checkpoint", "function": "_flat",
     "from": 'x = json.loads(json.dumps(x, sort_keys=True, default=str))',
     "to": 'x = json.loads(json.dumps(x, sort_keys=False, default=str))',
     "reason": "the flattened fingerprints are dicts compared with ==, which ignores key order"},
    {"module": "checkpoint", "function": "atomic_save",
     "from": 'tmp = path.with_name(path.name + ".tmp")',
     "to": 'tmp = path.with_name(path.name + "XX.tmpXX")',
     "reason": "the temporary file's name is seen only if a crash interrupts the write; it is renamed over the target either way"},
    {"module": "checkpoint", "function": "atomic_save",
     "from": 'tmp = path.with_name(path.name + ".tmp")',
     "to": 'tmp = path.with_name(path.name + ".TMP")',
     "reason": "the temporary file's name is seen only if a crash interrupts the write; it is renamed over the target either way"},
    {"module": "checkpoint", "function": "load",
     "from": 'return torch.load(path, map_location="cpu", weights_only=False)',
     "to": 'return torch.load(path, map_location=None, weights_only=False)',
     "reason": "map_location only matters for checkpoints written on a GPU; every test machine here has none"},
    {"module": "checkpoint", "function": "load",
     "from": 'return torch.load(path, map_location="cpu", weights_only=False)',
     "to": 'return torch.load(path, weights_only=False)',
     "reason": "map_location only matters for checkpoints written on a GPU; every test machine here has none"},
    {"module": "metrics", "function": "attribute_table",
     "from": "out = np.full((len(sets), width), -1, dtype=np.int64)",
     "to": "out = np.full((len(sets), width), -1, dtype=None)",
     "reason": "numpy infers int64 from the integer fill value -1 (numpy 2's default integer)"},
    {"module": "metrics", "function": "attribute_table",
     "from": "out = np.full((len(sets), width), -1, dtype=np.int64)",
     "to": "out = np.full((len(sets), width), -1, )",
     "reason": "numpy infers int64 from the integer fill value -1 (numpy 2's default integer)"},
    {"module": "metrics", "function": "diversity_batch",
     "from": "a = np.where(lists[..., None] >= 0, table[np.maximum(lists, 0)], -1) # (B, K, L)",
     "to": "a = np.where(lists[..., None] >= 0, table[np.maximum(lists, 0)], -2) # (B, K, L)",
     "reason": "any negative code marks an empty slot: the codes are only read through `a >= 0` and equality "
               "masked by it"},
    {"module": "splits", "function": "_temporal_split",
     "from": "all_t = np.concatenate([np.asarray(t, dtype=float) for t in seqs.times.values()])",
     "to": "all_t = np.concatenate([np.asarray(t, dtype=None) for t in seqs.times.values()])",
     "reason": "np.quantile interpolates in float64 whether the timestamps arrive as ints or floats"},
    {"module": "splits", "function": "_temporal_split",
     "from": "all_t = np.concatenate([np.asarray(t, dtype=float) for t in seqs.times.values()])",
     "to": "all_t = np.concatenate([np.asarray(t, ) for t in seqs.times.values()])",
     "reason": "np.quantile interpolates in float64 whether the timestamps arrive as ints or floats"},
    # Not equivalent, but not measurable here: mutmut's trampoline adds a stack frame, so the test
    # that checks the warning names the caller (test_single_item_warning_points_at_the_caller) is
    # skipped under mutmut and runs in the normal suite.
    {"module": "splits", "function": "_warn_single_item_users",
     "from": "warnings.warn(f\"{name}, split '{protocol}': {n:,} {why}\", stacklevel=3)",
     "to": "warnings.warn(f\"{name}, split '{protocol}': {n:,} {why}\", )",
     "reason": "not measurable under mutmut (its trampoline changes the stack depth); checked by the normal suite"},
    {"module": "splits", "function": "_warn_single_item_users",
     "from": "warnings.warn(f\"{name}, split '{protocol}': {n:,} {why}\", stacklevel=3)",
     "to": "warnings.warn(f\"{name}, split '{protocol}': {n:,} {why}\", stacklevel=4)",
     "reason": "not measurable under mutmut (its trampoline changes the stack depth); checked by the normal suite"},
]

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          37: "type check", -9: "segfault", -11: "segfault", None: "not checked"}


def machine() -> dict:
    """The run card's machine facts (one helper for every results page), plus the Python version."""
    from genrec.eval.runcard import machine as card_machine

    m = card_machine()
    return {"cpu": m.get("cpu", m["processor"]), "cores": m["cpus"], "python": platform.python_version()}


def git_commit() -> str:
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "genrec", "tests"],
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("+uncommitted" if dirty else "") if r.returncode == 0 else "unknown"


def _norm(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip()


def _changed_lines(diff: str) -> tuple[str, str]:
    """The removed and added lines of a mutant's diff (mutmut changes one spot per mutant)."""
    lines = diff.splitlines()
    minus = [_norm(x[1:]) for x in lines if x.startswith("-") and not x.startswith("---")]
    plus = [_norm(x[1:]) for x in lines if x.startswith("+") and not x.startswith("+++")]
    return " / ".join(minus), " / ".join(plus)


def _function_of(mutant: str) -> str:
    # genrec.eval.metrics.x_ndcg_at_k__mutmut_12 -> ndcg_at_k; methods: xǁClassǁmethod__mutmut_3
    name = mutant.rsplit(".", 1)[-1].split("__mutmut_")[0]
    return name.replace("xǁ", "").replace("ǁ", ".").removeprefix("x_")


def _equivalent_reason(module: str, function: str, before: str, after: str) -> str | None:
    for e in EQUIVALENT:
        if (e["module"] == module and e["function"] == function and _norm(e["from"]) == before
                and _norm(e["to"]) == after):
            return e["reason"]
    return None


def _copy_repo(dst: Path, src_path: str, tests: list[str]) -> None:
    """The package, the tests and pyproject with a [tool.mutmut] section for this one module."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(ROOT / "genrec", dst / "genrec", ignore=ignore)
    shutil.copytree(ROOT / "tests", dst / "tests", ignore=ignore)
    conf = (ROOT / "pyproject.toml").read_text()
    conf = conf.replace('addopts = "-ra"', 'addopts = ""')
    conf += ("\n[tool.mutmut]\n"
             'source_paths = ["genrec"]\n'
             f"only_mutate = {json.dumps([src_path])}\n"
             f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
             'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n')
    (dst / "pyproject.toml").write_text(conf)


def run_module(name: str, src_path: str, tests: list[str], workers: int, log) -> dict:
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        raise SystemExit(f"mutmut not found next to {sys.executable}: pip install -e '.[dev]'")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"mutation-{name}-") as tmp:
        work = Path(tmp)
        _copy_repo(work, src_path, tests)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GENREC_STRICT", "CI")}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        r = subprocess.run([str(mutmut), "run", "--max-children", str(workers)], cwd=work, env=env,
                           stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        meta = work / "mutants" / (src_path + ".meta")
        if r.returncode != 0 or not meta.exists():  # e.g. the clean test run failed: no verdicts
            raise SystemExit(f"mutmut run for {src_path} failed (exit {r.returncode}); see the log")
        codes: dict = json.loads(meta.read_text())["exit_code_by_key"]
        rows = []
        for mutant, code in sorted(codes.items(), key=lambda kv: (kv[0].split("__mutmut_")[0],
                                                                   int(kv[0].rsplit("_", 1)[-1]))):
            status = STATUS.get(code, "suspicious")
            row = {"mutant": mutant, "function": _function_of(mutant), "status": status}
            if status != "killed":
                diff = subprocess.run([str(mutmut), "show", mutant], cwd=work, env=env, capture_output=True,
                                      text=True).stdout
                row["from"], row["to"] = _changed_lines(diff)
                reason = _equivalent_reason(name, row["function"], row["from"], row["to"])
                if reason and status == "survived":
                    row["status"], row["reason"] = "equivalent", reason
            rows.append(row)
    n = {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}}
    killed = n.get("killed", 0) + n.get("timeout", 0)  # a mutant that hangs the tests is caught
    scored = len(rows) - n.get("equivalent", 0)
    return {"module": name, "path": src_path, "tests": tests, "mutants": len(rows), "counts": n,
            "killed": killed, "non_equivalent": scored, "score": killed / scored if scored else 1.0,
            "wall_s": round(time.time() - t0, 1), "rows": rows}


def write_page(res: dict, path_md: Path) -> None:
    m = res["machine"]
    out = ["# Mutation testing of the core modules", "",
           f"Command: `{res['command']}` (mutmut {res['mutmut']}, {res['workers']} worker(s)).",
           f"Commit {res['commit']}, {res['date']}. Machine: {m['cpu']}, {m['cores']} cores, Python "
           f"{m['python']}; load average {res['load_before']} before, {res['load_after']} after; "
           f"wall time {res['wall_s'] / 60:.1f} min.", "",
           "Each module is mutated in a throwaway copy and run against its own tests only. Score = "
           "killed (or timed out) / non-equivalent mutants. Target: "
           f"{res['target']:.0%}.", "",
           "| module | tests | mutants | killed | survived | no tests | equivalent | score | wall |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in res["modules"]:
        c = r["counts"]
        out.append(f"| `{r['path']}` | {', '.join(f'`{t}`' for t in r['tests'])} | {r['mutants']} | "
                   f"{r['killed']} | {c.get('survived', 0)} | {c.get('no tests', 0)} | {c.get('equivalent', 0)} | "
                   f"**{r['score']:.1%}** ({r['killed']}/{r['non_equivalent']}) | {r['wall_s'] / 60:.1f} min |")
    for r in res["modules"]:
        eq = [x for x in r["rows"] if x["status"] == "equivalent"]
        live = [x for x in r["rows"] if x["status"] not in ("killed", "timeout", "equivalent")]
        out += ["", f"## `{r['path']}`", ""]
        out.append(f"Equivalent mutants ({len(eq)}):" if eq else "Equivalent mutants: none.")
        out += [f"- `{x['function']}`: `{x['from']}` -> `{x['to']}`: {x['reason']}" for x in eq]
        if live:
            out += ["", f"Not killed ({len(live)}), gaps in the tests:"]
            out += [f"- {x['status']}: `{x['function']}`: `{x['from']}` -> `{x['to']}` ({x['mutant']})" for x in live]
    if res["pending"]:
        out += ["", "Not yet measured (module not written yet): " + ", ".join(f"`{p}`" for p in res["pending"]) + "."]
    path_md.write_text("\n".join(out) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", help=f"only these (of {', '.join(CORE_MODULES)})")
    ap.add_argument("--extra", action="append", default=[], metavar="SRC=TEST[,TEST]",
                    help="also mutate SRC against TEST(s), e.g. a module not yet in CORE_MODULES")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--out", default=str(RESULTS / "mutation"), help="results path without suffix")
    a = ap.parse_args(argv)
    todo = dict(CORE_MODULES)
    pending = []
    for name, (src, tests) in PENDING_CORE_MODULES.items():
        if (ROOT / src).exists() and all((ROOT / t).exists() for t in tests):
            todo[name] = (src, tests)
        else:
            pending.append(src)
    for spec in a.extra:
        src, _, tests = spec.partition("=")
        if not tests:
            ap.error(f"--extra {spec!r}: expected SRC=TEST[,TEST]")
        todo[Path(src).stem] = (src, tests.split(","))
    if a.module:
        unknown = set(a.module) - set(todo)
        if unknown:
            ap.error(f"unknown --module {', '.join(sorted(unknown))}; known: {', '.join(todo)}")
        todo = {k: v for k, v in todo.items() if k in a.module}
    from importlib.metadata import version

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    t0 = time.time()
    log_path = Path(a.out).with_suffix(".log")
    modules = []
    with open(log_path, "w") as log:
        for name, (src, tests) in todo.items():
            print(f"mutating {src} against {', '.join(tests)} ...", flush=True)
            r = run_module(name, src, tests, a.workers, log)
            print(f"  {r['score']:.1%} ({r['killed']}/{r['non_equivalent']}), {r['counts']}, "
                  f"{r['wall_s'] / 60:.1f} min", flush=True)
            modules.append(r)
    res = {"command": "python benchmarks/mutation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "mutmut": version("mutmut"), "workers": a.workers, "commit": git_commit(),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
           "load_before": load_before, "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
           "wall_s": round(time.time() - t0, 1), "target": a.target, "pending": pending, "modules": modules}
    out = Path(a.out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    write_page(res, out.with_suffix(".md"))
    log_path.unlink()  # the page and JSON hold everything the log did that matters
    print(f"wrote {out.with_suffix('.md')} and .json")
    stale = [e for e in EQUIVALENT if e["module"] in todo and not any(
        x.get("reason") == e["reason"] for r in modules for x in r["rows"])]
    for e in stale:
        print(f"note: equivalent-mutant entry no longer matches any survivor: {e['module']}.{e['function']}")
    low = [r["path"] for r in modules if r["score"] < a.target]
    if low:
        print(f"below the {a.target:.0%} target: {', '.join(low)}")
    return 1 if low else 0


if __name__ == "__main__":
    raise SystemExit(main())
