"""Download LibriSpeech (openslr 12), Libri-light's fine-tuning set and the LibriSpeech LM
resources (openslr 11), with resume (HTTP Range) and checksum verification.

Checksums: MD5 values are the ones published in openslr's md5sum.txt for resources 11 and 12;
librispeech_finetuning.tgz is checked by the SHA-256 that torchaudio's LibriLightLimited uses.
Sizes are approximate (openslr listing) and only shown by --dry_run.
"""
import hashlib
import os
import sys
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from dinosr_espnet.atomic_files import atomic_write_text

OPENSLR_12 = "https://www.openslr.org/resources/12"
OPENSLR_11 = "https://www.openslr.org/resources/11"
LIBRILIGHT = "https://dl.fbaipublicfiles.com/librilight/data"


@dataclass(frozen=True)
class Resource:
    name: str             # file name
    url: str
    algorithm: str        # "md5" or "sha256"
    checksum: str
    approximate_bytes: int
    extract: bool         # tar archive to unpack into the download dir


def _gb(value: float) -> int:
    return int(value * 1e9)


RESOURCES: Dict[str, Resource] = {resource.name: resource for resource in (
    Resource("train-clean-100.tar.gz", f"{OPENSLR_12}/train-clean-100.tar.gz", "md5", "2a93770f6d5c6c964bc36631d331a522", _gb(6.3), True),
    Resource("train-clean-360.tar.gz", f"{OPENSLR_12}/train-clean-360.tar.gz", "md5", "c0e676e450a7ff2f54aeade5171606fa", _gb(23.0), True),
    Resource("train-other-500.tar.gz", f"{OPENSLR_12}/train-other-500.tar.gz", "md5", "d1a0fd59409feb2c614ce4d30c387708", _gb(30.0), True),
    Resource("dev-clean.tar.gz", f"{OPENSLR_12}/dev-clean.tar.gz", "md5", "42e2234ba48799c1f50f24a7926300a1", _gb(0.337), True),
    Resource("dev-other.tar.gz", f"{OPENSLR_12}/dev-other.tar.gz", "md5", "c8d0bcc9cca99d4f8b62fcc847357931", _gb(0.314), True),
    Resource("test-clean.tar.gz", f"{OPENSLR_12}/test-clean.tar.gz", "md5", "32fa31d27d2e1cad72775fee3f4849a9", _gb(0.346), True),
    Resource("test-other.tar.gz", f"{OPENSLR_12}/test-other.tar.gz", "md5", "fb5a50374b501bb3bac4815ee91d3135", _gb(0.328), True),
    Resource("librispeech_finetuning.tgz", f"{LIBRILIGHT}/librispeech_finetuning.tgz", "sha256",
             "5d1efdc777b548194d7e09ba89126e2188026df9fd57aa57eb14408d2b2342af", _gb(0.6), True),
    Resource("4-gram.arpa.gz", f"{OPENSLR_11}/4-gram.arpa.gz", "md5", "6abdcd5b055bd482e4f9defe91d40408", _gb(1.3), False),
    Resource("librispeech-lexicon.txt", f"{OPENSLR_11}/librispeech-lexicon.txt", "md5", "28f72663f6bfed7cd346283c064c315b", _gb(0.0054), False),
    Resource("librispeech-lm-norm.txt.gz", f"{OPENSLR_11}/librispeech-lm-norm.txt.gz", "md5", "c83c64c726a1aedfe65f80aa311de402", _gb(1.4), False),
)}
SPEECH_RESOURCES = tuple(name for name in RESOURCES if name.endswith(("tar.gz", ".tgz")))
LM_RESOURCES = ("4-gram.arpa.gz", "librispeech-lexicon.txt", "librispeech-lm-norm.txt.gz")


class ChecksumError(RuntimeError):
    """A downloaded file does not match its published checksum."""


def file_checksum(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def download_with_resume(url: str, target: Path, log: Callable[[str], None]) -> None:
    """Fetch ``url`` to ``target``; a ``target.part`` left by an interrupted run is continued with
    an HTTP Range request (a server that ignores Range makes it start over)."""
    partial = target.with_name(target.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        resumed = offset > 0 and response.status == 206
        total = int(response.headers.get("Content-Length", 0)) + (offset if resumed else 0)
        mode = "ab" if resumed else "wb"
        written = offset if resumed else 0
        log(f"[download] {url} -> {target} ({'resuming at ' + str(offset) if resumed else 'from the start'})")
        last = time.time()
        with open(partial, mode) as handle:
            for block in iter(lambda: response.read(1 << 20), b""):
                handle.write(block)
                written += len(block)
                if time.time() - last > 10:
                    log(f"[download] {target.name}: {written / 1e6:.0f} / {total / 1e6:.0f} MB")
                    last = time.time()
    os.replace(partial, target)


def fetch(resource: Resource, download_dir: Path, log: Callable[[str], None]) -> Path:
    """Download (unless already verified), verify, and extract ``resource``; idempotent."""
    download_dir.mkdir(parents=True, exist_ok=True)
    target = download_dir / resource.name
    verified = download_dir / f".{resource.name}.verified"
    if not verified.exists():
        if not target.exists():
            download_with_resume(resource.url, target, log)
        actual = file_checksum(target, resource.algorithm)
        if actual != resource.checksum:
            bad = target.with_name(target.name + ".bad")
            os.replace(target, bad)
            raise ChecksumError(f"{target}: {resource.algorithm} {actual} != published {resource.checksum}; "
                                f"moved to {bad}, run again to re-download")
        atomic_write_text(verified, f"{resource.algorithm} {actual}\n")
        log(f"[download] {target}: {resource.algorithm} verified")
    extracted = download_dir / f".{resource.name}.extracted"
    if resource.extract and not extracted.exists():
        log(f"[download] extracting {target} into {download_dir}")
        with tarfile.open(target) as archive:
            archive.extractall(download_dir, filter="data")
        atomic_write_text(extracted, "ok\n")
    return target


def plan_lines(names: Sequence[str], download_dir: Path) -> List[str]:
    """One line per resource: URL, approximate size, destination, checksum (for --dry_run)."""
    lines = []
    for name in names:
        resource = RESOURCES[name]
        lines.append(f"{resource.url}\t~{resource.approximate_bytes / 1e9:.2f} GB\t{download_dir / name}"
                     f"\t{resource.algorithm}:{resource.checksum}")
    return lines


def fetch_all(names: Sequence[str], download_dir: Path, dry_run: bool = False,
              log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)) -> Optional[List[Path]]:
    unknown = [name for name in names if name not in RESOURCES]
    if unknown:
        raise ValueError(f"unknown resources {unknown}; choose from {sorted(RESOURCES)}")
    if dry_run:
        for line in plan_lines(names, download_dir):
            print(line)
        return None
    return [fetch(RESOURCES[name], download_dir, log) for name in names]
