#include "services/eval_proto.h"

namespace qv2x::services {

std::vector<v1::ClassAp> ClassAps(const EvalResult& result) {
  std::vector<v1::ClassAp> out;
  for (int c = 0; c < kNumClasses; ++c) {
    v1::ClassAp a;
    a.set_class_name(ClassName(static_cast<ObjectClass>(c)));
    a.set_ap_30(result.ap[c][0]);
    a.set_ap_50(result.ap[c][1]);
    a.set_ap_70(result.ap[c][2]);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace qv2x::services
