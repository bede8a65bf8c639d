#!/usr/bin/env bash
# Fetches the second pinned corpus (issue #11): real packages that download models or data, none of them in
# ../shared/bench/fetch_corpus.sh's list, for the labelled precision/recall measurement (bench/measure_recall.py).
# Usage: fetch_corpus2.sh [DEST]   (default: ./.corpus2). Needs python3 with pip and access to the package index.
# Result: DEST/src/<package>/... (.py files only), 42 packages, 9,919 files and 1.97 M lines. Idempotent.
set -euo pipefail
dest=${1:-.corpus2}
mkdir -p "$dest/dl" "$dest/src"
# pure-Python wheels
wheels=(
  accelerate==1.15.0 basicsr==1.3.3.3 datasets==5.2.0 deepface==0.0.103 easyocr==1.7.2
  efficientnet-pytorch==0.3.0 evaluate==0.4.6 facenet-pytorch==2.6.0 fastai==2.8.12 fastembed==0.9.1
  faster-whisper==1.2.1 flair==0.15.1 gdown==6.5.1 gfpgan==1.3.8 insightface==2.1 keras==3.15.1
  lightning==2.6.6 lpips==0.1.4 mirdata==1.0.0 mmdet==3.3.0 mmengine==0.10.7 mmpretrain==1.2.0
  mmsegmentation==1.2.2 nltk==3.10.4 openmim==0.3.9 peft==0.21.2 pooch==1.9.0 pyannote-audio==4.0.7
  realesrgan==0.3.0 rembg==2.0.86 segmentation-models-pytorch==0.6.0 speechbrain==1.1.2 stanza==1.15.0
  tensorflow-hub==0.16.1 torch-geometric==2.8.1 torchgeo==0.8.1 torchxrayvision==1.5.7
)
# compiled wheels: only their .py files are kept
binary=(gensim==4.4.0 spacy==3.8.18 torchaudio==2.11.0)
# sdists only on the index
sdists=(pretrainedmodels==0.7.4 wget==3.2)
py=${PYTHON:-python3}
for w in "${wheels[@]}"; do
  [ -d "$dest/src/${w%%==*}" ] || $py -m pip download -q --no-deps --only-binary=:all: -d "$dest/dl" "$w"
done
for w in "${binary[@]}"; do
  [ -d "$dest/src/${w%%==*}" ] || $py -m pip download -q --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp -d "$dest/dl" "$w"
done
for w in "${sdists[@]}"; do
  [ -d "$dest/src/${w%%==*}" ] || $py -m pip download -q --no-deps --no-binary=:all: -d "$dest/dl" "$w"
done
$py - "$dest" <<'PY'
import pathlib
import re
import sys
import tarfile
import zipfile

dest = pathlib.Path(sys.argv[1])
for f in sorted((dest / "dl").iterdir()):
    name = re.split(r"-\d", f.name, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
    out = dest / "src" / name
    if out.exists():
        continue
    out.mkdir(parents=True)
    if f.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(f) as z:
            for m in z.namelist():
                if m.endswith(".py"):
                    z.extract(m, out)
    elif f.name.endswith(".tar.gz"):
        with tarfile.open(f) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith(".py"):
                    t.extract(m, out, filter="data")
pkgs = sorted(p for p in (dest / "src").iterdir() if p.is_dir())
total_files = total_lines = 0
for p in pkgs:
    files = list(p.rglob("*.py"))
    lines = sum(f.read_bytes().count(b"\n") for f in files)
    total_files += len(files)
    total_lines += lines
    print(f"  {p.name:<30} {len(files):6d} files {lines:9d} lines")
print(f"corpus2: {len(pkgs)} packages, {total_files} files, {total_lines} lines in {dest / 'src'}")
PY
