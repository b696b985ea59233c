// A conditional DCGAN (Mirza and Osindero 2014): DCGAN's recipe and hyperparameters, with the class label joined to
// both networks' inputs (models/conditional_dcgan.h). Needs labelled data; samples one row per class by default.
#pragma once
#include "recipes/dcgan.h"

namespace gancu::recipes {

class ConditionalDcganRecipe : public DcganRecipe {
 public:
  std::string name() const override { return "conditional-dcgan"; }
  DataRequest data_request() const override { return {model.image_size, 0, true}; }

 protected:
  bool conditional() const override { return true; }
  ValueId generator(Builder& b, ValueId z, ValueId labels, const DataShape& data) const override;
  ValueId discriminator(Builder& b, ValueId images, ValueId labels, const DataShape& data) const override;
};

}  // namespace gancu::recipes
