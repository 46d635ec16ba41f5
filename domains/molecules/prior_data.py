"""The full MOSES train split as SELFIES token ids, encoded once and cached (for train_prior.py).

    OMP_NUM_THREADS=1 python -m domains.molecules.prior_data /work/ckpt/moses-v2   # ~10 min, 1 core

Writes to the cache folder:
- `moses_train_selfies_L56.npy`: uint8 [n, 56] token ids of every MOSES train molecule whose SELFIES
  has at most 56 symbols, in MOSES file order, right-padded with "[nop]".
- `moses_train_selfies_L56.json`: the `SelfiesTokenizer` dict (every symbol seen, sorted, then
  "[nop]"), the counts of rows kept / dropped (too long) and the rows SELFIES could not encode.
  (All 1,584,663 molecules fit in 56 symbols with 27 symbols; encoding took 756 s on one core.)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .data import moses_smiles
from .tokenizer import PAD, SelfiesTokenizer

LENGTH = 56
NAME = "moses_train_selfies_L56"


def encode_moses_train(cache: Path, length: int = LENGTH) -> tuple[np.ndarray, SelfiesTokenizer]:
    """(uint8 [n, L] token ids, tokenizer) of the full MOSES train split, from `cache` or encoded now."""
    import selfies as sf

    cache = Path(cache)
    arr_path, voc_path = cache / f"{NAME}.npy", cache / f"{NAME}.json"
    if arr_path.exists() and voc_path.exists():
        info = json.loads(voc_path.read_text())
        return np.load(arr_path), SelfiesTokenizer.from_dict(info["tokenizer"])
    cache.mkdir(parents=True, exist_ok=True)
    smiles = moses_smiles("train")
    temp: dict[str, int] = {PAD: 255}
    out = np.full((len(smiles), length), 255, dtype=np.uint8)
    keep = np.ones(len(smiles), dtype=bool)
    failed: list[int] = []
    start = time.time()
    for i, s in enumerate(smiles):
        try:
            symbols = list(sf.split_selfies(sf.encoder(s)))
        except Exception:
            keep[i] = False
            failed.append(i)
            continue
        if len(symbols) > length:
            keep[i] = False
            continue
        for j, sym in enumerate(symbols):
            k = temp.get(sym)
            if k is None:
                k = temp[sym] = len(temp) - 1
                if k >= 254:
                    raise ValueError("more than 254 SELFIES symbols; uint8 cache too small")
            out[i, j] = k
        if i % 100_000 == 0:
            print(f"encoded {i}/{len(smiles)} ({time.time() - start:.0f} s, {len(temp)} symbols)", flush=True)
    tokenizer = SelfiesTokenizer(sorted(s for s in temp if s != PAD), length)
    lut = np.zeros(256, dtype=np.uint8)
    for sym, k in temp.items():
        lut[k] = tokenizer.symbols.index(sym)
    out = lut[out[keep]]
    # spot check against the tokenizer's own encoding
    kept_idx = np.flatnonzero(keep)
    for r in range(0, len(kept_idx), max(len(kept_idx) // 50, 1)):
        ref = tokenizer.encode(smiles[kept_idx[r]]).numpy()[0]
        if not np.array_equal(ref, out[r]):
            raise AssertionError(f"cache encoding differs from SelfiesTokenizer.encode at row {r}")
    np.save(arr_path, out)
    voc_path.write_text(
        json.dumps(
            {
                "tokenizer": tokenizer.to_dict(),
                "source": "MOSES train split (molsets 0.3.1 wheel, moses/dataset/data/train.csv.gz), all rows",
                "rows": len(smiles),
                "kept": int(keep.sum()),
                "dropped_too_long": int((~keep).sum()) - len(failed),
                "failed_to_encode": failed,
                "encode_s": time.time() - start,
            },
            indent=1,
        )
    )
    return out, tokenizer


if __name__ == "__main__":
    arr, tok = encode_moses_train(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/ckpt/moses-v2"))
    print(arr.shape, tok)
