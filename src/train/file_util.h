// Small POSIX file helpers shared by shards, checkpoints and metrics: a streaming writer
// that fsyncs, directory fsync, recursive removal, existence checks, a read-only mmap.
// Errors are razor::Error naming the path. Deliberately not here: any file format.
#pragma once
#include <cstddef>
#include <string>

namespace razor {

class FileWriter {
 public:
  explicit FileWriter(const std::string& path);  // create/truncate
  ~FileWriter();                                 // closes (no fsync) if close() was not called
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  void write(const void* data, size_t n);
  void close();  // fsync + close
 private:
  std::string path_;
  int fd_ = -1;
};

// Writes path via path + ".tmp" + fsync + rename (+ fsync of the directory).
void write_file_durable(const std::string& path, const void* data, size_t n);

void fsync_dir(const std::string& dir);
bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_dir(const std::string& path);    // ok when it exists already
void remove_tree(const std::string& path);  // ok when it does not exist
std::string parent_dir(const std::string& path);

// Read-only mapping of a whole file.
struct FileMap {
  explicit FileMap(const std::string& path);
  ~FileMap();
  FileMap(const FileMap&) = delete;
  FileMap& operator=(const FileMap&) = delete;
  const unsigned char* data = nullptr;
  size_t size = 0;
};

}  // namespace razor
