"""Shape files for the batch sampler with fairseq's length rules applied (spec 1.2 step 1).

fairseq drops utterances shorter than ``min_sample_size`` when it reads the manifest and batches
by the *cropped* size ``min(samples, max_sample_size)``. ESPnet's ``numel`` sampler reads lengths
from ``speech_shape`` files, so the task writes a filtered copy with capped lengths and hands that
to the sampler; the data itself (``wav.scp``) is untouched.
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

from dinosr_espnet.atomic_files import atomic_write_text


def write_filtered_shape_file(shape_file: str, output_file: Path, min_sample_size: int,
                              max_sample_size: int) -> Tuple[int, int]:
    """Copy ``shape_file`` (``<utt> <samples>[,dims]`` per line) to ``output_file`` without the
    utterances shorter than ``min_sample_size`` and with lengths capped at ``max_sample_size``.

    Written atomically (several ranks may write the same file). Returns (kept, skipped).
    """
    kept_lines, skipped = [], 0
    with open(shape_file, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                utt_id, shape = line.split(maxsplit=1)
                first, *rest = shape.strip().split(",")
                samples = int(first)
            except ValueError:
                raise ValueError(f"{shape_file}:{line_number}: expected '<utt-id> <num-samples>', "
                                 f"got {line.rstrip()!r}") from None
            if samples < min_sample_size:
                skipped += 1
                continue
            capped = ",".join([str(min(samples, max_sample_size)), *rest])
            kept_lines.append(f"{utt_id} {capped}\n")
    if not kept_lines:
        raise RuntimeError(f"{shape_file}: no utterance has >= min_sample_size={min_sample_size} "
                           "samples")
    atomic_write_text(output_file, "".join(kept_lines))
    return len(kept_lines), skipped
