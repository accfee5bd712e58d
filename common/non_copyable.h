// NonCopyable: the one spelling of "this object is never copied" for every
// layer (store/, server/, privsep tests, benchmarks/loadgen).
//
// A class that owns a resource by address (a ring, a mapping, a lock, a file
// descriptor, a thread) derives from it privately instead of deleting its
// copy constructor and copy assignment itself. Without moves of its own the
// class cannot be moved either (a deleted copy suppresses the implicit moves);
// a class that can hand its resource over (PinnedItem, Reservation) declares
// its moves itself.
#pragma once

namespace ringcache {

class NonCopyable {
 public:
  NonCopyable(const NonCopyable&) = delete;
  NonCopyable& operator=(const NonCopyable&) = delete;

 protected:
  NonCopyable() = default;
  ~NonCopyable() = default;
};

}  // namespace ringcache
