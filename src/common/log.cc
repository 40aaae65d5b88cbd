#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace dpustor {

bool InitLogging(const std::string& program, const std::string& level) {
  auto logger = spdlog::stderr_logger_mt(program);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %n[%P] %^%l%$: %v");
  spdlog::set_default_logger(logger);
  auto parsed = spdlog::level::from_str(level);
  bool known = spdlog::level::to_string_view(parsed) == level || (level == "warning");
  spdlog::set_level(known ? parsed : spdlog::level::info);
  return known;
}

}  // namespace dpustor
