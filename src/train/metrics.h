// Run metrics: a metrics.csv appender, an SVG chart writer (plain SVG text) and the
// progress line.
// Deliberately not here: what is measured (the training loop decides the columns).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace razor {

// metrics.csv: a header of column names, then one row per call, flushed at once so a kill
// loses nothing. Non-finite values are written as empty cells (missing).
class MetricsCsv {
 public:
  // append=false: start a new file. append=true (resume): keep the existing file when its
  // header matches `columns` exactly (else an error), dropping rows whose first column is
  // greater than keep_until (the steps the resumed run will redo); a missing file starts new.
  MetricsCsv(const std::string& path, std::vector<std::string> columns, bool append = false,
             double keep_until = 1e300);
  ~MetricsCsv();
  MetricsCsv(const MetricsCsv&) = delete;
  MetricsCsv& operator=(const MetricsCsv&) = delete;
  void row(const std::vector<double>& values);
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  std::string path_;
  std::vector<std::string> columns_;
  FILE* f_ = nullptr;
};

// Reads a metrics CSV: column names and, per column, the values (NaN for empty cells).
struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> values;  // [column][row]
  const std::vector<double>* column(const std::string& name) const;
};
CsvTable read_metrics_csv(const std::string& path);

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points are skipped
};

struct ChartPanel {
  std::string title;
  std::string y_label;
  std::vector<ChartSeries> series;
  bool log_y = false;
};

// Panels stacked vertically, shared x label; one <polyline> per series with data.
std::string render_svg_chart(const std::vector<ChartPanel>& panels, const std::string& x_label = "step");
void write_svg_chart(const std::string& path, const std::vector<ChartPanel>& panels,
                     const std::string& x_label = "step");

// The standard run chart from metrics.csv: panel 1 every column whose name starts with
// "loss" (training losses), panel 2 "val_ppl" (log scale). x is the first column.
void write_metrics_chart(const std::string& csv_path, const std::string& svg_path);

// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

// step/total, loss, tokens/s, ETA. On a TTY the line is rewritten in place (\r); otherwise a
// plain line is printed every `every` steps and at the last step.
class ProgressLine {
 public:
  ProgressLine(int64_t total_steps, int every = 10, FILE* out = stderr);
  // Force TTY / non-TTY behaviour (tests).
  void set_tty(bool tty) { tty_ = tty; }
  // step is 1-based (steps done); tokens = tokens processed in this step.
  void update(int64_t step, double loss, double tokens, const std::string& extra = "");
  void finish();
  // The text of a line, without \r or \n.
  static std::string format(int64_t step, int64_t total, double loss, double tokens_per_s, double eta_s,
                            const std::string& extra);

 private:
  int64_t total_;
  int every_;
  FILE* out_;
  bool tty_;
  bool dirty_ = false;
  double start_ = 0, tokens_ = 0;
  int64_t first_step_ = -1;
};

}  // namespace razor
