"""`make data-check`: statistics of the labeled prompts, failing when a floor is missed."""

from __future__ import annotations

import math
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from intent_router.labels import INTENTS

MIN_TOTAL = 4000
MIN_PER_LABEL = 450
MIN_SHORT_SHARE = 0.15  # under 10 words
MIN_LONG_SHARE = 0.15  # over 80 words
MIN_CODE_SHARE = 0.30
MIN_LANGUAGES = 12
MIN_EXAMPLES_PER_LANGUAGE = 10
MAX_TEMPLATE_SHARE = 0.10
MAX_NEAR_DUPLICATE_SHARE = 0.02
MIN_TEST_SHARE = 0.15
NEAR_DUPLICATE_JACCARD = 0.8
SHINGLE = 5

_CODE_PATTERNS = [
    r"```",
    r"Traceback \(most recent call last\)",
    r"^\s+at [\w.$<>]+\(",  # Java/JS stack frames
    r"\b[\w./-]+\.(py|js|ts|tsx|jsx|go|rs|java|kt|swift|rb|php|cs|cpp|cc|c|h|sql|sh|ya?ml|toml|tf|json|ex|exs|dart|scala|vue|gradle|xml|ini|env|lock|md|html|css)\b",
    r"^\s*(def|class|import|from|func|fn|pub|let|const|var|public|private|SELECT|INSERT|UPDATE|CREATE|resource|module|apiVersion|FROM|RUN|#include)\b",
    r"[;{}]\s*$",
    r"=>|->|::|\(\)|\[\]|!=|==",
    r"^\s*[$#>] \w+",
    r"^[+-]{1,3}\s?\S",
    r"\b(ERROR|WARN|INFO|DEBUG|FATAL|panic|Exception|Error):",
    r"`[^`\n]+`",
    r"\b\w+\([^)\n]*\)",
]
_CODE_RE = re.compile("|".join(f"(?:{p})" for p in _CODE_PATTERNS), re.MULTILINE)

LANGUAGE_PATTERNS: dict[str, str] = {
    "python": r"\bpython\b|\.py\b|\bdjango\b|\bfastapi\b|\bpandas\b|\bpytest\b|\bdef \w+\(|Traceback",
    "javascript/typescript": r"\b(javascript|typescript|node(js)?|react|next\.?js|vue|angular|express|npm|yarn)\b|\.(js|ts|tsx|jsx)\b",
    "java": r"\bjava\b|\bspring( boot)?\b|\.java\b|\bmaven\b|\bgradle\b|\bjvm\b",
    "go": r"\bgolang\b|\bgo (mod|build|test|run)\b|\.go\b|\bgoroutine|\bfunc \w+\(",
    "rust": r"\brust\b|\bcargo\b|\.rs\b|\btokio\b|\bborrow checker\b|\bfn \w+\(",
    "c/c++": r"\bc\+\+|\bcpp\b|\.(c|h|cpp|hpp|cc)\b|\bsegfault|\bmalloc\b|#include|\bstd::",
    "c#/.net": r"\bc#|\.net\b|\bcsharp\b|\.cs\b|\basp\.net\b|\bentity framework\b|\bblazor\b",
    "ruby": r"\bruby\b|\brails\b|\.rb\b|\bgem(file)?\b|\brspec\b",
    "php": r"\bphp\b|\blaravel\b|\bsymfony\b|\bwordpress\b|\.php\b|\bcomposer\b",
    "kotlin/android": r"\bkotlin\b|\.kt\b|\bandroid\b|\bjetpack\b|\bcompose\b",
    "swift/ios": r"\bswift(ui)?\b|\.swift\b|\bios\b|\bxcode\b|\buikit\b",
    "sql": r"\bsql\b|\bpostgres(ql)?\b|\bmysql\b|\bsqlite\b|\bSELECT\b|\bJOIN\b",
    "shell": r"\bbash\b|\bshell\b|\bzsh\b|\.sh\b|\bsed\b|\bawk\b|\bgrep\b|\bcron(tab)?\b",
    "terraform/iac": r"\bterraform\b|\.tf\b|\bhcl\b|\bpulumi\b|\bansible\b|\bcloudformation\b",
    "kubernetes/docker": r"\bkubernetes\b|\bk8s\b|\bkubectl\b|\bhelm\b|\bdocker(file)?\b|\bapiVersion\b",
    "scala/spark": r"\bscala\b|\bspark\b|\bpyspark\b|\bakka\b|\bsbt\b",
    "dart/flutter": r"\bdart\b|\bflutter\b|\bwidget\b.*\bbuild\(",
    "elixir": r"\belixir\b|\bphoenix\b|\.exs?\b|\bgenserver\b|\becto\b",
    "embedded": r"\barduino\b|\bstm32\b|\bfreertos\b|\besp32\b|\bfirmware\b|\bmicrocontroller\b|\bhal_",
    "data pipelines": r"\bairflow\b|\bdbt\b|\bdag\b|\bkafka\b|\bsnowflake\b|\bbigquery\b",
    "ci": r"\bgithub actions\b|\.github/workflows\b|\bgitlab ci\b|\bjenkins(file)?\b|\bci pipeline\b",
}
_LANGUAGE_RES = {name: re.compile(p, re.IGNORECASE) for name, p in LANGUAGE_PATTERNS.items()}


