"""Public-domain / freely licensed sentences available offline on Debian.

* World English Bible (public domain), read with ``diatheke -b engWEB2015eb`` (packages diatheke,
  sword-text-web). Footnotes in ``[...]`` are removed before sentence splitting.
* WordNet 3.0 gloss examples (WordNet licence, permissive), from ``/usr/share/wordnet/data.*``
  (package wordnet-base): the quoted strings after ``|``.
"""
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Iterator, List

from dinosr_espnet.data.text_normalization import normalize_sentence

WORDNET_DIR = Path("/usr/share/wordnet")
BIBLE_MODULE = "engWEB2015eb"
_VERSE_PREFIX = re.compile(r"^[1-3]?\s?[A-Za-z][A-Za-z ]*? \d+:\d+:\s*")
_FOOTNOTE = re.compile(r"\[[^\[\]]*\]")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_QUOTED = re.compile(r'"([^"]+)"')


class MissingTextSourceError(RuntimeError):
    """A text source is not installed; the message names the Debian package."""


def bible_sentences() -> Iterator[str]:
    """Raw sentences of the World English Bible, footnotes stripped, in book order."""
    if shutil.which("diatheke") is None:
        raise MissingTextSourceError("diatheke not found: apt-get install diatheke sword-text-web")
    process = subprocess.run(["diatheke", "-b", BIBLE_MODULE, "-f", "plain", "-o", "f",
                              "-k", "Genesis 1:1-Revelation 22:21"],
                             capture_output=True, text=True, check=False)
    if process.returncode != 0 or len(process.stdout) < 1000:
        raise MissingTextSourceError(f"diatheke could not read module {BIBLE_MODULE} "
                                     f"(apt-get install sword-text-web): {process.stderr.strip()[:200]}")
    for line in process.stdout.splitlines():
        line = _FOOTNOTE.sub(" ", _VERSE_PREFIX.sub("", line))
        for sentence in _SENTENCE_END.split(line):
            if sentence.strip():
                yield sentence.strip()


def wordnet_examples(wordnet_dir: Path = WORDNET_DIR) -> Iterator[str]:
    """Example sentences quoted in the WordNet glosses, in file order."""
    files = [wordnet_dir / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    if not all(path.is_file() for path in files):
        raise MissingTextSourceError(f"WordNet data files not found in {wordnet_dir}: apt-get install wordnet-base")
    for path in files:
        with open(path, encoding="latin-1") as handle:
            for line in handle:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                for example in _QUOTED.findall(line.split("|", 1)[1]):
                    yield example


SOURCES = {"bible": bible_sentences, "wordnet": wordnet_examples}


def normalized_sentence_pool(source_names: Iterable[str], min_words: int = 5,
                             max_words: int = 20) -> List[str]:
    """Unique normalised sentences of ``min_words``..``max_words`` words, in source order."""
    seen = set()
    pool = []
    for name in source_names:
        if name not in SOURCES:
            raise ValueError(f"unknown text source {name!r}; choose from {sorted(SOURCES)}")
        for raw in SOURCES[name]():
            sentence = normalize_sentence(raw)
            if sentence is None or sentence in seen:
                continue
            if min_words <= len(sentence.split()) <= max_words:
                seen.add(sentence)
                pool.append(sentence)
    return pool
