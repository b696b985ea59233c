#include "tools/gan/sample.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "core/npy.h"
#include "engine/engine.h"
#include "models/dcgan.h"
#include "tools/gan/train.h"
#include "tools/io/png.h"
#include "tools/io/safetensors.h"

namespace gancu::app {

int run_sample(const SampleOptions& o) {
  namespace fs = std::filesystem;
  std::string path = o.checkpoint;
  if (fs::is_directory(path)) path = (fs::path(path) / "checkpoint.safetensors").string();
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> tensors = load_safetensors(path, &meta);
  const models::DcganConfig config = config_from_json(meta["config"], path);
  // A training checkpoint names G's tensors "G.main.0.weight"; a state dict names them "main.0.weight".
  std::string prefix;
  if (meta["format"] == "pytorch-state-dict") {
    if (meta["network"] != "G") throw std::runtime_error(path + ": holds network '" + meta["network"] + "', not the generator");
  } else {
    prefix = "G.";
  }

  Tensor z;
  if (!o.z.empty()) {
    z = read_npy(o.z);
    const Shape& s = z.shape();
    const bool ok = (s.rank() == 2 || (s.rank() == 4 && s[2] == 1 && s[3] == 1)) && s[1] == config.latent_size;
    if (!ok)
      throw std::runtime_error(o.z + ": latent vectors must be [n, " + std::to_string(config.latent_size) + "] or [n, " +
                               std::to_string(config.latent_size) + ", 1, 1], got " + s.str());
    z = z.reshaped(Shape{s[0], s[1], 1, 1});
  } else {
    if (o.n < 1) throw std::invalid_argument("--n must be at least 1");
    z = Tensor(Shape{o.n, config.latent_size, 1, 1});
    Rng rng(o.seed, 0x5A3B1E);
    z.fill_normal(rng);
  }

  std::unique_ptr<Backend> backend = make_backend(o.device, "custom", "fp32", false);
  GeneratorGraph g = build_generator(static_cast<int>(z.dim(0)), config.latent_size,
                                     [config](Builder& b, ValueId x) { return models::dcgan_generator(b, x, config); });
  const ValueId z_id = g.z, images_id = g.images;
  Plan plan(std::move(g.graph), *backend, o.seed);
  for (const Value& v : plan.graph().values()) {
    if (v.kind != ValueKind::kParameter && v.kind != ValueKind::kBuffer) continue;
    const std::string name = prefix + v.name.substr(2);  // graph names carry "G."
    auto it = tensors.find(name);
    if (it == tensors.end()) throw std::runtime_error(path + ": missing tensor " + name);
    if (it->second.shape() != v.shape)
      throw std::runtime_error(path + ": tensor " + name + " has shape " + it->second.shape().str() + ", expected " + v.shape.str());
    plan.write(v.id, it->second.data());
  }
  plan.write(z_id, z.data());
  plan.run();
  Tensor images = plan.read(images_id);
  const Shape& s = images.shape();
  if (!o.raw.empty()) write_npy(o.raw, images);
  write_png(o.out, make_grid(images.data(), int(s[0]), int(s[1]), int(s[2]), int(s[3]), o.nrow));
  std::fprintf(stderr, "gan sample: %lld images %s from %s -> %s%s%s\n", (long long)s[0], s.str().c_str(), path.c_str(),
               o.out.c_str(), o.raw.empty() ? "" : ", ", o.raw.c_str());
  return 0;
}

}  // namespace gancu::app