def word_count(text: str) -> int:
    return len(text.split())


def carries_code(text: str) -> bool:
    """Heuristic: does the prompt carry code, a trace, a diff, logs, a path or config?"""
    return _CODE_RE.search(text) is not None


def languages_of(text: str) -> set[str]:
    return {name for name, pattern in _LANGUAGE_RES.items() if pattern.search(text)}


def shingles(text: str, size: int = SHINGLE) -> set[str]:
    normal = " ".join(text.lower().split())
    if len(normal) <= size:
        return {normal}
    return {normal[i : i + size] for i in range(len(normal) - size + 1)}


def near_duplicate_pairs(
    texts: Sequence[str], threshold: float = NEAR_DUPLICATE_JACCARD
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, jaccard) of character 5-gram sets with Jaccard >= threshold.

    Prefix filtering: with shingles sorted rarest first, two sets can reach the threshold
    only if they share a shingle among the first |A| - ceil(threshold * |A|) + 1 of each.
    """
    sets = [shingles(t) for t in texts]
    frequency = Counter(s for shingle_set in sets for s in shingle_set)
    postings: dict[str, list[int]] = defaultdict(list)
    candidates: set[tuple[int, int]] = set()
    for index, shingle_set in enumerate(sets):
        ordered = sorted(shingle_set, key=lambda s: (frequency[s], s))
        prefix = len(ordered) - math.ceil(threshold * len(ordered)) + 1
        for token in ordered[:prefix]:
            for other in postings[token]:
                candidates.add((other, index))
            postings[token].append(index)
    pairs = []
    for i, j in sorted(candidates):
        a, b = sets[i], sets[j]
        if min(len(a), len(b)) < threshold * max(len(a), len(b)):
            continue
        jaccard = len(a & b) / len(a | b)
        if jaccard >= threshold:
            pairs.append((i, j, jaccard))
    return pairs


def template_skeleton(text: str) -> str:
    """The prompt with identifiers, quoted strings and numbers masked: slot-filled templates
    of one pattern share a skeleton."""
    masked = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"", "Q", text)
    masked = re.sub(r"\b\w*[A-Z0-9_]\w*\b", "X", masked)
    return " ".join(masked.lower().split())


@dataclass
class DataReport:
    """The statistics `make data-check` prints, and the floors they missed."""

    total: int
    label_counts: dict[str, int]
    short_share: float
    long_share: float
    code_share: float
    max_words: int
    languages: dict[str, int]
    template_share: float
    near_duplicate_share: float
    test_share: float
    train_test_overlap: int
    failures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"examples: {self.total}"]
        out += [f"  {label:<20} {self.label_counts.get(label, 0)}" for label in INTENTS]
        out += [
            f"under 10 words: {self.short_share:.1%}   over 80 words: {self.long_share:.1%}   "
            f"longest: {self.max_words} words",
            f"carrying code/traces/diffs/logs/paths/config: {self.code_share:.1%}",
            f"languages/stacks with >= {MIN_EXAMPLES_PER_LANGUAGE} examples: "
            f"{sum(n >= MIN_EXAMPLES_PER_LANGUAGE for n in self.languages.values())} "
            + ", ".join(
                f"{k} {v}" for k, v in sorted(self.languages.items(), key=lambda kv: -kv[1])
            ),
            f"template-like (shared skeleton or origin=template): {self.template_share:.1%}",
            f"near-duplicates (char 5-gram Jaccard >= {NEAR_DUPLICATE_JACCARD}): "
            f"{self.near_duplicate_share:.1%}",
            f"test split share: {self.test_share:.1%}   train/test text overlap: "
            f"{self.train_test_overlap}",
        ]
        return out


def check(
    rows: Sequence[dict[str, str]], train: Sequence[dict[str, str]], test: Sequence[dict[str, str]]
) -> DataReport:
    """Compute the report over all ``rows`` and the split, with the floors it misses."""
    texts = [r["text"] for r in rows]
    n = max(len(rows), 1)
    words = [word_count(t) for t in texts]
    skeletons = Counter(template_skeleton(t) for t in texts)
    templated = sum(
        1
        for r, t in zip(rows, texts)
        if r.get("origin") == "template" or skeletons[template_skeleton(t)] > 1
    )
    near = near_duplicate_pairs(texts)
    in_near = {i for i, _, _ in near} | {j for _, j, _ in near}
    languages: Counter[str] = Counter(lang for t in texts for lang in languages_of(t))
    test_texts = {r["text"] for r in test}
    report = DataReport(
        total=len(rows),
        label_counts=dict(Counter(r["intent"] for r in rows)),
        short_share=sum(w < 10 for w in words) / n,
        long_share=sum(w > 80 for w in words) / n,
        code_share=sum(carries_code(t) for t in texts) / n,
        max_words=max(words, default=0),
        languages=dict(languages),
        template_share=templated / n,
        near_duplicate_share=len(in_near) / n,
        test_share=len(test) / max(len(train) + len(test), 1),
        train_test_overlap=sum(r["text"] in test_texts for r in train),
    )
    report.failures = _floors_missed(report, test)
    return report


def _floors_missed(report: DataReport, test: Sequence[dict[str, str]]) -> list[str]:
    missed = []
    if report.total < MIN_TOTAL:
        missed.append(f"{report.total} examples < {MIN_TOTAL}")
    for label in INTENTS:
        if report.label_counts.get(label, 0) < MIN_PER_LABEL:
            missed.append(f"{label}: {report.label_counts.get(label, 0)} < {MIN_PER_LABEL}")
    unknown = set(report.label_counts) - set(INTENTS)
    if unknown:
        missed.append(f"unknown intents {sorted(unknown)}")
    checks = [
        (report.short_share >= MIN_SHORT_SHARE, f"under-10-word share < {MIN_SHORT_SHARE:.0%}"),
        (report.long_share >= MIN_LONG_SHARE, f"over-80-word share < {MIN_LONG_SHARE:.0%}"),
        (report.max_words >= 400, "no prompt of 400+ words"),
        (report.code_share >= MIN_CODE_SHARE, f"code share < {MIN_CODE_SHARE:.0%}"),
        (
            sum(v >= MIN_EXAMPLES_PER_LANGUAGE for v in report.languages.values()) >= MIN_LANGUAGES,
            f"fewer than {MIN_LANGUAGES} languages/stacks",
        ),
        (report.template_share <= MAX_TEMPLATE_SHARE, f"template share > {MAX_TEMPLATE_SHARE:.0%}"),
        (
            report.near_duplicate_share <= MAX_NEAR_DUPLICATE_SHARE,
            f"near-duplicate share > {MAX_NEAR_DUPLICATE_SHARE:.0%}",
        ),
        (report.test_share >= MIN_TEST_SHARE, f"test share < {MIN_TEST_SHARE:.0%}"),
        (report.train_test_overlap == 0, "texts shared between train and test"),
    ]
    missed += [message for ok, message in checks if not ok]
    test_counts = Counter(r["intent"] for r in test)
    for label in INTENTS:
        share = test_counts[label] / max(report.label_counts.get(label, 1), 1)
        if abs(share - report.test_share) > 0.03:
            missed.append(f"test split not stratified for {label}: {share:.1%}")
    return missed


def authored_report() -> DataReport:
    """The report over data/authored/ and its committed split."""
    from training.dataset import AUTHORED_DIR, TEST_FILE, TRAIN_FILE, read_jsonl

    rows = [r for p in sorted(AUTHORED_DIR.glob("*.jsonl")) for r in read_jsonl(p)]
    return check(rows, read_jsonl(TRAIN_FILE), read_jsonl(TEST_FILE))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the authored data's report, then the real-prompt corpus's; 1 if any floor is missed."""
    from training.corpus_check import check_corpus
    from training.real_corpus import CorpusError, load_real_rows, read_double_labels
    from training.real_split import read_split

    report = authored_report()
    print("\n".join(report.lines()))
    failures = list(report.failures)
    rows: list[dict] = []
    double = None
    try:
        rows = load_real_rows()
        double = read_double_labels()
    except CorpusError as exc:
        failures.append(str(exc))
    from training.dataset import AUTHORED_DIR, read_jsonl

    authored = [r["text"] for p in sorted(AUTHORED_DIR.glob("*.jsonl")) for r in read_jsonl(p)]
    real = check_corpus(rows, authored, read_split(), double)
    print("\n".join(real.lines()))
    failures += real.failures
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("data-check: all floors met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
