// C++ kernel of the batched exact misspecification effects: one trial per loop iteration, trials split across
// threads (the per-trial routine is choice_trial_effects in toolbox/choice.h, shared with the CUDA kernel).
#include "toolbox/choice.h"
#include "toolbox/parallel.h"

namespace toolbox {

void choice_effects_cpu(const ChoiceEffectsArgs& args) {
  parallel_for(args.trials, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) choice_trial_effects(args, t);
  });
}

}  // namespace toolbox
