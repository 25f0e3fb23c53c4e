#include "train/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/json.h"
#include "io/file_util.h"

namespace razor {

namespace {

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out(1);
  for (char c : line) {
    if (c == ',') out.emplace_back();
    else if (c != '\r') out.back() += c;
  }
  return out;
}

std::string join_columns(const std::vector<std::string>& cols) {
  std::string s;
  for (size_t i = 0; i < cols.size(); ++i) s += (i ? "," : "") + cols[i];
  return s;
}

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

MetricsCsv::MetricsCsv(const std::string& path, std::vector<std::string> columns, bool append, double keep_until)
    : path_(path), columns_(std::move(columns)) {
  RZ_CHECK(!columns_.empty(), "%s: no metric columns", path.c_str());
  for (const std::string& c : columns_)
    RZ_CHECK(!c.empty() && c.find_first_of(",\n\r\"") == std::string::npos, "%s: bad column name '%s'", path.c_str(),
             c.c_str());
  const std::string header = join_columns(columns_);
  std::string keep = header + "\n";
  if (append && path_exists(path)) {
    std::string text = read_file(path);
    size_t nl = text.find('\n');
    std::string first = text.substr(0, nl);
    if (!first.empty() && first.back() == '\r') first.pop_back();
    RZ_CHECK(first == header, "%s: existing header '%s' differs from this run's columns '%s' (use a new run directory)",
             path.c_str(), first.c_str(), header.c_str());
    size_t pos = nl == std::string::npos ? text.size() : nl + 1;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) break;  // a partial last line (killed mid-write): dropped
      std::string line = text.substr(pos, end - pos);
      pos = end + 1;
      std::vector<std::string> cells = split_csv_line(line);
      if (cells.size() != columns_.size()) continue;
      char* stop = nullptr;
      double x = std::strtod(cells[0].c_str(), &stop);
      if (stop != cells[0].c_str() && x > keep_until) continue;
      keep += line + "\n";
    }
  }
  write_file_atomic(path, keep.data(), keep.size());
  f_ = std::fopen(path.c_str(), "ab");
  if (!f_) fail("%s: cannot open for appending: %s", path.c_str(), std::strerror(errno));
}

MetricsCsv::~MetricsCsv() {
  if (f_) std::fclose(f_);
}

void MetricsCsv::row(const std::vector<double>& values) {
  RZ_ASSERT(values.size() == columns_.size());
  std::string line;
  char buf[64];
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) line += ',';
    if (std::isfinite(values[i])) {
      std::snprintf(buf, sizeof buf, "%.9g", values[i]);
      line += buf;
    }
  }
  line += '\n';
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    fail("%s: write failed: %s", path_.c_str(), std::strerror(errno));
}

const std::vector<double>* CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return &values[i];
  return nullptr;
}

CsvTable read_metrics_csv(const std::string& path) {
  std::string text = read_file(path);
  CsvTable t;
  size_t pos = 0;
  bool header = true;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    std::vector<std::string> cells = split_csv_line(line);
    if (header) {
      t.columns = cells;
      t.values.resize(cells.size());
      header = false;
      continue;
    }
    if (cells.size() != t.columns.size()) continue;  // partial line
    for (size_t i = 0; i < cells.size(); ++i) {
      char* stop = nullptr;
      double v = std::strtod(cells[i].c_str(), &stop);
      t.values[i].push_back(cells[i].empty() || *stop ? NAN : v);
    }
  }
  RZ_CHECK(!t.columns.empty(), "%s: empty metrics file (no header)", path.c_str());
  return t;
}

// ---- SVG ----------------------------------------------------------------------------

namespace {

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

std::string fmt_num(double v) {
  char buf[32];
  double a = std::fabs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3)) std::snprintf(buf, sizeof buf, "%.2g", v);
  else std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

}  // namespace

