// A look-ahead over pipelined memcached text requests: the keys of the whole
// requests at the start of a receive, for prefetching the store
// (StoreThread::prefetch) before the requests are parsed one by one. It
// validates nothing: TextParser still parses and checks every byte, so a
// wrong guess here costs a wasted prefetch, never a wrong answer.
#pragma once

#include <cstddef>
#include <string_view>

namespace ringcache::protocol::text {

// The keys of the whole requests at the start of `input`, which must begin
// at a request boundary: at most `max` of them, stopping at the first
// partial request (a storage command counts only with its data block) or
// command it does not know (any data block it might carry cannot be
// skipped). Knows get/gets/gat/gats, set/add/replace/append/prepend/cas,
// delete/incr/decr/touch and mg/ms/md/ma.
size_t peek_text_keys(std::string_view input, std::string_view* keys, size_t max);

}  // namespace ringcache::protocol::text
