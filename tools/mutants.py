"""Plant realistic bugs in the core, one at a time, and see whether the tests notice.

Each mutant below is a bug someone could plausibly write (or a refactor could introduce):
a crop applied to evaluation batches, a loss that forgets to weight by the batch size, a
missing ``zero_grad``... For each one the script copies ``cnnbook/`` and ``tests/`` to a
temporary folder, rewrites one exact piece of source there (the working tree is never
touched), runs only the tests that cover that module (``pytest -x``), and reports the mutant
*killed* (some test failed) or *survived* (every test passed: the tests cannot see the bug).

    python tools/mutants.py                 # every mutant; about 5-10 minutes on 2 cores
    python tools/mutants.py --list          # the list, nothing run
    python tools/mutants.py loop.zero_grad loader.crop_in_eval   # some of them
    python tools/mutants.py --module loader # the mutants of one module

Exit status 1 when a mutant survives (or a pattern no longer matches the source), so it can
gate a change to the core. ``tests/test_mutants.py`` (in ``make test``) only checks that each
mutant's source pattern still occurs exactly once, so this list cannot silently rot.
This is the curated, fast companion of the broad, tool-generated run (``make mutants``,
see CONTRIBUTING.md).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    id: str          # "<module>.<what>"
    path: str        # file, relative to the repository root
    old: str         # exact source text; must occur exactly once in ``path``
    new: str         # what the bug puts there instead
    tests: tuple     # test files (or node ids) that cover the module
    bug: str         # the bug in words

    @property
    def module(self) -> str:
        return self.id.split(".", 1)[0]


LOOP, LOADER = "cnnbook/train/loop.py", "cnnbook/data/loader.py"
RESNET, PROFILING = "cnnbook/models/resnet.py", "cnnbook/profiling.py"
ACT, REGISTRY = "cnnbook/activations.py", "cnnbook/models/registry.py"
GOOGLENET, POOLING = "cnnbook/models/googlenet.py", "cnnbook/pooling.py"
T_LOOP, T_LOADER = ("tests/train/test_loop.py",), ("tests/data/test_loader.py",)
T_RESNET, T_PROF = ("tests/models/test_resnet.py",), ("tests/test_profiling.py",)
T_ACT, T_REG = ("tests/test_activations.py",), ("tests/models/test_registry.py",)

MUTANTS: list[Mutant] = [
    # --- the training loop (cnnbook.train.loop) -----------------------------------------
    Mutant("loop.evaluate_loss_unweighted", LOOP,
           "loss_sum += loss_fn(logits, y) * len(y)", "loss_sum += loss_fn(logits, y)",
           T_LOOP, "evaluate sums batch means and divides by the example count (loss ~ 1/B)"),
    Mutant("loop.evaluate_mode_not_restored", LOOP,
           "            n += len(y)\n    model.train(was_training)\n    if n == 0:",
           "            n += len(y)\n    if n == 0:",
           T_LOOP, "evaluate leaves the model in eval mode"),
    Mutant("loop.zero_grad", LOOP,
           "opt.zero_grad(set_to_none=True)", "pass  # zero_grad forgotten",
           T_LOOP, "fit never clears the gradients: they accumulate over steps"),
    Mutant("loop.init_xavier_noop", LOOP,
           "nn.init.xavier_uniform_(m.weight)", "pass",
           T_LOOP, 'init_weights("xavier") leaves the weights as they were'),
    Mutant("loop.init_kaiming_fan_in", LOOP,
           'mode="fan_out"', 'mode="fan_in"',
           T_LOOP, 'init_weights("kaiming") scales by fan-in, not fan-out'),
    Mutant("loop.init_bias_kept", LOOP,
           "nn.init.zeros_(m.bias)", "pass",
           T_LOOP, "init_weights leaves the biases as they were"),
    Mutant("loop.train_loss_unweighted", LOOP,
           "loss_sum += loss.detach().float() * len(y)", "loss_sum += loss.detach().float()",
           T_LOOP, "the history's train_loss is a sum of batch means over the example count"),
    Mutant("loop.no_train_mode", LOOP,
           "            model.train()\n            loss_sum = correct = clipped = n = 0",
           "            loss_sum = correct = clipped = n = 0",
           T_LOOP, "fit does not switch to training mode at each epoch (eval after evaluate)"),
    Mutant("loop.train_acc_last_batch", LOOP,
           '"train_acc": correct.item() / n}', '"train_acc": correct.item() / len(y)}',
           T_LOOP, "train_acc divides by the last batch's size"),
    Mutant("loop.predict_mode_not_restored", LOOP,
           "        labels.append(y.cpu())\n    model.train(was_training)",
           "        labels.append(y.cpu())",
           T_LOOP, "predict leaves the model in eval mode"),
    # --- the in-memory loader (cnnbook.data.loader) -------------------------------------
    Mutant("loader.crop_in_eval", LOADER,
           "if train and self.crop_padding:", "if self.crop_padding:",
           T_LOADER, "random crop applied to evaluation batches too"),
    Mutant("loader.flip_in_eval", LOADER,
           "if train and self.flip:", "if self.flip:",
           T_LOADER, "random flip applied to evaluation batches too"),
    Mutant("loader.augment_in_eval", LOADER,
           "if train and self.augment is not None:", "if self.augment is not None:",
           T_LOADER, "extra augmentation applied to evaluation batches too"),
    Mutant("loader.test_split_augmented", LOADER,
           "transform=transform, train=train, device=device",
           "transform=transform, train=True, device=device",
           T_LOADER, "load_data gives the test loader the training-time augmentation"),
    Mutant("loader.test_split_shuffled", LOADER,
           "TensorLoader(images, labels, batch_size, shuffle=train,",
           "TensorLoader(images, labels, batch_size, shuffle=True,",
           T_LOADER, "load_data shuffles the test split"),
    Mutant("loader.last_batch_dropped", LOADER,
           "n // self.batch_size if self.drop_last else -(-n // self.batch_size)",
           "n // self.batch_size",
           T_LOADER, "the uneven last batch is silently dropped"),
    Mutant("loader.sample_with_replacement", LOADER,
           "torch.randperm(n, generator=self.generator, device=where)",
           "torch.randint(0, n, (n,), generator=self.generator, device=where)",
           T_LOADER, "shuffling draws with replacement: some examples twice, some never"),
    Mutant("loader.crop_never", LOADER,
           "x = random_crop(x, self.crop_padding, generator)", "pass",
           T_LOADER, "the loader's crop is a no-op"),
    Mutant("loader.crop_offsets_short", LOADER,
           "dy = torch.randint(0, 2 * padding + 1,", "dy = torch.randint(0, 2 * padding,",
           T_LOADER, "vertical crop offsets never reach the last position"),
    Mutant("loader.normalise_times_std", LOADER,
           "x = (x - mean) / std", "x = (x - mean) * std",
           T_LOADER, "normalisation multiplies by the std"),
    # --- ResNet blocks (cnnbook.models.resnet) ------------------------------------------
    Mutant("resnet.bottleneck_no_relu2", RESNET,
           "y = self.relu(self.bn2(self.conv2(y)))\n        y = self.bn3",
           "y = self.bn2(self.conv2(y))\n        y = self.bn3",
           T_RESNET, "Bottleneck: the ReLU after the second batch norm is missing"),
    Mutant("resnet.bottleneck_relu_after_bn3", RESNET,
           "y = self.bn3(self.conv3(y))", "y = self.relu(self.bn3(self.conv3(y)))",
           T_RESNET, "Bottleneck: a ReLU before the addition (the sum is then never negative)"),
    Mutant("resnet.residual_relu_before_add", RESNET,
           "        y = self.bn2(self.conv2(y))\n        if self.residual:",
           "        y = self.relu(self.bn2(self.conv2(y)))\n        if self.residual:",
           T_RESNET, "basic block: a ReLU before the addition"),
    # --- cost measurements (cnnbook.profiling) ------------------------------------------
    Mutant("profiling.latency_wrong_batch", PROFILING,
           "x = _example(model, size)", "x = _example(model, input_size)",
           T_PROF, "latency_ms times input_size's batch, not batch_size (0.15 ms for 46 ms)"),
    Mutant("profiling.latency_mode_not_restored", PROFILING,
           "    finally:\n        model.train(was_training)\n    times.sort()",
           "    finally:\n        pass\n    times.sort()",
           T_PROF, "latency_ms leaves the model in eval mode"),
    Mutant("profiling.latency_warmup_only", PROFILING,
           "            t0 = time.perf_counter()\n            model(x)",
           "            t0 = time.perf_counter()",
           T_PROF, "latency_ms times an empty loop body"),
    Mutant("profiling.macs_not_halved", PROFILING,
           "return count_flops(model, input_size) // 2", "return count_flops(model, input_size)",
           T_PROF, "count_macs returns FLOPs"),
    # --- activations (cnnbook.activations) ----------------------------------------------
    Mutant("activations.dead_by_mean", ACT,
           ".flatten(1).amax(dim=1)  # the largest", ".flatten(1).mean(dim=1)  # the largest",
           T_ACT, "dead_fraction judges a unit by its mean |f'|, not by whether any input passes"),
    Mutant("activations.dead_per_example", ACT,
           "g.abs().transpose(0, 1).flatten(1)", "g.abs().flatten(1)",
           T_ACT, "dead_fraction counts examples, not units"),
    Mutant("activations.vs_relu_by_fastest", ACT,
           'df["ms"] / float(df.loc[df["activation"] == "relu", "ms"].iloc[0])',
           'df["ms"] / float(df["ms"].iloc[0])',
           T_ACT, "time_activations divides by the fastest activation, not by ReLU"),
    Mutant("activations.swish_beta_ignored", ACT,
           "return x * torch.sigmoid(self.beta * x)", "return x * torch.sigmoid(x)",
           T_ACT, "Swish ignores beta"),
    # --- the architecture registry (cnnbook.models.registry) ----------------------------
    Mutant("registry.images_per_s_per_batch", REGISTRY,
           '"images_per_s": 1000 / t["per_image"]', '"images_per_s": 1000 / t["median"]',
           T_REG, "latency_table's images/s is batches per second"),
    Mutant("registry.latency_batch_ignored", REGISTRY,
           "size = input_at(arch, side, batch_size)", "size = input_at(arch, side)",
           T_REG, "latency_table times batch 1 whatever batch_size says"),
    # --- GoogLeNet and pooling ----------------------------------------------------------
    Mutant("googlenet.aux_detached", GOOGLENET,
           "aux.append(self.aux[name](x))", "aux.append(self.aux[name](x.detach()))",
           ("tests/models/test_googlenet.py",),
           "the auxiliary heads send no gradient into the trunk (their whole purpose)"),
    Mutant("pooling.learnable_no_grad", POOLING,
           "        nn.init.constant_(self.conv.weight, 1.0 / kernel_size ** 2)",
           "        nn.init.constant_(self.conv.weight, 1.0 / kernel_size ** 2)\n"
           "        self.conv.weight.requires_grad_(False)",
           ("tests/test_pooling.py",), "LearnablePool2d's kernel is frozen"),
    Mutant("pooling.mixed_avg_twice", POOLING,
           "torch.cat([F.max_pool2d(x, k, s), F.avg_pool2d(x, k, s)], dim=1)",
           "torch.cat([F.avg_pool2d(x, k, s), F.avg_pool2d(x, k, s)], dim=1)",
           ("tests/test_pooling.py",), "MixedPool2d fuses two average pools"),
]


def check_patterns(mutants=MUTANTS, root: Path = ROOT) -> list[str]:
    """Problems with the list: a pattern not found exactly once, a no-op, a missing test."""
    problems, seen = [], set()
    for m in mutants:
        if m.id in seen:
            problems.append(f"{m.id}: duplicate id")
        seen.add(m.id)
        source = (root / m.path).read_text() if (root / m.path).is_file() else None
        if source is None:
            problems.append(f"{m.id}: no file {m.path}")
            continue
        count = source.count(m.old)
        if count != 1:
            problems.append(f"{m.id}: pattern found {count} times in {m.path} (must be once)")
        if m.old == m.new:
            problems.append(f"{m.id}: the mutant changes nothing")
        for t in m.tests:
            if not (root / t.split("::")[0]).is_file():
                problems.append(f"{m.id}: no test file {t}")
    return problems


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in ("cnnbook", "tests"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("conftest.py", "pyproject.toml"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, dest / name)


def _env(dest: Path) -> dict:
    env = dict(os.environ)
    # the copy comes first on sys.path, before the editable install of the working tree
    env["PYTHONPATH"] = os.pathsep.join([str(dest), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"   # a rewritten file is always recompiled
    env.setdefault("CNNBOOK_PROFILE", "smoke")
    if (ROOT / "data" / "README.md").is_file():   # the copy has no data/: use the project's
        env.setdefault("CNNBOOK_DATA_DIR", str(ROOT / "data"))
    return env


def _pytest(dest: Path, tests, timeout: float) -> tuple[str, float, str]:
    """Run ``tests`` in the copy: ("passed" | "failed" | "timeout", seconds, last lines)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-p", "no:xdist", "--no-header", "-o", "addopts=--import-mode=importlib", *tests]
    t0 = time.perf_counter()
    try:
        run = subprocess.run(cmd, cwd=dest, env=_env(dest), capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    tail = "\n".join(run.stdout.strip().splitlines()[-3:])
    return ("passed" if run.returncode == 0 else "failed"), time.perf_counter() - t0, tail


def run(mutants, timeout: float = 600.0, baseline: bool = True, verbose: bool = False,
        tests_at: str | None = None) -> dict:
    """Run each mutant; returns {id: "killed" | "survived" | "timeout" | "baseline failed"}.

    ``tests_at`` (a git revision) takes the mutants' test files from that commit: the
    score of the tests as they were, against today's code.
    """
    results = {}
    with tempfile.TemporaryDirectory(prefix="cnnbook-mutants-") as tmp:
        dest = Path(tmp)
        _copy_tree(dest)
        for test in sorted({t.split("::")[0] for m in mutants for t in m.tests} if tests_at else ()):
            old = subprocess.run(["git", "show", f"{tests_at}:{test}"], cwd=ROOT,
                                 capture_output=True, text=True)
            if old.returncode == 0:
                (dest / test).write_text(old.stdout)
        probe = subprocess.run([sys.executable, "-c", "import cnnbook; print(cnnbook.__file__)"],
                               cwd=dest, env=_env(dest), capture_output=True, text=True)
        if not probe.stdout.strip().startswith(str(dest)):
            sys.exit(f"the copy is not the cnnbook that imports ({probe.stdout.strip()} "
                     f"{probe.stderr.strip()[-300:]}): is PYTHONPATH overridden?")
        if baseline:   # every test set must pass before any bug is planted
            for tests in dict.fromkeys(m.tests for m in mutants):
                status, secs, tail = _pytest(dest, tests, timeout)
                print(f"baseline {' '.join(tests)}: {status} ({secs:.0f} s)", flush=True)
                if status != "passed":
                    print(tail)
                    for m in mutants:
                        if m.tests == tests:
                            results[m.id] = "baseline failed"
        for m in mutants:
            if m.id in results:
                continue
            target = dest / m.path
            original = target.read_text()
            if original.count(m.old) != 1:
                results[m.id] = "pattern missing"
                print(f"{m.id:42s} PATTERN MISSING in {m.path}", flush=True)
                continue
            target.write_text(original.replace(m.old, m.new))
            try:
                status, secs, tail = _pytest(dest, m.tests, timeout)
            finally:
                target.write_text(original)
            verdict = {"failed": "killed", "passed": "survived", "timeout": "timeout"}[status]
            results[m.id] = verdict
            print(f"{m.id:42s} {verdict.upper():9s} {secs:5.0f} s  {m.bug}", flush=True)
            if verbose and tail:
                print("    " + tail.replace("\n", "\n    "))
    return results


# --- the broad run: every mutant mutmut can make of a module ------------------------------

#: module set for ``--broad``: name -> (source file, (the test files that cover it,))
BROAD = {
    # fit is also tested where its features are (checkpoints, callbacks, precision,
    # optimisers, recipes); test_distributed and test_resume run fit in child processes,
    # which mutmut's in-process mutants never reach, so they are left out
    "loop": ("cnnbook/train/loop.py", ("tests/train/test_loop.py",
                                       "tests/train/test_checkpoint.py",
                                       "tests/train/test_callbacks.py",
                                       "tests/train/test_precision.py",
                                       "tests/train/test_optim.py",
                                       "tests/train/test_recipes.py",
                                       "tests/train/test_lookahead.py")),
    "loader": ("cnnbook/data/loader.py", ("tests/data/test_loader.py",)),
    "profiling": ("cnnbook/profiling.py", ("tests/test_profiling.py",)),
    "activations": ("cnnbook/activations.py", ("tests/test_activations.py",)),
    "pooling": ("cnnbook/pooling.py", ("tests/test_pooling.py",)),
    "resnet": ("cnnbook/models/resnet.py", ("tests/models/test_resnet.py",)),
    "widgets_base": ("cnnbook/widgets/base.py", ("tests/widgets/test_base.py",)),
    "registry": ("cnnbook/models/registry.py", ("tests/models/test_registry.py",)),
    "googlenet": ("cnnbook/models/googlenet.py", ("tests/models/test_googlenet.py",)),
}
BROAD_DIR = ROOT / "build" / "mutmut"   # git-ignored; `mutmut browse` there shows each mutant
#: mutmut's survivors that change no behaviour: "<mutant name>  <one-line reason>" per line
EQUIVALENT_FILE = ROOT / "tools" / "mutants_equivalent.txt"
#: survivors that do change behaviour but that this machine cannot show (a GPU-only path, a
#: float range no real input reaches): "<name>  <why, and the test that kills it elsewhere>".
#: They stay misses in the score; they only do not fail the run.
ACCEPTED_FILE = ROOT / "tools" / "mutants_accepted.txt"


def equivalents(path: Path = EQUIVALENT_FILE) -> dict:
    """{mutant name: reason} from the equivalents list (``#`` comments and blanks skipped)."""
    out = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                out[name] = reason.strip()
    return out


def _run_pausable(cmd, cwd, env, quiet: str | None) -> int:
    """Run ``cmd`` in its own process group; SIGSTOP it while the file ``quiet`` exists."""
    import signal
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    paused = False
    while proc.poll() is None:
        if quiet:
            want = os.path.exists(quiet)
            if want != paused:
                os.killpg(proc.pid, signal.SIGSTOP if want else signal.SIGCONT)
                paused = want
                print(f"{'paused' if want else 'resumed'} ({quiet})", flush=True)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    return proc.returncode


def broad(names, max_children: int = 2, quiet: str | None = None,
          tests_at: str | None = None, only=(), tag: str = "") -> int:
    """Run mutmut on the chosen modules in a copy of the project (``build/mutmut``).

    mutmut generates every mutant of the modules (operators, constants, arguments, removed
    calls...) and runs the covering tests on each; the score is killed / (killed + survived).
    Survivors are listed; ``cd build/mutmut/MODULES && mutmut show NAME`` shows one. A
    survivor named in ``tools/mutants_equivalent.txt`` (with the reason it changes no
    behaviour) counts as equivalent, not as a miss. ``quiet``: a file whose presence pauses
    the run (SIGSTOP of mutmut's process group) until it is gone. ``tests_at`` (a git
    revision) takes the modules' test files from that commit (the score before new tests).
    ``only``: mutmut's name patterns (``fnmatch``, e.g. ``"*.x_evaluate__mutmut_*"``) to run
    a part of a module; ``tag`` names the folder of such a partial run.
    """
    import json

    files = [(BROAD[n][0], test) for n in names for test in BROAD[n][1]]
    work = BROAD_DIR / ("-".join(names) + (f"-{tag}" if tag else ""))   # runs can coexist
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    _copy_tree(work)
    for _, test in files if tests_at else ():
        old = subprocess.run(["git", "show", f"{tests_at}:{test}"], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        (work / test).write_text(old.stdout)
    config = "\n".join([
        "", "[tool.mutmut]",
        'source_paths = ["cnnbook"]',
        f"only_mutate = {sorted({src for src, _ in files})!r}",
        f"pytest_add_cli_args_test_selection = {[t for _, t in files]!r}",
        'pytest_add_cli_args = ["-p", "no:xdist", "-p", "no:cacheprovider"]',
        "use_git_change_detection = false",
        # torch is not fork-safe once its thread pool ran: workers come from a fork server
        'process_isolation = "forkserver"',
        # mutmut's wall bound is (test time + constant) x multiplier: with a constant of 1 s
        # a worker starved by other jobs (nice 19 on 2 busy cores) times out though it failed
        "timeout_multiplier = 5.0", "timeout_constant = 20.0", ""])
    with open(work / "pyproject.toml", "a") as f:
        f.write(config.replace("'", '"'))
    env = _env(work)
    env.pop("PYTHONPATH")   # mutmut puts its mutants/ folder first itself
    # one thread per worker: a forked OpenMP pool deadlocks (seen as false timeouts), and
    # the workers already share the cores
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    mutmut = [sys.executable, "-m", "mutmut"]
    t0 = time.perf_counter()
    code = _run_pausable(mutmut + ["run", "--max-children", str(max_children), *only], work, env, quiet)
    seconds = time.perf_counter() - t0
    subprocess.run(mutmut + ["export-cicd-stats"], cwd=work, env=env, capture_output=True)
    stats_file = work / "mutants" / "mutmut-cicd-stats.json"
    if code or not stats_file.is_file():
        print(f"mutmut failed (exit {code}); see {work}")
        return 1
    stats = json.loads(stats_file.read_text())
    # a timeout is a mutant that spent (est. test time + 20 s) x 5 x 2 of CPU time, or half
    # that in wall time: caught, as mutmut's own score counts it (a loop that never ends)
    timeouts = stats.get("timeout", 0)
    killed = stats.get("killed", 0) + timeouts
    listing = subprocess.run(mutmut + ["results"], cwd=work, env=env, capture_output=True,
                             text=True).stdout
    known = equivalents()
    # a mutant in code no test runs ("no tests") is a bug the tests cannot see: a miss,
    # like a survivor, not a mutant left out of the score
    survivors = [line.split(":")[0].strip() for line in listing.splitlines()
                 if line.strip().endswith((": survived", ": no tests"))]
    untested = {line.split(":")[0].strip() for line in listing.splitlines()
                if line.strip().endswith(": no tests")}
    equivalent = [s for s in survivors if s in known]
    missed = [s for s in survivors if s not in known]
    accepted = equivalents(ACCEPTED_FILE)
    for s in missed:
        label = "NO TESTS" if s in untested else "ACCEPTED" if s in accepted else "SURVIVED"
        print(f"{label}  {s}" + (f"  ({accepted[s]})" if s in accepted else ""))
    total = killed + len(missed)
    print(f"mutmut on {', '.join(names)}: {killed} killed ({timeouts} by timeout), "
          f"{len(equivalent)} equivalent "
          f"(tools/mutants_equivalent.txt), {len(missed)} missed "
          f"({len(untested & set(missed))} in code no test runs, "
          f"{len(set(accepted) & set(missed))} accepted in tools/mutants_accepted.txt): "
          f"{100 * killed / max(total, 1):.1f}% of the {total} non-equivalent; other: "
          f"{ {k: v for k, v in stats.items() if k not in ('killed', 'survived', 'timeout', 'no_tests') and v} } "
          f"in {seconds:.0f} s")
    return 1 if [s for s in missed if s not in accepted] else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="mutant ids (default: all)")
    parser.add_argument("--module", help="only the mutants of this module (e.g. loader)")
    parser.add_argument("--list", action="store_true", help="print the list and exit")
    parser.add_argument("--check", action="store_true",
                        help="only check that every pattern still matches the source")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unmutated run of each test set")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per pytest run")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's last lines")
    parser.add_argument("--tests-at", metavar="REV",
                        help="use the test files of this git revision (a before/after score)")
    parser.add_argument("--broad", nargs="+", metavar="MODULE", choices=sorted(BROAD),
                        help="instead: mutmut's every mutant of these modules "
                             f"({', '.join(BROAD)}), in build/mutmut")
    parser.add_argument("--max-children", type=int, default=2,
                        help="--broad: parallel mutmut workers (default 2)")
    parser.add_argument("--only", nargs="+", default=(), metavar="PATTERN",
                        help="--broad: only mutmut's mutants matching these name patterns")
    parser.add_argument("--tag", default="", help="--broad: folder suffix of a partial run")
    parser.add_argument("--pause-while", metavar="FILE",
                        help="--broad: pause the run while FILE exists (e.g. /tmp/i13/QUIET)")
    args = parser.parse_args(argv)
    if args.broad:
        return broad(args.broad, args.max_children, args.pause_while, args.tests_at,
                     args.only, args.tag)

    chosen = [m for m in MUTANTS if (not args.ids or m.id in args.ids)
              and (not args.module or m.module == args.module)]
    unknown = set(args.ids) - {m.id for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(sorted(unknown))}")
    if args.list:
        for m in chosen:
            print(f"{m.id:42s} {m.path:28s} {m.bug}")
        return 0
    problems = check_patterns(chosen)
    if problems or args.check:
        print("\n".join(problems) or f"all {len(chosen)} mutant patterns match the source")
        return 1 if problems else 0
    t0 = time.perf_counter()
    results = run(chosen, args.timeout, not args.no_baseline, args.verbose, args.tests_at)
    counts = {v: list(results.values()).count(v) for v in dict.fromkeys(results.values())}
    survivors = [k for k, v in results.items() if v != "killed"]
    print(f"\n{counts.get('killed', 0)} of {len(results)} mutants killed "
          f"({', '.join(f'{n} {k}' for k, n in counts.items())}) in "
          f"{time.perf_counter() - t0:.0f} s")
    if survivors:
        print("not killed: " + ", ".join(survivors))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
