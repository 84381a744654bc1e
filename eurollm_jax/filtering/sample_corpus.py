"""Offline sample corpora for tests, benchmarks and demos of the filtering stage.

Nothing here downloads. ``english_corpus(n)`` builds web-like English documents from the
docstrings of Python's standard library (real running prose mixed with code and lists) and
adds the kinds of damage web text has: repeated lines and paragraphs, word salad, navigation
boilerplate, cookie banners, bullet lists, ellipses, hashtags, citations, lorem ipsum, curly
brackets, very short pages. Each document records its ``variant`` in metadata. The mix makes
every Gopher / C4 / FineWeb rule fire on some documents, including near-threshold cases.

``junk_text(kind, rng, words)`` is shared with the classifier's learnable labelled set.
"""

from __future__ import annotations

import functools
import json
import random
import re
import subprocess
import sys

from eurollm_jax.filtering.core import Document

_STDLIB_MODULES = (
    "os", "re", "json", "collections", "itertools", "functools", "argparse", "logging",
    "subprocess", "email", "http.client", "urllib.parse", "pathlib", "typing", "asyncio",
    "unittest", "decimal", "datetime", "string", "textwrap", "csv", "sqlite3", "threading",
    "multiprocessing", "zipfile", "tarfile", "shutil", "random", "statistics", "fractions",
    "heapq", "bisect", "inspect", "ast", "dis", "tokenize", "pickle", "copy", "pprint", "enum",
    "dataclasses", "contextlib", "abc", "io", "gzip", "bz2", "lzma", "hashlib", "hmac", "secrets",
    "socket", "ssl", "selectors", "signal", "codecs", "locale", "gettext", "calendar", "time",
    "sched", "queue", "weakref", "types", "operator", "math", "numbers", "array", "struct",
    "difflib", "doctest", "pdb", "trace", "timeit", "tracemalloc", "warnings", "traceback", "glob",
    "fnmatch", "tempfile", "filecmp", "configparser", "netrc", "plistlib", "base64", "binascii",
    "quopri", "html", "html.parser", "mailbox", "mimetypes", "smtplib", "poplib", "imaplib",
    "ftplib", "uuid", "socketserver", "http.server", "http.cookies", "xmlrpc.client", "ipaddress",
    "wave", "colorsys", "shlex", "cmd", "zipapp", "sysconfig", "code", "codeop", "zipimport",
    "importlib", "modulefinder", "runpy", "symtable", "keyword", "token", "pyclbr", "py_compile",
    "compileall", "pickletools", "platform", "errno",
)

NAV_WORDS = ("Home", "About", "Contact", "Login", "Sign up", "Blog", "Shop", "Cart", "FAQ",
             "Careers", "Press", "Help", "Search", "Menu", "Share", "Tweet", "Subscribe",
             "Next", "Previous", "Top", "Archive", "Categories", "Tags", "Terms", "Sitemap")
BANNERS = ("This website uses cookies to improve your experience.",
           "By continuing you agree to our Terms of Use and Privacy Policy.",
           "Please enable JavaScript to view the comments.",
           "Accept all cookies", "Copyright 2024 All rights reserved.",
           "Read our cookie policy for details.")


def _prose_like(para: str) -> bool:
    tokens = para.split()
    if len(tokens) < 8 or ">>>" in para:
        return False
    alpha = sum(any(c.isalpha() for c in t) for t in tokens)
    return alpha / len(tokens) > 0.9 and para.count("(") < len(tokens) / 10


# Runs in a fresh ``python -I -S`` (standard library only): the docstrings then do not depend
# on what the calling process imported (submodules become attributes of their package once
# imported, e.g. ``importlib.metadata``; libraries patch functions, e.g. torch's
# ``inspect.getfile``), so the corpus is the same in every process of one Python version.
_READ_DOCSTRINGS = """
import importlib, json, sys, warnings
warnings.simplefilter("ignore")
docs = []
for name in sys.argv[1:]:
    try:
        mod = importlib.import_module(name)
    except Exception:  # module missing on this platform
        continue
    docs.append(mod.__doc__)
    for attr in sorted(dir(mod)):
        try:
            docs.append(getattr(getattr(mod, attr), "__doc__", None))
        except Exception:
            continue
sys.stdout.write(json.dumps([d for d in docs if isinstance(d, str)]))
"""


@functools.lru_cache(maxsize=1)
def _stdlib_docstrings() -> tuple[str, ...]:
    """The docstrings of ``_STDLIB_MODULES`` and of their attributes, in a fixed order."""
    out = subprocess.run([sys.executable, "-I", "-S", "-c", _READ_DOCSTRINGS, *_STDLIB_MODULES],
                         capture_output=True, text=True, check=True)
    return tuple(json.loads(out.stdout))


def stdlib_paragraphs(min_chars: int = 40, prose: bool = True) -> list[str]:
    """Paragraphs of the standard library's docstrings (deduplicated, in a fixed order).

    ``prose=True`` keeps paragraphs that read like running text (few code symbols).
    """
    seen: dict[str, None] = {}
    for d in _stdlib_docstrings():
        for para in re.split(r"\n\s*\n", d):
            para = "\n".join(line.strip() for line in para.strip().splitlines())
            if len(para) >= min_chars and (not prose or _prose_like(para)):
                seen.setdefault(para, None)
    return list(seen)


