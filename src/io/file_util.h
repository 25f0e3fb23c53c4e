// The POSIX file helpers every writer and loader of razor shares: whole-file read, the one
// atomic writer (temporary name + fsync + rename + directory fsync), a streaming writer that
// fsyncs, and directory helpers. Errors are razor::Error naming the path.
// Deliberately not here: any file format; read-only mappings (io/mapped_file.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace razor {

// Writes all n bytes to fd (retrying on EINTR); an error is "<what>: write failed: <errno
// text><note>". The one write loop of FileWriter, AtomicFile and the teacher store's shards.
void write_all(int fd, const void* data, size_t n, const std::string& what, const char* note = "");
// The atomic writer's commit: fsync and close fd (the temporary `tmp`), rename it over `path`,
// fsync the directory. For writers that stream into a temporary of their own naming (the
// teacher store keeps "<shard>.tmp" so that an interrupted dump can be found and resumed).
void commit_file(int fd, const std::string& tmp, const std::string& path);

// Creates/truncates `path` and writes it; close() fsyncs. Not atomic by itself: used for
// files inside a temporary directory that is renamed as a whole (checkpoints).
class FileWriter {
 public:
  explicit FileWriter(const std::string& path);
  ~FileWriter();  // closes (no fsync) if close() was not called
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  void write(const void* data, size_t n);
  void close();  // fsync + close
 private:
  std::string path_;
  int fd_ = -1;
};

// Writes `path` atomically: bytes stream into "<path>.tmp.<pid>"; commit() fsyncs, renames it
// over `path` and fsyncs the directory. Destroyed without commit() (an error part-way), it
// removes the temporary, so the previous `path`, if any, is intact.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t n);
  void commit();
  const std::string& tmp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Reads a whole file into a string; throws razor::Error naming the file.
std::string read_file(const std::string& path);
// Writes data to path through AtomicFile.
void write_file_atomic(const std::string& path, std::string_view data);
inline void write_file_atomic(const std::string& path, const void* data, size_t n) {
  write_file_atomic(path, std::string_view(static_cast<const char*>(data), n));
}

void fsync_dir(const std::string& dir);
bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_dir(const std::string& path);     // ok when it exists already
void make_dirs(const std::string& path);    // with every missing parent (mkdir -p)
void remove_tree(const std::string& path);  // ok when it does not exist
std::string parent_dir(const std::string& path);

}  // namespace razor
