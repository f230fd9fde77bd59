#pragma once
// An allocator that asks operator new for exactly what is needed, for the one operation
// an idle connection keeps pending (its wait for readable). Asio's default for handlers
// (std::allocator<void>) goes through its per-thread recycling cache, which hands an
// operation the block of whichever earlier operation it reuses: an accept's, a read's,
// often twice the size a wait needs, kept for as long as the connection idles. With this
// allocator the wait's block is its own size (docs/benchmarks.md, idle memory).
#include <cstddef>
#include <new>

namespace herald::util {

template <class T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() noexcept = default;
  template <class U>
  exact_allocator(const exact_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }
  template <class U>
  bool operator==(const exact_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace herald::util