def junk_text(kind: str, rng: random.Random, words: list[str], source: str = "") -> str:
    """A damaged page of the given kind: salad, boilerplate, repeated, list, hashtags, ellipsis."""
    if kind == "salad":
        ws = (source.split() if source else []) or [rng.choice(words) for _ in range(120)]
        ws = list(ws)
        rng.shuffle(ws)
        return " ".join(ws)
    if kind == "boilerplate":
        lines = []
        for _ in range(rng.randint(6, 30)):
            r = rng.random()
            if r < 0.5:
                lines.append(" | ".join(rng.sample(NAV_WORDS, rng.randint(2, 7))))
            elif r < 0.8:
                lines.append(rng.choice(BANNERS))
            else:
                lines.append(rng.choice(NAV_WORDS))
        return "\n".join(lines)
    if kind == "repeated":
        lines = [line for line in source.splitlines() if line.strip()] or ["Buy now and save."]
        k = rng.randint(1, min(3, len(lines)))
        block = lines[:k]
        return "\n".join(block * rng.randint(3, 12))
    if kind == "list":
        return "\n".join(f"{rng.choice(['-', '•', '*'])} {' '.join(rng.sample(words, rng.randint(1, 5)))}"
                         for _ in range(rng.randint(8, 40)))
    if kind == "hashtags":
        return " ".join((f"#{w}" if rng.random() < 0.4 else w)
                        for w in (source.split() or rng.sample(words, 40)))
    if kind == "ellipsis":
        lines = [line for line in source.splitlines() if line.strip()] or ["and then"]
        return "\n".join((line + "..." if rng.random() < 0.6 else line) for line in lines)
    raise ValueError(f"unknown junk kind {kind!r}")


def english_corpus(n_docs: int = 400, seed: int = 0) -> list[Document]:
    """``n_docs`` English web-like documents with a mix of clean and damaged pages."""
    rng = random.Random(seed)
    paras = stdlib_paragraphs()
    words = sorted({w for p in paras[:400] for w in re.findall(r"[A-Za-z]{3,}", p)})
    docs = []
    variants = ("clean", "clean", "clean", "clean", "single", "repeat_lines", "repeat_para",
                "salad", "boilerplate", "cookie_lines", "list", "hashtags", "ellipsis", "citations",
                "lorem", "curly", "short", "javascript", "near_threshold_dup", "tabs")
    for i in range(n_docs):
        variant = variants[i % len(variants)]
        start = rng.randrange(len(paras))
        k = rng.randint(3, 12)
        body = [paras[(start + j) % len(paras)] for j in range(k)]
        text = "\n\n".join(body)
        if variant == "single":
            text = paras[start]
        elif variant == "repeat_lines":
            lines = text.splitlines()
            extra = [rng.choice(lines) for _ in range(rng.randint(1, max(2, len(lines) // 2)))]
            for e in extra:
                lines.insert(rng.randrange(len(lines) + 1), e)
            text = "\n".join(lines)
        elif variant == "repeat_para":
            body.append(rng.choice(body))
            text = "\n\n".join(body)
        elif variant == "salad":
            text = junk_text("salad", rng, words, text)
        elif variant == "boilerplate":
            text = junk_text("boilerplate", rng, words) + "\n" + text
        elif variant == "cookie_lines":
            lines = text.splitlines()
            for _ in range(rng.randint(1, 4)):
                lines.insert(rng.randrange(len(lines) + 1), rng.choice(BANNERS))
            text = "\n".join(lines)
        elif variant == "list":
            text = junk_text("list", rng, words) + ("\n" + paras[start] if rng.random() < 0.5 else "")
        elif variant == "hashtags":
            text = junk_text("hashtags", rng, words, text)
        elif variant == "ellipsis":
            text = junk_text("ellipsis", rng, words, text)
        elif variant == "citations":
            text = re.sub(r"\.(\s)", lambda m: f".[{rng.randint(1, 30)}]{m.group(1)}", text, count=5)
        elif variant == "lorem":
            if rng.random() < 0.5:
                text += "\nLorem ipsum dolor sit amet, consectetur adipiscing elit."
        elif variant == "curly":
            text += "\nfunction f() { return 1; }" if rng.random() < 0.5 else ""
        elif variant == "short":
            sents = re.split(r"(?<=[.!?])\s+", paras[start])
            text = " ".join(sents[: rng.randint(1, 6)])
        elif variant == "javascript":
            text += "\nThis page needs JavaScript enabled to work properly."
        elif variant == "near_threshold_dup":
            lines = text.splitlines()
            if lines:
                lines.append(lines[rng.randrange(len(lines))])
            text = "\n".join(lines)
        elif variant == "tabs":
            text = text.replace("\n", "\n\t", 3) + "\n\n\n" + "  ".join(rng.sample(words, 12)) + "."
        docs.append(Document(f"en-{seed}-{i:05d}", text, {"variant": variant, "language": "en"}))
    return docs
