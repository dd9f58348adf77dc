#pragma once
// co_await offload(pool, f): runs f() on `pool` and resumes the awaiting
// coroutine on its own executor with the result. Plain post and post back,
// no coroutine on the pool's side: under GCC 12, a co_spawn'ed coroutine
// awaited with use_awaitable across two executors corrupted Asio's frames
// (seen in tests/unit/upstream/poller_test.cpp under ASan).
//
// f() must not throw (it runs outside any coroutine); the awaiting
// coroutine must keep what f uses alive and untouched until it resumes.
// Cancellation: none; a started f always completes. An empty `pool` runs
// f() inline.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <type_traits>
#include <utility>

namespace cmp::upstream {

template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> offload(const boost::asio::any_io_executor& pool, F f) {
  namespace asio = boost::asio;
  using result = std::invoke_result_t<F&>;
  return asio::async_initiate<const asio::use_awaitable_t<>, void(result)>(
      [](auto handler, asio::any_io_executor on, F work) {
        // Keeps the awaiting coroutine's executor busy until it resumed.
        asio::any_io_executor home = asio::prefer(asio::get_associated_executor(handler),
                                                  asio::execution::outstanding_work.tracked);
        auto job = [handler = std::move(handler), work = std::move(work), home]() mutable {
          auto r = work();
          asio::post(home, [handler = std::move(handler), r = std::move(r)]() mutable {
            std::move(handler)(std::move(r));
          });
        };
        if (on) {
          asio::post(on, std::move(job));
        } else {
          job();
        }
      },
      asio::use_awaitable, pool, std::move(f));
}

}  // namespace cmp::upstream
