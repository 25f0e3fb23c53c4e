#include "io/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace razor {

FileWriter::FileWriter(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("%s: cannot create: %s", path.c_str(), std::strerror(errno));
}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void write_all(int fd, const void* data, size_t n, const std::string& what, const char* note) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("%s: write failed: %s%s", what.c_str(), std::strerror(errno), note);
    }
    p += w;
    n -= size_t(w);
  }
}

void commit_file(int fd, const std::string& tmp, const std::string& path) {
  if (::fsync(fd) != 0 || ::close(fd) != 0)
    fail("%s: write failed: %s (the previous file, if any, is intact)", path.c_str(), std::strerror(errno));
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    fail("%s: cannot rename into place: %s", path.c_str(), std::strerror(errno));
  fsync_dir(parent_dir(path));
}

void FileWriter::write(const void* data, size_t n) { write_all(fd_, data, n, path_); }

void FileWriter::close() {
  if (fd_ < 0) return;
  int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    fail("%s: fsync failed: %s", path_.c_str(), std::strerror(e));
  }
  if (::close(fd) != 0) fail("%s: close failed: %s", path_.c_str(), std::strerror(errno));
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some filesystems refuse directory fds
  ::fsync(fd);
  ::close(fd);
}

AtomicFile::AtomicFile(const std::string& path) : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("%s: cannot create: %s", tmp_.c_str(), std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  write_all(fd_, data, n, path_, " (the previous file, if any, is intact)");
}

void AtomicFile::commit() {
  RZ_ASSERT(fd_ >= 0 && !committed_);
  int fd = fd_;
  fd_ = -1;
  commit_file(fd, tmp_, path_);
  committed_ = true;
}

std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("%s: cannot open: %s", path.c_str(), std::strerror(errno));
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  bool err = std::ferror(f);
  std::fclose(f);
  if (err) fail("%s: read error", path.c_str());
  return data;
}

void write_file_atomic(const std::string& path, std::string_view data) {
  AtomicFile f(path);
  f.write(data.data(), data.size());
  f.commit();
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    fail("%s: cannot create directory: %s", path.c_str(), std::strerror(errno));
}

void make_dirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i)
    if (i == path.size() || path[i] == '/') make_dir(path.substr(0, i));
}

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = ::opendir(path.c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
        remove_tree(path + "/" + e->d_name);
      }
      ::closedir(d);
    }
    if (::rmdir(path.c_str()) != 0) fail("%s: cannot remove directory: %s", path.c_str(), std::strerror(errno));
  } else if (::unlink(path.c_str()) != 0) {
    fail("%s: cannot remove: %s", path.c_str(), std::strerror(errno));
  }
}

}  // namespace razor
