#pragma once
// The project's one spelling of Asio and Beast. Boost 1.81 has no default
// completion token, so every asynchronous call names one; `nothrow` is the
// one used everywhere: `co_await op(..., nothrow)` yields (error_code, ...)
// instead of throwing.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace boost::beast::http {}  // aliased below; declared by whoever includes Beast

namespace cmp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

}  // namespace cmp
