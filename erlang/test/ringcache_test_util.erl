%% Helpers shared by the test modules that run real daemons
%% (ringcache_integration_tests, ringcache_tls_tests): a client handle that
%% is always stopped, bounded waits and timings.
-module(ringcache_test_util).

-export([with_handle/3, wait_until/3, elapsed_ms/1, big_values_from_processes/3]).

%% Runs Fun with a handle on Servers, stopping it however Fun ends.
with_handle(Servers, Options, Fun) ->
    {ok, H} = ringcache:start(Servers, Options),
    try Fun(H) after ringcache:stop(H) end.

%% Calls Fun until it returns Expected or TimeoutMs have passed; returns
%% what it returned last.
wait_until(Fun, Expected, TimeoutMs) ->
    wait_until_deadline(Fun, Expected, erlang:monotonic_time(millisecond) + TimeoutMs).

wait_until_deadline(Fun, Expected, Deadline) ->
    case Fun() of
        Expected -> Expected;
        Other ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> Other;
                false ->
                    timer:sleep(50),
                    wait_until_deadline(Fun, Expected, Deadline)
            end
    end.

%% How long Fun took, in milliseconds, and what it returned.
elapsed_ms(Fun) ->
    {Us, Result} = timer:tc(Fun),
    {Us div 1000, Result}.

%% Three processes at once each PUT and GET two values of about
%% ValueBytes, with a GET of the small key `small` between; returns what
%% each saw, [{PutReply, SmallReply, BigReadBack} x 2] per process, or
%% timeout for one that did not finish within WaitMs.
big_values_from_processes(H, ValueBytes, WaitMs) ->
    Parent = self(),
    Workers = [spawn_link(fun() ->
                                  Value = binary:copy(<<I>>, ValueBytes + I),
                                  R = [{ringcache:put(H, {big, I, J}, Value),
                                        ringcache:get(H, small),
                                        ringcache:get(H, {big, I, J}) =:= {ok, Value}}
                                       || J <- [1, 2]],
                                  Parent ! {self(), R}
                          end) || I <- lists:seq(1, 3)],
    [receive {W, R} -> R after WaitMs -> timeout end || W <- Workers].
