// gancu's public engine header: what models and tools use.
#pragma once
#include "engine/autodiff.h"
#include "engine/backend.h"
#include "engine/builder.h"
#include "engine/fusion.h"
#include "engine/graph.h"
#include "engine/memory_plan.h"
#include "engine/parameter_store.h"
#include "engine/plan.h"
