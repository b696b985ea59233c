#include "tools/gan/sample.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/npy.h"
#include "engine/engine.h"
#include "tools/gan/generator.h"
#include "tools/gan/latent.h"
#include "tools/gan/train.h"
#include "tools/io/dataset.h"
#include "tools/io/png.h"
#include "tools/io/safetensors.h"

namespace gancu::app {
namespace {

// Latent vectors from a .npy, [n, nz] or [n, nz, 1, 1], as [n, nz, 1, 1].
Tensor read_latents(const std::string& file, int64_t nz) {
  Tensor z = read_npy(file);
  const Shape& s = z.shape();
  const bool ok = (s.rank() == 2 || (s.rank() == 4 && s[2] == 1 && s[3] == 1)) && s[1] == nz;
  if (!ok)
    throw std::runtime_error(file + ": latent vectors must be [n, " + std::to_string(nz) + "] or [n, " +
                             std::to_string(nz) + ", 1, 1], got " + s.str());
  return z.reshaped(Shape{s[0], s[1], 1, 1});
}

// The walks refuse what would only make a grid of noise: no vectors, or a NaN/Inf anywhere.
void require_usable(const Tensor& z, const std::string& file) {
  if (z.dim(0) < 1) throw std::runtime_error(file + ": holds no latent vectors");
  const int64_t nz = z.dim(1);
  for (int64_t i = 0; i < z.numel(); ++i)
    if (!std::isfinite(z[i]))
      throw std::runtime_error(file + ": latent vector " + std::to_string(i / nz) + " holds " + std::to_string(z[i]) +
                               " at index " + std::to_string(i % nz));
}

// The same stream as plain `gan sample --n n --seed seed`, so a walk's endpoints are images of that grid.
Tensor seeded_latents(int64_t n, int64_t nz, uint64_t seed) {
  Tensor z(Shape{n, nz, 1, 1});
  Rng rng(seed, 0x5A3B1E);
  z.fill_normal(rng);
  return z;
}

Tensor first_rows(const Tensor& t, int64_t n) {
  Shape s = t.shape();
  s[0] = n;
  Tensor out(s);
  std::copy(t.data(), t.data() + out.numel(), out.data());
  return out;
}

// What the generator runs on and how its images are laid out. `tiles` index the generated images row by row (-1: a
// black tile); `kept` leading images are the ones --raw and --save-z write.
struct Batch {
  Tensor z;
  std::vector<int64_t> tiles;
  int nrow = 8;
  int64_t kept = 0;
};

Batch interpolation_batch(const SampleOptions& o, int64_t nz) {
  if (o.steps < 2) throw std::invalid_argument("--steps must be at least 2, got " + std::to_string(o.steps));
  const int64_t pairs = o.interpolate;
  Tensor ends;
  if (!o.z.empty()) {
    ends = read_latents(o.z, nz);
    require_usable(ends, o.z);
    if (ends.dim(0) != 2 * pairs)
      throw std::runtime_error(o.z + ": --interpolate " + std::to_string(pairs) + " needs " + std::to_string(2 * pairs) +
                               " latent vectors (first, second of each pair), got " + std::to_string(ends.dim(0)));
  } else {
    ends = seeded_latents(2 * pairs, nz, o.seed);
  }
  Batch b;
  b.z = Tensor(Shape{pairs * o.steps, nz, 1, 1});
  for (int64_t p = 0; p < pairs; ++p) {
    const Tensor row = slerp_path(ends.data() + 2 * p * nz, ends.data() + (2 * p + 1) * nz, nz, o.steps);
    std::copy(row.data(), row.data() + row.numel(), b.z.data() + p * row.numel());
  }
  for (int64_t i = 0; i < b.z.dim(0); ++i) b.tiles.push_back(i);
  b.nrow = o.steps;
  b.kept = b.z.dim(0);
  return b;
}

// Images 0..3: G(mean a), G(mean b), G(mean c), G(a − b + c); then each file's own vectors when any file has several.
// Grid of 4 columns: one row per vector index of the files (a_i, b_i, c_i, black), then the equation row.
Batch arithmetic_batch(const SampleOptions& o, int64_t nz) {
  if (o.arithmetic.size() != 3)
    throw std::invalid_argument("--arithmetic takes three .npy files a,b,c, got " + std::to_string(o.arithmetic.size()));
  std::vector<Tensor> terms;
  int64_t most = 0;
  for (const std::string& file : o.arithmetic) {
    terms.push_back(read_latents(file, nz));
    require_usable(terms.back(), file);
    most = std::max(most, terms.back().dim(0));
  }
  const Tensor a = mean_latent(terms[0]), b = mean_latent(terms[1]), c = mean_latent(terms[2]);
  const Tensor result = latent_arithmetic(a, b, c);
  const int64_t singles = most > 1 ? terms[0].dim(0) + terms[1].dim(0) + terms[2].dim(0) : 0;
  Batch batch;
  batch.z = Tensor(Shape{4 + singles, nz, 1, 1});
  float* z = batch.z.data();
  for (const Tensor* v : {&a, &b, &c, &result}) z = std::copy(v->data(), v->data() + nz, z);
  std::vector<int64_t> first_single;  // index of each file's first vector in the batch
  if (singles > 0) {
    for (const Tensor& t : terms) {
      first_single.push_back((z - batch.z.data()) / nz);
      z = std::copy(t.data(), t.data() + t.numel(), z);
    }
  }
  for (int64_t row = 0; row < (singles > 0 ? most : 0); ++row) {
    for (size_t k = 0; k < 3; ++k) batch.tiles.push_back(row < terms[k].dim(0) ? first_single[k] + row : -1);
    batch.tiles.push_back(-1);
  }
  for (int64_t i = 0; i < 4; ++i) batch.tiles.push_back(i);
  batch.nrow = 4;
  batch.kept = 4;
  return batch;
}

// Class labels for a conditional generator's batch of n: --labels (a .npy of n class indices), --class (all n of one
// class), or one class per grid row, in order.
Tensor batch_labels(const SampleOptions& o, int64_t n, int nrow, int classes, const std::vector<std::string>& class_names,
                    const std::string& checkpoint) {
  Tensor labels(Shape{n});
  if (!o.labels.empty()) {
    const std::vector<int64_t> given = read_npy_integers(o.labels);
    if (int64_t(given.size()) != n)
      throw std::runtime_error(o.labels + ": " + std::to_string(given.size()) + " labels for " + std::to_string(n) + " images");
    for (int64_t i = 0; i < n; ++i) {
      if (given[size_t(i)] < 0 || given[size_t(i)] >= classes)
        throw std::runtime_error(o.labels + ": label " + std::to_string(i) + " is " + std::to_string(given[size_t(i)]) +
                                 ", not a class in 0.." + std::to_string(classes - 1));
      labels[i] = static_cast<float>(given[size_t(i)]);
    }
  } else if (!o.class_name.empty()) {
    labels.fill(static_cast<float>(class_index(class_names, o.class_name, checkpoint)));
  } else {
    for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<float>((i / nrow) % classes);
  }
  return labels;
}

}  // namespace

int run_sample(const SampleOptions& o) {
  // The generator runs on the whole batch at once; it is built once the batch size is known, so first the file's
  // recipe alone, to know the latent shape and whether labels go in.
  namespace fs = std::filesystem;
  std::string path = o.checkpoint;
  if (fs::is_directory(path)) path = (fs::path(path) / "checkpoint.safetensors").string();
  std::map<std::string, std::string> meta = load_safetensors_metadata(path);
  const RecordedRecipe recorded = recorded_recipe(meta, path);
  const recipes::Recipe& recipe = *recorded.recipe;
  const recipes::SamplerGraph probe = recipe.sampler(recorded.shape, 1);  // the latent shape and whether labels go in
  const bool conditional = probe.labels != kNoValue;
  if (!conditional && (!o.labels.empty() || !o.class_name.empty()))
    throw std::invalid_argument(path + ": a " + recipe.name() + " generator takes no class labels (--labels, --class)");

  const int64_t nz = probe.graph.shape(probe.z).numel();
  if (o.interpolate != 0 && !o.arithmetic.empty())
    throw std::invalid_argument("--interpolate and --arithmetic are separate walks: give one");
  if (o.interpolate < 0) throw std::invalid_argument("--interpolate must be at least 1, got " + std::to_string(o.interpolate));
  if (!o.arithmetic.empty() && !o.z.empty()) throw std::invalid_argument("--arithmetic reads its latents from its own files, not --z");
  Batch batch;
  if (o.interpolate > 0) {
    batch = interpolation_batch(o, nz);
  } else if (!o.arithmetic.empty()) {
    batch = arithmetic_batch(o, nz);
  } else {
    if (!o.z.empty()) {
      batch.z = read_latents(o.z, nz);
    } else {
      // --n, else one image per label of --labels, else one row per class (conditional), else 64.
      int64_t n = 64;
      if (o.n > 0) n = o.n;
      else if (!o.labels.empty()) n = int64_t(read_npy_integers(o.labels).size());
      else if (conditional && o.class_name.empty()) n = int64_t(o.nrow) * recorded.shape.classes;
      batch.z = seeded_latents(n, nz, o.seed);
    }
    for (int64_t i = 0; i < batch.z.dim(0); ++i) batch.tiles.push_back(i);
    batch.nrow = o.nrow;
    batch.kept = batch.z.dim(0);
  }
  const Tensor& z = batch.z;

  LoadedGenerator generator(path, o.device, static_cast<int>(z.dim(0)));
  Shape latent_shape = generator.latent_shape();
  Tensor labels;
  if (conditional) {
    // The class names the run recorded (else indices), so that --class takes a name.
    std::vector<std::string> class_names;
    const nlohmann::json names = nlohmann::json::parse(meta["class_names"], nullptr, false);
    if (names.is_array() && int(names.size()) == recorded.shape.classes)
      for (const auto& name : names) class_names.push_back(name.is_string() ? name.get<std::string>() : "");
    for (int k = int(class_names.size()); k < recorded.shape.classes; ++k) class_names.push_back(std::to_string(k));
    labels = batch_labels(o, z.dim(0), batch.nrow, recorded.shape.classes, class_names, path);
  }
  Tensor images = generator.generate(z, conditional ? &labels : nullptr);
  const Shape& s = images.shape();
  const bool all_kept = batch.kept == s[0];
  if (!o.raw.empty()) write_npy(o.raw, all_kept ? images : first_rows(images, batch.kept));
  if (!o.save_z.empty()) {
    const Tensor saved = (all_kept ? z : first_rows(z, batch.kept));
    Shape s_shape = latent_shape;  // the generator's own latent layout
    s_shape[0] = saved.dim(0);
    write_npy(o.save_z, saved.reshaped(s_shape));
  }

  // Tiles in grid order; a black tile is -1 everywhere, as make_grid draws its padding.
  const int64_t tile = s[1] * s[2] * s[3];
  Tensor grid(Shape{int64_t(batch.tiles.size()), s[1], s[2], s[3]});
  for (size_t t = 0; t < batch.tiles.size(); ++t) {
    float* dst = grid.data() + int64_t(t) * tile;
    if (batch.tiles[t] < 0) std::fill(dst, dst + tile, -1.0f);
    else std::copy(images.data() + batch.tiles[t] * tile, images.data() + (batch.tiles[t] + 1) * tile, dst);
  }
  write_png(o.out, make_grid(grid.data(), int(grid.dim(0)), int(s[1]), int(s[2]), int(s[3]), batch.nrow));
  std::fprintf(stderr, "gan sample: %lld images %s from %s -> %s%s%s\n", (long long)s[0], s.str().c_str(), path.c_str(),
               o.out.c_str(), o.raw.empty() ? "" : ", ", o.raw.c_str());
  return 0;
}

}  // namespace gancu::app
