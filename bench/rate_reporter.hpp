// A console reporter that also remembers each benchmark's bytes per second
// (the median when repetitions are on), so a program can print the ratios
// its targets are stated in after the usual table.
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace ephemeral_crypt::bench {

class RateReporter : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            auto it = run.counters.find("bytes_per_second");
            if (it == run.counters.end()) {
                continue;
            }
            // With --benchmark_repetitions the median is the figure to compare.
            std::string name = run.benchmark_name();
            const std::string median = "_median";
            if (run.run_type == Run::RT_Aggregate) {
                if (name.size() <= median.size() ||
                    name.compare(name.size() - median.size(), median.size(), median) != 0) {
                    continue;
                }
                name.resize(name.size() - median.size());
            }
            rates_[name] = it->second.value;
        }
    }

  protected:
    // The remembered bytes per second of `name`, or -1 when it is missing.
    double rate(const std::string& name) const {
        const auto it = rates_.find(name);
        return it == rates_.end() ? -1.0 : it->second;
    }

    // rate(a) / rate(b), or -1 when either is missing.
    double ratio(const std::string& a, const std::string& b) const {
        const auto ra = rates_.find(a);
        const auto rb = rates_.find(b);
        if (ra == rates_.end() || rb == rates_.end() || rb->second == 0) {
            return -1.0;
        }
        return ra->second / rb->second;
    }

  private:
    std::map<std::string, double> rates_;
};

}  // namespace ephemeral_crypt::bench
