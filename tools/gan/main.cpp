// The `gan` command: train, sample, bench, eval, classifier, report, sr-eval. Every subcommand has --help; unknown flags and bad values are errors.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "kernels/cpu/blas.h"
#include "tools/gan/bench.h"
#include "tools/gan/classifier_command.h"
#include "tools/gan/cli.h"
#include "tools/gan/evaluate.h"
#include "tools/gan/report.h"
#include "tools/gan/sample.h"
#include "tools/gan/sr_eval.h"
#include "tools/gan/upscale.h"
#include "tools/gan/train.h"

int main(int argc, char** argv) {
  gancu::blas::reexec_with_best_openblas_core(argv);
  using namespace gancu::app;
  CLI::App app{"gancu: GAN training engine with hand-written kernels"};
  app.require_subcommand(1);

  // The recipe is chosen before parsing: its hyperparameters are flags of train and bench.
  const std::string recipe_name = recipe_name_from_args(argc, argv);
  std::unique_ptr<gancu::recipes::Recipe> recipe;
  try {
    recipe = gancu::recipes::make_recipe(recipe_name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gan: error: %s\n", e.what());
    return 1;
  }
  std::vector<std::string> recipe_names;
  std::string recipe_help = "What to train:";
  for (const auto& r : gancu::recipes::recipe_list()) {
    recipe_names.push_back(r.name);
    recipe_help += " " + r.name + " (" + r.description + ");";
  }
  recipe_help += " each has its own options, listed by --model NAME --help";

  TrainOptions t;
  CLI::App* train = app.add_subcommand("train", "Train a GAN (defaults: DCGAN on Fashion-MNIST at 32x32 on the CPU)");
  std::string model_flag = recipe_name;
  train->add_option("--model", model_flag, recipe_help)->capture_default_str()->check(CLI::IsMember(recipe_names));
  add_options(*train, t.recorded_options());
  const AddedOptions train_recipe_options = add_options(*train, recipe->options());
  auto* steps = train->add_option("--steps", t.steps, "Training steps (default " +
                                  std::to_string(TrainOptions::kDefaultSteps) + ")")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  train->add_option("--epochs", t.epochs, "Passes over the data (instead of --steps)")
      ->check(CLI::PositiveNumber)->excludes(steps);
  auto* out = train->add_option("--out", t.out, "Run folder, one run at a time (default: runs/train, or runs/train-N if that holds a run or is in use)")
                  ->capture_default_str();
  train->add_flag("--overwrite", t.overwrite, "Start a fresh run in --out even if it holds one");
  train->add_option("--device", t.device, "cpu | cuda | reference (the double-precision oracle, slow)")
      ->capture_default_str()->check(CLI::IsMember({"cpu", "reference", "cuda"}));
  train->add_option("--kernels", t.kernels,
                    "cuda: convolutions by the custom kernels, cuDNN, or auto (per shape, whichever is faster here; "
                    "kept in <out>/kernel_choices.json)")
      ->capture_default_str()->check(CLI::IsMember({"custom", "cudnn", "auto"}));
  train->add_option("--math", t.math, "cuda: convolution arithmetic")->capture_default_str()
      ->check(CLI::IsMember({"tf32", "fp32"}));
  bool no_cuda_graph = false;
  train->add_flag("--no-cuda-graph", no_cuda_graph, "cuda: launch kernel by kernel instead of replaying a CUDA graph");
  train->add_option("--log-every", t.log_every, "Read metrics every N steps (default: 1 on cpu, 10 on cuda)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  train->add_option("--resume", t.resume, "Continue the run in this folder (or checkpoint file), as it was configured");
  train->add_option("--sample-every", t.sample_every, "Write a sample grid every N steps (0: only at the end)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  train->add_option("--checkpoint-every", t.checkpoint_every, "Write a checkpoint every N steps (0: only at the end)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  train->add_option("--check-finite", t.check_finite_every,
                    "Every N steps, check every weight and Adam moment for NaN/Inf (a non-finite gradient shows in its "
                    "moments at once) and stop, keeping the last good checkpoint, if one is found")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  train->add_flag("--profile", t.profile,
                  "Print the time, FLOPs and bytes per op kind at the end (on cuda: launches call by call, no graph)");
  train->add_flag("--sync-bn", t.sync_bn,
                  "Data parallel (mpirun -np N gan train): batch-norm statistics over all ranks' batches (cpu only); "
                  "default: per rank, as PyTorch DDP");
  train->add_option("--bucket-mb", t.bucket_mb, "Data parallel: gradients are averaged in buckets of this many MiB")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  bool no_progress = false;
  train->add_flag("--no-progress", no_progress, "No progress line on the terminal");
  auto* eval_every = train->add_option(
      "--eval-every", t.eval_every,
      "Every N steps (and at the end), FID and KID of --eval-samples images in metrics.jsonl, in the feature space of "
      "gancu's own classifier of the data set (see gan eval); the best checkpoint by FID is kept as best.safetensors")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  train->add_option("--eval-samples", t.eval_samples, "--eval-every: images scored (the same latent vectors each time)")
      ->capture_default_str()->check(CLI::Range(int64_t(2), int64_t(1) << 20))->needs(eval_every);
  train->add_option("--val-data", t.val_data,
                    "srresnet/srgan: held-out photos of the progress grid and --eval-every (PSNR/SSIM against bicubic)")
      ->capture_default_str();
  train->add_option("--val-crop", t.val_crop, "srresnet/srgan: validation centre crops of N pixels (0: whole photos)")
      ->capture_default_str()->check(CLI::Range(0, 4096));
  train->add_option("--classifier", t.classifier,
                    "--eval-every: the classifier file (default: data/classifiers/<data>.safetensors, trained on first use)")
      ->needs(eval_every);

  SampleOptions s;
  CLI::App* sample = app.add_subcommand("sample", "Generate images from a checkpoint");
  sample->add_option("--checkpoint", s.checkpoint, "checkpoint.safetensors, generator.safetensors or a run folder")->required();
  auto* n = sample->add_option("--n", s.n, "Number of images (default 64; conditional: one row of --nrow per class)")
                ->check(CLI::Range(1, 65536));
  sample->add_option("--z", s.z, "Latent vectors (.npy, [n, nz] or [n, nz, 1, 1]); with --interpolate, the pairs' points")->excludes(n);
  sample->add_option("--out", s.out, "Grid PNG")->capture_default_str();
  sample->add_option("--raw", s.raw, "Also write the generator's float output as .npy");
  sample->add_option("--seed", s.seed, "Seed of the latent vectors")->capture_default_str();
  auto* nrow = sample->add_option("--nrow", s.nrow, "Images per grid row")->capture_default_str()->check(CLI::Range(1, 1024));
  sample->add_option("--device", s.device, "cpu | cuda | reference")->capture_default_str()->check(CLI::IsMember({"cpu", "reference", "cuda"}));
  auto* interpolate = sample->add_option(
      "--interpolate", s.interpolate,
      "Latent walk: PAIRS rows, each the spherical interpolation (slerp) from a pair's first latent point to its second "
      "in --steps points, endpoints included. Points: 2*PAIRS from --seed (those of --n 2*PAIRS), or --z holding "
      "2*PAIRS vectors, pair i = vectors 2i, 2i+1")->check(CLI::Range(1, 4096))->excludes(n)->excludes(nrow);
  sample->add_option("--steps", s.steps, "--interpolate: points per row (at least 2)")->capture_default_str()
      ->check(CLI::Range(2, 1024))->needs(interpolate);
  sample->add_option(
      "--arithmetic", s.arithmetic,
      "Latent arithmetic a - b + c from three .npy files a,b,c ([m, nz] or [m, nz, 1, 1] each; a file of several "
      "vectors stands for their mean). Grid of 4 columns: if any file has several vectors, row i shows vector i of "
      "a, b, c; the last row shows G(mean a), G(mean b), G(mean c), G(a - b + c). --raw and --save-z hold those four")
      ->expected(3)->delimiter(',')->excludes(n)->excludes(nrow)->excludes(interpolate)->excludes("--z");
  sample->add_option("--labels", s.labels, "Conditional generators: class of each image (.npy of n class indices)");
  sample->add_option("--class", s.class_name, "Conditional generators: every image of this class (its name or index)")
      ->excludes("--labels");
  sample->add_option("--save-z", s.save_z, "Also write the latent vectors of the --raw images as .npy [N, nz, 1, 1]");

  BenchOptions bo;
  CLI::App* bench = app.add_subcommand("bench", "Time a training step on synthetic data (median of --steps; DCGAN unless --model)");
  bench->add_option("--model", model_flag, recipe_help)->capture_default_str()->check(CLI::IsMember(recipe_names));
  add_options(*bench, recipe->options());
  bench->add_option("--device", bo.device, "cpu | cuda | reference")->capture_default_str()
      ->check(CLI::IsMember({"cpu", "reference", "cuda"}));
  bench->add_option("--kernels", bo.kernels, "cuda: custom | cudnn | auto")->capture_default_str()
      ->check(CLI::IsMember({"custom", "cudnn", "auto"}));
  bench->add_option("--kernel-choices", bo.kernel_choice_file,
                    "cuda, auto: keep the per-shape choices in this JSON file and reuse them (default: measure afresh)");
  bench->add_option("--math", bo.math, "cuda: tf32 | fp32")->capture_default_str()->check(CLI::IsMember({"tf32", "fp32"}));
  bool bench_no_graph = false;
  bench->add_flag("--no-cuda-graph", bench_no_graph, "cuda: launch kernel by kernel");
  bench->add_option("--channels", bo.channels, "1 or 3")->capture_default_str()->check(CLI::IsMember({1, 3}));
  bench->add_option("--batch-size", bo.batch_size, "Batch size")->capture_default_str()->check(CLI::Range(2, 65536));
  bench->add_option("--warmup", bo.warmup, "Untimed steps first")->capture_default_str()->check(CLI::Range(0, 1000));
  bench->add_option("--steps", bo.steps, "Timed steps")->capture_default_str()->check(CLI::Range(1, 100000));
  bench->add_flag("--profile", bo.profile, "Then profile up to 20 more steps op by op (launched call by call on cuda)");

  ClassifierOptions co;
  CLI::App* classifier = add_classifier_command(app, co);

  EvalOptions eo;
  CLI::App* eval = app.add_subcommand(
      "eval", "FID and KID of a generator against the data set's test images, with the floor (training images) and "
              "the ceiling (noise), in the feature space of gancu's own classifier of the data set (trained on first "
              "use): not comparable with published Inception FIDs");
  eval->add_option("--checkpoint", eo.checkpoint, "A run folder, checkpoint.safetensors, best.safetensors or "
                   "generator.safetensors (none: the bounds of --data alone)");
  eval->add_option("--data", eo.data, "fashion-mnist | mnist | CIFAR-10 folder (default: the checkpoint's)");
  eval->add_option("--class", eo.data_class, "Score against this class only (default: the checkpoint's --class)");
  eval->add_option("--classifier", eo.classifier, "Classifier file (default: data/classifiers/<data>.safetensors)");
  eval->add_option("--n", eo.n, "Generated images scored, and images of each bound")->capture_default_str()
      ->check(CLI::Range(int64_t(2), int64_t(1) << 20));
  eval->add_option("--kid-subsets", eo.kid_subsets, "KID: subsets of up to 1,000 images averaged")->capture_default_str()
      ->check(CLI::Range(1, 10000));
  bool no_bounds = false;
  eval->add_flag("--no-bounds", no_bounds, "Skip the floor and the ceiling");
  eval->add_option("--seed", eo.seed, "Seed of the latent vectors and of the bounds' draws")->capture_default_str();
  eval->add_option("--device", eo.device, "cpu | cuda")->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}));
  eval->add_option("--json", eo.json, "Also write the results as JSON here");
  SrEvalOptions sro;
  CLI::App* sr_eval = add_sr_eval_command(app, sro);
  UpscaleOptions uo;
  CLI::App* upscale = add_upscale_command(app, uo);
  std::string report_dir;
  CLI::App* report = app.add_subcommand("report", "Rebuild RUN_DIR/report.html (samples, curves, configuration) from the folder alone");
  report->add_option("RUN_DIR", report_dir, "A run folder (written by gan train)")->required();

  CLI11_PARSE(app, argc, argv);
  try {
    if (*train) {
      t.progress = !no_progress;
      t.cuda_graph = !no_cuda_graph;
      t.out_given = out->count() > 0;
      t.given_recipe_options = train_recipe_options.given();
      return run_train(t, *recipe);
    }
    if (*classifier) return run_classifier(co);
    if (*bench) {
      bo.cuda_graph = !bench_no_graph;
      return run_bench(bo, *recipe);
    }
    if (*eval) {
      eo.bounds = !no_bounds;
      return run_eval(eo);
    }
    if (*report) return run_report(report_dir);
    if (*sr_eval) {
      if (sro.checkpoint.empty()) return run_sr_eval(sro);
      LoadedUpscaler upscaler(sro.checkpoint, sro.device, sro.tile);
      if (upscaler.scale() != sro.scale)
        throw std::invalid_argument("--scale " + std::to_string(sro.scale) + ": " + sro.checkpoint + " upscales x" +
                                    std::to_string(upscaler.scale()));
      return run_sr_eval(sro, [&](const gancu::Image& lr) { return upscaler.upscale(lr); }, "gancu");
    }
    if (*upscale) return run_upscale(uo);
    return run_sample(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gan: error: %s\n", e.what());
    return 1;
  }
}
