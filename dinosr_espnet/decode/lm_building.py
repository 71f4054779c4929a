"""Word n-gram LM (KenLM lmplz + build_binary) and the lexicon of its vocabulary.

Outputs in ``out_dir``: ``<order>gram.arpa``, ``<order>gram.bin``, ``lexicon.txt``. Each is
written to a temporary name and renamed when complete, and skipped when it is newer than its
inputs, so a re-run does only what is missing or stale.
"""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dinosr_espnet.atomic_files import atomic_open, atomic_path
from dinosr_espnet.decode.lexicon import arpa_vocabulary, build_lexicon, write_lexicon
from dinosr_espnet.decode.tokens import ctc_tokens

REPO_ROOT = Path(__file__).resolve().parents[2]
# $KENLM_BIN_DIR overrides the place `make install` builds lmplz and build_binary into
DEFAULT_KENLM_BIN_DIR = Path(os.environ.get("KENLM_BIN_DIR") or REPO_ROOT / "tools" / "kenlm" / "bin")


@dataclass
class LmFiles:
    arpa: Path
    binary: Path
    lexicon: Path
    num_words: int
    skipped_words: int


def kenlm_binary(name: str, kenlm_bin_dir: Optional[Path] = None) -> Path:
    """Path of ``lmplz`` or ``build_binary``; a clear error when KenLM is not built."""
    directory = Path(kenlm_bin_dir) if kenlm_bin_dir else DEFAULT_KENLM_BIN_DIR
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(f"KenLM's {name} not found at {path}. `make install` (utils/build_kenlm.sh) builds "
                                f"lmplz and build_binary into {REPO_ROOT / 'tools/kenlm/bin'}; or pass --kenlm_bin_dir "
                                f"or set KENLM_BIN_DIR.")
    return path


def _is_fresh(output: Path, *inputs: Path) -> bool:
    return output.is_file() and all(output.stat().st_mtime >= Path(i).stat().st_mtime for i in inputs if i)


def run_lmplz(text: Path, arpa: Path, order: int, kenlm_bin_dir: Optional[Path] = None) -> None:
    """``lmplz -o order --discount_fallback`` (small corpora abort without it, toolchain facts 2)."""
    lmplz = kenlm_binary("lmplz", kenlm_bin_dir)
    with tempfile.TemporaryDirectory() as scratch, open(text, "rb") as source, atomic_open(arpa, "wb") as sink:
        result = subprocess.run([str(lmplz), "-o", str(order), "--discount_fallback", "-S", "10%", "-T", scratch],
                                stdin=source, stdout=sink, stderr=subprocess.PIPE)
        if result.returncode != 0:  # raised inside the block: the partial ARPA is discarded
            raise RuntimeError(f"lmplz failed on {text} (rc {result.returncode}):\n{result.stderr.decode()[-2000:]}")


def run_build_binary(arpa: Path, binary: Path, kenlm_bin_dir: Optional[Path] = None) -> None:
    build_binary = kenlm_binary("build_binary", kenlm_bin_dir)
    with atomic_path(binary) as temporary:
        result = subprocess.run([str(build_binary), str(arpa), str(temporary)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"build_binary failed on {arpa} (rc {result.returncode}):\n{result.stderr[-2000:]}")


def copy_arpa(source: Path, arpa: Path) -> None:
    """Copy (and gunzip) an existing ARPA such as the official LibriSpeech 4-gram."""
    opener = gzip.open if str(source).endswith(".gz") else open
    with opener(source, "rb") as reader, atomic_open(arpa, "wb") as writer:
        shutil.copyfileobj(reader, writer, length=1 << 20)


def build_lm(out_dir: Path, token_list: Path, text: Optional[Path] = None, arpa: Optional[Path] = None,
             order: int = 4, kenlm_bin_dir: Optional[Path] = None, word_boundary: Optional[str] = None,
             log=print) -> LmFiles:
    """Build (or take) the ARPA, its binary and the lexicon. Exactly one of ``text`` / ``arpa``."""
    if (text is None) == (arpa is None):
        raise ValueError("give exactly one of text (build with lmplz) or arpa (use an existing ARPA)")
    source = Path(text if text is not None else arpa)
    if not source.is_file():
        raise FileNotFoundError(f"LM {'text' if text is not None else 'ARPA'} not found: {source}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = LmFiles(out_dir / f"{order}gram.arpa", out_dir / f"{order}gram.bin", out_dir / "lexicon.txt", 0, 0)
    if _is_fresh(files.arpa, source):
        log(f"[build_lm] {files.arpa} is up to date")
    elif text is not None:
        log(f"[build_lm] lmplz -o {order} on {source}")
        run_lmplz(source, files.arpa, order, kenlm_bin_dir)
    else:
        log(f"[build_lm] copying {source} -> {files.arpa}")
        copy_arpa(source, files.arpa)
    if _is_fresh(files.binary, files.arpa):
        log(f"[build_lm] {files.binary} is up to date")
    else:
        log(f"[build_lm] build_binary -> {files.binary}")
        run_build_binary(files.arpa, files.binary, kenlm_bin_dir)
    tokens = ctc_tokens(token_list, word_boundary)
    lexicon = build_lexicon(arpa_vocabulary(files.arpa), tokens)
    if not lexicon.spellings:
        raise ValueError(f"no word of {files.arpa} can be spelled with the tokens of {token_list}")
    write_lexicon(files.lexicon, lexicon)  # cheap; always rewritten so it follows the token list
    files.num_words, files.skipped_words = len(lexicon.spellings), len(lexicon.skipped)
    log(f"[build_lm] lexicon: {files.num_words} words, {files.skipped_words} skipped (characters not in the "
        f"token list{', e.g. ' + repr(next(iter(lexicon.skipped))) if lexicon.skipped else ''}) -> {files.lexicon}")
    return files