std::string render_svg_chart(const std::vector<ChartPanel>& panels, const std::string& x_label) {
  const double W = 800, PH = 300, ML = 70, MR = 20, MT = 30, MB = 40;
  const double H = PH * double(std::max<size_t>(panels.size(), 1));
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n",
                W, H, W, H);
  s += buf;
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const ChartPanel& p = panels[pi];
    const double y0 = PH * double(pi);
    const double px0 = ML, px1 = W - MR, py0 = y0 + MT, py1 = y0 + PH - MB;
    auto ty = [&](double y) { return p.log_y ? std::log10(y) : y; };
    auto usable = [&](const std::pair<double, double>& q) {
      return std::isfinite(q.first) && std::isfinite(q.second) && (!p.log_y || q.second > 0);
    };
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (const ChartSeries& se : p.series)
      for (const auto& q : se.points)
        if (usable(q)) {
          xmin = std::min(xmin, q.first);
          xmax = std::max(xmax, q.first);
          ymin = std::min(ymin, ty(q.second));
          ymax = std::max(ymax, ty(q.second));
        }
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">", px0,
                  y0 + 18);
    s += buf + xml_escape(p.title) + "</text>\n";
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n", px0,
                  py0, px1 - px0, py1 - py0);
    s += buf;
    std::snprintf(buf, sizeof buf,
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">", 16.0,
                  (py0 + py1) / 2, 16.0, (py0 + py1) / 2);
    s += buf + xml_escape(p.y_label + (p.log_y ? " (log)" : "")) + "</text>\n";
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (px0 + px1) / 2,
                  py1 + 32);
    s += buf + xml_escape(x_label) + "</text>\n";
    if (!(xmin <= xmax)) {
      std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no data</text>\n",
                    (px0 + px1) / 2, (py0 + py1) / 2);
      s += buf;
      continue;
    }
    if (xmax == xmin) xmax = xmin + 1;
    if (ymax == ymin) { ymax += 0.5; ymin -= 0.5; }
    const double pad = 0.05 * (ymax - ymin);
    ymin -= pad;
    ymax += pad;
    auto sx = [&](double x) { return px0 + (x - xmin) / (xmax - xmin) * (px1 - px0); };
    auto sy = [&](double y) { return py1 - (y - ymin) / (ymax - ymin) * (py1 - py0); };
    for (int k = 0; k <= 4; ++k) {  // ticks
      double fy = ymin + (ymax - ymin) * k / 4, fx = xmin + (xmax - xmin) * k / 4;
      std::snprintf(buf, sizeof buf,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                    px0, sy(fy), px1, sy(fy), px0 - 4, sy(fy) + 4);
      s += buf + fmt_num(p.log_y ? std::pow(10.0, fy) : fy) + "</text>\n";
      std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", sx(fx), py1 + 16);
      s += buf + fmt_num(fx) + "</text>\n";
    }
    int color = 0;
    for (const ChartSeries& se : p.series) {
      std::string pts;
      for (const auto& q : se.points) {
        if (!usable(q)) continue;
        std::snprintf(buf, sizeof buf, "%s%.2f,%.2f", pts.empty() ? "" : " ", sx(q.first), sy(ty(q.second)));
        pts += buf;
      }
      if (pts.empty()) continue;
      const char* c = kColors[color % 6];
      std::snprintf(buf, sizeof buf, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", c);
      s += buf + pts + "\"/>\n";
      std::snprintf(buf, sizeof buf,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"3\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">",
                    px1 - 150, py0 + 12 + 16.0 * color, c, px1 - 134, py0 + 17 + 16.0 * color);
      s += buf + xml_escape(se.name) + "</text>\n";
      ++color;
    }
  }
  s += "</svg>\n";
  return s;
}

void write_svg_chart(const std::string& path, const std::vector<ChartPanel>& panels, const std::string& x_label) {
  std::string svg = render_svg_chart(panels, x_label);
  write_file_atomic(path, svg.data(), svg.size());
}

void write_metrics_chart(const std::string& csv_path, const std::string& svg_path) {
  CsvTable t = read_metrics_csv(csv_path);
  const std::vector<double>& x = t.values[0];
  ChartPanel loss{"training loss", "loss", {}, false};
  ChartPanel ppl{"validation perplexity", "perplexity", {}, true};
  for (size_t c = 1; c < t.columns.size(); ++c) {
    ChartSeries se{t.columns[c], {}};
    for (size_t r = 0; r < x.size(); ++r) se.points.emplace_back(x[r], t.values[c][r]);
    if (t.columns[c].rfind("loss", 0) == 0) loss.series.push_back(std::move(se));
    else if (t.columns[c] == "val_ppl") ppl.series.push_back(std::move(se));
  }
  write_svg_chart(svg_path, {loss, ppl}, t.columns[0]);
}

// ---- progress -------------------------------------------------------------------------

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = long(std::llround(seconds));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

ProgressLine::ProgressLine(int64_t total_steps, int every, FILE* out)
    : total_(total_steps), every_(std::max(every, 1)), out_(out), tty_(isatty(fileno(out)) != 0) {}

std::string ProgressLine::format(int64_t step, int64_t total, double loss, double tokens_per_s, double eta_s,
                                 const std::string& extra) {
  char buf[256];
  int width = int(std::to_string(total).size());
  std::snprintf(buf, sizeof buf, "step %*lld/%lld  loss %.4f  %.0f tok/s  ETA %s", width, (long long)step,
                (long long)total, loss, tokens_per_s, format_duration(eta_s).c_str());
  std::string s = buf;
  if (!extra.empty()) s += "  " + extra;
  return s;
}

void ProgressLine::update(int64_t step, double loss, double tokens, const std::string& extra) {
  double t = now_s();
  if (first_step_ < 0) {  // rate is measured from the first update (resumes start mid-run)
    first_step_ = step - 1;
    start_ = t;
    tokens_ = 0;
  }
  tokens_ += tokens;
  double elapsed = t - start_;
  int64_t done = step - first_step_;
  double tps = elapsed > 0 ? tokens_ / elapsed : 0.0;
  double eta = done > 0 && elapsed > 0 ? elapsed / double(done) * double(total_ - step) : NAN;
  std::string line = format(step, total_, loss, tps, eta, extra);
  if (tty_) {
    std::fprintf(out_, "\r%s\x1b[K", line.c_str());
    dirty_ = true;
  } else if (step % every_ == 0 || step == total_ || done == 1) {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void ProgressLine::finish() {
  if (tty_ && dirty_) std::fprintf(out_, "\n");
  dirty_ = false;
  std::fflush(out_);
}

}  // namespace razor
