#include "core/config/yaml_reader.h"
