#include "train/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
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

void FileWriter::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("%s: write failed: %s", path_.c_str(), std::strerror(errno));
    }
    p += w;
    n -= size_t(w);
  }
}

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

void write_file_durable(const std::string& path, const void* data, size_t n) {
  std::string tmp = path + ".tmp";
  try {
    FileWriter w(tmp);
    w.write(data, n);
    w.close();
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail("%s: cannot rename into place: %s", path.c_str(), std::strerror(e));
  }
  fsync_dir(parent_dir(path));
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

FileMap::FileMap(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("%s: cannot open: %s", path.c_str(), std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("%s: cannot stat: %s", path.c_str(), std::strerror(e));
  }
  size = size_t(st.st_size);
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("%s: cannot map: %s", path.c_str(), std::strerror(e));
    }
    data = static_cast<const unsigned char*>(p);
  }
  ::close(fd);
}

FileMap::~FileMap() {
  if (data) ::munmap(const_cast<unsigned char*>(data), size);
}

}  // namespace razor
