// Training images held in memory as bytes, with their class labels where the data set has them, and a shuffling batch
// loader that turns them into [-1, 1] floats.
// Loaders throw std::runtime_error("<path>: <problem>") on missing, truncated or malformed data, labels included.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gancu {

struct ImageSet {
  int64_t count = 0;
  int channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;  // NCHW
  std::string source;           // where the images came from, for logs and error messages
  // Labelled sets: the class of each image (count entries, each < num_classes()) and one name per class (the set's
  // own names where it has them, otherwise the class index in decimal). Both empty when the set is unlabelled.
  std::vector<int32_t> labels = {};
  std::vector<std::string> class_names = {};

  bool labelled() const { return !labels.empty(); }
  int num_classes() const { return static_cast<int>(class_names.size()); }
};

// Class names of the labelled sets gancu knows.
const std::vector<std::string>& fashion_mnist_class_names();  // T-shirt/top, Trouser, …, Ankle boot
const std::vector<std::string>& mnist_class_names();          // "0" … "9"
const std::vector<std::string>& cifar10_class_names();        // airplane, automobile, …, truck

// An IDX3 image file (magic 0x00000803), plain or gzip-compressed, labelled when idx_labels_path finds its label
// file. Classes: Fashion-MNIST's ten when the file or its folder name says "fashion", MNIST's digits when the file
// has MNIST's own name (train-, t10k- or mnist-images-idx3-ubyte[.gz]); labels ≥ 10 are refused for both. Any other
// IDX set has max label + 1 classes, named by index. A label file that is there but bad is an error even when no one
// asked for labels: images and labels come from the same set, and a broken half says the other may be broken too.
// IDX files (images and labels) are read header first, then only as far as the header declares: what follows is
// counted for the error message, never kept, so a small .gz that inflates to gigabytes cannot make them allocate it.
ImageSet load_idx_images(const std::string& path);
// The label file of an IDX image file by MNIST's naming, …images-idx3-ubyte[.gz] → …labels-idx1-ubyte[.gz] in the
// same folder (the plain or gzipped one, whichever exists, the image file's own kind when neither does), or "" when
// the file is not named that way.
std::string idx_labels_path(const std::string& images_path);
// An IDX1 label file (magic 0x00000801), plain or gzip-compressed. Values must be < num_classes (unchecked when 0).
std::vector<int32_t> load_idx_labels(const std::string& path, int num_classes);
// A CIFAR-10 binary batch (3073-byte records: label + 3x32x32) or a folder holding data_batch_1.bin … data_batch_5.bin.
// Always labelled; class names from batches.meta.txt beside the batches (ten non-empty lines) when it is there,
// otherwise CIFAR-10's own.
ImageSet load_cifar10(const std::string& path);
// Every *.png in `dir` (sorted by name), centre-cropped to a square, resized to size×size, converted to `channels`.
// A folder with no PNGs of its own but sub-folders of PNGs is labelled: each sub-folder is a class, class i being the
// i-th sub-folder name in sorted order (names starting with "." are skipped; an empty class folder is an error).
ImageSet load_png_folder(const std::string& dir, int channels, int size);

struct DatasetOptions {
  bool require_labels = false;  // fail, saying where labels were looked for, when the data set has none
};

// spec: "fashion-mnist" or "" (Debian's /usr/share/datasets/fashion-mnist, train + t10k = 70,000 images), "mnist"
// (the IDX written by tools/mnist_to_idx.mjs, in $GANCU_DATA_DIR/mnist or data/mnist in the current folder or one
// of its parents), an IDX file, a CIFAR-10 batch file or folder, or a folder of PNGs. Labels come with the images
// where the readers above find them.
// The result has `channels` channels (1 or 3) and size×size pixels; see conform_images.
// The channels a data set's images have as stored: 1 for fashion-mnist, mnist and IDX files, else 3.
int native_channels(const std::string& spec);
ImageSet load_dataset(const std::string& spec, int channels, int size, const DatasetOptions& options = {});

// Converts channels (grey→RGB by replication, RGB→grey by ITU-R 601 luma) and makes images size×size: 28x28 → 32x32
// by zero padding (2 pixels each side, as DCGAN-style MNIST training does), otherwise centre crop to a square and
// antialiased bicubic resize. Labels and class names are kept.
ImageSet conform_images(ImageSet set, int channels, int size);

// The class that `spec` names among `class_names`: a class name, compared case-insensitively ("sneaker",
// "ankle boot", "frog"), or else a class index in decimal ("7"). A name wins over an index, so in a PNG set whose
// folders are named "3" and "10", "3" is the folder, class 0. Throws std::runtime_error("<source>: …") listing the
// classes when spec names none of them, or more than one by case alone.
int class_index(const std::vector<std::string>& class_names, const std::string& spec, const std::string& source);

// The images of one class of a labelled set (see class_index), in their order. Labels stay (all equal to the class),
// class names are kept, and the source says which class was taken. Throws std::runtime_error("<source>: …") for an
// unlabelled set, an unknown class, and a class with no images.
ImageSet select_class(ImageSet set, const std::string& spec);

// Deterministic shuffled mini-batches. Epoch e visits the images in a Fisher-Yates permutation drawn from
// Rng(seed, e), so (epoch, position) is enough to resume exactly where a run stopped.
class BatchLoader {
 public:
  // `set` must outlive the loader.
  BatchLoader(const ImageSet& set, int batch_size, uint64_t seed);

  // Fills out[batch, C, H, W] with x / 127.5 − 1; a batch that reaches the end of an epoch continues in the next.
  // With `labels` (only for a labelled set), labels[b] is the class of image b.
  void next(float* out, int32_t* labels = nullptr);

  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }  // images of the current epoch already handed out
  int batch_size() const { return batch_size_; }
  // Resumes as if next() had been called until (epoch, position).
  void restore(int64_t epoch, int64_t position);

 private:
  void shuffle_for_epoch();

  const ImageSet* set_;
  int batch_size_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace gancu
